import RESP

/// What a replica's node counted as `network-bytes-in` for its primary's replication stream, per slot,
/// up to one stream offset, as the primary's sidecar measured it while forwarding the stream
/// (docs/accounting.md §10). The replica's own sidecar never sees that stream: it asks for these
/// counts at every cut and at every reconciliation, and compares the two.
///
/// The counts are cumulative along a *chain*: the replica's links through that sidecar, one after
/// the other, each resuming where the replica had processed the previous one (`PSYNC`'s offset). A
/// link that cannot be joined to the previous one (the sidecar restarted, the previous link's
/// history was too short, two links overlapped) starts a new chain, and differences across two
/// chains are not exact.
public struct ReplicaStreamCounts: Sendable, Equatable, Codable {
    public struct Slot: Sendable, Equatable, Codable {
        public var slot: Int
        public var bytesIn: UInt64

        public init(slot: Int, bytesIn: UInt64) {
            self.slot = slot
            self.bytesIn = bytesIn
        }
    }

    /// The primary's sidecar process that counted (random per start).
    public var sidecar: String
    /// The sequence number of the chain's first link; nil when the replica had no link through that
    /// sidecar yet.
    public var chain: UInt64?
    /// Links that start after this read get this sequence number or a higher one.
    public var nextLink: UInt64
    /// The stream offset the counts stop at.
    public var upToOffset: Int64
    /// False when the links no longer remember their charges back to `upToOffset` (`slots` is empty then).
    public var complete: Bool
    /// Slots with bytes, ascending.
    public var slots: [Slot]

    public init(sidecar: String, chain: UInt64?, nextLink: UInt64, upToOffset: Int64, complete: Bool, slots: [Slot]) {
        self.sidecar = sidecar
        self.chain = chain
        self.nextLink = nextLink
        self.upToOffset = upToOffset
        self.complete = complete
        self.slots = slots
    }

    /// The counts as one entry per slot.
    public var bySlot: [UInt64] {
        var counts = Array(repeating: UInt64(0), count: HashSlot.count)
        for slot in slots { counts[slot.slot] = slot.bytesIn }
        return counts
    }
}

/// Why a replica's stream bytes over a period cannot be told exactly.
public enum ReplicaStreamGap: String, Error, Sendable, Equatable, Codable {
    /// The primary's sidecar could not be asked (not configured, unreachable, or it refused).
    case peerUnreachable = "peer_unreachable"
    /// The primary's sidecar does not know a link of this replica, though the node has one (it
    /// bypasses the sidecar).
    case linkNotThroughSidecar = "link_not_through_sidecar"
    /// No counts were taken when the period began (the peer could not be asked then).
    case noBaseline = "no_baseline"
    /// The stream was counted on two different chains (another primary, a restarted sidecar, a link
    /// that could not be joined to the previous one).
    case chainChanged = "chain_changed"
    /// The links no longer remember their charges back to the offset asked for.
    case historyTooShort = "history_too_short"
}

/// A replica's stream counts at the start of its reconciliation period, per slot: taken when the
/// epoch opened, and again for the slots of every slot cut since (their counters restarted on the
/// node then). Nil `counts`: they could not be taken; the reason is in `gap`.
public struct ReplicaStreamBaseline: Sendable, Equatable {
    /// The primary's sidecar, as the replica's node follows it (`host:port`).
    public var primary: String
    public private(set) var counts: ReplicaStreamCounts?
    private var bytesIn: [UInt64]
    public private(set) var gap: ReplicaStreamGap?

    public init(primary: String, counts: ReplicaStreamCounts) {
        self.primary = primary
        self.counts = counts
        bytesIn = counts.bySlot
        gap = counts.complete ? nil : .historyTooShort
    }

    public init(primary: String, gap: ReplicaStreamGap) {
        self.primary = primary
        counts = nil
        bytesIn = []
        self.gap = gap
    }

    /// After a slot cut: `slots` start again from `now` (read at the cut), provided it was counted on
    /// the same chain; otherwise the whole baseline is no longer exact.
    public mutating func rebasing(_ slots: [HashSlot], on read: Result<ReplicaStreamCounts, ReplicaStreamGap>, primary: String) {
        guard gap == nil, let counts else { return }
        let now: ReplicaStreamCounts
        switch read {
        case .success(let counts): now = counts
        case .failure(let failure):
            gap = failure
            return
        }
        guard primary == self.primary, now.complete, counts.continues(into: now) else {
            gap = now.complete ? .chainChanged : .historyTooShort
            return
        }
        let fresh = now.bySlot
        for slot in slots { bytesIn[Int(slot.rawValue)] = fresh[Int(slot.rawValue)] }
    }

    /// What the replica's node counted of the stream since the baseline, per slot, given the counts
    /// up to the offset it has processed now.
    public func delta(to now: ReplicaStreamCounts, primary: String) -> Result<[UInt64], ReplicaStreamGap> {
        if let gap { return .failure(gap) }
        guard let counts else { return .failure(.noBaseline) }
        guard now.complete else { return .failure(.historyTooShort) }
        guard primary == self.primary, counts.continues(into: now) else { return .failure(.chainChanged) }
        // A chain that began after the baseline was read holds only bytes processed since: the
        // baseline holds none of it (no link, no bytes).
        return .success(zip(now.bySlot, bytesIn).map { $0 &- $1 })
    }
}

extension ReplicaStreamCounts {
    /// Whether `later` counts the same stream further: the same chain, or (when there was no link
    /// yet) a chain that began after this read.
    public func continues(into later: ReplicaStreamCounts) -> Bool {
        guard later.sidecar == sidecar else { return false }
        if chain == later.chain { return true }
        guard chain == nil, let started = later.chain else { return false }
        return started >= nextLink
    }
}
