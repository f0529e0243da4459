import Dispatch
import Ledger
import Proxy
import RESP

/// What the admin API needs from the data plane and from the node. The admin service talks to the
/// data plane only through this facade; ``ProxyBackend`` is the real one, tests supply their own.
public protocol AdminBackend: Sendable {
    /// The node's version, read at start-up.
    var nodeVersion: ValkeyVersion { get }
    var clusterEnabled: Bool { get }
    /// One consistent cut of the ledger (taken on the loop).
    func snapshot() async -> LedgerSnapshot
    func connectionCounts() async -> ProxyServer.ConnectionCounts
    /// Commands forwarded and not answered yet, over all connections.
    func inFlightCount() async -> Int
    func pauseClientReads() async
    func resumeClientReads() async
    func drain(timeoutMilliseconds: Int) async -> ProxyServer.DrainOutcome
    /// `CLUSTER SLOT-STATS SLOTSRANGE 0 16383`, read straight from the node. Only the read happens
    /// here (it may run while clients are paused); ``RawSlotStats/parse()`` does the rest later.
    func nodeSlotStats() async throws -> RawSlotStats
    /// The first element of the node's `ROLE` reply (`master`, `slave`).
    func nodeRole() async throws -> String
    /// `connected_slaves` of the node's `INFO replication`: replicas the node streams writes to.
    func nodeReplicas() async throws -> Int
    /// The node's counters when the current epoch opened, when a failover fence keeps epochs: the
    /// reconciliation's baseline then moves with every reset instead of staying at start-up.
    func epochBaseline() async -> NodeSlotStats?
    /// The open epoch and the closed ones kept in memory, oldest first; nil without a fence.
    func epochs() async -> EpochList?
    /// The failover fence's epoch and counters, for `/metrics`; nil without a fence.
    func fenceStatus() async -> FenceStatus?
    /// Closes the open epoch at a fenced cut and opens the next, zeroing the node's counters at that
    /// cut when asked; returns the closed one (nil without a fence).
    func closeEpoch(resetNodeStats: Bool) async -> EpochRecord?
}

/// What `/metrics` shows of the failover fence.
public struct FenceStatus: Sendable {
    public var epochID: UInt64
    public var counters: FenceController.Counters

    public init(epochID: UInt64, counters: FenceController.Counters) {
        self.epochID = epochID
        self.counters = counters
    }
}

/// `GET /v1/epochs`.
public struct EpochList: Sendable, Encodable {
    public var open: EpochRecord
    public var closed: [EpochRecord]

    public init(open: EpochRecord, closed: [EpochRecord]) {
        self.open = open
        self.closed = closed
    }
}

extension AdminBackend {
    public func epochBaseline() async -> NodeSlotStats? { nil }
    public func epochs() async -> EpochList? { nil }
    public func fenceStatus() async -> FenceStatus? { nil }
    public func closeEpoch(resetNodeStats: Bool) async -> EpochRecord? { nil }
}

/// A `CLUSTER SLOT-STATS` reply as read, parsed on demand: the reply for 16384 slots is large, and a
/// fenced reconciliation keeps parsing out of the pause.
public enum RawSlotStats: Sendable {
    case bytes([UInt8])
    case parsed(NodeSlotStats)

    public func parse() throws -> NodeSlotStats {
        switch self {
        case .parsed(let stats):
            return stats
        case .bytes(let bytes):
            return try bytes.withUnsafeBytes { try NodeSlotStats(replyBytes: $0) }
        }
    }
}

/// Runs the blocking ``NodeClient`` off every event loop (the data plane's and the admin server's),
/// on a concurrent dispatch queue, one short-lived connection per call.
public struct NodeReader: Sendable {
    public let host: String
    public let port: Int
    public let timeoutMilliseconds: Int
    private let queue = DispatchQueue(label: "slotwarden.admin.node", attributes: .concurrent)

    public init(host: String, port: Int, timeoutMilliseconds: Int = 1000) {
        self.host = host
        self.port = port
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    public func call(_ arguments: [String]) async throws -> RESPValue {
        try await withClient { try $0.call(arguments) }
    }

    /// `CLUSTER SLOT-STATS` over every slot, as read: the reply's bytes, parsed later (outside a
    /// fenced reconciliation's pause).
    public func slotStats() async throws -> RawSlotStats {
        try await withClient { client in
            try client.send(RESPEncoder.command(["CLUSTER", "SLOT-STATS", "SLOTSRANGE", "0", "16383"]))
            return .bytes(try client.readFrameBytes())
        }
    }

    public func replicas() async throws -> Int {
        let reply = try await call(["INFO", "replication"])
        guard case .bulkString(let bytes) = reply else { throw NodeClient.Failure("INFO replication answered \(reply)") }
        return ReplicationInfo(infoReplication: String(decoding: bytes, as: UTF8.self)).connectedReplicas
    }

    /// Runs `body` on a fresh connection to the node, on the reader's queue, and closes it.
    private func withClient<Answer: Sendable>(_ body: @escaping @Sendable (NodeClient) throws -> Answer) async throws -> Answer {
        let (host, port, timeout) = (host, port, timeoutMilliseconds)
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(
                    with: Result {
                        let client = try NodeClient(host: host, port: port, timeoutMilliseconds: timeout)
                        defer { client.close() }
                        return try body(client)
                    })
            }
        }
    }

    public func role() async throws -> String {
        let reply = try await call(["ROLE"])
        guard case .array(let elements) = reply, let first = elements.first else {
            throw NodeClient.Failure("ROLE answered \(reply)")
        }
        switch first {
        case .bulkString(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .simpleString(let text): return text
        default: throw NodeClient.Failure("ROLE answered \(reply)")
        }
    }
}

/// The real backend: a running ``ProxyServer`` and its node.
public struct ProxyBackend: AdminBackend {
    public let server: ProxyServer
    public let reader: NodeReader
    /// The fence of the sidecar, when there is one: it owns the epochs.
    public let fence: FenceController?

    public init(server: ProxyServer, fence: FenceController? = nil, nodeTimeoutMilliseconds: Int = 1000) {
        self.server = server
        self.fence = fence
        self.reader = NodeReader(
            host: server.configuration.nodeHost, port: server.configuration.nodePort,
            timeoutMilliseconds: nodeTimeoutMilliseconds)
    }

    public func epochBaseline() async -> NodeSlotStats? { await fence?.nodeStatsAtOpen }

    public func epochs() async -> EpochList? {
        guard let fence else { return nil }
        return EpochList(open: await fence.openEpoch, closed: await fence.closedEpochs)
    }

    public func fenceStatus() async -> FenceStatus? {
        guard let fence else { return nil }
        return FenceStatus(epochID: await fence.openEpoch.id, counters: await fence.counters)
    }

    public func closeEpoch(resetNodeStats: Bool) async -> EpochRecord? {
        guard let fence else { return nil }
        return await fence.closeEpochManually(resetNodeStats: resetNodeStats)
    }

    public var nodeVersion: ValkeyVersion { server.node.version }
    public var clusterEnabled: Bool { server.node.clusterEnabled }
    public func snapshot() async -> LedgerSnapshot { await server.snapshot() }

    public func connectionCounts() async -> ProxyServer.ConnectionCounts { await server.connectionCounts() }

    public func inFlightCount() async -> Int { await server.inFlightCount() }
    public func pauseClientReads() async { await server.pauseClientReads() }
    public func resumeClientReads() async { await server.resumeClientReads() }

    public func drain(timeoutMilliseconds: Int) async -> ProxyServer.DrainOutcome {
        await server.drain(timeoutMilliseconds: timeoutMilliseconds)
    }

    public func nodeSlotStats() async throws -> RawSlotStats { try await reader.slotStats() }
    public func nodeRole() async throws -> String { try await reader.role() }
    public func nodeReplicas() async throws -> Int { try await reader.replicas() }
}
