import Accounting
import AdminQuery
import Hummingbird
import Proxy

/// `GET /v1/cuts`.
public struct SlotCutList: Sendable, Codable, Equatable {
    /// Cuts made since the process started, and the slots they cut.
    public var total: UInt64
    public var slotsCut: UInt64
    /// The latest cuts kept in memory with an id above `after`, oldest first, at most `limit`.
    public var cuts: [SlotCut]
}

/// `GET /v1/replication/links`.
public struct ReplicaViewList: Sendable, Codable, Equatable {
    public var links: [ProxyServer.ReplicaViewReport]
}

extension AdminService {
    func replicaViews(_ query: QueryReader) async throws -> ReplicaViewList {
        let offset = try query.int("offset", default: -1, in: -1...Int.max)
        return ReplicaViewList(links: await backend.replicaViews(upTo: offset < 0 ? nil : Int64(offset)))
    }

    func replicaStream(_ query: QueryReader) async throws -> ReplicaStreamCounts {
        let port = try query.int("replica_port", default: 0, in: 0...65535)
        guard port > 0 else {
            throw Failure(.badRequest, code: "invalid_parameter", "replica_port is required: the port the replica's node announced (its own port)", parameter: "replica_port")
        }
        let offset = try query.int("offset", default: -1, in: -1...Int.max)
        guard offset >= 0 else {
            throw Failure(.badRequest, code: "invalid_parameter", "offset is required: the stream offset the replica processed", parameter: "offset")
        }
        do {
            return try await backend.replicaStream(listeningPort: port, host: query.string("replica_host"), upTo: Int64(offset))
        } catch let ambiguous as ProxyServer.AmbiguousReplica {
            throw Failure(
                .conflict, code: "ambiguous_replica",
                "replicas on \(ambiguous.hosts.joined(separator: ", ")) all announced port \(port): give replica_host", parameter: "replica_host")
        }
    }

    func slotCuts(_ query: QueryReader) async throws -> SlotCutList {
        let after = try query.int("after", default: 0, in: 0...Int.max)
        let limit = try query.int("limit", default: 100, in: 1...10_000)
        guard let history = await backend.slotCuts() else {
            throw Failure(.serviceUnavailable, code: "no_epochs", "this slotwarden runs without a failover fence")
        }
        let newer = history.cuts.filter { $0.id > UInt64(after) }
        return SlotCutList(total: history.total, slotsCut: history.slotsCut, cuts: Array(newer.prefix(limit)))
    }
}
