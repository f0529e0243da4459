import Foundation
import Ledger
import Logging
import Proxy
import RESP
import Testing
import TestSupport

/// A one-shard Valkey cluster — a primary and a replica, cluster mode, slot stats on — where each node
/// stands behind its own in-process slotwarden and announces that sidecar's port
/// (`cluster-announce-port`, with `cluster-announce-bus-port` kept on the node's real bus port). So
/// `CLUSTER SLOTS`, `-MOVED` and the replica's replication link all go through the sidecars, while the
/// cluster bus stays direct. Every process is ended by its pid when the fixture stops, also when the
/// set-up fails half-way.
final class SidecarCluster: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// One Valkey node and the slotwarden in front of it.
    final class Member: @unchecked Sendable, CustomStringConvertible {
        let name: String
        let valkey: LocalValkey
        /// The whole sidecar: data plane, role watcher and failover fence.
        let sidecar: Sidecar
        var server: ProxyServer { sidecar.server }
        let facts: NodeFacts
        /// Where slotwarden listens; the port the node announces to the cluster.
        let sidecarPort: Int
        /// The node's cluster id (`CLUSTER MYID`).
        let nodeID: String

        var nodePort: Int { valkey.port }
        /// The node's real cluster bus port (Valkey's default: the client port + 10000).
        var busPort: Int { valkey.port + 10000 }

        fileprivate init(
            name: String, valkey: LocalValkey, sidecar: Sidecar, facts: NodeFacts, sidecarPort: Int, nodeID: String
        ) {
            self.name = name
            self.valkey = valkey
            self.sidecar = sidecar
            self.facts = facts
            self.sidecarPort = sidecarPort
            self.nodeID = nodeID
        }

        /// A new client straight to the node (bypassing slotwarden).
        func direct() throws -> NodeClient { try valkey.client() }

        /// A new client through this node's slotwarden.
        func viaSidecar() throws -> NodeClient { try NodeClient(host: "127.0.0.1", port: sidecarPort) }

        var description: String { "\(name) (node :\(nodePort), sidecar :\(sidecarPort), id \(nodeID.prefix(8)))" }
    }

    /// `cluster-node-timeout` of both nodes, unless a test asks for another.
    static let defaultNodeTimeoutMilliseconds = 5000
    let nodeTimeoutMilliseconds: Int

    let major: Int
    let version: ValkeyVersion
    /// Both members; which one is the primary changes with every failover.
    let members: [Member]
    private var stopped = false

    /// Starts both nodes and their sidecars, builds the cluster and waits until the replica
    /// replicates through the primary's sidecar and both nodes name only sidecar ports.
    convenience init(major: Int, logLevel: Logger.Level = .critical) throws {
        let executable = try #require(ValkeyBinaries.path(major: major), ValkeyBinaries.missingReason)
        try self.init(executable: executable, logLevel: logLevel)
    }

    /// `fence`: how both sidecars' fences behave.
    init(
        executable: String, fence: FenceConfiguration = fenceConfiguration,
        nodeTimeoutMilliseconds: Int = defaultNodeTimeoutMilliseconds, logLevel: Logger.Level = .critical
    ) throws {
        self.nodeTimeoutMilliseconds = nodeTimeoutMilliseconds
        var started: [Member] = []
        do {
            for name in ["a", "b"] {
                started.append(
                    try Self.startMember(
                        name: name, executable: executable, fence: fence, nodeTimeoutMilliseconds: nodeTimeoutMilliseconds,
                        logLevel: logLevel))
            }
            members = started
            version = started[0].facts.version
            major = version.major
            try Self.form(primary: started[0], replica: started[1])
        } catch {
            for member in started { _ = Self.stop(member) }
            throw error
        }
    }

    deinit { stop() }

    /// Stops both sidecars (`ProxyServer.stop()`) and both nodes (by pid). Idempotent. Returns the
    /// sidecars' `uv_loop_close` results.
    @discardableResult
    func stop() -> [Int32] {
        guard !stopped else { return [] }
        stopped = true
        return members.map(Self.stop)
    }

    @discardableResult
    private static func stop(_ member: Member) -> Int32 {
        let result = member.sidecar.stop()
        member.valkey.stop()
        return result
    }

    func member(sidecarPort: Int) -> Member? { members.first { $0.sidecarPort == sidecarPort } }
    var sidecarPorts: Set<Int> { Set(members.map(\.sidecarPort)) }

    /// A cluster client that enters through `entry`'s sidecar and follows redirects between sidecars.
    func client(entry: Member? = nil) -> SidecarClusterClient {
        SidecarClusterClient(sidecarPorts: sidecarPorts, entryPort: (entry ?? members[0]).sidecarPort)
    }

    // MARK: roles

    /// Asks both nodes directly for `ROLE` and returns the one primary and the one replica, or nil
    /// while the roles are not (yet) one of each.
    func currentRoles() throws -> (primary: Member, replica: Member)? {
        let roles = try members.map { try Self.role(of: $0) }
        guard roles.count == 2, roles[0] != roles[1] else { return nil }
        return roles[0] == "master" ? (members[0], members[1]) : (members[1], members[0])
    }

    /// Issues `CLUSTER FAILOVER` to `replica`, through its sidecar (which raises the fence before the
    /// command crosses) or `direct` to the node (the sidecar learns of it from its role poll), and
    /// waits until the roles swapped and the cluster settled again (see `waitUntilSettled`).
    /// `options`: `FORCE` or `TAKEOVER`, passed on to `CLUSTER FAILOVER`.
    func failover(
        to replica: Member, options: [String] = [], direct: Bool = false, timeout: Duration = .seconds(10)
    ) throws -> FailoverTiming {
        guard let old = members.first(where: { $0 !== replica }) else { throw Failure(description: "no other member") }
        let clock = ContinuousClock()
        let start = clock.now
        let client = try direct ? replica.direct() : replica.viaSidecar()
        let reply = try client.call(["CLUSTER", "FAILOVER"] + options)
        guard reply == .simpleString("OK") else {
            throw Failure(description: "CLUSTER FAILOVER \(direct ? "on" : "through") \(replica) answered \(reply)")
        }
        let accepted = clock.now - start
        try Self.poll("\(replica.name) becomes primary and \(old.name) a replica", timeout: timeout) {
            try Self.role(of: replica) == "master" && Self.role(of: old) == "slave" ? true : nil
        }
        let swapped = clock.now - start
        try waitUntilSettled(primary: replica, replica: old, timeout: timeout)
        return FailoverTiming(accepted: accepted, swapped: swapped, settled: clock.now - start)
    }

    struct FailoverTiming: Sendable {
        /// Until `CLUSTER FAILOVER` answered `+OK`.
        var accepted: Duration
        /// Until `ROLE` said master on the promoted node and slave on the demoted one.
        var swapped: Duration
        /// Until the demoted node replicates through the new primary's sidecar and both cluster views
        /// agree (the next manual failover can start).
        var settled: Duration
    }

    /// Waits until: `ROLE` on `replica` names `primary`'s sidecar with the link `connected`, and its
    /// `INFO replication` says `master_link_status:up` with `master_port` = that sidecar; both nodes
    /// are `cluster_state:ok`; and in both nodes' `CLUSTER NODES`, `primary` is a master that owns
    /// every slot and `replica` replicates it, both at their sidecar ports, with no failure flags.
    func waitUntilSettled(primary: Member, replica: Member, timeout: Duration = .seconds(10)) throws {
        try Self.poll("\(replica.name) replicates \(primary.name) through its sidecar", timeout: timeout) {
            try Self.isSettled(primary: primary, replica: replica) ? true : nil
        }
    }

    private static func isSettled(primary: Member, replica: Member) throws -> Bool {
        let role = try replica.direct().call("ROLE")
        guard case .array(let parts) = role, parts.count >= 4, parts[0].string == "slave",
            parts[2] == .integer(Int64(primary.sidecarPort)), parts[3].string == "connected"
        else { return false }
        let replication = try info(of: replica, section: "replication")
        guard replication["master_link_status"] == "up", replication["master_port"] == "\(primary.sidecarPort)" else {
            return false
        }
        for member in [primary, replica] {
            guard try info(of: member, section: "cluster", command: ["CLUSTER", "INFO"])["cluster_state"] == "ok" else {
                return false
            }
            let view = try ClusterNodesView(reply: member.direct().call("CLUSTER", "NODES"))
            guard let p = view.nodes[primary.nodeID], let r = view.nodes[replica.nodeID], view.nodes.count == 2,
                p.isPrimary, p.port == primary.sidecarPort, p.busPort == primary.busPort, p.ownsAllSlots, p.healthy,
                !r.isPrimary, r.primaryID == primary.nodeID, r.port == replica.sidecarPort, r.busPort == replica.busPort,
                r.slotRanges.isEmpty, r.healthy
            else { return false }
        }
        return true
    }

    // MARK: set-up

    /// The fence as the failover test runs it: a short drain, and a max pause well below the test
    /// clients' 5 s reply timeout.
    static let fenceConfiguration = FenceConfiguration(
        fence: .init(drainTimeoutMilliseconds: 500, maxPauseMilliseconds: 3000, roleChangeTimeoutMilliseconds: 2000))

    private static func startMember(
        name: String, executable: String, fence: FenceConfiguration, nodeTimeoutMilliseconds: Int, logLevel: Logger.Level
    ) throws -> Member {
        // A full sync starts at once instead of after the default 5 s wait for more replicas; a
        // shorter node timeout makes the nodes ping each other (and learn replication offsets, which
        // CLUSTER SLOTS needs to list a replica) more often. Neither changes a manual failover.
        let valkey = try LocalValkey(
            executable: executable,
            extraArguments: ["--repl-diskless-sync-delay", "0", "--cluster-node-timeout", "\(nodeTimeoutMilliseconds)"],
            assignAllSlots: false)
        var server: Sidecar?
        do {
            let facts = try NodeProbe.probe(host: "127.0.0.1", port: valkey.port)
            // Port 0: slotwarden binds a free port itself and reports it, so there is no window in
            // which another process (or the other node) can take a port probed in advance. The node
            // learns it through CONFIG SET, which applies at once.
            let configuration = ProxyConfiguration(listenPort: 0, nodePort: valkey.port)
            var logger = Logger(label: "slotwarden.test.\(name)")
            logger.logLevel = logLevel
            let proxy = try Sidecar(proxy: configuration, fence: fence, node: facts, logger: logger)
            server = proxy
            let sidecarPort = try proxy.start()
            let direct = try valkey.client()
            let announced = try direct.call(
                "CONFIG", "SET", "cluster-announce-port", "\(sidecarPort)",
                "cluster-announce-bus-port", "\(valkey.port + 10000)")
            guard announced == .simpleString("OK") else {
                throw Failure(description: "CONFIG SET cluster-announce-port on \(name): \(announced)")
            }
            guard let nodeID = try direct.call("CLUSTER", "MYID").string else {
                throw Failure(description: "CLUSTER MYID on \(name) gave no id")
            }
            return Member(name: name, valkey: valkey, sidecar: proxy, facts: facts, sidecarPort: sidecarPort, nodeID: nodeID)
        } catch {
            server?.stop()
            valkey.stop()
            throw error
        }
    }

    /// Slots to the primary, MEET, REPLICATE, then waits until everything is in place.
    private static func form(primary: Member, replica: Member) throws {
        let primaryClient = try primary.direct()
        try expectOK(primaryClient.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383"), "CLUSTER ADDSLOTSRANGE on \(primary)")
        let replicaClient = try replica.direct()
        // MEET takes the node's real address and bus port; the handshake then learns the announced port.
        try expectOK(
            replicaClient.call("CLUSTER", "MEET", "127.0.0.1", "\(primary.nodePort)", "\(primary.busPort)"),
            "CLUSTER MEET from \(replica)")
        try poll("\(primary.name) and \(replica.name) know each other", timeout: .seconds(15)) { () throws -> Bool? in
            for (member, other) in [(primary, replica), (replica, primary)] {
                let view = try ClusterNodesView(reply: member.direct().call("CLUSTER", "NODES"))
                guard view.nodes.count == 2, let entry = view.nodes[other.nodeID], entry.healthy,
                    entry.port == other.sidecarPort, entry.busPort == other.busPort
                else { return nil }
            }
            // REPLICATE needs the replica to see the primary as a master with slots.
            let view = try ClusterNodesView(reply: replica.direct().call("CLUSTER", "NODES"))
            return view.nodes[primary.nodeID]?.ownsAllSlots == true ? true : nil
        }
        try expectOK(replicaClient.call("CLUSTER", "REPLICATE", primary.nodeID), "CLUSTER REPLICATE on \(replica)")
        try poll("\(replica.name) replicates \(primary.name) through its sidecar", timeout: .seconds(15)) {
            try isSettled(primary: primary, replica: replica) ? true : nil
        }
        // CLUSTER SLOTS on either node names only sidecars: the primary's first, then (once listed)
        // the replica's. Valkey lists a replica only when it knows a non-zero replication offset for
        // it, and 8.1 keeps serving a cached reply for several seconds after that, so the replica's
        // entry is not waited for; CLUSTER NODES above already showed it at its sidecar port.
        var ports: [[Int]] = []
        let expected = [primary.sidecarPort, replica.sidecarPort]
        do {
            try poll("CLUSTER SLOTS names the sidecars", timeout: .seconds(15)) { () throws -> Bool? in
                for member in [primary, replica] {
                    ports = try slotsPorts(of: member)
                    guard ports.count == 1, let range = ports.first, range == Array(expected.prefix(range.count)), !range.isEmpty
                    else { return nil }
                }
                return true
            }
        } catch {
            throw Failure(description: "CLUSTER SLOTS names \(ports), not the sidecars \(expected)")
        }
    }

    // MARK: helpers

    /// Polls `check` until it returns a value or `timeout` passed; a short pause between attempts.
    @discardableResult
    static func poll<Value>(_ what: String, timeout: Duration, _ check: () throws -> Value?) throws -> Value {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var lastError: (any Error)?
        while true {
            do {
                if let value = try check() { return value }
                lastError = nil
            } catch {
                lastError = error
            }
            guard clock.now < deadline else {
                let cause = lastError.map { " (last error: \($0))" } ?? ""
                throw Failure(description: "timed out after \(timeout) waiting until \(what)\(cause)")
            }
            usleep(2_000)
        }
    }

    static func role(of member: Member) throws -> String {
        guard case .array(let parts) = try member.direct().call("ROLE"), let role = parts.first?.string else {
            throw Failure(description: "ROLE on \(member) is not an array")
        }
        return role
    }

    /// `INFO <section>` (or another command that answers `key:value` lines) as a dictionary.
    static func info(of member: Member, section: String, command: [String]? = nil) throws -> [String: String] {
        let reply = try member.direct().call(command ?? ["INFO", section])
        guard let text = reply.string else { throw Failure(description: "\(command ?? ["INFO", section]) on \(member): \(reply)") }
        var fields: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = String(line[line.index(after: colon)...])
        }
        return fields
    }

    /// The ports `CLUSTER SLOTS` names for each slot range, primary first.
    static func slotsPorts(of member: Member) throws -> [[Int]] {
        guard case .array(let ranges) = try member.direct().call("CLUSTER", "SLOTS") else { return [] }
        return ranges.map { range in
            guard case .array(let parts) = range else { return [] }
            return parts.dropFirst(2).compactMap { node in
                guard case .array(let fields) = node, fields.count >= 2, case .integer(let port) = fields[1] else { return nil }
                return Int(port)
            }
        }
    }

    private static func expectOK(_ reply: RESPValue, _ what: String) throws {
        guard reply == .simpleString("OK") else { throw Failure(description: "\(what) answered \(reply)") }
    }
}

/// `CLUSTER NODES`, parsed: one entry per node.
struct ClusterNodesView {
    struct Node {
        var id: String
        var host: String
        var port: Int
        var busPort: Int
        var flags: Set<String>
        var primaryID: String?
        var linkConnected: Bool
        var slotRanges: [ClosedRange<Int>]

        var isPrimary: Bool { flags.contains("master") }
        var healthy: Bool { linkConnected && flags.isDisjoint(with: ["fail", "fail?", "handshake", "noaddr"]) }
        var ownsAllSlots: Bool { slotRanges == [0...16383] }
    }

    var nodes: [String: Node] = [:]

    init(reply: RESPValue) throws {
        guard let text = reply.string else { throw SidecarCluster.Failure(description: "CLUSTER NODES answered \(reply)") }
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count >= 8 else { continue }
            // ip:port@cport[,hostname]
            let address = fields[1].split(separator: ",")[0]
            let hostPort = address.split(separator: "@")
            guard hostPort.count == 2, let colon = hostPort[0].lastIndex(of: ":"),
                let port = Int(hostPort[0][hostPort[0].index(after: colon)...]), let bus = Int(hostPort[1])
            else { continue }
            let flags = Set(fields[2].split(separator: ",").map(String.init))
            // Importing/migrating markers ("[slot->-id]") are not ranges of owned slots.
            let ranges: [ClosedRange<Int>] = fields.dropFirst(8).compactMap { token in
                guard !token.hasPrefix("[") else { return nil }
                let bounds = token.split(separator: "-").compactMap { Int($0) }
                return bounds.count == 2 ? bounds[0]...bounds[1] : bounds.count == 1 ? bounds[0]...bounds[0] : nil
            }
            nodes[fields[0]] = Node(
                id: fields[0], host: String(hostPort[0][..<colon]), port: port, busPort: bus, flags: flags,
                primaryID: fields[3] == "-" ? nil : fields[3], linkConnected: flags.contains("myself") || fields[7] == "connected",
                slotRanges: ranges)
        }
    }
}

/// A small blocking cluster client that only ever talks to sidecars: it sends a command through a
/// sidecar, follows `-MOVED`/`-ASK` to the sidecar they name (and records a violation when they name
/// anything else), and retries after `-TRYAGAIN`, `-CLUSTERDOWN`, `-LOADING` or a lost connection a
/// bounded number of times, without sleeping. Every error reply other than a redirect, and every
/// lost connection, is recorded in `problems`, even when a retry then succeeded: through slotwarden a
/// client should see nothing but redirects.
final class SidecarClusterClient {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let sidecarPorts: Set<Int>
    let maxAttempts: Int
    private var connections: [Int: NodeClient] = [:]
    /// Where each slot was last served; `entryPort` for every slot not seen yet.
    private var routes: [UInt16: Int] = [:]
    private let entryPort: Int

    private(set) var commands = 0
    private(set) var redirects = 0
    private(set) var retries = 0
    /// Error replies other than redirects, lost connections, and redirects that name a non-sidecar port.
    private(set) var problems: [String] = []

    init(sidecarPorts: Set<Int>, entryPort: Int, maxAttempts: Int = 200) {
        precondition(sidecarPorts.contains(entryPort))
        self.sidecarPorts = sidecarPorts
        self.entryPort = entryPort
        self.maxAttempts = maxAttempts
    }

    func close() {
        for connection in connections.values { connection.close() }
        connections.removeAll()
    }

    /// Sends a command whose first argument after the name is its key; returns the first reply that is
    /// not a redirect or a retryable error. Throws when the attempts are used up or a redirect leaves
    /// the sidecars.
    @discardableResult
    func call(key: String, _ arguments: [String]) throws -> RESPValue {
        commands += 1
        let slot = HashSlot(key: key)
        var port = routes[slot.rawValue] ?? entryPort
        var asking = false
        for _ in 0..<maxAttempts {
            let reply: RESPValue
            do {
                let connection = try connection(to: port)
                if asking {
                    asking = false
                    _ = try connection.call("ASKING")
                }
                reply = try connection.call(arguments)
            } catch {
                // Lost or refused: the reply (if any) is unknown. Drop the connection, try another sidecar.
                connections.removeValue(forKey: port)?.close()
                problems.append("\(arguments[0]) \(key) via :\(port): \(error)")
                retries += 1
                port = sidecarPorts.sorted().first { $0 != port } ?? port
                continue
            }
            guard case .error(let message) = reply else {
                routes[slot.rawValue] = port
                return reply
            }
            let words = message.split(separator: " ")
            switch words.first {
            case "MOVED", "ASK":
                redirects += 1
                guard words.count == 3, let redirectedSlot = UInt16(words[1]),
                    let colon = words[2].lastIndex(of: ":"), let target = Int(words[2][words[2].index(after: colon)...])
                else { throw record("unparsable redirect for \(key): -\(message)") }
                guard sidecarPorts.contains(target) else {
                    throw record("redirect for \(key) leaves the sidecars: -\(message) (sidecars: \(sidecarPorts.sorted()))")
                }
                if redirectedSlot != slot.rawValue {
                    problems.append("redirect for \(key) names slot \(redirectedSlot), the key hashes to \(slot.rawValue)")
                }
                if words[0] == "MOVED" { routes[slot.rawValue] = target } else { asking = true }
                port = target
            case "TRYAGAIN", "CLUSTERDOWN", "LOADING":
                problems.append("\(arguments[0]) \(key) via :\(port): -\(message)")
                retries += 1
            default:
                // Not retryable (WRONGTYPE, READONLY, ...): recorded and handed back.
                problems.append("\(arguments[0]) \(key) via :\(port): -\(message)")
                return reply
            }
        }
        throw record("\(arguments[0]) \(key): no answer after \(maxAttempts) attempts")
    }

    private func record(_ problem: String) -> Failure {
        problems.append(problem)
        return Failure(description: problem)
    }

    private func connection(to port: Int) throws -> NodeClient {
        if let connection = connections[port] { return connection }
        let connection = try NodeClient(host: "127.0.0.1", port: port)
        connections[port] = connection
        return connection
    }
}
