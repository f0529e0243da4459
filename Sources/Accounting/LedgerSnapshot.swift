import RESP

/// One consistent cut of a ledger: every slot in both views, the buckets outside the slots, and where
/// scripts ran. Snapshots of several shards merge by addition.
public struct LedgerSnapshot: Equatable, Sendable {
    /// Indexed by slot number; always `HashSlot.count` long.
    public private(set) var wire: [SlotCounters]
    /// Indexed by slot number; always `HashSlot.count` long.
    public private(set) var node: [SlotCounters]
    /// Indexed by `Bucket.rawValue`.
    public private(set) var buckets: [SlotCounters]
    private var markBits: [UInt64]
    /// Replicas that left before their stream began to cross (``LedgerShard/noteDroppedReplicaStream()``).
    public private(set) var droppedReplicaStreams: Int

    init(wire: [SlotCounters], node: [SlotCounters], buckets: [SlotCounters], markBits: [UInt64], droppedReplicaStreams: Int) {
        self.wire = wire
        self.node = node
        self.buckets = buckets
        self.markBits = markBits
        self.droppedReplicaStreams = droppedReplicaStreams
    }

    /// An empty ledger.
    public init() {
        self.init(
            wire: Array(repeating: .zero, count: HashSlot.count),
            node: Array(repeating: .zero, count: HashSlot.count),
            buckets: Array(repeating: .zero, count: Bucket.allCases.count),
            markBits: Array(repeating: 0, count: LedgerShard.markWords), droppedReplicaStreams: 0)
    }

    public subscript(view: LedgerView, slot: HashSlot) -> SlotCounters {
        switch view {
        case .wire: wire[Int(slot.rawValue)]
        case .node: node[Int(slot.rawValue)]
        }
    }

    public subscript(bucket: Bucket) -> SlotCounters { buckets[bucket.rawValue] }

    /// Whether a script ran in this slot during the epoch (the node may count inner-call replies there).
    public func scriptRan(in slot: HashSlot) -> Bool { isMarked(.script, slot) }

    public func isMarked(_ mark: SlotMark, _ slot: HashSlot) -> Bool {
        let (word, bit) = mark.position(of: slot)
        return markBits[word] & bit != 0
    }

    /// The sum over all slots of one view; for `wire`, the buckets are included.
    public func total(_ view: LedgerView) -> SlotCounters {
        switch view {
        case .wire: (wire + buckets).reduce(.zero, +)
        case .node: node.reduce(.zero, +)
        }
    }

    /// Slots with any traffic in either view, in ascending order.
    public var activeSlots: [HashSlot] {
        (0..<HashSlot.count).compactMap { index in
            wire[index].isZero && node[index].isZero ? nil : HashSlot(rawValue: UInt16(index))
        }
    }

    /// Adds another shard's snapshot into this one.
    public mutating func merge(_ other: LedgerSnapshot) {
        for index in 0..<HashSlot.count {
            wire[index] += other.wire[index]
            node[index] += other.node[index]
        }
        for index in buckets.indices { buckets[index] += other.buckets[index] }
        for index in markBits.indices { markBits[index] |= other.markBits[index] }
        droppedReplicaStreams += other.droppedReplicaStreams
    }
}
