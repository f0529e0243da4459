import Foundation
import Accounting
import LocalCluster
import Proxy
import RESP
import Subprocess
import SystemPackage
import Testing
import TestSupport

@Suite("Proxy behaviour against real Valkey", .enabled(if: ValkeyBinaries.available, ValkeyBinaries.missingReason))
struct ProxyBehaviourTests {
    @Test("thousands of proxied connections open and close, then the loop closes cleanly")
    func manyConnections() async throws {
        let fixture = try ProxiedValkey(major: 9)
        let waves = 10
        let perWave = 250
        for wave in 0..<waves {
            var clients: [NodeClient] = []
            for index in 0..<perWave {
                let client = try fixture.client()
                try client.send(RESPEncoder.command(["SET", "conn:\(wave):\(index)", "v"]))
                clients.append(client)
            }
            for client in clients {
                #expect(try client.readValue() == .simpleString("OK"))
                client.close()
            }
        }
        // Every session ends once both of its streams closed.
        var counts = await fixture.server.connectionCounts()
        for _ in 0..<2000 where counts.active != 0 {
            await Task.yield()
            counts = await fixture.server.connectionCounts()
        }
        #expect(counts.accepted == UInt64(waves * perWave))
        #expect(counts.active == 0)
        let snapshot = await fixture.server.snapshot()
        #expect(snapshot.total(.wire).commands == UInt64(waves * perWave))
        #expect(fixture.stop() == 0, "uv_loop_close must return 0")
    }

    @Test("a client of an unreachable node gets an error and is closed, never left hanging")
    func nodeUnreachable() async throws {
        let fixture = try ProxiedValkey(major: 9) { configuration in
            configuration.nodePort = (try? FreePorts.any()) ?? 1
        }
        defer { fixture.stop() }
        let client = try fixture.client()
        let rest = try client.readUntilClosed()
        let text = String(decoding: rest, as: UTF8.self)
        #expect(text.hasPrefix("-ERR slotwarden: cannot reach node 127.0.0.1:"))
        #expect(text.contains("ECONNREFUSED"))
        #expect(text.hasSuffix("\r\n"))
    }

    @Test("malformed client input still reaches the node and moves to the unparsed bucket")
    func malformedInput() async throws {
        let fixture = try ProxiedValkey(major: 9)
        defer { fixture.stop() }
        let good = try fixture.client()
        #expect(try good.call("SET", "before", "1") == .simpleString("OK"))

        let bad = try fixture.client()
        let garbage = Array("*1\r\n$x\r\n".utf8)
        try bad.send(garbage)
        let reply = try bad.readValue()
        guard case .error(let message) = reply else {
            Issue.record("expected the node's protocol error, got \(reply)")
            return
        }
        #expect(message.contains("Protocol error"))

        #expect(try good.call("GET", "before") == .bulkString(Array("1".utf8)))
        let snapshot = await fixture.server.snapshot()
        #expect(snapshot[.unparsed].bytesIn == UInt64(garbage.count))
        #expect(snapshot[.unparsed].bytesOut > 0)
    }

    @Test("half-close: a client that shuts down its side still gets every reply")
    func halfClose() async throws {
        let fixture = try ProxiedValkey(major: 8)
        defer { fixture.stop() }
        let client = try fixture.client()
        try client.send(RESPEncoder.command(["SET", "half", "closed"]) + RESPEncoder.command(["GET", "half"]))
        client.shutdownWrite()
        #expect(try client.readValue() == .simpleString("OK"))
        #expect(try client.readValue() == .bulkString(Array("closed".utf8)))
        #expect(try client.readUntilClosed().isEmpty)
    }

    @Test("values far larger than the watermarks stream through unchanged")
    func largeValues() async throws {
        let fixture = try ProxiedValkey(major: 9) { configuration in
            configuration.highWatermarkBytes = 64 << 10
            configuration.lowWatermarkBytes = 16 << 10
        }
        defer { fixture.stop() }
        let client = try fixture.client()
        var value = [UInt8](repeating: 0, count: 8 << 20)
        for index in value.indices { value[index] = UInt8(truncatingIfNeeded: index &* 31 &+ 7) }
        let set = RESPEncoder.command([Array("SET".utf8), Array("big".utf8), value])
        try client.send(set)
        #expect(try client.readValue() == .simpleString("OK"))
        // Pipeline several GETs and read them only afterwards: the proxy must hold the node back
        // (watermarks) rather than buffer 32 MiB.
        for _ in 0..<4 { try client.send(RESPEncoder.command(["GET", "big"])) }
        for _ in 0..<4 { #expect(try client.readValue() == .bulkString(value)) }

        let snapshot = await fixture.server.snapshot()
        let slot = HashSlot(key: "big")
        #expect(snapshot[.wire, slot].bytesIn == UInt64(set.count + 4 * 22))
        let parity = ParityReport(snapshot: snapshot, stats: try fixture.nodeStats())
        #expect(parity.differences.isEmpty, "\(parity)")
    }

    @Test("paused client reads hold commands back until resume; replies keep flowing")
    func pauseAndResume() async throws {
        let fixture = try ProxiedValkey(major: 9)
        defer { fixture.stop() }
        let client = try fixture.client()
        #expect(try client.call("SET", "pause:a", "1") == .simpleString("OK"))
        await fixture.server.pauseClientReads()
        try client.send(RESPEncoder.command(["SET", "pause:b", "2"]))
        let lateClient = try fixture.client()
        try lateClient.send(RESPEncoder.command(["SET", "pause:c", "3"]))
        #expect(await fixture.server.inFlightCount() == 0)
        #expect(await fixture.server.drain(timeoutMilliseconds: 1000).drained)
        await fixture.server.resumeClientReads()
        #expect(try client.readValue() == .simpleString("OK"))
        #expect(try lateClient.readValue() == .simpleString("OK"))
        #expect(try fixture.direct().call("MGET", "pause:b") == .array([.bulkString(Array("2".utf8))]))
    }

    @Test("two workers share the port and max_clients, pause as one, and their merged ledger equals the node")
    func workers() async throws {
        let fixture = try ProxiedValkey(major: 9) { configuration in
            configuration.workers = 2
            configuration.maxClients = 40
        }
        defer { fixture.stop() }
        var clients: [NodeClient] = []
        defer { for client in clients { client.close() } }
        for index in 0..<40 {
            let client = try fixture.client()
            #expect(try client.call("SET", "worker:\(index)", "\(index)") == .simpleString("OK"))
            clients.append(client)
        }
        // The kernel spreads connections over both listeners (all 40 on one: odds of 2^-39).
        let perWorker = await fixture.server.perWorkerConnectionCounts()
        #expect(perWorker.count == 2 && perWorker.allSatisfy { $0.active > 0 }, "\(perWorker)")
        // max_clients counts connections over all workers.
        let refused = try fixture.client()
        defer { refused.close() }
        #expect(try refused.readValue() == .error("ERR max number of clients reached"))
        #expect(await fixture.server.connectionCounts().rejected == 1)

        // A pause holds every worker's clients.
        await fixture.server.pauseClientReads()
        for (index, client) in clients.enumerated() { try client.send(RESPEncoder.command(["INCR", "worker:\(index)"])) }
        #expect(await fixture.server.inFlightCount() == 0)
        let commandStats = try fixture.direct().call("INFO", "commandstats").string ?? ""
        #expect(!commandStats.contains("cmdstat_incr"), "no INCR reached the node while paused")
        await fixture.server.resumeClientReads()
        for (index, client) in clients.enumerated() { #expect(try client.readValue() == .integer(Int64(index + 1))) }

        let report = ParityReport(snapshot: await fixture.server.snapshot(), stats: try fixture.nodeStats())
        #expect(report.differences.isEmpty, "\(report)")
        #expect(await fixture.server.snapshot().total(.node).commands == 80)
    }

    /// A role poll or an admin request can still reach the data plane while it stops; before, the
    /// work was dropped with its continuation and the caller hung.
    @Test("after stop, every query answers at once instead of waiting forever", .timeLimit(.minutes(1)))
    func queriesAfterStop() async throws {
        let fixture = try ProxiedValkey(major: 9)
        defer { fixture.stop() }
        #expect(fixture.server.stop() == 0)
        await fixture.server.pauseClientReads()
        await fixture.server.resumeClientReads()
        await fixture.server.roleChecked(requestedAt: 0, commandsAwaitRoleCheck: false)
        #expect(await fixture.server.snapshot() == LedgerSnapshot())
        #expect(await fixture.server.inFlightCount() == 0)
        #expect(await fixture.server.drain(timeoutMilliseconds: 10_000).drained)
        #expect(await fixture.server.closeEpoch().carriedOver.isEmpty)
    }

    @Test("a write held for a role check reaches the node only after a ROLE requested after it arrived")
    func roleCheckHoldsWrites() async throws {
        let (polls, poll) = AsyncStream.makeStream(of: Void.self)
        let proxied = try ProxiedValkey(major: 9, events: ProxyEvents(roleMayHaveChanged: { poll.yield() }))
        defer { proxied.stop() }
        // As after a ROLE that found a replica of an affected version.
        await proxied.server.roleChecked(requestedAt: 0, commandsAwaitRoleCheck: true)
        let client = try proxied.client()
        defer { client.close() }
        // One chunk: a read, a write, and a read after the write.
        try client.send(Array("*2\r\n$3\r\nGET\r\n$1\r\na\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n".utf8))
        #expect(try client.readValue() == .null, "the read before the write is not held")
        var asked = polls.makeAsyncIterator()
        _ = await asked.next()
        let afterHold = DispatchTime.now().uptimeNanoseconds
        #expect(await proxied.server.connectionsAwaitingRoleCheck() == 1)
        #expect(try proxied.direct().call("DBSIZE") == .integer(0), "the write did not reach the node")

        // A ROLE requested before the write arrived proves nothing about it.
        await proxied.server.roleChecked(requestedAt: 1, commandsAwaitRoleCheck: true)
        #expect(await proxied.server.connectionsAwaitingRoleCheck() == 1)
        await proxied.server.roleChecked(requestedAt: afterHold, commandsAwaitRoleCheck: true)
        #expect(try client.readValue() == .simpleString("OK"))
        #expect(try client.readValue() == .bulkString(Array("v".utf8)))
        #expect(await proxied.server.connectionsAwaitingRoleCheck() == 0)

        // Once the node is known not to need the check, writes pass at once.
        await proxied.server.roleChecked(requestedAt: afterHold, commandsAwaitRoleCheck: false)
        #expect(try client.call("SET", "k", "w") == .simpleString("OK"))
        let report = ParityReport(snapshot: await proxied.server.snapshot(), stats: try proxied.nodeStats())
        #expect(report.differences.isEmpty, "\(report)")
    }

    @Test("a drain waits for replies, and reports what is still blocked when its time is up")
    func drainCarriesBlockedCommands() async throws {
        let fixture = try ProxiedValkey(major: 8)
        defer { fixture.stop() }
        let blocked = try fixture.client()
        try blocked.send(RESPEncoder.command(["BLPOP", "drain:q", "0"]))
        let direct = try fixture.direct()
        #expect(try waitForBlockedClients(on: direct, count: 1))
        await fixture.server.pauseClientReads()
        let timedOut = await fixture.server.drain(timeoutMilliseconds: 50)
        #expect(!timedOut.drained)
        #expect(timedOut.inFlight == 1)
        #expect(timedOut.elapsedMilliseconds >= 50)
        try direct.call("LPUSH", "drain:q", "x")
        #expect(try blocked.readValue() == .array([.bulkString(Array("drain:q".utf8)), .bulkString(Array("x".utf8))]))
        let drained = await fixture.server.drain(timeoutMilliseconds: 5000)
        #expect(drained.drained)
        #expect(drained.inFlight == 0)
        await fixture.server.resumeClientReads()
    }

    @Test("redis-benchmark through slotwarden: no errors, and the ledger's totals equal the node's")
    func benchmarkLoad() async throws {
        let benchmark = try #require(
            ["/usr/bin/redis-benchmark", "/usr/local/bin/redis-benchmark"].first { FileManager.default.isExecutableFile(atPath: $0) },
            "redis-benchmark (redis-tools) is not installed: run scripts/test")
        let fixture = try ProxiedValkey(major: 9)
        defer { fixture.stop() }
        let result = try await Subprocess.run(
            .path(FilePath(benchmark)),
            arguments: [
                "-h", "127.0.0.1", "-p", "\(fixture.port)", "-t", "set,get,incr,lpush,lpop,sadd,hset,spop,zadd",
                "-P", "16", "-c", "50", "-n", "20000", "-q",
            ],
            output: .string(limit: 1 << 20), error: .combinedWithOutput)
        let text = result.standardOutput
        print("redis-benchmark through slotwarden:\n\(text)")
        #expect(result.terminationStatus.isSuccess)
        #expect(!text.localizedCaseInsensitiveContains("error"), "\(text)")

        let snapshot = await fixture.server.snapshot()
        let stats = try fixture.nodeStats()
        let total = snapshot.total(.node)
        #expect(total.bytesIn == stats.totalBytesIn)
        #expect(total.bytesOut == stats.totalBytesOut)
        #expect(total.bytesIn > 0)
        let parity = ParityReport(snapshot: snapshot, stats: stats)
        #expect(parity.differences.isEmpty, "\(parity)")
    }
}
