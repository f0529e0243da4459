import Accounting
import Proxy
import Synchronization

/// The peer rule of an in-process cluster: a replica's sidecar asks its primary's sidecar directly,
/// found by the port the primary announces (its sidecar's), instead of over the admin API.
final class InProcessReplicaStreams: ReplicaStreamSource {
    struct Unknown: Error, CustomStringConvertible {
        var primary: String
        var description: String { "no sidecar of this cluster listens on \(primary)" }
    }

    private let servers = Mutex<[Int: ProxyServer]>([:])

    func register(_ server: ProxyServer, sidecarPort: Int) {
        servers.withLock { $0[sidecarPort] = server }
    }

    func removeAll() {
        servers.withLock { $0.removeAll() }
    }

    func replicaStream(primary: String, replicaListeningPort: Int, upTo offset: Int64) async throws -> ReplicaStreamCounts {
        guard let port = primary.split(separator: ":").last.flatMap({ Int($0) }), let server = servers.withLock({ $0[port] }) else {
            throw Unknown(primary: primary)
        }
        return try await server.replicaStream(listeningPort: replicaListeningPort, host: nil, upTo: offset)
    }
}
