import Dispatch
import Accounting
import RESP

/// Credentials for the node; never logged.
public struct NodeCredentials: Sendable {
    public var user: String?
    public var password: String

    public init(user: String?, password: String) {
        self.user = user
        self.password = password
    }
}

/// What one poll of the control connection saw.
public struct NodeObservation: Sendable, Equatable {
    public var role: NodeRole
    public var runID: String
    public var version: ValkeyVersion?
    /// When the `ROLE` request went out, in `DispatchTime` uptime nanoseconds.
    public var requestedAt: UInt64
    /// The node's view of the slot owners (nil when `CLUSTER NODES` could not be read or parsed).
    public var owners: SlotOwners?
    /// The poll was asked for by a hint from the data plane (see `ProxyEvents.roleMayHaveChanged`).
    public var hinted = false

    public init(role: NodeRole, runID: String, version: ValkeyVersion?, requestedAt: UInt64, owners: SlotOwners? = nil) {
        self.role = role
        self.runID = runID
        self.version = version
        self.requestedAt = requestedAt
        self.owners = owners
    }
}

/// The fields of `INFO replication` the fence reports.
public struct ReplicationInfo: Sendable, Equatable {
    /// `master` or `slave`.
    public var role: String
    /// Replicas attached to a primary.
    public var connectedReplicas: Int
    /// For a replica: whether its link to the primary is up.
    public var primaryLinkUp: Bool?
    public var replicationOffset: Int64
    /// For a replica: the primary it follows, as announced (with sidecars, the primary's sidecar), and
    /// the stream offset it has processed (`slave_repl_offset`).
    public var primaryHost: String?
    public var primaryPort: Int?
    public var processedOffset: Int64?

    /// For a replica: its primary as `host:port`.
    public var primaryAddress: String? {
        guard let primaryHost, let primaryPort else { return nil }
        return "\(primaryHost):\(primaryPort)"
    }

    public var isReplica: Bool { role == "slave" }

    public init(infoReplication text: String) {
        var fields: [Substring: Substring] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon]] = line[line.index(after: colon)...]
        }
        role = fields["role"].map(String.init) ?? ""
        connectedReplicas = fields["connected_slaves"].flatMap { Int($0) } ?? 0
        primaryLinkUp = fields["master_link_status"].map { $0 == "up" }
        replicationOffset = fields["master_repl_offset"].flatMap { Int64($0) } ?? 0
        primaryHost = fields["master_host"].map(String.init)
        primaryPort = fields["master_port"].flatMap { Int($0) }
        processedOffset = fields["slave_repl_offset"].flatMap { Int64($0) }
    }
}

/// A control connection to the node, separate from client traffic: `ROLE`, `INFO`,
/// `CLUSTER SLOT-STATS`, `CONFIG RESETSTAT` and the promotion guard. Blocking I/O runs on its own
/// serial queue, never on an event loop or the cooperative pool; a failed call drops the connection
/// and the next call reconnects (authenticating again). The fence polls the role through one, and
/// the admin API reads the node through another, so a slow admin read never delays a role poll.
public final class NodeControl: @unchecked Sendable {
    private let host: String
    private let port: Int
    private let credentials: NodeCredentials?
    private let timeoutMilliseconds: Int
    private let queue: DispatchQueue
    /// Only touched on `queue`.
    private var client: NodeClient?

    /// `purpose` names the connection's queue (`role`, `admin`) in thread dumps.
    public init(
        host: String, port: Int, credentials: NodeCredentials? = nil, timeoutMilliseconds: Int = 2000, purpose: String = "control"
    ) {
        self.queue = DispatchQueue(label: "slotwarden.node.\(purpose)")
        self.host = host
        self.port = port
        self.credentials = credentials
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    /// The node's role, run id and version, and when the `ROLE` request went out (`DispatchTime`
    /// uptime): a client write held back before that moment may pass once this is seen.
    public func observe() async throws -> NodeObservation {
        try await run { client in
            let requestedAt = DispatchTime.now().uptimeNanoseconds
            let reply = try client.call("ROLE")
            guard let role = NodeRole(roleReply: reply) else { throw NodeClient.Failure("unexpected ROLE reply \(reply)") }
            let info = try client.call("INFO", "server")
            let text = info.bytes.map { String(decoding: $0, as: UTF8.self) } ?? ""
            let runID = text.split(whereSeparator: \.isNewline).first { $0.hasPrefix("run_id:") }?.dropFirst(7)
            let nodes = try client.call("CLUSTER", "NODES")
            return NodeObservation(
                role: role, runID: runID.map(String.init) ?? "", version: ValkeyVersion(infoServer: text), requestedAt: requestedAt,
                owners: nodes.string.flatMap { try? SlotOwners(clusterNodes: $0) })
        }
    }

    /// What one `MULTI` read of the node gives at a cut: `CLUSTER SLOT-STATS` over every slot (as read,
    /// parsed later: see `slotStatsReply()`), `CLUSTER NODES` and `INFO replication`. Read together so
    /// that no owner change (which resets slots) and no replication write falls between them: the
    /// counters belong to exactly these owners and this replication offset.
    public struct CutRead: Sendable {
        public var stats: RawSlotStats
        public var owners: SlotOwners
        public var replication: ReplicationInfo
    }

    public func readAtCut() async throws -> CutRead {
        try await run { try Self.readAtCut($0) }
    }

    /// `readAtCut()` for start-up, before anything runs on the loop: blocks the caller.
    public func slotStatsAndOwnersNow() throws -> (stats: NodeSlotStats, owners: SlotOwners, replication: ReplicationInfo) {
        let read = try queue.sync { try perform { try Self.readAtCut($0) } }
        return (try read.stats.parse(), read.owners, read.replication)
    }

    private static func readAtCut(_ client: NodeClient) throws -> CutRead {
        // SLOT-STATS last: the two small replies are decoded, and the rest of the EXEC reply is the
        // large one, kept as read without scanning it a second time.
        let steps = [["CLUSTER", "NODES"], ["INFO", "replication"], ["CLUSTER", "SLOT-STATS", "SLOTSRANGE", "0", "16383"]]
        try client.send(RESPEncoder.command(["MULTI"]) + steps.flatMap { RESPEncoder.command($0) } + RESPEncoder.command(["EXEC"]))
        for step in [["MULTI"]] + steps {
            let reply = try client.readValue()
            guard reply == .simpleString(step == ["MULTI"] ? "OK" : "QUEUED") else {
                throw NodeClient.Failure("\(step.joined(separator: " ")) in MULTI: \(reply)")
            }
        }
        return try splitTransaction(client.readFrameBytes())
    }

    /// Splits the `EXEC` reply `*3 <cluster-nodes> <info> <slot-stats>`, decoding the two small
    /// elements only: the rest of the frame (already scanned whole by the read) is the third.
    private static func splitTransaction(_ exec: [UInt8]) throws -> CutRead {
        let header: [UInt8] = Array("*3\r\n".utf8)
        guard exec.starts(with: header) else {
            throw NodeClient.Failure("EXEC of the cut's reads answered \(String(decoding: exec.prefix(80), as: UTF8.self))")
        }
        guard let (nodes, nodesBytes) = try RESPValueDecoder.decode(exec[header.count...]), let text = nodes.string else {
            throw NodeClient.Failure("CLUSTER NODES in MULTI gave no text")
        }
        let infoStart = header.count + nodesBytes
        guard let (info, infoBytes) = try RESPValueDecoder.decode(exec[infoStart...]), let infoText = info.string else {
            throw NodeClient.Failure("INFO replication in MULTI gave no text")
        }
        let statsBytes = Array(exec[(infoStart + infoBytes)...])
        guard statsBytes.first != UInt8(ascii: "-") else {
            throw NodeClient.Failure("CLUSTER SLOT-STATS in MULTI: \(String(decoding: statsBytes.prefix(120), as: UTF8.self))")
        }
        return CutRead(stats: .bytes(statsBytes), owners: try SlotOwners(clusterNodes: text), replication: ReplicationInfo(infoReplication: infoText))
    }

    /// The first element of the node's `ROLE` reply as the node names it (`master`, `slave`).
    public func role() async throws -> String {
        try await run { client in
            let reply = try client.call("ROLE")
            guard let name = reply.array?.first?.string else { throw NodeClient.Failure("ROLE answered \(reply)") }
            return name
        }
    }

    /// `INFO replication`, typed.
    public func replication() async throws -> ReplicationInfo {
        try await run { client in
            let reply = try client.call("INFO", "replication")
            guard let text = reply.bytes.map({ String(decoding: $0, as: UTF8.self) }) else {
                throw NodeClient.Failure("unexpected INFO replication reply \(reply)")
            }
            return ReplicationInfo(infoReplication: text)
        }
    }

    /// Keeps a just-promoted node of an affected version (``ValkeyVersion/abortsOnFirstWriteAfterPromotion``)
    /// alive. Its first propagated write emits a `SELECT` whose bytes are subtracted from a slot counter
    /// the promotion zeroed; with no replica attached that trips an assertion. So: slot stats off, one
    /// propagated write that touches no key (a function library loaded and deleted), slot stats back
    /// on. Later writes emit no `SELECT`, until a replica attaches (and then the counter is large enough).
    /// Must run before any client command reaches the node.
    public func guardPromotion() async throws -> PromotionGuardOutcome {
        try await run { client in
            let setting = "cluster-slot-stats-enabled"
            let current = try client.call("CONFIG", "GET", setting)
            guard let values = current.array, values.count == 2, let enabled = values[1].string else {
                throw NodeClient.Failure("CONFIG GET \(setting): \(current)")
            }
            if enabled == "no" { return .statsAlreadyDisabled }
            try Self.expectOK(client.call("CONFIG", "SET", setting, "no"), "CONFIG SET \(setting) no")
            let library = "slotwarden_promotion_guard"
            let source = "#!lua name=\(library)\nredis.register_function('\(library)', function() return 0 end)"
            let loaded = Result { try client.call("FUNCTION", "LOAD", "REPLACE", source) }
            let deleted = Result { try client.call("FUNCTION", "DELETE", library) }
            try Self.expectOK(client.call("CONFIG", "SET", setting, enabled), "CONFIG SET \(setting) \(enabled)")
            if case .error(let message) = try loaded.get() { throw NodeClient.Failure("FUNCTION LOAD: \(message)") }
            try Self.expectOK(deleted.get(), "FUNCTION DELETE \(library)")
            return .applied
        }
    }

    /// The bytes of `CLUSTER SLOT-STATS` over every slot; an error reply (slot stats are a
    /// cluster-mode command) is reported as such.
    private static func readSlotStatsReply(_ client: NodeClient) throws -> [UInt8] {
        try client.send(RESPEncoder.command(["CLUSTER", "SLOT-STATS", "SLOTSRANGE", "0", "16383"]))
        let bytes = try client.readFrameBytes()
        if bytes.first == UInt8(ascii: "-") {
            throw NodeClient.Failure("CLUSTER SLOT-STATS: \(String(decoding: bytes.dropFirst().dropLast(2), as: UTF8.self))")
        }
        return bytes
    }

    private static func readSlotStats(_ client: NodeClient) throws -> NodeSlotStats {
        try readSlotStatsReply(client).withUnsafeBytes { try NodeSlotStats(replyBytes: $0) }
    }

    private static func expectOK(_ reply: RESPValue, _ what: String) throws {
        guard reply == .simpleString("OK") else { throw NodeClient.Failure("\(what): \(reply)") }
    }

    /// Every slot of the node's shard with its counters.
    public func slotStats() async throws -> NodeSlotStats {
        try await run { client in
            try Self.readSlotStats(client)
        }
    }

    /// `CLUSTER SLOT-STATS` over every slot as read, parsed later: the reply for 16384 slots is about
    /// 1.5 MB, and a fenced reconciliation keeps parsing out of its pause.
    public func slotStatsReply() async throws -> RawSlotStats {
        try await run { client in .bytes(try Self.readSlotStatsReply(client)) }
    }

    /// `CONFIG RESETSTAT`: zeroes the node's slot counters (and its other statistics).
    public func resetStatistics() async throws {
        let reply = try await run { client in try client.call("CONFIG", "RESETSTAT") }
        if case .error(let message) = reply { throw NodeClient.Failure("CONFIG RESETSTAT: \(message)") }
    }

    /// Runs `body` with a connected client on the control queue.
    private func run<Result: Sendable>(_ body: @escaping @Sendable (NodeClient) throws -> Result) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { [self] in
                continuation.resume(with: Swift.Result { try perform(body) })
            }
        }
    }

    /// On `queue`: runs `body` with a connected client; a failure drops the connection so that the
    /// next call reconnects.
    private func perform<Result>(_ body: (NodeClient) throws -> Result) throws -> Result {
        do {
            return try body(connectedClient())
        } catch {
            client?.close()
            client = nil
            throw error
        }
    }

    private func connectedClient() throws -> NodeClient {
        if let client { return client }
        let fresh = try NodeClient(host: host, port: port, timeoutMilliseconds: timeoutMilliseconds)
        if let credentials {
            let reply = try credentials.user.map { try fresh.call("AUTH", $0, credentials.password) }
                ?? fresh.call("AUTH", credentials.password)
            if case .error = reply { throw NodeClient.Failure("AUTH refused by \(host):\(port)") }
        }
        client = fresh
        return fresh
    }
}
