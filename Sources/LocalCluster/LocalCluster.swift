import Foundation
import Accounting
import Logging
import Proxy
import RESP

/// A one-shard Valkey cluster on loopback — a primary and a replica, cluster mode, slot stats on —
/// where each node stands behind its own in-process slotwarden and announces that sidecar's port
/// (`cluster-announce-port`, with `cluster-announce-bus-port` kept on the node's real bus port). So
/// `CLUSTER SLOTS`, `-MOVED` and the replica's replication link all go through the sidecars, while the
/// cluster bus stays direct. The demo, the integration tests and the benchmarks all start it here.
/// Every process is ended by its pid when the cluster stops, also when the set-up fails half-way.
public final class LocalCluster: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// One Valkey node and the slotwarden in front of it.
    public final class Member: @unchecked Sendable, CustomStringConvertible {
        public let name: String
        public let valkey: LocalValkey
        /// The whole sidecar: data plane, role watcher and failover fence.
        public let sidecar: Sidecar
        public var server: ProxyServer { sidecar.server }
        public let facts: NodeFacts
        /// Where slotwarden listens; the port the node announces to the cluster.
        public let sidecarPort: Int
        /// The node's cluster id (`CLUSTER MYID`).
        public let nodeID: String

        public var nodePort: Int { valkey.port }
        /// The node's real cluster bus port (Valkey's default: the client port + 10000).
        public var busPort: Int { valkey.port + 10000 }

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
        public func direct() throws -> NodeClient { try valkey.client() }

        /// A new client through this node's slotwarden.
        public func viaSidecar() throws -> NodeClient { try NodeClient(host: "127.0.0.1", port: sidecarPort) }

        public var description: String { "\(name) (node :\(nodePort), sidecar :\(sidecarPort), id \(nodeID.prefix(8)))" }
    }

    /// `cluster-node-timeout` of both nodes, unless the caller asks for another.
    public static let defaultNodeTimeoutMilliseconds = 5000
    public let nodeTimeoutMilliseconds: Int

    public let version: ValkeyVersion
    public var major: Int { version.major }
    /// Both members; which one is the primary changes with every failover.
    public let members: [Member]
    private var stopped = false

    /// Starts both nodes and their sidecars, gives every slot to the first, and waits until the second
    /// replicates it through the first's sidecar and both nodes name only sidecar ports.
    /// `fence`: how both sidecars' fences behave; `logger`: both sidecars log to it, each with its
    /// member's name as `member` metadata.
    public init(
        executable: String, fence: FenceConfiguration = FenceConfiguration(),
        nodeTimeoutMilliseconds: Int = defaultNodeTimeoutMilliseconds, logger: Logger
    ) throws {
        self.nodeTimeoutMilliseconds = nodeTimeoutMilliseconds
        var started: [Member] = []
        do {
            for name in ["a", "b"] {
                var memberLogger = logger
                memberLogger[metadataKey: "member"] = "\(name)"
                started.append(
                    try Self.startMember(
                        name: name, executable: executable, fence: fence, nodeTimeoutMilliseconds: nodeTimeoutMilliseconds,
                        logger: memberLogger))
            }
            members = started
            version = started[0].facts.version
            try Self.form(primary: started[0], replica: started[1])
        } catch {
            for member in started { _ = Self.stop(member) }
            throw error
        }
    }

    deinit { stop() }

    /// Stops both sidecars and both nodes (by pid). Idempotent. Returns the sidecars' `uv_loop_close`
    /// results.
    @discardableResult
    public func stop() -> [Int32] {
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

    public func member(sidecarPort: Int) -> Member? { members.first { $0.sidecarPort == sidecarPort } }
    public var sidecarPorts: Set<Int> { Set(members.map(\.sidecarPort)) }

    /// A cluster client that enters through `entry`'s sidecar and follows redirects between sidecars.
    public func client(entry: Member? = nil) -> SidecarClusterClient {
        SidecarClusterClient(sidecarPorts: sidecarPorts, entryPort: (entry ?? members[0]).sidecarPort)
    }

    // MARK: roles

    /// Asks both nodes directly for `ROLE` and returns the one primary and the one replica, or nil
    /// while the roles are not (yet) one of each.
    public func currentRoles() throws -> (primary: Member, replica: Member)? {
        let roles = try members.map { try $0.role() }
        guard roles.count == 2, roles[0] != roles[1] else { return nil }
        return roles[0] == "master" ? (members[0], members[1]) : (members[1], members[0])
    }

    /// Issues `CLUSTER FAILOVER` to `replica`, through its sidecar (which raises the fence before the
    /// command crosses) or `direct` to the node (the sidecar learns of it from its role poll), and
    /// waits until the roles swapped and the cluster settled again (see `waitUntilSettled`).
    /// `options`: `FORCE` or `TAKEOVER`, passed on to `CLUSTER FAILOVER`.
    @discardableResult
    public func failover(
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
        try waitUntil("\(replica.name) becomes primary and \(old.name) a replica", timeout: timeout) {
            try replica.role() == "master" && old.role() == "slave" ? true : nil
        }
        let swapped = clock.now - start
        try waitUntilSettled(primary: replica, replica: old, timeout: timeout)
        return FailoverTiming(accepted: accepted, swapped: swapped, settled: clock.now - start)
    }

    public struct FailoverTiming: Sendable {
        /// Until `CLUSTER FAILOVER` answered `+OK`.
        public var accepted: Duration
        /// Until `ROLE` said master on the promoted node and slave on the demoted one.
        public var swapped: Duration
        /// Until the demoted node replicates through the new primary's sidecar and both cluster views
        /// agree (the next manual failover can start).
        public var settled: Duration
    }

    /// Waits until: `ROLE` on `replica` names `primary`'s sidecar with the link `connected`, and its
    /// `INFO replication` says `master_link_status:up` with `master_port` = that sidecar; both nodes
    /// are `cluster_state:ok`; and in both nodes' `CLUSTER NODES`, `primary` is a master that owns
    /// every slot and `replica` replicates it, both at their sidecar ports, with no failure flags.
    public func waitUntilSettled(primary: Member, replica: Member, timeout: Duration = .seconds(10)) throws {
        try waitUntil("\(replica.name) replicates \(primary.name) through its sidecar", timeout: timeout) {
            try Self.isSettled(primary: primary, replica: replica) ? true : nil
        }
    }

    private static func isSettled(primary: Member, replica: Member) throws -> Bool {
        let role = try replica.direct().call("ROLE")
        guard case .array(let parts) = role, parts.count >= 4, parts[0].string == "slave",
            parts[2] == .integer(Int64(primary.sidecarPort)), parts[3].string == "connected"
        else { return false }
        let replication = try replica.info(section: "replication")
        guard replication["master_link_status"] == "up", replication["master_port"] == "\(primary.sidecarPort)" else {
            return false
        }
        for member in [primary, replica] {
            guard try member.info(command: ["CLUSTER", "INFO"])["cluster_state"] == "ok" else { return false }
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

    private static func startMember(
        name: String, executable: String, fence: FenceConfiguration, nodeTimeoutMilliseconds: Int, logger: Logger
    ) throws -> Member {
        // A full sync starts at once instead of after the default 5 s wait for more replicas; a
        // shorter node timeout makes the nodes ping each other (and learn replication offsets, which
        // CLUSTER SLOTS needs to list a replica) more often. Neither changes a manual failover.
        let valkey = try LocalValkey(
            executable: executable,
            extraArguments: ["--repl-diskless-sync-delay", "0", "--cluster-node-timeout", "\(nodeTimeoutMilliseconds)"],
            assignAllSlots: false)
        var started: Sidecar?
        do {
            let facts = try NodeProbe.probe(host: "127.0.0.1", port: valkey.port)
            // Port 0: slotwarden binds a free port itself and reports it, so there is no window in
            // which another process (or the other node) can take a port probed in advance. The node
            // learns it through CONFIG SET, which applies at once.
            let sidecar = try Sidecar(
                proxy: ProxyConfiguration(listenPort: 0, nodePort: valkey.port), fence: fence, node: facts, logger: logger)
            started = sidecar
            let sidecarPort = try sidecar.start()
            let direct = try valkey.client()
            try expectOK(
                direct.call(
                    "CONFIG", "SET", "cluster-announce-port", "\(sidecarPort)", "cluster-announce-bus-port", "\(valkey.port + 10000)"),
                "CONFIG SET cluster-announce-port on \(name)")
            guard let nodeID = try direct.call("CLUSTER", "MYID").string else {
                throw Failure(description: "CLUSTER MYID on \(name) gave no id")
            }
            return Member(name: name, valkey: valkey, sidecar: sidecar, facts: facts, sidecarPort: sidecarPort, nodeID: nodeID)
        } catch {
            started?.stop()
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
        try waitUntil("\(primary.name) and \(replica.name) know each other", timeout: .seconds(15)) { () throws -> Bool? in
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
        try waitUntil("\(replica.name) replicates \(primary.name) through its sidecar", timeout: .seconds(15)) {
            try isSettled(primary: primary, replica: replica) ? true : nil
        }
        // CLUSTER SLOTS on either node names only sidecars: the primary's first, then (once listed)
        // the replica's. Valkey lists a replica only when it knows a non-zero replication offset for
        // it, and 8.1 keeps serving a cached reply for several seconds after that, so the replica's
        // entry is not waited for; CLUSTER NODES above already showed it at its sidecar port.
        var ports: [[Int]] = []
        let expected = [primary.sidecarPort, replica.sidecarPort]
        do {
            try waitUntil("CLUSTER SLOTS names the sidecars", timeout: .seconds(15)) { () throws -> Bool? in
                for member in [primary, replica] {
                    ports = try member.slotsPorts()
                    guard ports.count == 1, let range = ports.first, range == Array(expected.prefix(range.count)), !range.isEmpty
                    else { return nil }
                }
                return true
            }
        } catch {
            throw Failure(description: "CLUSTER SLOTS names \(ports), not the sidecars \(expected)")
        }
    }
}
