import Foundation
import LocalCluster
import Proxy
import RESP
import Subprocess
import SystemPackage
import Testing
import TestSupport

@Suite("slotwarden command line")
struct CommandLineTests {
    private func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("slotwarden-\(UUID().uuidString).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("check-config accepts the shipped configuration")
    func shippedConfig() async throws {
        let path = ValkeyBinaries.repositoryRoot.appendingPathComponent("config/slotwarden.yaml").path
        let outcome = try await SlotwardenBinary.run(["check-config", path])
        #expect(outcome.status == 0, "\(outcome.error)")
        #expect(outcome.output.contains("ok (listen 127.0.0.1:7000, node 127.0.0.1:6379)"))
    }

    @Test(
        "check-config exits 1 with the line and column at fault",
        arguments: [
            ("listen: \"127.0.0.1:7000\"\nnode: nonsense\n", ":2:7: node: expected host:port"),
            ("listen: \"127.0.0.1:7000\"\nmax_clientz: 5\n", ":2:1: unknown option 'max_clientz'"),
            ("backpressure:\n  high_watermark_bytes: lots\n", ":2:25: backpressure.high_watermark_bytes: expected an integer"),
            ("backpressure:\n  high_watermark_bytes: 4096\n  low_watermark_bytes: 8192\n", ":3:24: backpressure.low_watermark_bytes (8192) must be below high_watermark_bytes (4096)"),
            ("logging:\n  level: loud\n", ":2:10: logging.level: expected one of"),
            ("replication_streams: parsed\n", ":1:22: replication_streams: expected one of per_slot, opaque, got 'parsed'"),
            ("listen: [unclosed\n", ":2:1: invalid YAML: while parsing a flow sequence"),
            ("peers:\n  admin:\n    nonsense: \"h:1\"\n", ":3:15: peers.admin: 'nonsense' is not host:port"),
            ("peers:\n  admin_port_offset: far\n", ":2:22: peers.admin_port_offset: expected an integer"),
        ])
    func badConfig(text: String, expected: String) async throws {
        let path = try write(text)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let outcome = try await SlotwardenBinary.run(["check-config", path])
        #expect(outcome.status == 1)
        #expect(outcome.error.contains(path + expected), "stderr: \(outcome.error)")
    }

    @Test(
        "demo: two shards, a slot migration and a failover, then every slotwarden reconciles match",
        .enabled(if: ValkeyBinaries.available, ValkeyBinaries.missingReason))
    func demo() async throws {
        let outcome = try await SlotwardenBinary.run([
            "demo", "--valkey-server", try #require(ValkeyBinaries.path(major: 9)), "--rounds", "30",
        ])
        #expect(outcome.status == 0, "\(outcome.error)")
        let lines = outcome.output.split(separator: "\n")
        let primaries = lines.filter { $0.contains(" (primary): ") }
        let replicas = lines.filter { $0.contains(" (replica): ") }
        #expect(primaries.count == 2 && primaries.allSatisfy { $0.contains(": match — ") }, "\(outcome.output)")
        #expect(primaries.allSatisfy { $0.contains("replicas 1 on the node, 1 through this slotwarden") })
        // A replica's node counts its primary's stream, which crosses the primary's sidecar: the
        // replica's sidecar asks the primary's for it and matches too.
        #expect(replicas.count == 2 && replicas.allSatisfy { $0.contains(": match — ") && $0.contains(" bytes in, as its slotwarden forwarded them") }, "\(outcome.output)")
        #expect(lines.contains { $0.contains("epoch 1 closed (role_change)") })
    }

    @Test("run serves clients and stops cleanly on SIGTERM", .enabled(if: ValkeyBinaries.available, ValkeyBinaries.missingReason))
    func runAndStop() async throws {
        let valkey = try LocalValkey(executable: try #require(ValkeyBinaries.path(major: 9)))
        defer { valkey.stop() }
        let port = try FreePorts.any()
        let result = try await Subprocess.run(
            .path(FilePath(try #require(SlotwardenBinary.path))),
            arguments: [
                "run", "--listen", "127.0.0.1:\(port)", "--node", "127.0.0.1:\(valkey.port)", "--log-level", "info",
                "--admin-listen", "127.0.0.1:0",
            ],
            input: .none, output: .discarded, error: .sequence
        ) { execution in
            // The log line that announces the listener is the sign that clients may connect.
            var log = ""
            var lines = execution.standardError.strings().makeAsyncIterator()
            while !log.contains("slotwarden listening"), let line = try await lines.next() { log += line + "\n" }
            #expect(log.contains("slotwarden listening"))
            let client = try NodeClient(host: "127.0.0.1", port: port)
            #expect(try client.call("SET", "cli", "ok") == .simpleString("OK"))
            try execution.send(signal: .terminate)
            while let line = try await lines.next() { log += line + "\n" }
            return log
        }
        #expect(result.terminationStatus == .exited(0))
        #expect(result.closureResult.contains("loop_close=0") || result.closureResult.contains("loop_close: 0"), "\(result.closureResult)")
    }
}
