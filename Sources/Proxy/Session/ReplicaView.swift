import Accounting
import RESP

/// What the replica at the other end of a link will count as `network-bytes-in`, per slot, for the
/// stream the primary's sidecar forwarded to it (docs/accounting.md §10, measured on 8.1 and 9.1):
/// each keyed command its stream bytes, to its slot (deletes by active expiry and the effects of
/// scripts without `#!` included: the replica runs them as commands); keyless commands nothing; a
/// replicated transaction, on 9.x everything, on 8.x only its `MULTI` and `EXEC`, to the slot of the
/// last command inside.
///
/// The replica's own sidecar cannot see this stream, so it will ask for these counts "up to the
/// offset my node processed": the view keeps cumulative counters and a bounded ring of the latest
/// charges, from which it can take back what lies beyond an earlier offset.
struct ReplicaView {
    /// Indexed by slot; bytes since the link's stream started.
    private(set) var bytesIn: [UInt64]
    private let countsWholeTransaction: Bool
    /// The open transaction's charges, made at its `EXEC`: the replica counts it when it runs it.
    private var transaction: (bytes: [(slot: HashSlot, bytes: Int)], wrapperBytes: Int, lastSlot: HashSlot?)?
    private var ring: [Charge]
    private var ringNext = 0
    private var ringFull = false
    static let ringCapacity = 65536

    /// One charge: `bytes` to `slot`, complete at stream offset `endOffset`.
    struct Charge {
        var endOffset: Int64
        var slot: UInt16
        var bytes: UInt32
    }

    init(countsWholeTransaction: Bool) {
        bytesIn = Array(repeating: 0, count: HashSlot.count)
        self.countsWholeTransaction = countsWholeTransaction
        ring = Array(repeating: Charge(endOffset: 0, slot: 0, bytes: 0), count: Self.ringCapacity)
    }

    /// A command of the stream ending at `endOffset` (nil while the offset is unknown).
    mutating func command(wireBytes: Int, slot: HashSlot?, endOffset: Int64?) {
        guard let slot else { return }
        if transaction != nil {
            if countsWholeTransaction { transaction?.bytes.append((slot, wireBytes)) }
            transaction?.lastSlot = slot
            return
        }
        charge(wireBytes, to: slot, endOffset: endOffset)
    }

    mutating func multi(wireBytes: Int) {
        transaction = ([], wireBytes, nil)
    }

    mutating func exec(wireBytes: Int, endOffset: Int64?) {
        guard let open = transaction else { return }
        transaction = nil
        for (slot, bytes) in open.bytes { charge(bytes, to: slot, endOffset: endOffset) }
        if let last = open.lastSlot { charge(open.wrapperBytes + wireBytes, to: last, endOffset: endOffset) }
    }

    private mutating func charge(_ bytes: Int, to slot: HashSlot, endOffset: Int64?) {
        bytesIn[Int(slot.rawValue)] &+= UInt64(bytes)
        ring[ringNext] = Charge(endOffset: endOffset ?? .max, slot: slot.rawValue, bytes: UInt32(clamping: bytes))
        ringNext += 1
        if ringNext == Self.ringCapacity {
            ringNext = 0
            ringFull = true
        }
    }

    /// The counts per slot for the stream up to `offset`: the cumulative ones less the ring's charges
    /// beyond it. Nil when the ring no longer reaches back to `offset`.
    func counts(upTo offset: Int64) -> [UInt64]? {
        var counts = bytesIn
        let kept = ringFull ? Self.ringCapacity : ringNext
        // Newest first: take back every charge beyond `offset`; the ring must reach one at or before it.
        for step in stride(from: 1, through: kept, by: 1) {
            let charge = ring[(ringNext - step + Self.ringCapacity) % Self.ringCapacity]
            if charge.endOffset <= offset { return counts }
            counts[Int(charge.slot)] &-= UInt64(charge.bytes)
        }
        return ringFull ? nil : counts
    }
}
