@_exported import AdminQuery
import Accounting

// The JSON bodies of the admin API. Property names are camelCase here and snake_case on the wire
// (the encoder converts them); docs/openapi.yaml describes the same shapes.

public struct EpochInfo: Codable, Sendable, Equatable {
    /// The failover fence's open epoch; without a fence, the life of the admin service (always 1).
    public var id: Int
    public var startedAt: String
}

public struct NodeInfo: Codable, Sendable, Equatable {
    public var version: String
    /// `master`, `slave`, or `unknown` when the node did not answer `ROLE`.
    public var role: String
    public var clusterEnabled: Bool
}

public struct LedgerSlot: Codable, Sendable, Equatable {
    public var slot: Int
    public var wire: SlotCounters?
    public var node: SlotCounters?
    public var scriptRan: Bool
}

public struct LedgerTotals: Codable, Sendable, Equatable {
    /// Every byte that crossed slotwarden: slots and buckets.
    public var wire: SlotCounters
    /// What the node should report for the same traffic.
    public var node: SlotCounters
}

public struct LedgerResponse: Codable, Sendable, Equatable {
    public var epoch: EpochInfo
    public var node: NodeInfo
    public var views: [String]
    public var slotRange: String
    public var nonzero: Bool
    public var slots: [LedgerSlot]
    public var buckets: [String: SlotCounters]
    public var totals: LedgerTotals
}

public struct TopSlot: Codable, Sendable, Equatable {
    public var slot: Int
    public var commands: UInt64
    public var bytesIn: UInt64
    public var bytesOut: UInt64
}

public struct TopResponse: Codable, Sendable, Equatable {
    public var epoch: EpochInfo
    public var view: String
    public var by: String
    public var limit: Int
    public var slots: [TopSlot]
}

public struct ByteCounts: Codable, Sendable, Equatable {
    public var bytesIn: UInt64
    public var bytesOut: UInt64
}

public struct ByteDifference: Codable, Sendable, Equatable {
    /// node minus ledger: positive when the node counted more.
    public var bytesIn: Int64
    public var bytesOut: Int64
}

public enum SlotStatus: String, Codable, Sendable, CaseIterable {
    case match
    case nodeHigher = "node_higher"
    case ledgerHigher = "ledger_higher"
}

/// Why a slot differs, where slotwarden can tell.
public enum DifferenceReason: String, Codable, Sendable, CaseIterable {
    /// The node counted more bytes in than crossed slotwarden: a client reached the node directly.
    case bypassedSidecar = "bypassed_sidecar"
    /// A script ran in the slot: the node counts its inner calls' replies, which never cross the wire.
    case script
    /// The node's counters fell below the baseline: they were reset (`CONFIG RESETSTAT`, a restart).
    case nodeReset = "node_reset"
    /// The node runs with `cluster-slot-stats-enabled no`: it reports no network bytes.
    case statsDisabled = "stats_disabled"
    /// On a primary: the node counts the writes it streams to its replicas as bytes out of the slot,
    /// and some of that stream is not on the ledger: a replica that does not connect through this
    /// sidecar, or a link that had not forwarded everything the node charged when the ledger was read.
    /// On a replica: the node counted more bytes in, and the stream it received could not be counted
    /// exactly (its primary's sidecar could not be asked, or the stream changed chains). `replication`
    /// in the report has the figures and the cause.
    case replication
    /// The ledger counted more bytes out, and a replica's stream carried a `DEL`/`UNLINK` of a key of
    /// the slot that no transaction wrapped: a key the node deleted by active expiry, which it streams
    /// to its replicas without charging the slot (docs/accounting.md §3.2).
    case expiry
}

public struct SlotReconciliation: Codable, Sendable, Equatable {
    public var slot: Int
    public var status: SlotStatus
    /// The ledger's `node` view over the epoch.
    public var ledger: ByteCounts
    /// On a replica: the bytes of its primary's replication stream it counted as bytes in over the
    /// epoch, as the primary's sidecar forwarded them (absent when none). `difference` compares the
    /// node with the ledger plus these.
    public var replicationIn: UInt64?
    /// The node's `CLUSTER SLOT-STATS` delta over the same epoch (since its reset, when it was reset).
    public var node: ByteCounts
    public var difference: ByteDifference
    public var reasons: [DifferenceReason]
}

/// A slot outside the node's shard that the ledger counted bytes for: the node counts them too
/// (commands it refused with `-MOVED`/`-ASK`), but reports only its own shard's slots, and zeroes the
/// slot again when its owner changes, as the ledger does at each slot cut. Never compared.
public struct SlotNotReported: Codable, Sendable, Equatable {
    public var slot: Int
    public var ledger: ByteCounts
}

/// The primary's replication stream as the reconciliation saw it.
public struct ReplicationReport: Codable, Sendable, Equatable {
    /// Replicas the node streams to (`connected_slaves`); the node charges each one.
    public var replicasOnNode: Int
    /// Replica links through this sidecar: the ledger charges the stream that crossed them.
    public var linksThroughSidecar: Int
    /// The node's replication offset when it was read (fenced mode).
    public var primaryOffset: Int64?
    /// Links that had not forwarded the stream up to `primaryOffset` when the ledger was read: the
    /// node charged those bytes, the ledger not yet (a replica still receiving its snapshot holds
    /// its stream back). Nil `pending_bytes`: the link's offset is not known.
    public var behind: [LinkBehind]
    /// Replicas that left this epoch while the node held their stream back (their full resync): it
    /// charged them for every write meanwhile and dropped that stream unwritten. Optional: a sidecar
    /// of an earlier version does not say.
    public var droppedStreams: Int?

    public struct LinkBehind: Codable, Sendable, Equatable {
        public var connection: UInt64
        public var pendingBytes: Int64?
    }

    /// On a replica: the stream it received from its primary, as the primary's sidecar counted it.
    public var stream: ReplicaStreamStatus?

    /// Whether some stream the node charged is not on the ledger.
    public var isIncomplete: Bool { replicasOnNode > linksThroughSidecar || !behind.isEmpty || (droppedStreams ?? 0) > 0 }
}

/// The replica side of the stream accounting, as a reconciliation reports it.
public struct ReplicaStreamStatus: Sendable, Equatable, Codable {
    /// The primary the node follows, as it announced itself (its sidecar's address).
    public var primary: String?
    /// The stream offset the node had processed when it was read.
    public var processedOffset: Int64?
    /// Bytes the node counted of the stream over the period, over all slots (nil when not exact).
    public var bytesIn: UInt64?
    /// Why the stream's bytes are not exact, if they are not.
    public var gap: ReplicaStreamGap?
    /// What went wrong when asking the primary's sidecar.
    public var detail: String?
}

public struct ReconcileSummary: Codable, Sendable, Equatable {
    /// Slots with traffic on either side.
    public var slotsCompared: Int
    public var match: Int
    public var nodeHigher: Int
    public var ledgerHigher: Int
    /// Differing slots with at least one known reason.
    public var explained: Int
    public var unexplained: Int
    public var bytesInDifference: Int64
    public var bytesOutDifference: Int64
}

public struct FenceReport: Codable, Sendable, Equatable {
    /// The drain emptied every in-flight FIFO before the deadline.
    public var drained: Bool
    public var inFlight: Int
    public var drainMilliseconds: Int
    public var pausedMilliseconds: Int
    public var maxPauseMilliseconds: Int
    /// Reading the node took longer than what was left of max_pause_ms: the clients were resumed
    /// before both sides were read, so the cut is not consistent.
    public var maxPauseExceeded: Bool
}

public struct LiveWindow: Codable, Sendable, Equatable {
    /// Commands in flight when the two sides were read: each may be counted on one side only.
    public var inFlightCommands: Int
    public var note: String
}

public enum ReconcileVerdict: String, Codable, Sendable {
    case match
    case difference
    /// The node's counters cannot be compared (stats disabled).
    case unavailable
}

public struct ReconcileReport: Codable, Sendable, Equatable {
    public var mode: ReconcileMode
    public var epoch: EpochInfo
    public var node: NodeInfo
    public var networkStatsEnabled: Bool
    public var nodeResetDetected: Bool
    /// Replicas connected to the node when it was read (`INFO replication`).
    public var replicas: Int
    /// The replica links through this sidecar, whose stream the ledger charges per slot.
    public var replication: ReplicationReport
    public var fence: FenceReport?
    public var liveWindow: LiveWindow?
    /// Every slot of the node's shard with traffic on either side, ascending.
    public var slots: [SlotReconciliation]
    /// Slots of other shards the ledger counted bytes for, which the node does not report.
    public var notReported: [SlotNotReported]
    /// Slot cuts made in this epoch (owner changes that reset slots on the node); `GET /v1/cuts` lists them.
    public var slotCuts: Int
    public var summary: ReconcileSummary
    public var verdict: ReconcileVerdict
}

public struct HealthCheck: Codable, Sendable, Equatable {
    public var name: String
    public var ok: Bool
    public var detail: String
}

public struct HealthResponse: Codable, Sendable, Equatable {
    public var status: String
    public var checks: [HealthCheck]?
}

public struct FenceStateResponse: Codable, Sendable, Equatable {
    /// Client reads are paused (by an operator, or by a fenced reconciliation in progress).
    public var paused: Bool
    public var operatorPaused: Bool
    public var inFlight: Int
}

public struct ErrorBody: Codable, Sendable, Equatable {
    public struct Detail: Codable, Sendable, Equatable {
        public var code: String
        public var message: String
        public var parameter: String?
    }

    public var error: Detail
}
