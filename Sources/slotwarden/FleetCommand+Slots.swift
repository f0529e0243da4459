import Accounting
import Admin
import ArgumentParser
import Fleet
import Foundation
import Proxy

struct FleetTopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top", abstract: "The busiest slots of the whole cluster.",
        discussion: """
            bytes_in, bytes_out and commands sum every sidecar's ledger (node view, since its open epoch or the \
            slot's last cut); cpu_usec sums the nodes' own CLUSTER SLOT-STATS, read through each sidecar. \
            Exits 0 when every node answered, 2 otherwise.
            """)

    @OptionGroup var options: FleetOptions

    @Option(name: .long, help: "bytes_in, bytes_out, commands or cpu_usec.")
    var by: String = "bytes_in"

    @Option(name: .long, help: "How many slots to print.")
    var limit: Int = 10

    func run() async throws {
        guard ["bytes_in", "bytes_out", "commands", "cpu_usec"].contains(by) else {
            throw ValidationError("--by: expected bytes_in, bytes_out, commands or cpu_usec, got '\(by)'")
        }
        guard (1...16384).contains(limit) else { throw ValidationError("--limit: expected 1 to 16384, got \(limit)") }
        let fleet = try options.fleet()
        let nodes = fleet.map.nodes
        var perNode: [(node: ClusterMap.Node, counts: [(slot: Int, value: UInt64)])] = []
        var unreachable: [String] = []
        if by == "cpu_usec" {
            for (node, result) in await Self.nodeCPU(nodes, limit: limit, timeout: options.timeoutMs) {
                switch result {
                case .success(let counts): perNode.append((node, counts))
                case .failure(let error): unreachable.append("\(node.address): \(error)")
                }
            }
        } else {
            // Each sidecar's own top is asked deeper than the limit, so that slots busy on several
            // nodes (a primary and its replicas) are summed, not missed.
            let deeper = min(1000, max(limit * 4, 100))
            for answer in await fleet.ask(nodes, "/v1/ledger/top?view=node&by=\(by)&limit=\(deeper)", as: TopResponse.self) {
                guard let top = answer.value else {
                    unreachable.append("\(answer.node.address): \(answer.result.failureDescription)")
                    continue
                }
                perNode.append(
                    (
                        answer.node,
                        top.slots.map { ($0.slot, by == "bytes_in" ? $0.bytesIn : by == "bytes_out" ? $0.bytesOut : $0.commands) }
                    ))
            }
        }
        let top = FleetTop(by: by, map: fleet.map, perNode: perNode, unreachable: unreachable, limit: limit)
        if options.json {
            try options.printJSON(top)
        } else {
            print(table(["slot", by, "owner", "counted on"], top.slots.map { ["\($0.slot)", "\($0.value)", $0.owner ?? "-", $0.nodes.joined(separator: " ")] }, leftAlignLast: true))
            for line in top.unreachable { print("not asked: \(line)") }
        }
        if !unreachable.isEmpty { throw ExitCode(2) }
    }

    /// `CLUSTER SLOT-STATS ORDERBY cpu-usec LIMIT n` on every node, through its sidecar, all at once.
    static func nodeCPU(_ nodes: [ClusterMap.Node], limit: Int, timeout: Int) async -> [(ClusterMap.Node, Result<[(slot: Int, value: UInt64)], Fleet.Failure>)] {
        await withTaskGroup(of: (Int, Result<[(slot: Int, value: UInt64)], Fleet.Failure>).self) { group in
            for (index, node) in nodes.enumerated() {
                group.addTask {
                    do {
                        let client = try NodeClient(host: node.host, port: node.port, timeoutMilliseconds: timeout)
                        defer { client.close() }
                        let stats = try NodeSlotStats(reply: client.call("CLUSTER", "SLOT-STATS", "ORDERBY", "cpu-usec", "LIMIT", "\(limit)"))
                        return (index, .success(stats.rows.map { (Int($0.slot.rawValue), $0.cpuMicroseconds) }))
                    } catch {
                        return (index, .failure(Fleet.Failure("\(error)")))
                    }
                }
            }
            var results = [Result<[(slot: Int, value: UInt64)], Fleet.Failure>](repeating: .success([]), count: nodes.count)
            for await (index, result) in group { results[index] = result }
            return Array(zip(nodes, results))
        }
    }
}

struct FleetHeatmap: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "heatmap", abstract: "Write a heat map of the whole cluster's 16384 slots: one self-contained HTML file.",
        discussion: "Exits 0 when every sidecar answered, 2 when some did not (the map is written from the others).")

    @OptionGroup var options: FleetOptions

    @Option(name: .long, help: "The HTML file to write.")
    var out: String

    func run() async throws {
        let fleet = try options.fleet()
        let (merged, unanswered) = await fleet.heatmap()
        let data = merged.data(
            title: "slotwarden · cluster of \(fleet.map.shards.count) shards via \(options.cluster)", generatedAt: ISO8601DateFormatter().string(from: Date()))
        do {
            try HeatmapPage.embedding(data).write(toFile: out, atomically: true, encoding: .utf8)
        } catch {
            printError("slotwarden fleet heatmap: cannot write \(out): \(error)")
            throw ExitCode(2)
        }
        print("wrote \(out): 16384 slots, \(data.owners.count) owners, from \(merged.merged) of \(fleet.map.nodes.count) sidecars")
        for line in unanswered { print("not asked: \(line)") }
        if !unanswered.isEmpty { throw ExitCode(2) }
    }
}

extension Result {
    var failureDescription: String {
        if case .failure(let failure) = self { return "\(failure)" }
        return "-"
    }
}
