import Admin
import Settings
import ArgumentParser
import Fleet
import Foundation
import Proxy

/// `slotwarden fleet`: the whole cluster, found through any sidecar.
struct FleetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Ask every sidecar of a cluster at once: status, reconciliation, busiest slots, heat map, rebalance plan.",
        discussion: """
            The cluster is found through any sidecar's client address (CLUSTER SHARDS); each node's sidecar \
            admin API by the peers rule of the configuration file (peers.admin_port_offset, peers.admin), \
            or else --admin-port-offset.
            """,
        subcommands: [FleetStatus.self, FleetReconcile.self, FleetTopCommand.self, FleetHeatmap.self, FleetRebalance.self])
}

/// Where the cluster is and how its sidecars' admin APIs are found; shared by every fleet subcommand.
struct FleetOptions: ParsableArguments {
    @Option(name: .long, help: "Any sidecar's client address (host:port).")
    var cluster: String

    @Option(name: .long, help: "A slotwarden configuration file whose peers rule finds the admin APIs.")
    var config: String?

    @Option(name: .long, help: "Admin port = announced port + this (when the configuration gives no rule).")
    var adminPortOffset: Int?

    @Option(name: .long, help: "How long each sidecar may take to answer, in milliseconds.")
    var timeoutMs: Int = 10_000

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func fleet() throws -> Fleet {
        var rule = PeerAdminRule()
        var ownOffset = 70
        if let config {
            do {
                let settings = try SlotwardenConfig.load(path: config)
                rule = settings.peers
                ownOffset = settings.admin.listenPort - settings.proxy.listenPort
            } catch let error as ConfigError {
                throw ValidationError(error.description)
            }
        }
        if let adminPortOffset { rule.adminPortOffset = adminPortOffset }
        let map: ClusterMap
        do {
            map = try Fleet.discover(entry: cluster, timeoutMilliseconds: timeoutMs)
        } catch {
            printError("slotwarden fleet: \(error)")
            throw ExitCode(2)
        }
        return Fleet(map: map, timeoutMilliseconds: timeoutMs) { [rule, ownOffset] in rule.adminAddress(of: $0, ownOffset: ownOffset) }
    }

    func printJSON(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }
}

struct FleetStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Every node: shard, role, health, its sidecar's admin API and readiness.",
        discussion: "Exits 0 when every sidecar answered, 2 otherwise.")

    @OptionGroup var options: FleetOptions

    struct Line: Encodable {
        var shard: Int
        var id: String
        var address: String
        var role: String
        var health: String
        var slots: Int
        var admin: String?
        var ready: String?
        var epoch: Int?
        var error: String?
    }

    func run() async throws {
        let fleet = try options.fleet()
        let nodes = fleet.map.nodes
        async let ready = fleet.ask(nodes, "/readyz", as: HealthResponse.self)
        async let top = fleet.ask(nodes, "/v1/ledger/top?limit=1", as: TopResponse.self)
        let (readiness, epochs) = await (ready, top)
        var lines: [Line] = []
        for (shardIndex, shard) in fleet.map.shards.enumerated() {
            for node in shard.nodes {
                let answer = readiness.first { $0.node == node }
                let epoch = epochs.first { $0.node == node }
                var line = Line(
                    shard: shardIndex, id: node.id, address: node.address, role: node.role, health: node.health,
                    slots: node.isPrimary ? shard.slotCount : 0, admin: answer?.admin, ready: answer?.value?.status, epoch: epoch?.value?.epoch.id)
                if case .failure(let failure) = epoch?.result { line.error = failure.description }
                lines.append(line)
            }
        }
        if options.json {
            try options.printJSON(lines)
        } else {
            print(
                table(
                    ["shard", "node", "role", "health", "slots", "admin", "ready", "epoch", "error"],
                    lines.map {
                        [
                            "\($0.shard)", "\($0.address) \($0.id.prefix(8))", $0.role, $0.health, "\($0.slots)", $0.admin ?? "-", $0.ready ?? "-",
                            $0.epoch.map { "\($0)" } ?? "-", $0.error ?? "",
                        ]
                    }, leftAlignLast: true))
        }
        if lines.contains(where: { $0.epoch == nil }) { throw ExitCode(2) }
    }
}

struct FleetReconcile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile", abstract: "A fenced reconciliation on every sidecar at once, and one verdict for the cluster.",
        discussion: "Exits 0 when every sidecar matches, 1 on a difference, 2 when some sidecar could not be asked or compare.")

    @OptionGroup var options: FleetOptions

    @Option(name: .long, help: "live (no pause) or fenced (each sidecar pauses its clients for its read).")
    var mode: String = "fenced"

    func run() async throws {
        guard ["live", "fenced"].contains(mode) else { throw ValidationError("--mode: expected live or fenced, got '\(mode)'") }
        let fleet = try options.fleet()
        let answers = await fleet.ask(fleet.map.nodes, "/v1/reconcile?mode=\(mode)", as: ReconcileReport.self)
        let report = FleetReconciliation(map: fleet.map, answers: answers)
        if options.json {
            try options.printJSON(report)
        } else {
            print(Self.render(report))
        }
        if report.verdict != .match { throw ExitCode(report.verdict.exitCode) }
    }

    static func render(_ report: FleetReconciliation) -> String {
        var lines = [
            table(
                ["shard", "node", "role", "verdict", "compared", "explained", "unexplained", "admin / error"],
                report.nodes.map { node in
                    let unexplained = node.unexplained.map { count in
                        let slots = zip(node.unexplainedSlots ?? [], node.unexplainedDifferences ?? []).map { slot, difference in
                            "\(slot) (in \(difference.bytesIn), out \(difference.bytesOut))"
                        }
                        return count == 0 ? "0" : "\(count): \(slots.joined(separator: ", "))"
                    }
                    return [
                        "\(node.shard)", "\(node.address) \(node.id.prefix(8))", node.role, node.verdict ?? "unreachable",
                        node.slotsCompared.map(String.init) ?? "-", node.explained.map(String.init) ?? "-", unexplained ?? "-",
                        node.error ?? node.admin ?? "-",
                    ]
                }, leftAlignLast: true),
            "",
            "replication streams:",
        ]
        for pairing in report.pairings {
            let links = "\(pairing.replicasOnNode.map(String.init) ?? "?") on the node, \(pairing.linksThroughSidecar.map(String.init) ?? "?") through its sidecar"
                + ((pairing.linksBehind ?? 0) > 0 ? ", \(pairing.linksBehind ?? 0) behind" : "")
            lines.append("  shard \(pairing.shard): primary \(pairing.primary): replicas \(links)")
            for replica in pairing.replicas {
                let counted = replica.streamBytesIn.map { "counted \($0) bytes of its stream, exactly" } ?? "stream not exact (\(replica.gap ?? "not asked"))"
                let follows = replica.primaryItFollows.map { $0 == pairing.primary ? "" : " — it follows \($0)" } ?? ""
                lines.append("    replica \(replica.address): \(counted)\(follows)")
            }
        }
        lines.append("")
        lines.append("cluster: \(report.verdict.rawValue)")
        return lines.joined(separator: "\n")
    }
}
