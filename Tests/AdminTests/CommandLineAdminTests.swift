import Admin
import Foundation
import Logging
import Testing
import TestSupport

@Suite(.serialized) struct CommandLineAdminTests {
    /// Serves `service` on a free loopback port for the duration of `body`.
    func serving(_ service: AdminService, _ body: (String) async throws -> Void) async throws {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "admin.test")
        logger.logLevel = .critical
        let task = Task { try await service.run(logger: logger) { port in continuation.yield(port) } }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        do {
            try await body("http://127.0.0.1:\(port)")
        } catch {
            task.cancel()
            _ = await task.result
            throw error
        }
        task.cancel()
        _ = await task.result
    }

    func service(_ backend: FakeBackend) -> AdminService {
        let service = AdminService(backend: backend, configuration: AdminConfiguration(listenPort: 0))
        service.setBaseline(Fixtures.stats([:]))
        return service
    }

    @Test func reconcileExitsZeroOnAMatchOneOnADifferenceTwoWhenItCannot() async throws {
        let backend = FakeBackend()
        backend.update {
            $0.snapshot = Fixtures.ledger([7: (30, 5), 9: (10, 4)])
            $0.stats = Fixtures.stats([7: (30, 5), 9: (10, 4)])
        }
        try await serving(service(backend)) { url in
            let match = try await SlotwardenBinary.run(["reconcile", "--admin", url])
            #expect(match.status == 0, "\(match.error)")
            #expect(match.output.hasPrefix("match: 2 slots compared, 2 match"), "\(match.output)")

            let fenced = try await SlotwardenBinary.run(["reconcile", "--admin", url, "--mode", "fenced", "--json"])
            #expect(fenced.status == 0)
            #expect(fenced.output.contains(#""mode":"fenced""#))

            backend.update { $0.stats = Fixtures.stats([7: (55, 5), 9: (10, 4)]) }
            let difference = try await SlotwardenBinary.run(["reconcile", "--admin", url])
            #expect(difference.status == 1)
            let lines = difference.output.split(separator: "\n")
            #expect(lines.first?.contains("slot") == true && lines.first?.contains("reasons") == true)
            #expect(lines.contains { $0.contains("7") && $0.contains("node_higher") && $0.contains("25") && $0.contains("bypassed_sidecar") })
            #expect(difference.output.contains("difference: 2 slots compared, 1 match, 1 node_higher"))

            backend.update { $0.role = nil }
            let unreachable = try await SlotwardenBinary.run(["reconcile", "--admin", url])
            #expect(unreachable.status == 2)
            #expect(unreachable.error.contains("HTTP 503"))
        }
        let nobody = try await SlotwardenBinary.run(["reconcile", "--admin", "http://127.0.0.1:1"])
        #expect(nobody.status == 2)
    }

    @Test func ledgerTopPrintsTheBusiestSlots() async throws {
        let backend = FakeBackend()
        backend.update { $0.snapshot = Fixtures.ledger([1: (10, 300), 2: (50, 20), 3: (30, 100)]) }
        try await serving(service(backend)) { url in
            let top = try await SlotwardenBinary.run(["ledger", "top", "--admin", url, "--limit", "2"])
            #expect(top.status == 0, "\(top.error)")
            let rows = top.output.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            #expect(rows.count == 3)
            #expect(rows.dropFirst().map { $0[0] } == ["2", "3"])

            let bad = try await SlotwardenBinary.run(["ledger", "top", "--admin", url, "--limit", "0"])
            #expect(bad.status == 1)
            #expect(bad.error.contains("limit"))
        }
    }

    @Test func runRefusesANonLoopbackAdminListenerWithoutAToken() async throws {
        let outcome = try await SlotwardenBinary.run(["run", "--node", "127.0.0.1:1", "--admin-listen", "0.0.0.0:7070"])
        #expect(outcome.status != 0)
        #expect(outcome.error.contains("admin.token_file or admin.token_env"), "\(outcome.error)")
    }

    @Test func checkConfigReadsTheAdminSections() async throws {
        let shipped = OpenAPISchema.repositoryRoot.appendingPathComponent("config/slotwarden.yaml").path
        #expect(try await SlotwardenBinary.run(["check-config", shipped]).status == 0)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("slotwarden-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "admin:\n  listen: \"0.0.0.0:7070\"\n  token_env: TOKEN\nreconcile:\n  max_pause_ms: 0\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        let outcome = try await SlotwardenBinary.run(["check-config", path])
        #expect(outcome.status == 1)
        #expect(outcome.error.contains(":5:17: reconcile.max_pause_ms: 0 is out of range"), "\(outcome.error)")
    }
}
