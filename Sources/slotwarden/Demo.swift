import Admin
import ArgumentParser
import Foundation
import Ledger
import Logging
import Proxy
import RESP

/// Starts a local cluster-mode Valkey, puts slotwarden in front of it, drives a mixed workload through
/// it and prints the ledger next to the node's own `CLUSTER SLOT-STATS`.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a local Valkey behind slotwarden, send traffic, and compare the ledger with the node.")

    @Option(name: .long, help: "The valkey-server binary (default: $SLOTWARDEN_VALKEY_SERVER).")
    var valkeyServer: String?

    @Option(name: .long, help: "Rounds of the mixed workload.")
    var rounds: Int = 200

    @Option(name: .long, help: "How many of the busiest slots to print.")
    var top: Int = 12

    func run() async throws {
        guard let executable = valkeyServer ?? ProcessInfo.processInfo.environment["SLOTWARDEN_VALKEY_SERVER"] else {
            throw ValidationError("name a valkey-server binary with --valkey-server or SLOTWARDEN_VALKEY_SERVER")
        }
        var logger = Logger(label: "slotwarden.demo")
        logger.logLevel = .warning

        let valkey = try LocalValkey(executable: executable)
        defer { valkey.stop() }
        let facts = try NodeProbe.probe(host: "127.0.0.1", port: valkey.port)
        let baseline = try NodeSlotStats(reply: valkey.client().call("CLUSTER", "SLOT-STATS", "SLOTSRANGE", "0", "16383"))
        let server = try ProxyServer(
            configuration: ProxyConfiguration(listenPort: 0, nodePort: valkey.port), node: facts, logger: logger)
        let port = try server.start()
        defer { server.stop() }
        print("valkey-server \(facts.version) (pid \(valkey.pid)) on 127.0.0.1:\(valkey.port); slotwarden on 127.0.0.1:\(port)")
        print("command table: \(facts.commands.count) commands from \(facts.commandsSource)")

        let commandsSent = try MixedWorkload(port: port, rounds: rounds).run()
        print("workload: \(commandsSent) commands through slotwarden")

        let snapshot = await server.snapshot()
        let stats = try NodeSlotStats(reply: valkey.client().call("CLUSTER", "SLOT-STATS", "SLOTSRANGE", "0", "16383"))
        printComparison(snapshot: snapshot, stats: stats)

        // The same comparison as the admin API's /v1/reconcile: per slot, with reasons.
        let reconciliation = Reconciler.reconcile(ledger: snapshot, baseline: baseline, current: stats)
        let summary = reconciliation.summary
        print(
            "reconciliation: \(reconciliation.verdict.rawValue) — \(summary.slotsCompared) slots compared, "
                + "\(summary.match) match, \(summary.nodeHigher) node_higher, \(summary.ledgerHigher) ledger_higher, "
                + "\(summary.unexplained) unexplained")
    }

    private func printComparison(snapshot: LedgerSnapshot, stats: NodeSlotStats) {
        let bySlot = stats.bySlot()
        let busiest = stats.rows.sorted { ($0.networkBytesIn, $1.slot) > ($1.networkBytesIn, $0.slot) }.prefix(top)
        print("")
        print("slot   | ledger node-view in/out | node CLUSTER SLOT-STATS in/out | wire view in/out  | ")
        print("-------+-------------------------+--------------------------------+-------------------+------")
        for row in busiest {
            let ledger = snapshot[.node, row.slot]
            let wire = snapshot[.wire, row.slot]
            let same = ledger.bytesIn == row.networkBytesIn && ledger.bytesOut == row.networkBytesOut
            print(
                pad("\(row.slot.rawValue)", 6) + " | " + pad("\(ledger.bytesIn) / \(ledger.bytesOut)", 23) + " | "
                    + pad("\(row.networkBytesIn) / \(row.networkBytesOut)", 30) + " | "
                    + pad("\(wire.bytesIn) / \(wire.bytesOut)", 17) + " | " + (same ? "match" : "DIFF"))
        }
        var differing = 0
        for index in 0..<HashSlot.count {
            let slot = HashSlot(rawValue: UInt16(index))!
            let node = bySlot[slot] ?? NodeSlotStat(slot: slot)
            let ledger = snapshot[.node, slot]
            if ledger.bytesIn != node.networkBytesIn || ledger.bytesOut != node.networkBytesOut { differing += 1 }
        }
        let total = snapshot.total(.node)
        print("")
        print("totals: ledger node view \(total.bytesIn) in / \(total.bytesOut) out; node \(stats.totalBytesIn) in / \(stats.totalBytesOut) out")
        for bucket in Bucket.allCases {
            let counters = snapshot[bucket]
            print("  wire bucket \(bucket): \(counters.commands) commands, \(counters.bytesIn) in, \(counters.bytesOut) out")
        }
        print(differing == 0 ? "every slot matches the node" : "\(differing) slots differ from the node")
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

    func run() throws -> Int {
        let client = try NodeClient(host: "127.0.0.1", port: port)
        var sent = 0
        func call(_ arguments: String...) throws {
            try client.call(arguments)
            sent += 1
        }
        for round in 0..<rounds {
            let user = "user:{\(round % 40)}"
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
