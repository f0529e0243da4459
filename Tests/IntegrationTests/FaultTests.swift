import Foundation
import Accounting
import LocalCluster
import Proxy
import RESP
import Testing
import TestSupport

/// Faults from `scripts/chaos` that are cheap enough for the test suite.
@Suite("Faults against real Valkey", .enabled(if: ValkeyBinaries.available, ValkeyBinaries.missingReason))
struct FaultTests {
    @Test("a client that resets mid-pipeline: what reached the node is counted as the node counts it", arguments: [8, 9])
    func resetMidPipeline(major: Int) async throws {
        let fixture = try ProxiedValkey(major: major)
        defer { fixture.stop() }
        var pipeline: [UInt8] = []
        for index in 0..<2000 { pipeline += RESPEncoder.command(["SET", "reset:\(index)", "v"]) }
        try sendThenReset(pipeline, port: fixture.port)
        try await waitUntilNoSessions(fixture.server)
        let stats = try fixture.nodeStats()
        let snapshot = await fixture.server.snapshot()
        let parity = ParityReport(snapshot: snapshot, stats: stats)
        #expect(parity.differences.isEmpty, "\(parity)")
        #expect(try fixture.direct().call("DBSIZE") == .integer(Int64(snapshot.total(.node).commands)))
    }

    @Test("a node stopped for 3 s under load: no write lost or refused, and the ledger equals the node")
    func nodeStopped() async throws {
        let fixture = try ProxiedValkey(major: 9)
        defer { fixture.stop() }
        let client = try fixture.client()
        for index in 0..<200 { #expect(try client.call("SET", "stop:\(index)", "\(index)") == .simpleString("OK")) }
        kill(fixture.valkey.pid, SIGSTOP)
        try client.send(RESPEncoder.command(["SET", "stop:during", "yes"]))
        let stoppedAt = ContinuousClock.now
        try await Task.sleep(for: .seconds(3))
        kill(fixture.valkey.pid, SIGCONT)
        #expect(try client.readValue() == .simpleString("OK"))
        #expect(ContinuousClock.now - stoppedAt >= .seconds(3))
        for index in 200..<400 { #expect(try client.call("SET", "stop:\(index)", "\(index)") == .simpleString("OK")) }
        #expect(try fixture.direct().call("DBSIZE") == .integer(401))
        let parity = ParityReport(snapshot: await fixture.server.snapshot(), stats: try fixture.nodeStats())
        #expect(parity.differences.isEmpty, "\(parity)")
    }

    /// Connects to `port`, sends `bytes`, and closes with SO_LINGER 0: the peer reads an RST.
    private func sendThenReset(_ bytes: [UInt8], port: Int) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(descriptor >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(connected == 0, "connect: \(String(cString: strerror(errno)))")
        let sent = bytes.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
        try #require(sent == bytes.count)
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(descriptor)
    }

    /// Polls until every session has closed, at most 10 s.
    private func waitUntilNoSessions(_ server: ProxyServer) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while await server.connectionCounts().active != 0 {
            try #require(ContinuousClock.now < deadline, "a session is still open after 10 s")
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
