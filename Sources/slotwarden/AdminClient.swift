import Admin
import Settings
import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix

/// `GET` against a sidecar's admin API, for the commands that read it (`reconcile`, `ledger top`).
struct AdminClient {
    /// `http://host:port`, without a path.
    let baseURL: String

    init(url: String) throws {
        guard url.hasPrefix("http://") else { throw ValidationError("--admin: expected http://host:port, got '\(url)'") }
        var rest = url.dropFirst("http://".count)
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        guard HostPort(String(rest)) != nil else { throw ValidationError("--admin: expected http://host:port, got '\(url)'") }
        baseURL = "http://\(rest)"
    }

    struct Reply {
        var status: Int
        var body: Data
    }

    /// Bodies beyond this are refused: the largest, a reconciliation of every slot, is a few MB.
    static let maxBodyBytes = 64 << 20

    /// The reply to `GET target`, whatever its status; throws when the API cannot be reached or
    /// answers nothing within `timeout`.
    func get(_ target: String, timeout: TimeAmount = .seconds(10)) async throws -> Reply {
        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        do {
            let response = try await client.execute(HTTPClientRequest(url: baseURL + target), timeout: timeout)
            let body = try await response.body.collect(upTo: Self.maxBodyBytes)
            try await client.shutdown()
            return Reply(status: Int(response.status.code), body: Data(buffer: body))
        } catch {
            try? await client.shutdown()
            throw AdminClientFailure(description: "cannot read \(baseURL)\(target): \(error)")
        }
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    /// The `error.message` of an error body, or the body itself.
    static func errorMessage(_ reply: Reply) -> String {
        (try? decoder().decode(ErrorBody.self, from: reply.body)).map { $0.error.message }
            ?? String(decoding: reply.body, as: UTF8.self)
    }
}

struct AdminClientFailure: Error, CustomStringConvertible {
    let description: String
}
