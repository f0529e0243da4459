import Admin
import ArgumentParser
import Foundation
import Accounting
import LocalCluster
import Logging
import Proxy
import RESP

/// Starts a local cluster of two shards, each a primary and a replica, every node behind its own
/// slotwarden and announcing it; drives a mixed workload through the sidecars; moves slots from one
/// shard to the other (Valkey 9's atomic migration, or the legacy steps on 8.x); fails shard 1 over;
/// drives more traffic; then reconciles every sidecar, fenced, against its node's `CLUSTER SLOT-STATS`.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a local two-shard Valkey cluster behind slotwarden: traffic, a slot migration, a failover, reconciliations.")

    @Option(name: .long, help: "The valkey-server binary (default: $SLOTWARDEN_VALKEY_SERVER).")
    var valkeyServer: String?

    @Option(name: .long, help: "Rounds of the mixed workload, before and after the migration and failover.")
    var rounds: Int = 200

    @Option(name: .long, help: "How many of the busiest slots to print per primary.")
    var top: Int = 5

    func run() async throws {
        guard let executable = valkeyServer ?? ProcessInfo.processInfo.environment["SLOTWARDEN_VALKEY_SERVER"] else {
            throw ValidationError("name a valkey-server binary with --valkey-server or SLOTWARDEN_VALKEY_SERVER")
        }
        var logger = Logger(label: "slotwarden.demo")
        logger.logLevel = .warning

        let cluster = try LocalCluster(
            executable: executable, shards: 2, replicasPerShard: 1, fence: FenceConfiguration(fence: .init(drainTimeoutMilliseconds: 500)),
            logger: logger)
        defer { cluster.stop() }
        let facts = cluster.members[0].facts
        for member in cluster.members {
            let role = member === cluster.shards[member.shard][0] ? "primary" : "replica"
            print(
                "node \(member.name): shard \(member.shard) \(role), valkey-server \(facts.version) (pid \(member.valkey.pid)) on "
                    + "127.0.0.1:\(member.valkey.port), slotwarden on 127.0.0.1:\(member.sidecarPort)")
        }
        print("shard 0 owns slots 0-8191, shard 1 8192-16383; replicas replicate through their primary's slotwarden.")

        print("\n== traffic")
        print("workload: \(try MixedWorkload(cluster: cluster, rounds: rounds, tag: "one").run()) commands through the slotwardens")

        let (source, target) = (cluster.shards[0][0], cluster.shards[1][0])
        let moved = 100...119
        if cluster.major >= 9 {
            print("\n== slot migration: CLUSTER MIGRATESLOTS SLOTSRANGE \(moved.lowerBound) \(moved.upperBound) from \(source.name) to \(target.name)")
            try cluster.moveSlotsAtomically(moved, to: target)
        } else {
            print("\n== slot migration: slots \(moved.lowerBound)-\(moved.upperBound) from \(source.name) to \(target.name) (SETSLOT, MIGRATE)")
            try cluster.moveSlotsLegacy(Array(moved), to: target)
        }

        print("\n== failover: CLUSTER FAILOVER on shard 1's replica, through its slotwarden")
        let replica = cluster.shards[1][1]
        try cluster.failover(to: replica, timeout: .seconds(15))
        guard let epoch = await replica.sidecar.fence.closedEpoch(after: 0, within: .seconds(30)) else {
            throw DemoFailure(description: "\(replica.name)'s slotwarden closed no epoch within 30 s of the failover")
        }
        print(
            "\(replica.name): epoch \(epoch.id) closed (\(epoch.closedBy?.rawValue ?? "-")), clients paused \(epoch.pauseMilliseconds) ms, "
                + "drain \(epoch.drainMilliseconds) ms")

        print("\n== more traffic")
        print("workload: \(try MixedWorkload(cluster: cluster, rounds: rounds, tag: "two").run()) commands through the slotwardens")

        print("\n== fenced reconciliation of every slotwarden")
        var differing: [String] = []
        for member in cluster.members where try await reconcile(member) != .match { differing.append(member.name) }
        guard differing.isEmpty else {
            throw DemoFailure(description: "not every slotwarden matched its node: \(differing.joined(separator: ", "))")
        }
    }

    /// Prints the verdict of a fenced reconciliation of `member`'s sidecar, as the admin API's
    /// `/v1/reconcile?mode=fenced` gives it, with the slot cuts its open epoch made, for a replica the
    /// stream its primary's slotwarden counted for it, and for a primary its busiest slots.
    private func reconcile(_ member: LocalCluster.Member) async throws -> ReconcileVerdict {
        let report = try await AdminService(backend: ProxyBackend(sidecar: member.sidecar)).reconcile(mode: .fenced)
        let cuts = await member.sidecar.fence.slotCuts
        let summary = report.summary
        let replication = report.replication
        let role = try member.role() == "master" ? "primary" : "replica"
        print(
            "\(member.name) (\(role)): \(report.verdict.rawValue) — \(summary.slotsCompared) slots compared, \(summary.match) match, "
                + "\(summary.explained) explained, \(summary.unexplained) unexplained; slot cuts \(cuts.total) "
                + "(\(cuts.slotsCut) slots); " + replicationSummary(replication))
        let reasons = Set(report.slots.flatMap(\.reasons)).map(\.rawValue).sorted()
        if !reasons.isEmpty { print("  reasons: \(reasons.joined(separator: ", "))") }
        guard role == "primary" else { return report.verdict }
        let busiest = report.slots.sorted { ($0.node.bytesIn, $1.slot) > ($1.node.bytesIn, $0.slot) }
        for row in busiest.prefix(top) {
            print(
                "  slot " + pad("\(row.slot)", 5) + " ledger " + pad("\(row.ledger.bytesIn) / \(row.ledger.bytesOut)", 13) + " node "
                    + pad("\(row.node.bytesIn) / \(row.node.bytesOut)", 13) + " " + row.status.rawValue)
        }
        return report.verdict
    }

    private func replicationSummary(_ replication: ReplicationReport) -> String {
        guard let stream = replication.stream else {
            return "replicas \(replication.replicasOnNode) on the node, \(replication.linksThroughSidecar) through this slotwarden"
        }
        let source = "stream from \(stream.primary ?? "?")"
        guard let bytes = stream.bytesIn else { return "\(source) not known (\(stream.gap?.rawValue ?? "-"): \(stream.detail ?? "-"))" }
        return "\(source): \(bytes) bytes in, as its slotwarden forwarded them"
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}

/// Strings, lists, hashes, sets, sorted sets, counters, transactions, pipelines, an inline command and
/// a few errors, spread over many slots of both shards, through a cluster client that follows
/// redirects between the slotwardens.
struct MixedWorkload {
    var cluster: LocalCluster
    var rounds: Int
    /// Keeps the keys of two runs apart.
    var tag: String

    func run() throws -> Int {
        let client = cluster.client()
        defer { client.close() }
        var sent = 0
        func call(_ key: String, _ arguments: String...) throws {
            _ = try client.call(key: key, arguments)
            sent += 1
        }
        for round in 0..<rounds {
            let user = "user:{\(tag)\(round % 40)}"
            try call("\(user):name", "SET", "\(user):name", "name-\(round)")
            try call("\(user):name", "GET", "\(user):name")
            try call("counter:\(round % 25)", "INCR", "counter:\(round % 25)")
            try call("queue:\(round % 10)", "LPUSH", "queue:\(round % 10)", "job-\(round)")
            try call("\(user):profile", "HSET", "\(user):profile", "visits", "\(round)", "last", "r\(round)")
            try call("tags:\(round % 15)", "SADD", "tags:\(round % 15)", "t\(round % 7)")
            try call("board:\(round % 5)", "ZADD", "board:\(round % 5)", "\(round)", "player-\(round % 30)")
            if round % 10 == 0 {
                try call("\(user):name", "LPUSH", "\(user):name", "wrong-type")
                try call("\(user):name", "NOSUCHCOMMAND", "\(user):name")
                // A transaction and an inline command, on a connection to the slot's owner.
                let owner = try NodeClient(host: "127.0.0.1", port: try ownerPort(of: user))
                _ = try owner.call("MULTI")
                _ = try owner.call("INCR", "\(user):txn")
                _ = try owner.call("GET", "\(user):name")
                _ = try owner.call("EXEC")
                try owner.send(Array("GET \(user):name\r\n".utf8))
                _ = try owner.readValue()
                sent += 5
            }
            if round % 25 == 0 {
                let owner = try NodeClient(host: "127.0.0.1", port: try ownerPort(of: "{\(tag)}"))
                var pipeline: [UInt8] = []
                for index in 0..<50 { pipeline += RESPEncoder.command(["GET", "{\(tag)}key:\(index)"]) }
                try owner.send(pipeline)
                for _ in 0..<50 { _ = try owner.readValue() }
                sent += 50
            }
        }
        return sent
    }

    /// The sidecar port of the primary that owns `key`'s slot now.
    private func ownerPort(of key: String) throws -> Int {
        guard let owner = try cluster.owner(ofSlot: Int(HashSlot(key: key).rawValue)) else {
            throw DemoFailure(description: "no node owns the slot of \(key)")
        }
        return owner.sidecarPort
    }
}

/// The demo could not do what it shows.
private struct DemoFailure: Error, CustomStringConvertible {
    let description: String
}
