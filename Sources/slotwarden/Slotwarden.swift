import Admin
import Settings
import ArgumentParser
import Dispatch
import Foundation
import Logging
import Proxy
import RESP

@main
struct Slotwarden: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slotwarden",
        abstract: "A TCP sidecar for one Valkey node that keeps an exact per-slot byte ledger.",
        subcommands: [Run.self, CheckConfig.self, Demo.self, Reconcile.self, LedgerCommand.self, FleetCommand.self])
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the proxy in front of a Valkey node.")

    @Option(name: .long, help: "The YAML configuration file.")
    var config: String?

    @Option(name: .long, help: "Where clients connect (host:port); overrides the file.")
    var listen: String?

    @Option(name: .long, help: "The Valkey node (host:port); overrides the file.")
    var node: String?

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical; overrides the file.")
    var logLevel: String?

    @Option(name: .long, help: "Where the admin API listens (host:port); overrides the file.")
    var adminListen: String?

    func run() async throws {
        var settings = SlotwardenConfig()
        do {
            if let config { settings = try SlotwardenConfig.load(path: config) }
            try applyOverrides(to: &settings)
        } catch let error as ConfigError {
            throw ValidationError(error.description)
        }

        let adminConfiguration = try settings.admin.configuration(environment: ProcessInfo.processInfo.environment)
        let logLevel = ReloadableLogLevel(settings.logLevel)
        LoggingSystem.bootstrap { label in logLevel.handler(label: label) }
        let logger = Logger(label: "slotwarden")
        let signals = SignalWaiter(signals: [SIGINT, SIGTERM, SIGHUP])

        let lock = try settings.shutdown.lockPath(
            listenHost: settings.proxy.listenHost, listenPort: settings.proxy.listenPort,
            temporaryDirectory: FileManager.default.temporaryDirectory.path
        ).map { try HandoverLock(path: $0) }
        let predecessorRuns = lock.map { !$0.tryLock() } ?? false
        if predecessorRuns, let lock {
            logger.notice(
                "another slotwarden runs on this listen address; serving beside it and taking over when it exits",
                metadata: ["listen": "\(settings.proxy.listenHost):\(settings.proxy.listenPort)", "lock": "\(lock.path)"])
        }
        settings.proxy.firstEpochID = (settings.fence.epochLogPath.flatMap(EpochLog.lastEpochID(path:)) ?? 0) + 1

        let facts = try await probeUntilReachable(settings, logger: logger, signals: signals)
        guard let facts else { return }
        var fence = settings.fence
        fence.credentials = try settings.nodeAuth.credentials(environment: ProcessInfo.processInfo.environment)
        fence.replicaStreamSource = PeerStreamClient(
            rule: settings.peers, ownOffset: settings.admin.listenPort - settings.proxy.listenPort)
        let sidecar = try Sidecar(proxy: settings.proxy, fence: fence, node: facts, logger: logger)
        let admin = await startAdmin(adminConfiguration, sidecar: sidecar, logger: logger, retryWhileAddressInUse: predecessorRuns)
        try sidecar.start()
        let takeover = predecessorRuns ? lock.map { takeOver(from: $0, sidecar: sidecar, settings: settings, logger: logger) } : nil

        var running = RunningConfiguration(settings: settings, path: config, logLevel: logLevel, admin: admin.service)
        var signal = await signals.next()
        while signal == SIGHUP {
            await running.reload(overriding: self, sidecar: sidecar, logger: logger)
            signal = await signals.next()
        }
        takeover?.cancel()
        await stop(sidecar, admin: admin.task, shutdown: running.settings.shutdown, signal: signal, signals: signals, logger: logger)
    }

    /// The flags given to `run`, over the file's values (also after a reload).
    func applyOverrides(to settings: inout SlotwardenConfig) throws {
        if let listen {
            guard let parsed = HostPort(listen) else { throw ValidationError("--listen: expected host:port, got '\(listen)'") }
            (settings.proxy.listenHost, settings.proxy.listenPort) = (parsed.host, parsed.port)
        }
        if let node {
            guard let parsed = HostPort(node) else { throw ValidationError("--node: expected host:port, got '\(node)'") }
            (settings.proxy.nodeHost, settings.proxy.nodePort) = (parsed.host, parsed.port)
        }
        if let adminListen {
            guard let parsed = HostPort(adminListen) else {
                throw ValidationError("--admin-listen: expected host:port, got '\(adminListen)'")
            }
            (settings.admin.listenHost, settings.admin.listenPort) = (parsed.host, parsed.port)
        }
        if let logLevel {
            guard let level = Logger.Level(rawValue: logLevel) else {
                throw ValidationError("--log-level: expected one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            settings.logLevel = level
        }
    }

    /// Stops as a restart wants it: the admin API first (a successor on this address can take its
    /// port), then every client at a command boundary (a second signal cuts that short), then the open
    /// epoch, recorded in the epoch log with the node's counters, so that ids go on from it.
    private func stop(
        _ sidecar: Sidecar, admin: Task<Void, Never>, shutdown: ShutdownSettings, signal: Int32, signals: SignalWaiter, logger: Logger
    ) async {
        logger.notice(
            "stopping: no new connections; closing clients at command boundaries",
            metadata: ["signal": "\(signal)", "drain_timeout_ms": "\(shutdown.drainTimeoutMilliseconds)"])
        admin.cancel()
        await admin.value
        let interrupt = Task {
            var again = await signals.next()
            while again == SIGHUP { again = await signals.next() }
            logger.warning("a second signal: stopping at once", metadata: ["signal": "\(again)"])
            Foundation.exit(1)
        }
        let outcome = await sidecar.server.closeClientsGracefully(
            timeoutMilliseconds: shutdown.drainTimeoutMilliseconds, lingerMilliseconds: shutdown.lingerMilliseconds)
        interrupt.cancel()
        logger.notice(
            "clients closed",
            metadata: [
                "at_boundary": "\(outcome.closedAtBoundary)", "at_deadline": "\(outcome.closedAtDeadline)",
                "in_flight_at_deadline": "\(outcome.inFlightAtDeadline)", "replication_links": "\(outcome.replicationLinksClosed)",
                "elapsed_ms": "\(outcome.elapsedMilliseconds)",
            ])
        let last = await sidecar.closeEpoch(reason: .shutdown, within: .seconds(10))
        logger.notice("last epoch closed", metadata: ["epoch": "\(last.map { "\($0.id)" } ?? "-")"])
        let closeResult = sidecar.stop()
        logger.info("stopped", metadata: ["loop_close": "\(closeResult)"])
    }

    /// Waits for the slotwarden that held the listen address to exit, then closes the epoch both of
    /// them fed at a fenced cut: from there on, this process's epochs reconcile alone.
    private func takeOver(from lock: HandoverLock, sidecar: Sidecar, settings: SlotwardenConfig, logger: Logger) -> Task<Void, Never> {
        Task {
            let started = ContinuousClock.now
            await lock.lock()
            let waited = ContinuousClock.now - started
            guard !Task.isCancelled else { return }
            let previous = settings.fence.epochLogPath.flatMap(EpochLog.lastEpochID(path:)) ?? (settings.proxy.firstEpochID - 1)
            let overlap = await sidecar.fence.tookOver(after: previous)
            logger.notice(
                "took over: the previous slotwarden exited",
                metadata: [
                    "waited_ms": "\(Int(waited / .milliseconds(1)))",
                    "overlap_epoch": "\(overlap.id)", "epoch": "\(overlap.id + 1)",
                ])
        }
    }

    /// A sidecar often starts before its node: retry the probe every second until it answers or a
    /// signal asks to stop (then nil).
    private func probeUntilReachable(
        _ settings: SlotwardenConfig, logger: Logger, signals: SignalWaiter
    ) async throws -> NodeFacts? {
        while true {
            do {
                var facts = try NodeProbe.probe(host: settings.proxy.nodeHost, port: settings.proxy.nodePort)
                if settings.commandsSource == "builtin" {
                    facts.commands = .builtIn
                    facts.commandsSource = "built-in"
                }
                if !facts.clusterEnabled {
                    logger.warning("the node runs without cluster mode: CLUSTER SLOT-STATS is not available there")
                }
                return facts
            } catch {
                logger.warning(
                    "node not reachable yet; retrying in 1 s",
                    metadata: ["node": "\(settings.proxy.nodeHost):\(settings.proxy.nodePort)", "error": "\(error)"])
            }
            if let signal = await signals.next(timeoutMilliseconds: 1000), signal != SIGHUP { return nil }
        }
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate a configuration file; exit 1 with the line at fault.")

    @Argument(help: "The YAML configuration file.")
    var file: String

    func run() throws {
        do {
            let config = try SlotwardenConfig.load(path: file)
            print(
                "\(file): ok (listen \(config.proxy.listenHost):\(config.proxy.listenPort), "
                    + "node \(config.proxy.nodeHost):\(config.proxy.nodePort))")
        } catch let error as ConfigError {
            var standardError = FileHandle.standardError
            print(error.description, to: &standardError)
            throw ExitCode(1)
        }
    }
}

extension FileHandle: @retroactive TextOutputStream {
    public func write(_ string: String) { write(Data(string.utf8)) }
}

/// Turns SIGINT/SIGTERM into awaitable events.
final class SignalWaiter: @unchecked Sendable {
    private let sources: [any DispatchSourceSignal]
    private let queue = DispatchQueue(label: "slotwarden.signals")
    /// Guarded by `queue`.
    private var received: [Int32] = []
    private var waiters: [UInt64: CheckedContinuation<Int32?, Never>] = [:]
    private var nextToken: UInt64 = 0

    init(signals: [Int32]) {
        var sources: [any DispatchSourceSignal] = []
        for number in signals {
            signal(number, SIG_IGN)
            sources.append(DispatchSource.makeSignalSource(signal: number, queue: queue))
        }
        self.sources = sources
        for (source, number) in zip(sources, signals) {
            source.setEventHandler { [weak self] in self?.deliver(number) }
            source.resume()
        }
    }

    /// Runs on `queue`.
    private func deliver(_ number: Int32) {
        if waiters.isEmpty {
            received.append(number)
            return
        }
        let waiting = waiters.values
        waiters = [:]
        for waiter in waiting { waiter.resume(returning: number) }
    }

    /// Waits for the next signal.
    func next() async -> Int32 {
        while true {
            if let number = await next(timeoutMilliseconds: nil) { return number }
        }
    }

    /// Waits for the next signal, or returns nil after the timeout.
    func next(timeoutMilliseconds: Int?) async -> Int32? {
        await withCheckedContinuation { (continuation: CheckedContinuation<Int32?, Never>) in
            queue.async { [self] in
                if !received.isEmpty {
                    continuation.resume(returning: received.removeFirst())
                    return
                }
                let token = nextToken
                nextToken += 1
                waiters[token] = continuation
                if let timeoutMilliseconds {
                    queue.asyncAfter(deadline: .now() + .milliseconds(timeoutMilliseconds)) { [self] in
                        waiters.removeValue(forKey: token)?.resume(returning: nil)
                    }
                }
            }
        }
    }
}
