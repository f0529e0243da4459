import RESP

/// The cluster as one node's `CLUSTER SHARDS` describes it: shards, their slots, and every node with
/// its role, health and announced address (with slotwarden in front of each node, the address of
/// that node's sidecar).
public struct ClusterMap: Sendable, Equatable {
    public struct Node: Sendable, Equatable, Hashable {
        public var id: String
        /// The announced host (`ip`, or `endpoint` when set) and client port: the node's sidecar.
        public var host: String
        public var port: Int
        public var isPrimary: Bool
        /// `online`, `failed` or `loading`.
        public var health: String
        public var replicationOffset: Int64

        public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
        public var role: String { isPrimary ? "primary" : "replica" }

        public init(id: String, host: String, port: Int, isPrimary: Bool, health: String, replicationOffset: Int64) {
            self.id = id
            self.host = host
            self.port = port
            self.isPrimary = isPrimary
            self.health = health
            self.replicationOffset = replicationOffset
        }
    }

    public struct Shard: Sendable, Equatable {
        /// Inclusive ranges, ascending.
        public var slots: [ClosedRange<Int>]
        public var nodes: [Node]
        public var primary: Node? { nodes.first { $0.isPrimary } }
        public var replicas: [Node] { nodes.filter { !$0.isPrimary } }
        public var slotCount: Int { slots.reduce(0) { $0 + $1.count } }

        public init(slots: [ClosedRange<Int>], nodes: [Node]) {
            self.slots = slots
            self.nodes = nodes
        }
    }

    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Shards in the order the node listed them; shards without a primary (all its nodes failed) too.
    public var shards: [Shard]

    public var nodes: [Node] { shards.flatMap(\.nodes) }

    public init(shards: [Shard]) {
        self.shards = shards
    }

    /// Parses a `CLUSTER SHARDS` reply, RESP2 (flat key-value arrays) or RESP3 (maps).
    public init(clusterShards reply: RESPValue) throws {
        guard let shardValues = reply.array else { throw ParseError(description: "CLUSTER SHARDS: expected an array, got \(reply)") }
        shards = try shardValues.map { value in
            let fields = try Self.fields(value, "shard")
            guard let slotBounds = fields["slots"]?.array?.compactMap(\.int), slotBounds.count % 2 == 0,
                let nodeValues = fields["nodes"]?.array
            else { throw ParseError(description: "CLUSTER SHARDS: a shard without slots or nodes: \(value)") }
            var ranges: [ClosedRange<Int>] = []
            for index in stride(from: 0, to: slotBounds.count, by: 2) {
                let (low, high) = (slotBounds[index], slotBounds[index + 1])
                guard 0 <= low, low <= high, high < HashSlot.count else {
                    throw ParseError(description: "CLUSTER SHARDS: slot range \(low)-\(high)")
                }
                ranges.append(low...high)
            }
            let nodes = try nodeValues.map { nodeValue in
                let node = try Self.fields(nodeValue, "node")
                guard let id = node["id"]?.string, let port = node["port"]?.int, let role = node["role"]?.string else {
                    throw ParseError(description: "CLUSTER SHARDS: a node without id, port or role: \(nodeValue)")
                }
                let endpoint = node["endpoint"]?.string.flatMap { $0.isEmpty || $0 == "?" ? nil : $0 }
                guard let host = endpoint ?? node["ip"]?.string else { throw ParseError(description: "CLUSTER SHARDS: node \(id) has no address") }
                return Node(
                    id: id, host: host, port: port, isPrimary: role == "master" || role == "primary",
                    health: node["health"]?.string ?? "unknown", replicationOffset: Int64(node["replication-offset"]?.int ?? 0))
            }
            return Shard(slots: ranges.sorted { $0.lowerBound < $1.lowerBound }, nodes: nodes)
        }
    }

    private static func fields(_ value: RESPValue, _ what: String) throws -> [String: RESPValue] {
        guard let flat = value.array, flat.count % 2 == 0 else {
            throw ParseError(description: "CLUSTER SHARDS: a \(what) that is not key-value pairs: \(value)")
        }
        var fields: [String: RESPValue] = [:]
        for index in stride(from: 0, to: flat.count, by: 2) {
            guard let key = flat[index].string else { throw ParseError(description: "CLUSTER SHARDS: a \(what) key that is not a string") }
            fields[key] = flat[index + 1]
        }
        return fields
    }

    /// The primary that owns `slot`, nil while none does.
    public func owner(of slot: Int) -> Node? {
        shards.first { $0.slots.contains { $0.contains(slot) } }?.primary
    }
}
