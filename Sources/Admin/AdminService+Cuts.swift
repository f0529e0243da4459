import Accounting
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
