import Foundation
import LocalCluster
import Proxy
import RESP
import Subprocess
import Synchronization
import SystemPackage
import Testing
import TestSupport

/// SIGTERM, handover to a successor on the same address, and SIGHUP, on the real binary.
@Suite("graceful stop, handover and reload", .serialized)
struct GracefulStopTests {
    /// A directory with a configuration file for `slotwarden run`, its epoch log and its lock file.
    struct RunDirectory {
        let url: URL
        let listenPort: Int
        let adminPort: Int
        var config: String { url.appendingPathComponent("slotwarden.yaml").path }
        var epochLog: String { url.appendingPathComponent("epochs.jsonl").path }

        init(nodePort: Int, extra: String = "") throws {
            url = FileManager.default.temporaryDirectory.appendingPathComponent("slotwarden-run-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            listenPort = try FreePorts.any()
            adminPort = try FreePorts.any()
            try write(nodePort: nodePort, extra: extra)
        }

        func write(nodePort: Int, extra: String) throws {
            let text = """
                listen: "127.0.0.1:\(listenPort)"
                node: "127.0.0.1:\(nodePort)"
                admin:
                  listen: "127.0.0.1:\(adminPort)"
                reconcile:
                  max_pause_ms: 3000
                fence:
                  epoch_log: "\(epochLog)"
                shutdown:
                  drain_timeout_ms: 2000
                  linger_ms: 500
                  lock_file: "\(url.appendingPathComponent("listen.lock").path)"
                \(extra)
                """
            try text.write(toFile: config, atomically: true, encoding: .utf8)
        }

        /// The `id` and `closedBy` of each record in the epoch log.
        func epochs() throws -> [(id: Int, closedBy: String)] {
            try String(contentsOfFile: epochLog, encoding: .utf8).split(separator: "\n").map { line in
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                return (try #require(object["id"] as? Int), try #require(object["closedBy"] as? String))
            }
        }
    }

    /// Reads stderr lines into `log` until one contains `text`.
    static func readLog<Lines: AsyncIteratorProtocol>(_ lines: inout Lines, into log: inout String, until text: String) async throws
    where Lines.Element == String {
        while !log.contains(text), let line = try await lines.next() { log += line + "\n" }
    }

    @Test("SIGTERM answers what is in flight, closes clients at command boundaries, records the last epoch; ids go on", .enabled(if: ValkeyBinaries.available, ValkeyBinaries.missingReason))
    func sigterm() async throws {
        let valkey = try LocalValkey(executable: try #require(ValkeyBinaries.path(major: 9)))
        defer { valkey.stop() }
        let directory = try RunDirectory(nodePort: valkey.port)
        let binary = FilePath(try #require(SlotwardenBinary.path))
        let result = try await Subprocess.run(
            .path(binary), arguments: ["run", "--config", directory.config], input: .none, output: .discarded, error: .sequence
        ) { execution in
            var log = ""
            var lines = execution.standardError.strings().makeAsyncIterator()
            try await Self.readLog(&lines, into: &log, until: "slotwarden listening")
            let idle = try NodeClient(host: "127.0.0.1", port: directory.listenPort)
            #expect(try idle.call("SET", "before", "1") == .simpleString("OK"))
            let served = try NodeClient(host: "127.0.0.1", port: directory.listenPort)
            let neverServed = try NodeClient(host: "127.0.0.1", port: directory.listenPort)
            try served.send(RESPEncoder.command(["BLPOP", "served", "0"]))
            try neverServed.send(RESPEncoder.command(["BLPOP", "never", "0"]))
            let direct = try valkey.client()
            // Both BLPOPs are blocked on the node before the signal.
            while try direct.call("INFO", "clients").string?.contains("blocked_clients:2") != true {
                try await Task.sleep(for: .milliseconds(10))
            }
            try execution.send(signal: .terminate)
            // The idle client is closed at once (the listener closed just before): it reads the end of
            // the stream, with nothing before it.
            #expect(try idle.readUntilClosed().isEmpty)
            #expect(throws: (any Error).self) { _ = try NodeClient(host: "127.0.0.1", port: directory.listenPort) }
            // An in-flight command is answered, then its connection closes.
            #expect(try direct.call("RPUSH", "served", "x") == .integer(1))
            #expect(try served.readValue() == .array([.bulkString(Array("served".utf8)), .bulkString(Array("x".utf8))]))
            #expect(try served.readUntilClosed().isEmpty)
            while let line = try await lines.next() { log += line + "\n" }
            return log
        }
        let log = result.closureResult
        #expect(result.terminationStatus == .exited(0), "\(log)")
        #expect(log.contains("at_boundary=2") && log.contains("at_deadline=1") && log.contains("in_flight_at_deadline=1"), "\(log)")
        #expect(try directory.epochs().map(\.id) == [1] && directory.epochs().last?.closedBy == "shutdown")

        let again = try await Subprocess.run(
            .path(binary), arguments: ["run", "--config", directory.config], input: .none, output: .discarded, error: .sequence
        ) { execution in
            var log = ""
            var lines = execution.standardError.strings().makeAsyncIterator()
            try await Self.readLog(&lines, into: &log, until: "slotwarden listening")
            try execution.send(signal: .terminate)
            while let line = try await lines.next() { log += line + "\n" }
            return log
        }
        #expect(again.terminationStatus == .exited(0), "\(again.closureResult)")
        #expect(try directory.epochs().map(\.id) == [1, 2], "ids go on from the epoch log")
    }

    /// Writes `INCR handover` through the sidecar in a loop on a thread of its own, reconnecting when a
    /// connection closes, until stopped: a client that survives a restart of its proxy.
    final class Writer: Sendable {
        let acknowledged = Atomic<Int>(0)
        let reconnects = Atomic<Int>(0)
        private let stopped = Atomic<Bool>(false)
        private let finished = Mutex<CheckedContinuation<Void, Never>?>(nil)
        private let done = Atomic<Bool>(false)

        init(port: Int) {
            Thread.detachNewThread { [self] in
                var client: NodeClient?
                while !stopped.load(ordering: .relaxed) {
                    do {
                        let connection = try client ?? NodeClient(host: "127.0.0.1", port: port)
                        client = connection
                        if case .integer = try connection.call("INCR", "handover") {
                            acknowledged.add(1, ordering: .relaxed)
                        }
                    } catch {
                        client = nil
                        reconnects.add(1, ordering: .relaxed)
                    }
                }
                done.store(true, ordering: .sequentiallyConsistent)
                finished.withLock { $0?.resume() }
            }
        }

        func stop() async {
            stopped.store(true, ordering: .relaxed)
            await withCheckedContinuation { continuation in
                let alreadyDone = finished.withLock { waiting in
                    if done.load(ordering: .sequentiallyConsistent) { return true }
                    waiting = continuation
                    return false
                }
                if alreadyDone { continuation.resume() }
            }
        }
    }

    @Test("a successor on the same address takes the connections; no write is lost; epochs go on and reconcile", .enabled(if: ValkeyBinaries.available, ValkeyBinaries.missingReason))
    func handover() async throws {
        let valkey = try LocalValkey(executable: try #require(ValkeyBinaries.path(major: 9)))
        defer { valkey.stop() }
        let directory = try RunDirectory(nodePort: valkey.port)
        let binary = FilePath(try #require(SlotwardenBinary.path))
        let (successorLogs, successorLog) = AsyncStream.makeStream(of: String.self)
        let (stopRequests, stopSuccessor) = AsyncStream.makeStream(of: Void.self)
        let first = try await Subprocess.run(
            .path(binary), arguments: ["run", "--config", directory.config], input: .none, output: .discarded, error: .sequence
        ) { execution in
            var log = ""
            var lines = execution.standardError.strings().makeAsyncIterator()
            try await Self.readLog(&lines, into: &log, until: "slotwarden listening")
            let writer = Writer(port: directory.listenPort)
            while writer.acknowledged.load(ordering: .relaxed) < 200 { try await Task.sleep(for: .milliseconds(10)) }
            let successor = Task {
                try await Subprocess.run(
                    .path(binary), arguments: ["run", "--config", directory.config], input: .none, output: .discarded, error: .sequence
                ) { execution in
                    var log = ""
                    var lines = execution.standardError.strings().makeAsyncIterator()
                    try await Self.readLog(&lines, into: &log, until: "slotwarden listening")
                    successorLog.yield(log)
                    try await Self.readLog(&lines, into: &log, until: "took over")
                    try await Self.readLog(&lines, into: &log, until: "admin API listening")
                    successorLog.yield(log)
                    for await _ in stopRequests { break }
                    try execution.send(signal: .terminate)
                    while let line = try await lines.next() { log += line + "\n" }
                    return log
                }
            }
            for await listening in successorLogs {
                #expect(listening.contains("another slotwarden runs on this listen address"), "\(listening)")
                break
            }
            try execution.send(signal: .terminate)
            while let line = try await lines.next() { log += line + "\n" }
            return (log, writer, successor)
        }
        var (log, writer, successor) = first.closureResult
        #expect(first.terminationStatus == .exited(0), "\(log)")
        // Writes go on through the successor alone; it took over and serves its admin API.
        let before = writer.acknowledged.load(ordering: .relaxed)
        while writer.acknowledged.load(ordering: .relaxed) < before + 200 { try await Task.sleep(for: .milliseconds(10)) }
        for await tookOver in successorLogs {
            #expect(tookOver.contains("overlap_epoch=2") && tookOver.contains("epoch=3"), "\(tookOver)")
            break
        }
        let reconcile = try await SlotwardenBinary.run(["reconcile", "--admin", "http://127.0.0.1:\(directory.adminPort)", "--mode", "fenced"])
        await writer.stop()
        let acknowledged = writer.acknowledged.load(ordering: .relaxed)
        let counted = try #require(try valkey.client().call("GET", "handover").string.flatMap { Int($0) })
        print("handover: \(acknowledged) acknowledged INCRs, the node counted \(counted), \(writer.reconnects.load(ordering: .relaxed)) reconnects")
        #expect(counted == acknowledged, "every acknowledged write reached the node, none twice")
        #expect(reconcile.status == 0, "\(reconcile.output)")
        // The first process's last epoch is 1 (shutdown); the overlap is 2 (handover); 3 is open.
        #expect(try directory.epochs().map(\.id) == [1, 2] && directory.epochs().map(\.closedBy) == ["shutdown", "handover"])
        stopSuccessor.yield()
        let last = try await successor.value
        #expect(last.terminationStatus == .exited(0), "\(last.closureResult)")
        log = last.closureResult
        #expect(try directory.epochs().map(\.id) == [1, 2, 3], "\(log)")
    }

    /// `GET path` on the admin API, the whole response as text.
    static func adminGet(_ path: String, port: Int) throws -> String {
        let connection = try NodeClient(host: "127.0.0.1", port: port)
        try connection.send(Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8))
        return String(decoding: try connection.readUntilClosed(), as: UTF8.self)
    }

    @Test("SIGHUP applies live options without touching connections, names the others, and keeps a bad file out", .enabled(if: ValkeyBinaries.available, ValkeyBinaries.missingReason))
    func reload() async throws {
        let valkey = try LocalValkey(executable: try #require(ValkeyBinaries.path(major: 9)))
        defer { valkey.stop() }
        let directory = try RunDirectory(nodePort: valkey.port, extra: "max_clients: 100")
        let binary = FilePath(try #require(SlotwardenBinary.path))
        let result = try await Subprocess.run(
            .path(binary), arguments: ["run", "--config", directory.config], input: .none, output: .discarded, error: .sequence
        ) { execution in
            var log = ""
            var lines = execution.standardError.strings().makeAsyncIterator()
            try await Self.readLog(&lines, into: &log, until: "admin API listening")
            let open = try NodeClient(host: "127.0.0.1", port: directory.listenPort)
            #expect(try open.call("SET", "reload", "1") == .simpleString("OK"))

            // max_clients down to 1 and the log level up apply live; a new node address needs a restart.
            try directory.write(nodePort: valkey.port + 1, extra: "max_clients: 1\nlogging:\n  level: debug")
            try execution.send(signal: .init(rawValue: SIGHUP))
            try await Self.readLog(&lines, into: &log, until: "these options change only with a restart")
            #expect(log.contains("applied=logging.level, max_clients"), "\(log)")
            #expect(log.contains("options=node"), "\(log)")
            #expect(try open.call("GET", "reload") == .bulkString(Array("1".utf8)), "the open connection is untouched, still on the running node")
            let refused = try NodeClient(host: "127.0.0.1", port: directory.listenPort)
            #expect(try refused.readValue() == .error("ERR max number of clients reached"))

            // A file that does not load keeps the running configuration, and says where it is wrong.
            try "max_clients: 100\nfence:\n  max_pause: 5\n".write(toFile: directory.config, atomically: true, encoding: .utf8)
            try execution.send(signal: .init(rawValue: SIGHUP))
            try await Self.readLog(&lines, into: &log, until: "configuration reload failed")
            try await Self.readLog(&lines, into: &log, until: "unknown option")
            #expect(log.contains("\(directory.config):3:3: unknown option 'fence.max_pause'"), "\(log)")
            let metrics = try Self.adminGet("/metrics", port: directory.adminPort)
            #expect(metrics.contains(#"slotwarden_config_reloads_total{result="applied"} 1"#), "\(metrics)")
            #expect(metrics.contains(#"slotwarden_config_reloads_total{result="failed"} 1"#), "\(metrics)")
            let stillRefused = try NodeClient(host: "127.0.0.1", port: directory.listenPort)
            #expect(try stillRefused.readValue() == .error("ERR max number of clients reached"), "max_clients is still 1")
            #expect(try open.call("GET", "reload") == .bulkString(Array("1".utf8)))
            try execution.send(signal: .terminate)
            while let line = try await lines.next() { log += line + "\n" }
            return log
        }
        #expect(result.terminationStatus == .exited(0), "\(result.closureResult)")
    }
}
