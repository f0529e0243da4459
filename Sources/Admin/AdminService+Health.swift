import Foundation
import Hummingbird
import NIOCore
import Synchronization

extension AdminService {
    func livez() async -> Response {
        let backend = backend
        let answered = await answersWithin(milliseconds: 2000) { _ = await backend.inFlightCount() }
        return answered
            ? Self.json(HealthResponse(status: "alive", checks: nil))
            : Self.json(
                HealthResponse(status: "dead", checks: [HealthCheck(name: "loop", ok: false, detail: "the data plane's loop did not answer within 2 s")]),
                status: .serviceUnavailable)
    }

    func readyz(verbose: Bool) async -> Response {
        var checks: [HealthCheck] = []
        do {
            let role = try await backend.nodeRole()
            checks.append(HealthCheck(name: "node_reachable", ok: true, detail: "the node answered ROLE"))
            let known = ["master", "slave", "primary", "replica"].contains(role)
            checks.append(HealthCheck(name: "role_known", ok: known, detail: "role \(role)"))
        } catch {
            checks.append(HealthCheck(name: "node_reachable", ok: false, detail: "\(error)"))
            checks.append(HealthCheck(name: "role_known", ok: false, detail: "the node did not answer"))
        }
        let paused = await backend.clientReadState().paused
        checks.append(HealthCheck(name: "not_fenced", ok: !paused, detail: paused ? "client reads are paused" : "client reads flow"))
        let ready = checks.allSatisfy(\.ok)
        return Self.json(
            HealthResponse(status: ready ? "ready" : "not_ready", checks: verbose ? checks : nil),
            status: ready ? .ok : .serviceUnavailable)
    }

    func metricsText() async -> Response {
        let snapshot = await backend.snapshot()
        let connections = await backend.connectionCounts()
        let paused = await backend.clientReadState().paused
        let role = (try? await backend.nodeRole()) ?? "unknown"
        let text = metrics.render(
            snapshot: snapshot, connections: connections, paused: paused, role: role, fence: await backend.fenceStatus())
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

/// Runs `body`; true when it finished within the deadline (it is left running otherwise).
func answersWithin(milliseconds: Int, _ body: @escaping @Sendable () async -> Void) async -> Bool {
    final class Once: Sendable {
        let continuation = Mutex<CheckedContinuation<Bool, Never>?>(nil)
        func resume(_ value: Bool) { continuation.withLock { $0.take() }?.resume(returning: value) }
    }
    let once = Once()
    return await withCheckedContinuation { continuation in
        once.continuation.withLock { $0 = continuation }
        let deadline = Task {
            try? await Task.sleep(for: .milliseconds(milliseconds))
            // Cancelled: the body answered (a cancelled sleep returns at once; it must not win).
            if !Task.isCancelled { once.resume(false) }
        }
        Task {
            await body()
            once.resume(true)
            deadline.cancel()
        }
    }
}
