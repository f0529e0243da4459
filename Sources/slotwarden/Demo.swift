import Admin
import ArgumentParser
import Foundation
import Accounting
import LocalCluster
import Logging
import Proxy
import RESP

/// Starts a one-shard cluster on loopback (a primary and a replica, each behind its own slotwarden),
/// drives a mixed workload through the primary's sidecar, reconciles the ledger with the node's
/// `CLUSTER SLOT-STATS`, fails over through the replica's sidecar, and reconciles the new epoch on the
/// new primary.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a local Valkey shard behind slotwarden: traffic, a failover, and reconciliations.")

    @Option(name: .long, help: "The valkey-server binary (default: $SLOTWARDEN_VALKEY_SERVER).")
    var valkeyServer: String?

    @Option(name: .long, help: "Rounds of the mixed workload, before and after the failover.")
    var rounds: Int = 200

    @Option(name: .long, help: "How many of the busiest slots to print.")
    var top: Int = 8

    func run() async throws {
        guard let executable = valkeyServer ?? ProcessInfo.processInfo.environment["SLOTWARDEN_VALKEY_SERVER"] else {
            throw ValidationError("name a valkey-server binary with --valkey-server or SLOTWARDEN_VALKEY_SERVER")
        }
        var logger = Logger(label: "slotwarden.demo")
        logger.logLevel = .warning

        let cluster = try LocalCluster(
            executable: executable, fence: FenceConfiguration(fence: .init(drainTimeoutMilliseconds: 500)), logger: logger)
        defer { cluster.stop() }
        let (first, second) = (cluster.members[0], cluster.members[1])
        let facts = first.facts
        for member in cluster.members {
            print(
                "node \(member.name): valkey-server \(facts.version) (pid \(member.valkey.pid)) on 127.0.0.1:\(member.valkey.port), "
                    + "slotwarden on 127.0.0.1:\(member.sidecarPort)")
        }
        print("a owns every slot; b replicates a through a's slotwarden. Command table: \(facts.commands.count) commands from \(facts.commandsSource)")

        print("\n== epoch 1 on a (primary)")
        let sentBefore = try MixedWorkload(port: first.sidecarPort, rounds: rounds, tag: "a").run()
        print("workload: \(sentBefore) commands through a's slotwarden")
        try await reconcile(first)

        print("\n== failover: CLUSTER FAILOVER through b's slotwarden")
        let (promoted, demoted) = (second, first)
        try cluster.failover(to: promoted, timeout: .seconds(15))
        for member in [promoted, demoted] {
            guard let epoch = await member.sidecar.fence.closedEpoch(after: 0, within: .seconds(30)) else {
                throw DemoFailure(description: "\(member.name)'s slotwarden closed no epoch within 30 s of the failover")
            }
            print(
                "\(member.name): epoch \(epoch.id) closed (\(epoch.closedBy?.rawValue ?? "-")), role \(epoch.roleAtStart.kind.rawValue) → "
                    + "\(epoch.roleAtEnd?.kind.rawValue ?? "-"); clients paused \(epoch.pauseMilliseconds) ms, drain \(epoch.drainMilliseconds) ms, "
                    + "\(epoch.carriedOver.reduce(0) { $0 + $1.count }) commands carried over")
        }

        print("\n== epoch 2 on b (now the primary)")
        let sentAfter = try MixedWorkload(port: promoted.sidecarPort, rounds: rounds, tag: "b").run()
        print("workload: \(sentAfter) commands through b's slotwarden")
        try await reconcile(promoted)
    }

    /// Prints the busiest slots of `member`'s open epoch next to the node's counters since it opened,
    /// then the reconciliation's verdict over every slot (as the admin API's /v1/reconcile gives it).
    private func reconcile(_ member: LocalCluster.Member) async throws {
        let snapshot = await member.sidecar.server.snapshot()
        let baseline = await member.sidecar.fence.nodeStatsAtOpen ?? NodeSlotStats(rows: [], networkStatsEnabled: true)
        let current = try await member.sidecar.control.slotStats()
        let replicas = try await member.sidecar.control.replication().connectedReplicas
        let outcome = Reconciler.reconcile(ledger: snapshot, baseline: baseline, current: current, replicas: replicas)

        print("slot   | ledger in / out       | node in / out         | ")
        print("-------+-----------------------+-----------------------+------------------------")
        for row in outcome.slots.sorted(by: { ($0.node.bytesIn, $1.slot) > ($1.node.bytesIn, $0.slot) }).prefix(top) {
            let reasons = row.reasons.map(\.rawValue).joined(separator: ", ")
            print(
                pad("\(row.slot)", 6) + " | " + pad("\(row.ledger.bytesIn) / \(row.ledger.bytesOut)", 21) + " | "
                    + pad("\(row.node.bytesIn) / \(row.node.bytesOut)", 21) + " | " + row.status.rawValue
                    + (reasons.isEmpty ? "" : " (\(reasons))"))
        }
        let total = snapshot.total(.node)
        let bytesInMatch = outcome.slots.allSatisfy { $0.difference.bytesIn == 0 }
        print("ledger node view: \(total.commands) commands, \(total.bytesIn) B in, \(total.bytesOut) B out")
        print("bytes in: \(bytesInMatch ? "every slot matches the node" : "some slots differ from the node")")
        let summary = outcome.summary
        print(
            "reconciliation: \(outcome.verdict.rawValue) — \(summary.slotsCompared) slots compared, \(summary.match) match, "
                + "\(summary.nodeHigher) node_higher, \(summary.ledgerHigher) ledger_higher; \(summary.explained) explained, "
                + "\(summary.unexplained) unexplained"
                + (replicas > 0 ? " (the node also counts the replication stream to its \(replicas) replica(s) as bytes out)" : ""))
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}

/// Strings, lists, hashes, sets, sorted sets, counters, a transaction, pipelines, an inline command and
/// a few errors, spread over many slots.
struct MixedWorkload {
    var port: Int
    var rounds: Int
    /// Keeps the keys of two runs apart (hash tags included, so the two runs touch different slots).
    var tag: String

    func run() throws -> Int {
        let client = try NodeClient(host: "127.0.0.1", port: port)
        var sent = 0
        func call(_ arguments: String...) throws {
            try client.call(arguments)
            sent += 1
        }
        for round in 0..<rounds {
            let user = "user:{\(tag)\(round % 40)}"
            try call("SET", "\(user):name", "name-\(round)")
            try call("GET", "\(user):name")
            try call("INCR", "counter:\(round % 25)")
            try call("LPUSH", "queue:\(round % 10)", "job-\(round)")
            try call("HSET", "\(user):profile", "visits", "\(round)", "last", "r\(round)")
            try call("SADD", "tags:\(round % 15)", "t\(round % 7)")
            try call("ZADD", "board:\(round % 5)", "\(round)", "player-\(round % 30)")
            if round % 10 == 0 {
                try call("MULTI")
                try call("INCR", "\(user):txn")
                try call("GET", "\(user):name")
                try call("EXEC")
                try call("LPUSH", "\(user):name", "wrong-type")
                try call("NOSUCHCOMMAND", "\(user):name")
                try client.send(Array("GET \(user):name\r\n".utf8))
                _ = try client.readValue()
                sent += 1
            }
            if round % 25 == 0 {
                var pipeline: [UInt8] = []
                for index in 0..<50 { pipeline += RESPEncoder.command(["GET", "key:\(index)"]) }
                try client.send(pipeline)
                for _ in 0..<50 { _ = try client.readValue() }
                sent += 50
            }
        }
        return sent
    }
}

/// The demo could not do what it shows.
private struct DemoFailure: Error, CustomStringConvertible {
    let description: String
}
