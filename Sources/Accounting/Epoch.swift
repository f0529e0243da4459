/// Why an epoch ended (and the next began): the node's counters were reset, an operator asked, or
/// this slotwarden stopped or took over from another on the same listen address.
public enum EpochReason: String, Sendable, Codable, CaseIterable {
    case startup
    case roleChange = "role_change"
    case nodeRestart = "node_restart"
    case nodeResetStat = "node_resetstat"
    case manual
    /// The process stopped (SIGTERM/SIGINT) after closing its clients: its last epoch.
    case shutdown
    /// The slotwarden this one took over from exited: the epoch that overlapped with it (both
    /// forwarded to the node) ends, and the first epoch of this process alone begins.
    case handover
}

/// One slot of an epoch's closing snapshot: both ledger views and the node's own counters.
public struct EpochSlotRow: Equatable, Sendable, Codable {
    public var slot: UInt16
    public var wire: SlotCounters
    public var node: SlotCounters
    public var nodeBytesIn: UInt64?
    public var nodeBytesOut: UInt64?
}

/// A command still waiting for its reply when an epoch closed; it completes in the next epoch.
public struct CarriedCommand: Equatable, Sendable, Codable {
    public var connection: UInt64
    public var count: Int

    public init(connection: UInt64, count: Int) {
        self.connection = connection
        self.count = count
    }
}

/// What the promotion guard did for a node of an affected version (see
/// ``ValkeyVersion/abortsOnFirstWriteAfterPromotion``).
public enum PromotionGuardOutcome: String, Sendable, Codable {
    /// Slot stats were turned off for one propagated write, then back on, before any client command.
    case applied
    /// Slot stats were already off on the node: nothing could abort.
    case statsAlreadyDisabled = "stats_already_disabled"
    /// The control connection could not carry it out; the error is in the log.
    case failed
}

/// A stretch of traffic between two resets of the node's slot counters.
public struct EpochRecord: Equatable, Sendable, Codable {
    public var id: UInt64
    /// Why this epoch began.
    public var openedBy: EpochReason
    /// Why it ended (nil while it is open).
    public var closedBy: EpochReason?
    /// Seconds since 1970.
    public var startedAt: Double
    public var endedAt: Double?
    public var roleAtStart: NodeRole
    public var roleAtEnd: NodeRole?
    /// Non-zero slots of the ledger (both views) with the node's counters at close.
    public var closingSlots: [EpochSlotRow]
    /// Indexed by `Bucket.rawValue` (wire view).
    public var closingBuckets: [SlotCounters]
    /// False when the node's `CLUSTER SLOT-STATS` could not be read at close.
    public var nodeStatsRead: Bool
    public var carriedOver: [CarriedCommand]
    public var pauseMilliseconds: Int
    public var drainMilliseconds: Int
    /// The drain timeout passed with commands still in flight (they are in `carriedOver`).
    public var drainTimedOut: Bool
    /// `max_pause_ms` passed before the fence finished: clients were resumed early.
    public var maxPauseExceeded: Bool
    /// Set when this epoch ended with the promotion of a node of an affected version.
    public var promotionGuard: PromotionGuardOutcome?
    /// The slot cuts made while this epoch was open, oldest first (at most `slotCutCapacity`).
    public var slotCuts: [SlotCut]
    /// Cuts beyond `slotCutCapacity`, counted but not kept here (`GET /v1/cuts` has the latest).
    public var slotCutsOmitted: Int
    public static let slotCutCapacity = 1024

    public init(id: UInt64, openedBy: EpochReason, startedAt: Double, roleAtStart: NodeRole) {
        self.id = id
        self.openedBy = openedBy
        self.startedAt = startedAt
        self.roleAtStart = roleAtStart
        closingSlots = []
        closingBuckets = []
        nodeStatsRead = false
        carriedOver = []
        pauseMilliseconds = 0
        drainMilliseconds = 0
        drainTimedOut = false
        maxPauseExceeded = false
        slotCuts = []
        slotCutsOmitted = 0
    }

    public mutating func record(_ cut: SlotCut) {
        if slotCuts.count < Self.slotCutCapacity { slotCuts.append(cut) } else { slotCutsOmitted += 1 }
    }

    /// Fills the closing fields from the ledger and the node's stats at the cut.
    public mutating func close(
        by reason: EpochReason, at time: Double, role: NodeRole, ledger: LedgerSnapshot, nodeStats: NodeSlotStats?
    ) {
        closedBy = reason
        endedAt = time
        roleAtEnd = role
        let rows = nodeStats?.bySlot() ?? [:]
        var slots = Set(ledger.activeSlots)
        for row in nodeStats?.rows ?? [] where row.networkBytesIn != 0 || row.networkBytesOut != 0 { slots.insert(row.slot) }
        closingSlots = slots.sorted().map { slot in
            EpochSlotRow(
                slot: slot.rawValue, wire: ledger[.wire, slot], node: ledger[.node, slot],
                nodeBytesIn: nodeStats == nil ? nil : rows[slot]?.networkBytesIn ?? 0,
                nodeBytesOut: nodeStats == nil ? nil : rows[slot]?.networkBytesOut ?? 0)
        }
        closingBuckets = Bucket.allCases.map { ledger[$0] }
        nodeStatsRead = nodeStats != nil
    }
}

/// The most recent epochs, oldest first, bounded.
public struct EpochHistory: Sendable {
    public let capacity: Int
    public private(set) var epochs: [EpochRecord] = []

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    public mutating func append(_ epoch: EpochRecord) {
        epochs.append(epoch)
        if epochs.count > capacity { epochs.removeFirst(epochs.count - capacity) }
    }

    public func epoch(id: UInt64) -> EpochRecord? { epochs.first { $0.id == id } }

    public mutating func updateLast(_ update: (inout EpochRecord) -> Void) {
        guard !epochs.isEmpty else { return }
        update(&epochs[epochs.count - 1])
    }
}
