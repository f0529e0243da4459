import Admin
import ArgumentParser
import Foundation
import Logging
import Metrics
import Proxy

// MARK: run: the admin listener

extension AdminSettings {
    /// Loads the token and validates the listener, before anything starts: a non-loopback listener
    /// without a token refuses to start.
    func configuration(environment: [String: String]) throws -> AdminConfiguration {
        do {
            let token = try AdminToken.load(
                file: tokenFile, environmentVariable: tokenEnvironmentVariable, environment: environment)
            let configuration = AdminConfiguration(
                listenHost: listenHost, listenPort: listenPort, token: token, maxPauseMilliseconds: maxPauseMilliseconds,
                topSlots: topSlots)
            try configuration.validate()
            return configuration
        } catch {
            throw ValidationError(error.description)
        }
    }
}

/// Starts the admin API for a data plane that is about to start: the node's baseline is read first,
/// so the epoch's node delta starts where the ledger does. The returned task serves until cancelled.
func startAdmin(_ configuration: AdminConfiguration, sidecar: Sidecar, logger: Logger) async -> Task<Void, Never> {
    let admin = AdminService(backend: ProxyBackend(server: sidecar.server, fence: sidecar.fence), configuration: configuration)
    MetricsSystem.bootstrap(admin.metrics.swiftMetricsFactory())
    do {
        try await admin.takeBaseline()
    } catch {
        logger.warning("cannot read the node's CLUSTER SLOT-STATS baseline: reconciliation is unavailable", metadata: ["error": "\(error)"])
    }
    return Task {
        do {
            try await admin.run(logger: logger) { port in
                logger.info(
                    "admin API listening",
                    metadata: ["admin": "\(configuration.listenHost):\(port)", "token": "\(configuration.token == nil ? "none" : "set")"])
            }
        } catch {
            logger.error(
                "the admin API stopped; the data plane goes on",
                metadata: ["admin": "\(configuration.listenHost):\(configuration.listenPort)", "error": "\(error)"])
        }
    }
}

// MARK: a small HTTP client for the admin commands

/// `GET` against the admin API over a plain socket (`Connection: close`, a fixed-length body).
struct AdminClient {
    var host: String
    var port: Int

    init(url: String) throws {
        guard url.hasPrefix("http://") else { throw ValidationError("--admin: expected http://host:port, got '\(url)'") }
        var rest = url.dropFirst("http://".count)
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        guard let parsed = HostPort(String(rest)) else { throw ValidationError("--admin: expected http://host:port, got '\(url)'") }
        host = parsed.host
        port = parsed.port
    }

    struct Reply {
        var status: Int
        var body: Data
    }

    func get(_ target: String) throws -> Reply {
        let client = try NodeClient(host: host, port: port, timeoutMilliseconds: 10_000)
        defer { client.close() }
        try client.send(Array("GET \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n\r\n".utf8))
        let bytes = try client.readUntilClosed()
        guard let split = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else {
            throw NodeClient.Failure("the admin API answered no HTTP response")
        }
        let head = String(decoding: bytes[..<split.lowerBound], as: UTF8.self)
        let statusLine = head.split(separator: "\r\n").first ?? ""
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else {
            throw NodeClient.Failure("the admin API answered '\(statusLine)'")
        }
        return Reply(status: status, body: Data(bytes[split.upperBound...]))
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    static func errorMessage(_ reply: Reply) -> String {
        (try? decoder().decode(ErrorBody.self, from: reply.body)).map { $0.error.message }
            ?? String(decoding: reply.body, as: UTF8.self)
    }
}

func printError(_ message: String) {
    var standardError = FileHandle.standardError
    print(message, to: &standardError)
}

/// Right-aligned columns, but for a last column of words (left-aligned).
func table(_ header: [String], _ rows: [[String]], leftAlignLast: Bool = false) -> String {
    let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
    return ([header] + rows).map { row in
        row.indices.map { column in
            let padding = String(repeating: " ", count: widths[column] - row[column].count)
            if leftAlignLast && column == row.count - 1 { return row[column] }
            return padding + row[column]
        }.joined(separator: "  ")
    }.joined(separator: "\n")
}

// MARK: slotwarden reconcile

struct Reconcile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare the ledger with the node's CLUSTER SLOT-STATS through the admin API.",
        discussion: "Exits 0 when every slot matches, 1 on a difference, 2 when it could not reconcile.")

    @Option(name: .long, help: "The admin API, e.g. http://127.0.0.1:7070.")
    var admin: String = "http://127.0.0.1:7070"

    @Option(name: .long, help: "live (no pause) or fenced (pause, drain, read, resume).")
    var mode: String = "live"

    @Flag(name: .long, help: "Print the report as the API returned it.")
    var json = false

    func run() throws {
        guard ["live", "fenced"].contains(mode) else { throw ValidationError("--mode: expected live or fenced, got '\(mode)'") }
        let client = try AdminClient(url: admin)
        let reply: AdminClient.Reply
        do {
            reply = try client.get("/v1/reconcile?mode=\(mode)")
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

// MARK: slotwarden ledger top

struct LedgerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger", abstract: "Read the ledger through the admin API.", subcommands: [Top.self])

    struct Top: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The busiest slots.")

        @Option(name: .long, help: "The admin API, e.g. http://127.0.0.1:7070.")
        var admin: String = "http://127.0.0.1:7070"

        @Option(name: .long, help: "bytes_in, bytes_out or commands.")
        var by: String = "bytes_in"

        @Option(name: .long, help: "How many slots (1 to 1000).")
        var limit: Int = 10

        @Option(name: .long, help: "wire or node.")
        var view: String = "wire"

        @Flag(name: .long, help: "Print the API's JSON.")
        var json = false

        func run() throws {
            let client = try AdminClient(url: admin)
            let reply: AdminClient.Reply
            do {
                reply = try client.get("/v1/ledger/top?by=\(by)&limit=\(limit)&view=\(view)")
            } catch {
                printError("slotwarden ledger top: \(error)")
                throw ExitCode(2)
            }
            guard reply.status == 200 else {
                printError("slotwarden ledger top: HTTP \(reply.status): \(AdminClient.errorMessage(reply))")
                throw ExitCode(reply.status == 400 ? 1 : 2)
            }
            if json {
                print(String(decoding: reply.body, as: UTF8.self))
                return
            }
            let top = try AdminClient.decoder().decode(TopResponse.self, from: reply.body)
            print(
                table(
                    ["slot", "commands", "bytes in", "bytes out"],
                    top.slots.map { ["\($0.slot)", "\($0.commands)", "\($0.bytesIn)", "\($0.bytesOut)"] }))
        }
    }
}
