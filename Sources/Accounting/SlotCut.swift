/// What made the sidecar look at the slot owners when it found a change.
public enum SlotCutTrigger: String, Sendable, Codable, CaseIterable {
    /// The periodic poll of the control connection.
    case poll
    /// A `-MOVED`/`-ASK` reply or an ownership command (`CLUSTER SETSLOT`, `CLUSTER MIGRATESLOTS`, …)
    /// crossed the sidecar, which polled at once.
    case hint
    /// A fenced reconciliation found the owners changed since the last cut.
    case reconcile
}

/// Slots `first` through `last`.
public struct SlotRange: Equatable, Sendable, Codable {
    public var first: UInt16
    public var last: UInt16

    public init(first: UInt16, last: UInt16) {
        self.first = first
        self.last = last
    }
}

/// The slots of a cut that went from one owner to another, as ascending ranges.
public struct SlotCutMove: Equatable, Sendable, Codable {
    public var previousOwner: ClusterNodeName?
    public var newOwner: ClusterNodeName?
    public var slotRanges: [SlotRange]
}

/// One slot of a cut: its owner before and after, and the counters that closed with it.
public struct SlotCutRow: Equatable, Sendable, Codable {
    public var slot: UInt16
    public var previousOwner: ClusterNodeName?
    public var newOwner: ClusterNodeName?
    /// The node reported the slot (its shard owned it) before the change, and after it.
    public var wasReported: Bool
    public var isReported: Bool
    /// The ledger's counters for the slot since the epoch opened or the slot's previous cut (wire and
    /// node views): what the node dropped when it reset the slot.
    public var wire: SlotCounters
    public var node: SlotCounters
    /// The node's counters for the slot at the cut, counted since its reset: the open period's
    /// baseline. Nil when the node does not report the slot.
    public var nodeBytesInAtCut: UInt64?
    public var nodeBytesOutAtCut: UInt64?

    public init(change: SlotOwnerChange, wire: SlotCounters, node: SlotCounters, nodeAtCut: NodeSlotStat?) {
        slot = change.slot.rawValue
        previousOwner = change.previousOwner
        newOwner = change.newOwner
        wasReported = change.wasReported
        isReported = change.isReported
        self.wire = wire
        self.node = node
        nodeBytesInAtCut = change.isReported ? nodeAtCut?.networkBytesIn ?? 0 : nil
        nodeBytesOutAtCut = change.isReported ? nodeAtCut?.networkBytesOut ?? 0 : nil
    }
}

/// A cut of some slots inside an epoch: the node reset their counters because their owner changed,
/// so the ledger closed them and both sides restarted together.
///
/// A cut that touches a slot the node reports (before or after the change) is fenced like an epoch's
/// cut: clients paused and drained, the node's counters and owners read in one `MULTI`, the ledger's
/// slots zeroed, the node's values taken as the slots' new baseline. A cut of slots the node reports
/// neither before nor after (another shard's failover or migration, seen from an uninvolved node) only
/// zeroes what the ledger kept for them (`-MOVED`-refused commands, which the node counts but never
/// reports) and does not pause anyone.
public struct SlotCut: Equatable, Sendable, Codable {
    /// Sequential within the process.
    public var id: UInt64
    public var epoch: UInt64
    /// Seconds since 1970.
    public var at: Double
    public var trigger: SlotCutTrigger
    public var fenced: Bool
    /// How many slots the cut restarted, and which owners they went between (all of them, as ranges).
    public var slotCount: Int
    public var moves: [SlotCutMove]
    /// The cut slots that held counts, in the ledger or on the node at the cut, with their counters. A
    /// slot that held none (most of another shard's slots after its failover) is only in `moves`: a
    /// cut stays small however many slots it restarts.
    public var slots: [SlotCutRow]
    public var pauseMilliseconds: Int
    public var drainMilliseconds: Int
    public var drainTimedOut: Bool
    public var maxPauseExceeded: Bool

    /// `rows`: every slot the cut restarted, in slot order.
    public init(id: UInt64, epoch: UInt64, at: Double, trigger: SlotCutTrigger, fenced: Bool, slots rows: [SlotCutRow]) {
        self.id = id
        self.epoch = epoch
        self.at = at
        self.trigger = trigger
        self.fenced = fenced
        slotCount = rows.count
        moves = []
        for row in rows {
            guard let index = moves.firstIndex(where: { $0.previousOwner == row.previousOwner && $0.newOwner == row.newOwner }) else {
                moves.append(
                    SlotCutMove(previousOwner: row.previousOwner, newOwner: row.newOwner, slotRanges: [SlotRange(first: row.slot, last: row.slot)]))
                continue
            }
            let lastRange = moves[index].slotRanges.count - 1
            if moves[index].slotRanges[lastRange].last &+ 1 == row.slot {
                moves[index].slotRanges[lastRange].last = row.slot
            } else {
                moves[index].slotRanges.append(SlotRange(first: row.slot, last: row.slot))
            }
        }
        slots = rows.filter { !$0.wire.isZero || !$0.node.isZero || ($0.nodeBytesInAtCut ?? 0) != 0 || ($0.nodeBytesOutAtCut ?? 0) != 0 }
        pauseMilliseconds = 0
        drainMilliseconds = 0
        drainTimedOut = false
        maxPauseExceeded = false
    }

    /// Whether the cut restarted `slot`.
    public func covers(_ slot: UInt16) -> Bool {
        moves.contains { $0.slotRanges.contains { $0.first <= slot && slot <= $0.last } }
    }
}

/// The most recent cuts, oldest first, bounded; and how many there were in all.
public struct SlotCutHistory: Sendable {
    public let capacity: Int
    public private(set) var cuts: [SlotCut] = []
    public private(set) var total: UInt64 = 0
    public private(set) var slotsCut: UInt64 = 0

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    public mutating func append(_ cut: SlotCut) {
        total += 1
        slotsCut += UInt64(cut.slotCount)
        cuts.append(cut)
        if cuts.count > capacity { cuts.removeFirst(cuts.count - capacity) }
    }
}
