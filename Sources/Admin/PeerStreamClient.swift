import Accounting
import AsyncHTTPClient
import Foundation
import NIOCore
import Proxy

/// Asks the primary's sidecar over its admin API (`GET /v1/replication/stream`) what the replica
/// counted of the stream it forwarded. `adminAddress` maps the primary's announced `host:port` (its
/// sidecar's) to that sidecar's admin `host:port` (the configured peer rule); nil: no rule covers it.
public struct PeerStreamClient: ReplicaStreamSource {
    public let timeoutMilliseconds: Int
    private let adminAddress: @Sendable (String) -> String?

    public init(timeoutMilliseconds: Int, adminAddress: @escaping @Sendable (String) -> String?) {
        self.timeoutMilliseconds = timeoutMilliseconds
        self.adminAddress = adminAddress
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The largest answer: every slot with bytes, a few hundred kB.
    static let maxBodyBytes = 8 << 20

    public func replicaStream(primary: String, replicaListeningPort: Int, upTo offset: Int64) async throws -> ReplicaStreamCounts {
        guard let admin = adminAddress(primary) else { throw Failure(description: "the peer rule gives no admin address for \(primary)") }
        let url = "http://\(admin)/v1/replication/stream?replica_port=\(replicaListeningPort)&offset=\(offset)"
        let body: ByteBuffer
        let status: UInt
        do {
            let response = try await HTTPClient.shared.execute(
                HTTPClientRequest(url: url), timeout: .milliseconds(Int64(timeoutMilliseconds)))
            status = response.status.code
            body = try await response.body.collect(upTo: Self.maxBodyBytes)
        } catch {
            throw Failure(description: "cannot ask \(admin) (the sidecar of \(primary)): \(error)")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        guard status == 200 else {
            let message = (try? decoder.decode(ErrorBody.self, from: Data(buffer: body)))?.error.message ?? String(buffer: body)
            throw Failure(description: "\(admin) (the sidecar of \(primary)) answered \(status): \(message)")
        }
        do {
            return try decoder.decode(ReplicaStreamCounts.self, from: Data(buffer: body))
        } catch {
            throw Failure(description: "\(admin) (the sidecar of \(primary)) answered something other than stream counts: \(error)")
        }
    }
}
