import Foundation
import AdminQuery
import Hummingbird
import Accounting

extension AdminService {
    /// The fence's open epoch when there is a fence; otherwise the life of the admin service.
    func currentEpoch() async -> EpochInfo {
        guard let open = await backend.epochs()?.open else { return epoch }
        let started = Date(timeIntervalSince1970: open.startedAt)
        return EpochInfo(id: Int(open.id), startedAt: ISO8601DateFormatter().string(from: started))
    }

    func epochs() async throws -> EpochList {
        guard let list = await backend.epochs() else {
            throw Failure(.serviceUnavailable, code: "no_epochs", "this slotwarden runs without a failover fence")
        }
        return list
    }

    func epoch(id text: String?) async throws -> EpochRecord {
        guard let text, let id = UInt64(text) else {
            throw AdminParameterError(parameter: "id", message: "id: expected an epoch number, got '\(text ?? "")'")
        }
        let list = try await epochs()
        guard let record = list.open.id == id ? list.open : list.closed.first(where: { $0.id == id }) else {
            throw Failure(.notFound, code: "no_such_epoch", "epoch \(id) is not in the history kept in memory")
        }
        return record
    }

    func closeEpoch(_ query: QueryReader) async throws -> EpochRecord {
        let reset = try query.bool("reset_node_stats", default: false)
        guard let closed = await backend.closeEpoch(resetNodeStats: reset) else {
            throw Failure(.serviceUnavailable, code: "no_epochs", "this slotwarden runs without a failover fence")
        }
        return closed
    }

    static func query(_ request: Request) -> QueryReader {
        var parameters: [String: String] = [:]
        for (key, value) in request.uri.queryParameters where parameters[String(key)] == nil {
            parameters[String(key)] = String(value)
        }
        return QueryReader(parameters: parameters)
    }
}
