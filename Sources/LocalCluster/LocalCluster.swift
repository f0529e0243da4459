import Foundation
import Accounting
import Logging
import Proxy
import RESP

/// A Valkey cluster on loopback — by default one shard of a primary and a replica; more shards and
/// replicas on request — in cluster mode with slot stats on, where each node stands behind its own
/// in-process slotwarden and announces that sidecar's port (`cluster-announce-port`, with
/// `cluster-announce-bus-port` kept on the node's real bus port). So `CLUSTER SLOTS`, `-MOVED`/`-ASK`,
/// replication links, `MIGRATE` and atomic slot migration all go through the sidecars, while the
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
        /// The shard it was started in (its index in `LocalCluster.shards`). A failover swaps roles
        /// inside a shard, so this stays true; only the nodes know which member is its primary now.
        public let shard: Int
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

        init(
            name: String, shard: Int, valkey: LocalValkey, sidecar: Sidecar, facts: NodeFacts, sidecarPort: Int,
            nodeID: String
        ) {
            self.name = name
            self.shard = shard
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

    /// `cluster-node-timeout` of every node, unless the caller asks for another.
    public static let defaultNodeTimeoutMilliseconds = 5000
    public let nodeTimeoutMilliseconds: Int

    public let version: ValkeyVersion
    public var major: Int { version.major }
    /// Every member, shard by shard, each shard's first primary first: `a`, `b`, `c`, …
    public let members: [Member]
    /// The members by shard, as started: `shards[i][0]` was shard i's first primary, the others its
    /// replicas. Which one is the primary now changes with every failover (see `primaries()`).
    public let shards: [[Member]]
    private var stopped = false
    /// How each replica's sidecar reaches its primary's sidecar for the stream counts.
    private let replicaStreams = InProcessReplicaStreams()

    /// Starts `shards` × (1 + `replicasPerShard`) nodes and their sidecars, gives each shard's first
    /// member a contiguous, nearly equal range of slots (`slotRanges(shards:)`), makes the others
    /// its replicas, and waits until every replica replicates through its primary's sidecar and every
    /// node names only sidecar ports, with `cluster_state:ok` everywhere.
    /// `fence`: how every sidecar's fence behaves; `logger`: every sidecar logs to it, each with its
    /// member's name as `member` metadata.
    public init(
        executable: String, shards shardCount: Int = 1, replicasPerShard: Int = 1, fence: FenceConfiguration = FenceConfiguration(),
        nodeTimeoutMilliseconds: Int = defaultNodeTimeoutMilliseconds, logger: Logger
    ) throws {
        let names = "abcdefghijklmnopqrstuvwxyz".map(String.init)
        precondition(shardCount >= 1 && replicasPerShard >= 0, "at least one shard and no negative replica count")
        precondition(shardCount * (1 + replicasPerShard) <= names.count, "members are named a to z")
        self.nodeTimeoutMilliseconds = nodeTimeoutMilliseconds
        var fence = fence
        if fence.replicaStreamSource == nil { fence.replicaStreamSource = replicaStreams }
        var started: [Member] = []
        do {
            for shard in 0..<shardCount {
                for _ in 0...replicasPerShard {
                    let name = names[started.count]
                    var memberLogger = logger
                    memberLogger[metadataKey: "member"] = "\(name)"
                    started.append(
                        try Self.startMember(
                            name: name, shard: shard, executable: executable, fence: fence,
                            nodeTimeoutMilliseconds: nodeTimeoutMilliseconds, logger: memberLogger))
                    replicaStreams.register(started[started.count - 1].server, sidecarPort: started[started.count - 1].sidecarPort)
                }
            }
            members = started
            shards = (0..<shardCount).map { shard in started.filter { $0.shard == shard } }
            version = started[0].facts.version
            try Self.form(shards: shards)
        } catch {
            for member in started { _ = Self.stop(member) }
            throw error
        }
    }

    deinit { stop() }

    /// Stops every sidecar and every node (by pid). Idempotent. Returns the sidecars'
    /// `uv_loop_close` results, in member order.
    @discardableResult
    public func stop() -> [Int32] {
        guard !stopped else { return [] }
        stopped = true
        replicaStreams.removeAll()
        return members.map(Self.stop)
    }

    @discardableResult
    private static func stop(_ member: Member) -> Int32 {
        let result = member.sidecar.stop()
        member.valkey.stop()
        return result
    }

    public func member(sidecarPort: Int) -> Member? { members.first { $0.sidecarPort == sidecarPort } }
    public func member(nodeID: String) -> Member? { members.first { $0.nodeID == nodeID } }
    public var sidecarPorts: Set<Int> { Set(members.map(\.sidecarPort)) }

    /// A cluster client that enters through `entry`'s sidecar and follows redirects between sidecars.
    public func client(entry: Member? = nil) -> SidecarClusterClient {
        SidecarClusterClient(sidecarPorts: sidecarPorts, entryPort: (entry ?? members[0]).sidecarPort)
    }

    /// The slots each shard is given at the start: contiguous ranges in shard order whose sizes
    /// differ by at most one (the first `16384 % shards` ranges have the extra slot).
    public static func slotRanges(shards: Int) -> [ClosedRange<Int>] {
        let (size, extra) = HashSlot.count.quotientAndRemainder(dividingBy: shards)
        var start = 0
        return (0..<shards).map { shard in
            let count = size + (shard < extra ? 1 : 0)
            defer { start += count }
            return start...(start + count - 1)
        }
    }
}
