import Dispatch
import Ledger
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

/// The control connection to the node, separate from client traffic: `ROLE`, `INFO`, and
/// `CLUSTER SLOT-STATS`. Blocking I/O runs on its own serial queue, never on the event loop or the
/// cooperative pool; a failed call drops the connection and the next call reconnects.
public final class ControlLink: @unchecked Sendable {
    private let host: String
    private let port: Int
    private let credentials: NodeCredentials?
    private let timeoutMilliseconds: Int
    private let queue = DispatchQueue(label: "slotwarden.control")
    /// Only touched on `queue`.
    private var client: NodeClient?

    public init(host: String, port: Int, credentials: NodeCredentials? = nil, timeoutMilliseconds: Int = 2000) {
        self.host = host
        self.port = port
        self.credentials = credentials
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    /// The node's role and run id.
    public func role() async throws -> (role: NodeRole, runID: String) {
        try await run { client in
            let reply = try client.call("ROLE")
            guard let role = NodeRole(roleReply: reply) else { throw NodeClient.Failure("unexpected ROLE reply \(reply)") }
            let info = try client.call("INFO", "server")
            let text = info.bytes.map { String(decoding: $0, as: UTF8.self) } ?? ""
            let runID = text.split(whereSeparator: \.isNewline).first { $0.hasPrefix("run_id:") }?.dropFirst(7)
            return (role, runID.map(String.init) ?? "")
        }
    }

    /// Every slot of the node's shard with its counters.
    public func slotStats() async throws -> NodeSlotStats {
        try await run { client in
            try NodeSlotStats(reply: client.call("CLUSTER", "SLOT-STATS", "SLOTSRANGE", "0", "16383"))
        }
    }

    /// `CONFIG RESETSTAT`: zeroes the node's slot counters (and its other statistics).
    public func resetStatistics() async throws {
        let reply = try await run { client in try client.call("CONFIG", "RESETSTAT") }
        if case .error(let message) = reply { throw NodeClient.Failure("CONFIG RESETSTAT: \(message)") }
    }

    /// `slotStats()` for start-up, before anything runs on the loop: blocks the caller.
    public func slotStatsNow() throws -> NodeSlotStats {
        try queue.sync {
            try perform { try NodeSlotStats(reply: $0.call("CLUSTER", "SLOT-STATS", "SLOTSRANGE", "0", "16383")) }
        }
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
