import Admin
import Foundation
import Accounting
import Proxy
import RESP
import Synchronization
import Testing
import TestSupport

/// Reconciliation against real Valkey (cluster mode, slot stats on) with a real slotwarden in front.
@Suite(.serialized, .enabled(if: ValkeyBinaries.available, ValkeyBinaries.missingReason))
struct LiveReconcileTests {
    /// A mixed workload through slotwarden, on keys spread over many slots.
    func workload(_ client: NodeClient) throws {
        for index in 0..<200 {
            try client.call("SET", "key:\(index)", String(repeating: "v", count: index % 50))
            try client.call("GET", "key:\(index)")
        }
        try client.call("MSET", "{tag}a", "1", "{tag}b", "2")
        try client.call("MGET", "{tag}a", "{tag}b")
        try client.call("INCRBY", "counter", "5")
        try client.call("HSET", "hash", "field", "value", "other", "x")
        try client.call("HGETALL", "hash")
        try client.call("LPUSH", "list", "a", "b", "c")
        try client.call("LRANGE", "list", "0", "-1")
        try client.call("DEL", "key:0", "nothing")
        try client.call("PING")
        try client.call("GET", "{tag}missing")
    }

    @Test(arguments: [8, 9])
    func liveReconcileMatchesThenShowsBypassedBytesExactly(major: Int) async throws {
        let fixture = try ProxiedValkey(major: major)
        defer { fixture.stop() }
        let service = AdminService(backend: ProxyBackend(server: fixture.server))
        try await service.takeBaseline()
        // Traffic from before the baseline must not count: the node's delta starts here.

        try workload(fixture.client())
        let report = try await service.reconcile(mode: .live)
        #expect(report.summary.slotsCompared > 150)
        #expect(report.slots.allSatisfy { $0.status == .match }, "\(report.slots.filter { $0.status != .match })")
        #expect(report.verdict == .match)
        #expect(report.liveWindow?.inFlightCommands == 0)
        #expect(report.replicas == 0)

        // Straight to the node, bypassing slotwarden: exactly these bytes in appear as node_higher.
        let command = ["SET", "bypass", "value"]
        let bytes = RESPEncoder.command(command).count
        let slot = Int(HashSlot(key: Array("bypass".utf8)).rawValue)
        try fixture.direct().call(command)
        let after = try await service.reconcile(mode: .live)
        let differing = after.slots.filter { $0.status != .match }
        #expect(differing.map(\.slot) == [slot])
        let row = try #require(differing.first)
        #expect(row.status == .nodeHigher)
        #expect(row.difference.bytesIn == Int64(bytes))
        #expect(row.difference.bytesOut == 5)  // +OK\r\n
        #expect(row.reasons == [.bypassedSidecar])
        #expect(after.verdict == .difference)
        #expect(after.summary.unexplained == 0)
    }

    @Test func resetStatsOnTheNodeReportsLedgerHigher() async throws {
        let fixture = try ProxiedValkey(major: 9)
        defer { fixture.stop() }
        let service = AdminService(backend: ProxyBackend(server: fixture.server))
        try fixture.client().call("SET", "before", "1")
        try await service.takeBaseline()
        try fixture.client().call("SET", "before", "2")
        try fixture.direct().call("CONFIG", "RESETSTAT")
        let report = try await service.reconcile(mode: .live)
        #expect(report.nodeResetDetected)
        let slot = Int(HashSlot(key: Array("before".utf8)).rawValue)
        let row = try #require(report.slots.first { $0.slot == slot })
        #expect(row.status == .ledgerHigher)
        #expect(row.reasons == [.nodeReset])
    }
}

extension LiveReconcileTests {
    /// While clients keep sending, each fenced reconciliation is a consistent cut: every slot matches.
    @Test(arguments: [8, 9])
    func fencedReconcileMatchesUnderLoad(major: Int) async throws {
        let fixture = try ProxiedValkey(major: major)
        defer { fixture.stop() }
        let service = AdminService(
            backend: ProxyBackend(server: fixture.server), configuration: AdminConfiguration(maxPauseMilliseconds: 1000))
        try await service.takeBaseline()
        let stop = Stop()
        let port = fixture.port
        // Blocking clients run on their own threads (never on the cooperative pool). Each signals once
        // it is well under way, so the fences land in the middle of the load, and again when it ends.
        let (progress, underway) = AsyncStream<Void>.makeStream()
        let (endings, ended) = AsyncStream<String?>.makeStream()
        for index in 0..<3 {
            Thread {
                var round = 0
                var failure: String?
                do {
                    let client = try NodeClient(host: "127.0.0.1", port: port)
                    while !stop.isSet && round < 100_000 {
                        try client.call("SET", "load:\(index):\(round % 500)", "value-\(round)")
                        try client.call("GET", "load:\(index):\((round * 7) % 500)")
                        round += 1
                        if round == 50 { underway.yield() }
                    }
                } catch {
                    failure = "\(error)"
                }
                if round < 50 { underway.yield() }
                ended.yield(failure)
            }.start()
        }
        var signals = progress.makeAsyncIterator()
        for _ in 0..<3 { await signals.next() }
        var reports: [ReconcileReport] = []
        for _ in 0..<3 { reports.append(try await service.reconcile(mode: .fenced)) }
        stop.set()
        var finished = endings.makeAsyncIterator()
        for _ in 0..<3 {
            let failure = await finished.next()
            #expect(failure == .some(nil), "a worker failed: \(String(describing: failure))")
        }
        for report in reports {
            #expect(report.fence?.drained == true)
            #expect(report.verdict == .match, "fence \(String(describing: report.fence)): \(report.slots.filter { $0.status != .match })")
        }
        #expect(reports.last!.summary.slotsCompared > 50)
    }
}

final class Stop: Sendable {
    private let flag = Mutex(false)
    var isSet: Bool { flag.withLock { $0 } }
    func set() { flag.withLock { $0 = true } }
}
