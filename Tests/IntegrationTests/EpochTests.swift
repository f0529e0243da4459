import Foundation
import Accounting
import LocalCluster
import Logging
import Proxy
import RESP
import Testing
import TestSupport

@Suite("Epochs and the fence against real Valkey", .serialized, .enabled(if: ValkeyBinaries.available, ValkeyBinaries.missingReason))
struct EpochTests {
    /// With two workers the blocked client and the writer usually sit on different loops: the cut
    /// still pauses, drains and merges both.
    @Test(
        "CONFIG RESETSTAT through slotwarden closes the epoch, and the next epoch matches the node exactly",
        arguments: zip([8, 9], [1, 2]))
    func resetStatClosesEpoch(major: Int, workers: Int) async throws {
        let valkey = try LocalValkey(executable: try #require(ValkeyBinaries.path(major: major)))
        defer { valkey.stop() }
        let logPath = FileManager.default.temporaryDirectory.appendingPathComponent("epochs-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        var logger = Logger(label: "slotwarden.test")
        logger.logLevel = .critical
        var proxy = ProxyConfiguration(listenPort: 0, nodePort: valkey.port)
        proxy.workers = workers
        let sidecar = try Sidecar(
            proxy: proxy,
            fence: FenceConfiguration(fence: .init(drainTimeoutMilliseconds: 200), epochLogPath: logPath),
            node: NodeProbe.probe(host: "127.0.0.1", port: valkey.port), logger: logger)
        let port = try sidecar.start()
        defer { sidecar.stop() }

        let client = try NodeClient(host: "127.0.0.1", port: port)
        for index in 0..<50 { try client.call("SET", "epoch:\(index)", "v\(index)") }
        // A blocked command in flight across the cut is carried into the next epoch, not dropped.
        let blocked = try NodeClient(host: "127.0.0.1", port: port)
        try blocked.send(RESPEncoder.command(["BLPOP", "epoch:queue", "0"]))
        #expect(try waitForBlockedClients(on: valkey.client(), count: 1))
        #expect(try client.call("CONFIG", "RESETSTAT") == .simpleString("OK"))
        let closed = try #require(
            await sidecar.fence.closedEpoch(after: 0, within: .seconds(30)), "CONFIG RESETSTAT closed no epoch")
        #expect(closed.id == 1)
        #expect(closed.openedBy == .startup)
        #expect(closed.closedBy == .nodeResetStat)
        #expect(closed.closingSlots.contains { $0.slot == HashSlot(key: "epoch:7").rawValue && $0.node.commands == 1 })
        #expect(closed.carriedOver.reduce(0) { $0 + $1.count } == 1)
        #expect(closed.drainTimedOut)
        #expect(closed.pauseMilliseconds < 5000)
        #expect(await sidecar.server.currentEpochID() == 2)

        // The new epoch: more traffic, then the ledger's node view equals the node's counters since the cut.
        for index in 0..<50 { try client.call("GET", "epoch:\(index)") }
        try client.call("LPUSH", "epoch:queue", "x")
        #expect(try blocked.readValue() == .array([.bulkString(Array("epoch:queue".utf8)), .bulkString(Array("x".utf8))]))
        let snapshot = await sidecar.server.snapshot()
        let baseline = await sidecar.fence.nodeStatsAtOpen
        let stats = try await sidecar.control.slotStats().subtracting(baseline)
        let parity = ParityReport(snapshot: snapshot, stats: stats)
        #expect(parity.differences.isEmpty, "\(parity)")
        #expect(snapshot.total(.node).commands == 52)

        // The closed epoch was appended to the epoch log as one JSON line.
        let lines = try String(contentsOfFile: logPath, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 1)
        let decoded = try JSONDecoder().decode(EpochRecord.self, from: Data(lines[0].utf8))
        #expect(decoded == closed)
        let fenceCounters = await sidecar.fence.counters
        #expect(fenceCounters.fences == 1)
        #expect(fenceCounters.drainTimeouts == 1)
        #expect(fenceCounters.carriedOverCommands == 1)
    }

    @Test("an operator's epoch close pauses, drains and resumes without losing a command")
    func manualClose() async throws {
        let valkey = try LocalValkey(executable: try #require(ValkeyBinaries.path(major: 9)))
        defer { valkey.stop() }
        var logger = Logger(label: "slotwarden.test")
        logger.logLevel = .critical
        let sidecar = try Sidecar(
            proxy: ProxyConfiguration(listenPort: 0, nodePort: valkey.port), fence: FenceConfiguration(),
            node: NodeProbe.probe(host: "127.0.0.1", port: valkey.port), logger: logger)
        let port = try sidecar.start()
        defer { sidecar.stop() }
        // Nothing closes an epoch yet: a bounded wait gives up; after the close it returns that epoch.
        #expect(await sidecar.fence.closedEpoch(after: 0, within: .milliseconds(50)) == nil)
        let client = try NodeClient(host: "127.0.0.1", port: port)
        var pipeline: [UInt8] = []
        for index in 0..<200 { pipeline += RESPEncoder.command(["INCR", "manual:\(index % 7)"]) }
        try client.send(pipeline)
        let closed = await sidecar.closeEpoch()
        for _ in 0..<200 { _ = try client.readValue() }
        #expect(closed.closedBy == .manual)
        #expect(await sidecar.fence.closedEpoch(after: 0, within: .seconds(5)) == closed)
        #expect(!closed.maxPauseExceeded)
        var total = 0
        for index in 0..<7 { total += Int(try client.call("GET", "manual:\(index)").string ?? "0") ?? 0 }
        #expect(total == 200)
        #expect(await sidecar.fence.state == .live)

        // Closing with reset_node_stats zeroes the node at the same cut: the node's counters and the
        // new epoch's ledger both start from zero.
        let reset = await sidecar.closeEpoch(resetNodeStats: true)
        #expect(reset.id == 2)
        #expect(reset.closingSlots.contains { ($0.nodeBytesIn ?? 0) > 0 })
        let afterReset = try await sidecar.control.slotStats()
        #expect(afterReset.totalBytesIn == 0)
        try client.call("SET", "manual:after", "reset")
        let snapshot = await sidecar.server.snapshot()
        let stats = try await sidecar.control.slotStats().subtracting(await sidecar.fence.nodeStatsAtOpen)
        let parity = ParityReport(snapshot: snapshot, stats: stats)
        #expect(parity.differences.isEmpty, "\(parity)")
        #expect(stats.totalBytesIn > 0)
    }
}
