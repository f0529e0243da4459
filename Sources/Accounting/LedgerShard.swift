import RESP

/// The running per-slot counters of one event loop, for both views.
///
/// Storage is allocated once (16384 slots × 2 views × 24 bytes, about 786 KiB) and never grows, so
/// recording a command is a few additions into fixed memory: no allocation, no hashing, no locks.
/// A shard is confined to the loop thread that owns it; other threads see its contents only through
/// a ``LedgerSnapshot`` taken on that thread.
public final class LedgerShard {
    // Internal but usable from inline code: the record functions below are inlined into the
    // sessions in the Proxy module (a call into this module per record cost about 15 instructions).
    @usableFromInline let wireSlots: UnsafeMutablePointer<SlotCounters>
    @usableFromInline let nodeSlots: UnsafeMutablePointer<SlotCounters>
    @usableFromInline let wireBuckets: UnsafeMutablePointer<SlotCounters>
    /// One bit per slot and ``SlotMark``: where the two sides may differ for a reason the
    /// reconciliation names.
    private let markBits: UnsafeMutablePointer<UInt64>
    static let markWords = HashSlot.count / 64 * SlotMark.allCases.count
    /// Replicas that left while the node still held their stream back (see
    /// ``noteDroppedReplicaStream()``), this epoch.
    public private(set) var droppedReplicaStreams = 0

    public init() {
        wireSlots = .allocate(capacity: HashSlot.count)
        wireSlots.initialize(repeating: .zero, count: HashSlot.count)
        nodeSlots = .allocate(capacity: HashSlot.count)
        nodeSlots.initialize(repeating: .zero, count: HashSlot.count)
        wireBuckets = .allocate(capacity: Bucket.allCases.count)
        wireBuckets.initialize(repeating: .zero, count: Bucket.allCases.count)
        markBits = .allocate(capacity: Self.markWords)
        markBits.initialize(repeating: 0, count: Self.markWords)
    }

    deinit {
        wireSlots.deallocate()
        nodeSlots.deallocate()
        wireBuckets.deallocate()
        markBits.deallocate()
    }

    // MARK: recording (hot path)

    @inlinable
    public func recordWire(slot: HashSlot, commands: UInt64, bytesIn: Int, bytesOut: Int) {
        (wireSlots + Int(slot.rawValue)).pointee.add(commands: commands, bytesIn: bytesIn, bytesOut: bytesOut)
    }

    @inlinable
    public func recordWire(bucket: Bucket, commands: UInt64, bytesIn: Int, bytesOut: Int) {
        (wireBuckets + bucket.rawValue).pointee.add(commands: commands, bytesIn: bytesIn, bytesOut: bytesOut)
    }

    @inlinable
    public func recordNode(slot: HashSlot, commands: UInt64, bytesIn: Int, bytesOut: Int) {
        (nodeSlots + Int(slot.rawValue)).pointee.add(commands: commands, bytesIn: bytesIn, bytesOut: bytesOut)
    }

    /// A replica left before its stream began to cross: the node charged it for every write since its
    /// full resync began and dropped that stream unwritten, so the ledger will never see those bytes
    /// (a reconciliation names them under `replication`).
    public func noteDroppedReplicaStream() { droppedReplicaStreams += 1 }

    @inline(__always)
    public func markScript(slot: HashSlot) { mark(.script, slot: slot) }

    @inline(__always)
    public func mark(_ mark: SlotMark, slot: HashSlot) {
        let (word, bit) = mark.position(of: slot)
        markBits[word] |= bit
    }

    // MARK: reading

    public func wire(_ slot: HashSlot) -> SlotCounters { wireSlots[Int(slot.rawValue)] }
    public func node(_ slot: HashSlot) -> SlotCounters { nodeSlots[Int(slot.rawValue)] }
    public func wire(_ bucket: Bucket) -> SlotCounters { wireBuckets[bucket.rawValue] }

    /// A copy of everything, for other threads. Costs one pass over the counters; take it on the loop.
    public func snapshot() -> LedgerSnapshot {
        LedgerSnapshot(
            wire: Array(UnsafeBufferPointer(start: wireSlots, count: HashSlot.count)),
            node: Array(UnsafeBufferPointer(start: nodeSlots, count: HashSlot.count)),
            buckets: Array(UnsafeBufferPointer(start: wireBuckets, count: Bucket.allCases.count)),
            markBits: Array(UnsafeBufferPointer(start: markBits, count: Self.markWords)), droppedReplicaStreams: droppedReplicaStreams)
    }

    /// Zeroes the counters of `slots` (both views) and returns what they held, in the same order:
    /// the node reset those slots (their owner changed), so the ledger restarts them too.
    public func cut(_ slots: [HashSlot]) -> [(wire: SlotCounters, node: SlotCounters)] {
        slots.map { slot in
            let index = Int(slot.rawValue)
            defer {
                wireSlots[index] = .zero
                nodeSlots[index] = .zero
                for mark in SlotMark.allCases {
                    let (word, bit) = mark.position(of: slot)
                    markBits[word] &= ~bit
                }
            }
            return (wireSlots[index], nodeSlots[index])
        }
    }

    /// Zeroes every counter: the start of a new epoch.
    public func reset() {
        wireSlots.update(repeating: .zero, count: HashSlot.count)
        nodeSlots.update(repeating: .zero, count: HashSlot.count)
        wireBuckets.update(repeating: .zero, count: Bucket.allCases.count)
        markBits.update(repeating: 0, count: Self.markWords)
        droppedReplicaStreams = 0
    }
}

/// What the ledger notes per slot besides counters: a reason the two sides may differ there.
public enum SlotMark: Int, CaseIterable, Sendable {
    /// A script ran: the node counts its inner calls' replies, which never cross the wire.
    case script
    /// A replica's stream carried a `DEL`/`UNLINK` outside a transaction: if the node deleted the key
    /// by active expiry, it did not charge that delete, while the ledger did.
    case replicatedDelete

    /// The word and bit of `slot` in a mark bitmap.
    @inline(__always)
    func position(of slot: HashSlot) -> (word: Int, bit: UInt64) {
        let index = Int(slot.rawValue)
        return (rawValue * (HashSlot.count / 64) + (index >> 6), 1 << UInt64(index & 63))
    }
}
