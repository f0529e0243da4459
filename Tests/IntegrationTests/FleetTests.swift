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
        /// The sidecar the fleet commands start from.
        var entry: String { "127.0.0.1:\(cluster.members[0].sidecarPort)" }

        init(major: Int = 9, shards: Int) async throws {
            cluster = try LocalCluster(major: major, shards: shards, replicasPerShard: 1)
            var peers = "peers:\n  admin:\n"
            for member in cluster.members {
                // A debug build reads CLUSTER SLOT-STATS in a few hundred ms: a fenced read under traffic
                // needs a longer pause than the default 50 ms to be a consistent cut.
                let server = try await AdminServer.start(
                    AdminService(
                        backend: ProxyBackend(sidecar: member.sidecar), configuration: AdminConfiguration(listenPort: 0, maxPauseMilliseconds: 3000)))
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
                ["fleet"] + arguments + ["--cluster", entry, "--config", configPath, "--timeout-ms", "5000"])
        }

        /// Every sidecar's ledger (node view) summed per slot, bytes in + out: the load the rebalance plans with.
        func slotLoads() async throws -> [UInt64] {
            let admins = Dictionary(uniqueKeysWithValues: cluster.members.map { ("127.0.0.1:\($0.sidecarPort)", "127.0.0.1:\(servers[$0.name]!.port)") })
            let map = try Fleet.discover(entry: entry, timeoutMilliseconds: 5000)
            let fleet = Fleet(map: map, timeoutMilliseconds: 5000) { admins[$0] }
            let (merged, unanswered) = await fleet.heatmap()
            #expect(unanswered.isEmpty && merged.merged == map.nodes.count, "\(unanswered)")
            let data = merged.data(title: "", generatedAt: "")
            return zip(data.bytesIn, data.bytesOut).map { $0 + $1 }
        }

        /// Writes across every shard, and 200 more to one hot key; waits until every replica has them.
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

        // A node's `CLUSTER SHARDS` says `loading` for a replica whose offset it last heard as 0: the
        // offset travels by gossip, so the entry node may learn it a moment after the WAIT above.
        try waitUntil("the entry node hears every replica's offset", timeout: .seconds(10)) {
            try Fleet.discover(entry: served.entry, timeoutMilliseconds: 5000).nodes.allSatisfy { $0.health == "online" } ? true : nil
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

    @Test("the largest local cluster LocalCluster makes (26 members, a to z): 13 shards × (primary + replica), every sidecar matches")
    func twentySixNodes() async throws {
        let served = try await ServedCluster(shards: 13)
        do {
            try served.traffic(hotKey: "hot")
            let clock = ContinuousClock()
            let start = clock.now
            let reconcile = try await served.fleet(["reconcile"])
            let elapsed = start.duration(to: clock.now)
            #expect(reconcile.status == 0, "\(reconcile.output)\(reconcile.error)")
            #expect(reconcile.output.components(separatedBy: " match ").count - 1 == 26, "\(reconcile.output)")
            let status = try await served.fleet(["status"])
            #expect(status.status == 0 && status.output.split(separator: "\n").count == 27, "\(status.output)")
            print("fleet reconcile over 26 real nodes (fenced, debug build): \(elapsed)")
        } catch {
            await served.stop()
            throw error
        }
        await served.stop()
    }

    /// On 9.x by atomic migration, under write traffic; on 8.x by legacy moves, after it.
    @Test(
        "rebalance spreads a skewed workload (80 % of the writes, with large values, on 5 % of the slots) where valkey-cli sees nothing to do, losing no write",
        arguments: [8, 9])
    func rebalanceASkewedWorkload(major: Int) async throws {
        let served = try await ServedCluster(major: major, shards: 3)
        do {
            try await rebalance(served, atomic: major >= 9)
        } catch {
            await served.stop()
            throw error
        }
        await served.stop()
    }

    private func rebalance(_ served: ServedCluster, atomic: Bool) async throws {
        let maxMoves = atomic ? 1000 : 20
        // The first 5 % of the slots (all in shard 0) get 80 % of the writes.
        let hotSlots = 0..<(HashSlot.count / 20)
        var tags: [Int: String] = [:]
        var candidate = 0
        while tags.count < hotSlots.count {
            let tag = "h\(candidate)"
            let slot = Int(HashSlot(key: tag).rawValue)
            if hotSlots.contains(slot) && tags[slot] == nil { tags[slot] = tag }
            candidate += 1
        }
        // Large values on the hot slots, so that the writes of the traffic below (small, over every
        // slot) do not hide the skew before the plan is carried out.
        let client = served.cluster.client()
        let large = String(repeating: "x", count: 4000)
        for index in 0..<2500 {
            let hot = index % 5 != 4
            let key = hot ? "{\(tags[hotSlots.randomElement()!]!)}:\(index % 7)" : "cold:\(index)"
            #expect(try client.call(key: key, ["SET", key, hot ? large : String(repeating: "y", count: 1000)]) == .simpleString("OK"))
        }
        client.close()

        let plan = try await served.fleet(["rebalance", "--by", "bytes", "--tolerance", "0.2"])
        #expect(plan.status == 0, "\(plan.output)\(plan.error)")
        let figures = try #require(plan.output.split(separator: "\n").first { $0.hasPrefix("max/mean load:") }, "\(plan.output)")
        print("slotwarden fleet rebalance --by bytes --tolerance 0.2 (plan):\n\(plan.output.split(separator: "\n").prefix(7).joined(separator: "\n"))")

        // valkey-cli balances slot counts: every primary has a third of the slots, so it moves nothing.
        let cli = try #require(ProcessInfo.processInfo.environment["SLOTWARDEN_VALKEY_CLI"], "scripts/test exports SLOTWARDEN_VALKEY_CLI")
        let simulated = try await SlotwardenBinary.runExecutable(
            cli, ["--cluster", "rebalance", served.entry, "--cluster-simulate"])
        print("valkey-cli --cluster rebalance --cluster-simulate:\n\(simulated.output)")
        #expect(simulated.output.contains("No rebalancing needed"), "\(simulated.output)")

        // Carried out under write traffic (9.x) or after it (8.x): no acknowledged write is lost.
        let traffic = ClusterAccountingTests.Traffic(cluster: served.cluster)
        try traffic.waitForProgress(100)
        var outcome = atomic ? nil : try await traffic.stop()
        let loads = try await served.slotLoads()
        let executed = try await served.fleet(["rebalance", "--by", "bytes", "--tolerance", "0.2", "--max-moves", "\(maxMoves)", "--execute"])
        if atomic {
            try traffic.waitForProgress(100)
            outcome = try await traffic.stop()
        }
        let written = try #require(outcome)
        // Exit 1: carried out, but the moves allowed do not reach the tolerance.
        #expect(executed.status == (maxMoves >= 1000 ? 0 : 1), "stderr: \(executed.error)")
        #expect(executed.output.contains("cluster_state ok, fleet reconciliation match"), "\(executed.output)")
        print("--execute:\n\(executed.output.split(separator: "\n").filter { !$0.contains("SLOTSRANGE") }.joined(separator: "\n"))")
        let reader = served.cluster.client()
        defer { reader.close() }
        var lost = 0
        for (key, value) in written.acknowledged where try reader.call(key: key, ["GET", key]) != .bulkString(Array(value.utf8)) { lost += 1 }
        #expect(lost == 0, "\(lost) of \(written.acknowledged.count) acknowledged writes lost")
        #expect(written.problems.isEmpty, "\(written.problems.prefix(5))")
        print("rebalance \(atomic ? "under" : "after") traffic: \(written.acknowledged.count) acknowledged writes, \(lost) lost; \(figures)")

        // The hot slots are spread now: the same per-slot loads under the owners the cluster has after
        // the moves are within the tolerance (plus what the traffic added meanwhile).
        let map = try Fleet.discover(entry: served.entry, timeoutMilliseconds: 5000)
        var perPrimary: [String: UInt64] = [:]
        for slot in 0..<HashSlot.count { perPrimary[map.owner(of: slot)?.id ?? "-", default: 0] += loads[slot] }
        let mean = Double(perPrimary.values.reduce(0, +)) / Double(perPrimary.count)
        let maxOverMean = Double(perPrimary.values.max() ?? 0) / mean
        print(String(format: "measured after the moves: max/mean load %.2f over %d primaries", maxOverMean, perPrimary.count))
        if atomic {
            #expect(perPrimary.count == 3 && maxOverMean < 1.3, "\(perPrimary)")
        } else {
            #expect(executed.output.contains("stopped at --max-moves \(maxMoves)"), "\(executed.output)")
            #expect(executed.output.contains("legacy SETSLOT / MIGRATE"))
        }
    }
}
