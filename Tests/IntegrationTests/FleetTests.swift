import Accounting
import Admin
import Fleet
import Foundation
import LocalCluster
import Proxy
import RESP
import Testing
import TestSupport

/// `slotwarden fleet` against a live cluster: every node behind its sidecar, every sidecar serving
/// its admin API, found through one sidecar and the peers rule of a configuration file.
@Suite("The cluster at a glance", .serialized, .enabled(if: ValkeyBinaries.available, ValkeyBinaries.missingReason))
struct FleetTests {
    /// A cluster whose sidecars all serve their admin API, and a configuration file naming them.
    final class ServedCluster {
        let cluster: LocalCluster
        var servers: [String: AdminServer] = [:]
        let configPath: String

        init(shards: Int) async throws {
            cluster = try LocalCluster(major: 9, shards: shards, replicasPerShard: 1)
            var peers = "peers:\n  admin:\n"
            for member in cluster.members {
                let server = try await AdminServer.start(
                    AdminService(backend: ProxyBackend(sidecar: member.sidecar), configuration: AdminConfiguration(listenPort: 0)))
                servers[member.name] = server
                peers += "    \"127.0.0.1:\(member.sidecarPort)\": \"127.0.0.1:\(server.port)\"\n"
            }
            configPath = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-\(UInt32.random(in: 0...UInt32.max)).yaml").path
            try peers.write(toFile: configPath, atomically: true, encoding: .utf8)
        }

        func stop() async {
            for server in servers.values { await server.stop() }
            try? FileManager.default.removeItem(atPath: configPath)
            cluster.stop()
        }

        func fleet(_ arguments: [String]) async throws -> SlotwardenBinary.Outcome {
            try await SlotwardenBinary.run(
                ["fleet"] + arguments + ["--cluster", "127.0.0.1:\(cluster.members[0].sidecarPort)", "--config", configPath, "--timeout-ms", "5000"])
        }

        /// Writes across both shards, and 200 more to one hot key; waits until every replica has them.
        func traffic(hotKey: String) throws {
            let client = cluster.client()
            defer { client.close() }
            for index in 0..<200 { #expect(try client.call(key: "k\(index)", ["SET", "k\(index)", "v\(index)"]) == .simpleString("OK")) }
            for _ in 0..<200 { _ = try client.call(key: hotKey, ["INCR", hotKey]) }
            for shard in cluster.shards.indices {
                let primary = try #require(try cluster.roles(ofShard: shard)).primary
                #expect(try primary.viaSidecar().call("WAIT", "1", "5000") == .integer(1))
            }
        }
    }

    @Test("fleet reconcile, status, top and heatmap answer for the whole cluster, and name a sidecar they cannot ask")
    func fleetCommands() async throws {
        let served = try await ServedCluster(shards: 2)
        do {
            try await check(served)
        } catch {
            await served.stop()
            throw error
        }
        await served.stop()
    }

    private func check(_ served: ServedCluster) async throws {
        let hotKey = "hot"
        try served.traffic(hotKey: hotKey)

        let reconcile = try await served.fleet(["reconcile"])
        #expect(reconcile.status == 0, "\(reconcile.output)\(reconcile.error)")
        #expect(reconcile.output.contains("cluster: match"), "\(reconcile.output)")
        #expect(reconcile.output.components(separatedBy: " match ").count - 1 == 4, "\(reconcile.output)")
        print("slotwarden fleet reconcile:\n\(reconcile.output)")

        let json = try await served.fleet(["reconcile", "--json"])
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let report = try decoder.decode(FleetReconciliation.self, from: Data(json.output.utf8))
        #expect(report.verdict == .match && report.nodes.count == 4)
        #expect(report.pairings.count == 2)
        for pairing in report.pairings {
            #expect(pairing.replicasOnNode == 1 && pairing.linksThroughSidecar == 1 && pairing.linksBehind == 0, "\(pairing)")
            #expect(pairing.replicas.count == 1 && (pairing.replicas[0].streamBytesIn ?? 0) > 0, "\(pairing)")
        }

        let status = try await served.fleet(["status"])
        #expect(status.status == 0, "\(status.output)\(status.error)")
        let nodeLines = status.output.split(separator: "\n").dropFirst()
        #expect(nodeLines.count == 4 && nodeLines.allSatisfy { $0.contains(" online ") && $0.contains(" ready ") }, "\(status.output)")
        #expect(nodeLines.filter { $0.contains(" primary ") }.count == 2, "\(status.output)")

        let top = try await served.fleet(["top", "--by", "commands", "--limit", "3"])
        #expect(top.status == 0, "\(top.output)\(top.error)")
        let firstRow = top.output.split(separator: "\n").dropFirst().first.map { $0.split(separator: " ") }
        #expect(firstRow?.first.map(String.init) == "\(HashSlot(key: hotKey).rawValue)", "\(top.output)")
        print("slotwarden fleet status:\n\(status.output)\nslotwarden fleet top --by commands --limit 3:\n\(top.output)")

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-heatmap-\(UInt32.random(in: 0...UInt32.max)).html").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let heatmap = try await served.fleet(["heatmap", "--out", path])
        #expect(heatmap.status == 0, "\(heatmap.output)\(heatmap.error)")
        #expect(heatmap.output.contains("2 owners, from 4 of 4 sidecars"), "\(heatmap.output)")
        let html = try String(contentsOfFile: path, encoding: .utf8)
        #expect(!html.contains("src=") && !html.contains("https://") && !html.contains("http://"), "self-contained")
        #expect(html.contains("\"bytes_in\":["))

        // One sidecar's admin API goes away: the cluster is incomplete, and the report says which.
        let gone = try #require(served.cluster.members.last)
        await served.servers[gone.name]?.stop()
        let incomplete = try await served.fleet(["reconcile"])
        #expect(incomplete.status == 2, "\(incomplete.output)")
        #expect(incomplete.output.contains("cluster: incomplete") && incomplete.output.contains("cannot ask"), "\(incomplete.output)")
    }
}
