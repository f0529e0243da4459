import Admin
import ArgumentParser
import Foundation

struct Reconcile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare the ledger with the node's CLUSTER SLOT-STATS through the admin API.",
        discussion: "Exits 0 when every slot matches, 1 on a difference, 2 when it could not reconcile.")

    @Option(name: .long, help: "The admin API, e.g. http://127.0.0.1:7070.")
    var admin: String = "http://127.0.0.1:7070"

    @Option(name: .long, help: "live (no pause) or fenced (pause, drain, read, resume).")
    var mode: String = "live"

    @Flag(name: .long, help: "Print the report as the API returned it.")
    var json = false

    func run() async throws {
        guard ["live", "fenced"].contains(mode) else { throw ValidationError("--mode: expected live or fenced, got '\(mode)'") }
        let client = try AdminClient(url: admin)
        let reply: AdminClient.Reply
        do {
            reply = try await client.get("/v1/reconcile?mode=\(mode)")
        } catch {
            printError("slotwarden reconcile: \(error)")
            throw ExitCode(2)
        }
        guard reply.status == 200 else {
            printError("slotwarden reconcile: HTTP \(reply.status): \(AdminClient.errorMessage(reply))")
            throw ExitCode(2)
        }
        let report: ReconcileReport
        do {
            report = try AdminClient.decoder().decode(ReconcileReport.self, from: reply.body)
        } catch {
            printError("slotwarden reconcile: cannot read the report: \(error)")
            throw ExitCode(2)
        }
        if json {
            print(String(decoding: reply.body, as: UTF8.self))
        } else {
            print(Self.render(report))
        }
        switch report.verdict {
        case .match: return
        case .difference: throw ExitCode(1)
        case .unavailable: throw ExitCode(2)
        }
    }

    static func render(_ report: ReconcileReport) -> String {
        var lines: [String] = []
        let differing = report.slots.filter { $0.status != .match }
        if !differing.isEmpty {
            lines.append(
                table(
                    ["slot", "status", "ledger in", "node in", "diff in", "ledger out", "node out", "diff out", "reasons"],
                    differing.map {
                        [
                            "\($0.slot)", $0.status.rawValue, "\($0.ledger.bytesIn)", "\($0.node.bytesIn)", "\($0.difference.bytesIn)",
                            "\($0.ledger.bytesOut)", "\($0.node.bytesOut)", "\($0.difference.bytesOut)",
                            $0.reasons.isEmpty ? "-" : $0.reasons.map(\.rawValue).joined(separator: ","),
                        ]
                    }, leftAlignLast: true))
            lines.append("")
        }
        let summary = report.summary
        var window = ""
        if let fence = report.fence {
            window = "fenced: paused \(fence.pausedMilliseconds) ms, " + (fence.drained ? "drained" : "\(fence.inFlight) still in flight")
                + (fence.maxPauseExceeded ? ", max_pause_ms exceeded: not a consistent cut" : "")
        } else if let live = report.liveWindow {
            window = "live: \(live.inFlightCommands) commands in flight"
        }
        lines.append(
            "\(report.verdict.rawValue): \(summary.slotsCompared) slots compared, \(summary.match) match, "
                + "\(summary.nodeHigher) node_higher, \(summary.ledgerHigher) ledger_higher "
                + "(\(summary.explained) explained, \(summary.unexplained) unexplained); "
                + "difference \(summary.bytesInDifference) bytes in, \(summary.bytesOutDifference) bytes out; \(window)")
        if report.nodeResetDetected { lines.append("the node's counters were reset during the epoch") }
        if !report.networkStatsEnabled { lines.append("the node reports no network bytes: cluster-slot-stats-enabled is off") }
        return lines.joined(separator: "\n")
    }
}
