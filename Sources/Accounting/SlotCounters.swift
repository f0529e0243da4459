/// What one slot (or one bucket outside the slots) accumulated: commands and bytes in each direction.
public struct SlotCounters: Equatable, Sendable, Codable {
    public var commands: UInt64
    public var bytesIn: UInt64
    public var bytesOut: UInt64

    public init(commands: UInt64 = 0, bytesIn: UInt64 = 0, bytesOut: UInt64 = 0) {
        self.commands = commands
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
    }

    public static let zero = SlotCounters()

    public var isZero: Bool { commands == 0 && bytesIn == 0 && bytesOut == 0 }

    public static func + (lhs: SlotCounters, rhs: SlotCounters) -> SlotCounters {
        SlotCounters(
            commands: lhs.commands &+ rhs.commands,
            bytesIn: lhs.bytesIn &+ rhs.bytesIn,
            bytesOut: lhs.bytesOut &+ rhs.bytesOut)
    }

    public static func += (lhs: inout SlotCounters, rhs: SlotCounters) { lhs = lhs + rhs }

    /// Adds one record in place (the ledger's hot path). Byte counts are never negative, so they
    /// are taken as they are, without a check per addition.
    @inlinable
    mutating func add(commands: UInt64, bytesIn: Int, bytesOut: Int) {
        self.commands &+= commands
        self.bytesIn &+= UInt64(truncatingIfNeeded: bytesIn)
        self.bytesOut &+= UInt64(truncatingIfNeeded: bytesOut)
    }
}

/// Traffic that belongs to no slot, kept in the `wire` view so that the wire view adds up to every
/// byte that crossed slotwarden.
public enum Bucket: Int, CaseIterable, Sendable, Codable, CustomStringConvertible {
    /// Commands without keys (`PING`, `INFO`, `MULTI`, `PUBLISH`, …) and pushes that name no slot.
    case keyless
    /// Commands the node refused before running them (`-MOVED`, `-CROSSSLOT`, unknown command, …).
    case rejected
    /// Bytes that could not be parsed as RESP; the node saw them unchanged.
    case unparsed
    /// `SYNC`/`PSYNC` connections: the replication stream, passed through as opaque bytes.
    case replication
    /// Valkey 9's atomic slot migration (`CLUSTER SYNCSLOTS`): the stream a source node sends to this
    /// node, and this node's one-way messages back.
    case migration

    public var description: String {
        switch self {
        case .keyless: "keyless"
        case .rejected: "rejected"
        case .unparsed: "unparsed"
        case .replication: "replication"
        case .migration: "migration"
        }
    }
}

/// The two ways the ledger looks at the same traffic.
public enum LedgerView: String, CaseIterable, Sendable, Codable {
    /// What crossed slotwarden, attributed by simple rules: a command and its reply to the slot of its
    /// first key, otherwise to a bucket.
    case wire
    /// What the node will count in `CLUSTER SLOT-STATS` for the same traffic.
    case node
}
