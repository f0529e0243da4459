import Admin
import ArgumentParser
import Fleet
import Foundation
import Proxy

struct FleetRebalance: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebalance", abstract: "Plan (and with --execute, make) the slot moves that spread traffic over the primaries.",
        discussion: """
            The load of a slot is what every sidecar's ledger counted for it (bytes: in + out; commands), or \
            the nodes' own cpu-usec. Prints the load per primary before and after, and the steps as commands \
            (CLUSTER MIGRATESLOTS on Valkey 9, the legacy SETSLOT/MIGRATE steps on 8). --execute carries them \
            out one batch (one source and target) at a time, and after each checks that every node says \
            cluster_state:ok and knows the new owners, and that a fenced fleet reconciliation matches; it stops \
            at the first failure and says where. Exits 0 when balanced (or carried out), 1 when the plan \
            cannot reach the tolerance, 2 on a failure.
            """)

    @OptionGroup var options: FleetOptions

    @Option(name: .long, help: "bytes, commands or cpu.")
    var by: String = "bytes"

    @Option(name: .long, help: "Relative weights per primary, e.g. 10.0.0.5:7000=2,10.0.0.6:7000=1 (address or node id prefix); others 1.")
    var weights: String?

    @Option(name: .long, help: "The most slots to move.")
    var maxMoves: Int = 1000

    @Option(name: .long, help: "How far above its share a primary may stay, as a fraction (0.1: 10 %).")
    var tolerance: Double = 0.1

    @Flag(name: .long, help: "Carry the plan out, batch by batch.")
    var execute = false

    func run() async throws {
        guard ["bytes", "commands", "cpu"].contains(by) else { throw ValidationError("--by: expected bytes, commands or cpu, got '\(by)'") }
        guard (0.0...10.0).contains(tolerance) else { throw ValidationError("--tolerance: expected 0 to 10, got \(tolerance)") }
        guard maxMoves >= 0 else { throw ValidationError("--max-moves: expected 0 or more") }
        let fleet = try options.fleet()
        let primaries = fleet.map.shards.compactMap(\.primary)
        let (merged, unanswered) = await fleet.heatmap()
        guard unanswered.isEmpty else {
            for line in unanswered { printError("slotwarden fleet rebalance: not asked: \(line)") }
            throw ExitCode(2)
        }
        let data = merged.data(title: "", generatedAt: "")
        let load: [UInt64]
        switch by {
        case "commands": load = data.commands
        case "cpu":
            guard let cpu = data.cpuUsec else {
                printError("slotwarden fleet rebalance: the nodes' cpu-usec could not be read")
                throw ExitCode(2)
            }
            load = cpu
        default: load = zip(data.bytesIn, data.bytesOut).map { $0 &+ $1 }
        }
        let plan = RebalancePlan(
            measure: by, primaries: primaries.map { ($0.id, $0.address) }, weights: try parseWeights(primaries), owner: data.owner, load: load,
            keys: data.keys, tolerance: tolerance, maxMoves: maxMoves)
        let atomic = try majorVersion(of: fleet) >= 9
        if options.json {
            try options.printJSON(plan)
        } else {
            print(render(plan, primaries: primaries, atomic: atomic, others: fleet.map))
        }
        guard execute else {
            if !plan.balanced && plan.moves.isEmpty { throw ExitCode(1) }
            return
        }
        try await carryOut(plan, primaries: primaries, fleet: fleet, atomic: atomic)
        if !plan.balanced { throw ExitCode(1) }
    }

    private func parseWeights(_ primaries: [ClusterMap.Node]) throws -> [Double] {
        var weight = Array(repeating: 1.0, count: primaries.count)
        guard let weights else { return weight }
        for entry in weights.split(separator: ",") {
            let parts = entry.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let value = Double(parts[1]), value > 0 else {
                throw ValidationError("--weights: expected address=weight with a positive weight, got '\(entry)'")
            }
            let matching = primaries.indices.filter { primaries[$0].address == parts[0] || primaries[$0].id.hasPrefix(String(parts[0])) }
            guard matching.count == 1 else { throw ValidationError("--weights: '\(parts[0])' names \(matching.count) primaries, not one") }
            weight[matching[0]] = value
        }
        return weight
    }

    private func majorVersion(of fleet: Fleet) throws -> Int {
        guard let node = fleet.map.shards.compactMap(\.primary).first else { return 0 }
        let client = try NodeClient(host: node.host, port: node.port, timeoutMilliseconds: options.timeoutMs)
        defer { client.close() }
        let info = try client.call("INFO", "server").string ?? ""
        let version = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("valkey_version:") }
        return version.flatMap { Int($0.dropFirst("valkey_version:".count).prefix { $0 != "." }) } ?? 0
    }

    private func render(_ plan: RebalancePlan, primaries: [ClusterMap.Node], atomic: Bool, others map: ClusterMap) -> String {
        let total = max(1, plan.primaries.reduce(0) { $0 + $1.loadBefore })
        var lines = [
            table(
                ["primary", "weight", "slots before", "\(plan.measure) before", "share", "slots after", "\(plan.measure) after", "share"],
                plan.primaries.map {
                    [
                        $0.address, String(format: "%g", $0.weight), "\($0.slotsBefore)", "\($0.loadBefore)",
                        String(format: "%.1f%%", 100 * Double($0.loadBefore) / Double(total)), "\($0.slotsAfter)", "\($0.loadAfter)",
                        String(format: "%.1f%%", 100 * Double($0.loadAfter) / Double(total)),
                    ]
                }),
            "",
            String(
                format: "max/mean load: %.2f before, %.2f after; %d slot moves, %llu keys to move; %@",
                plan.maxOverMeanBefore, plan.maxOverMeanAfter, plan.moves.count, plan.moves.reduce(UInt64(0)) { $0 + $1.keys },
                plan.balanced ? "within \(Int(plan.tolerance * 100)) % of every share" : (plan.note ?? "not balanced")),
        ]
        if !plan.moves.isEmpty {
            lines.append("")
            lines.append("steps (\(atomic ? "atomic slot migration" : "legacy SETSLOT / MIGRATE"), one batch per source and target):")
            for (index, batch) in plan.batches.enumerated() {
                let (source, target) = (primaries[batch.from], primaries[batch.to])
                let others = primaries.filter { $0 != source && $0 != target }
                lines.append("# batch \(index + 1): \(batch.slots.count) slots from \(source.address) to \(target.address)")
                lines += SlotMigrator.commands(moving: batch.ranges, from: source, to: target, atomic: atomic, others: others)
            }
        }
        return lines.joined(separator: "\n")
    }

    private func carryOut(_ plan: RebalancePlan, primaries: [ClusterMap.Node], fleet: Fleet, atomic: Bool) async throws {
        let migrator = SlotMigrator(timeoutMilliseconds: max(options.timeoutMs, 15_000))
        let batches = plan.batches
        for (index, batch) in batches.enumerated() {
            let (source, target) = (primaries[batch.from], primaries[batch.to])
            let others = primaries.filter { $0 != source && $0 != target }
            let where_ = "batch \(index + 1) of \(batches.count) (\(batch.slots.count) slots from \(source.address) to \(target.address))"
            let clock = ContinuousClock()
            let start = clock.now
            do {
                try await Task.detached {
                    try migrator.move(batch.slots, from: source, to: target, atomic: atomic, others: others)
                    try migrator.waitUntilSettled(fleet.map, slots: batch.slots, ownedBy: target)
                }.value
            } catch {
                printError("slotwarden fleet rebalance: stopped at \(where_): \(error)")
                throw ExitCode(2)
            }
            let answers = await fleet.ask(fleet.map.nodes, "/v1/reconcile?mode=fenced", as: ReconcileReport.self)
            let reconciliation = FleetReconciliation(map: fleet.map, answers: answers)
            guard reconciliation.verdict == .match else {
                printError("slotwarden fleet rebalance: stopped after \(where_): the fleet reconciliation says \(reconciliation.verdict.rawValue)")
                printError(FleetReconcile.render(reconciliation))
                throw ExitCode(2)
            }
            print("done: \(where_) in \(start.duration(to: clock.now)); cluster_state ok, fleet reconciliation match")
        }
    }
}
