import RESP

/// The node's replication role, as `ROLE` reports it.
public struct NodeRole: Equatable, Sendable, Codable {
    public enum Kind: String, Sendable, Codable { case primary, replica, unknown }

    public struct Replica: Equatable, Sendable, Codable {
        public var host: String
        public var port: Int
        public var offset: Int64
    }

    public var kind: Kind
    /// For a replica: the primary it follows (as announced; with sidecars, the primary's sidecar).
    public var primaryHost: String?
    public var primaryPort: Int?
    /// For a replica: `connect`, `connecting`, `sync`, `connected`, …
    public var linkState: String?
    /// The primary's replication offset, or the offset a replica processed (-1 before the first sync).
    public var offset: Int64
    /// For a primary: the replicas in ONLINE state.
    public var replicas: [Replica]

    public init(kind: Kind, primaryHost: String? = nil, primaryPort: Int? = nil, linkState: String? = nil, offset: Int64 = 0, replicas: [Replica] = []) {
        self.kind = kind
        self.primaryHost = primaryHost
        self.primaryPort = primaryPort
        self.linkState = linkState
        self.offset = offset
        self.replicas = replicas
    }

    public static let unknown = NodeRole(kind: .unknown)

    /// Parses `["master", offset, [[ip, port, offset], …]]` or `["slave", host, port, state, offset]`.
    public init?(roleReply: RESPValue) {
        guard let items = roleReply.array, let name = items.first?.string else { return nil }
        switch name {
        case "master":
            var replicas: [Replica] = []
            for entry in items.count > 2 ? (items[2].array ?? []) : [] {
                guard let fields = entry.array, fields.count >= 3, let host = fields[0].string,
                    let port = fields[1].string.flatMap({ Int($0) }) ?? fields[1].int
                else { continue }
                let offset = fields[2].string.flatMap { Int64($0) } ?? Int64(fields[2].int ?? 0)
                replicas.append(Replica(host: host, port: port, offset: offset))
            }
            self.init(kind: .primary, offset: Int64(items.count > 1 ? items[1].int ?? 0 : 0), replicas: replicas)
        case "slave":
            guard items.count >= 5 else { return nil }
            self.init(
                kind: .replica, primaryHost: items[1].string, primaryPort: items[2].int,
                linkState: items[3].string, offset: Int64(items[4].int ?? -1))
        default:
            return nil
        }
    }
}
