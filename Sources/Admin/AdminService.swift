import Foundation
import Hummingbird
import Ledger
import Logging
import NIOCore
import NIOPosix
import Prometheus
import RESP
import ServiceLifecycle
import Synchronization

/// slotwarden's version, as `/metrics` reports it in `slotwarden_build_info`.
public let slotwardenVersion = "0.1.0-dev"

/// How the admin listener is set up; validated by ``validate()`` before it starts.
public struct AdminConfiguration: Sendable {
    public var listenHost: String
    public var listenPort: Int
    /// Required by the mutating endpoints; nil disables them.
    public var token: AdminToken?
    /// The longest a fenced reconciliation waits for in-flight commands to drain.
    public var maxPauseMilliseconds: Int
    /// How many of the busiest slots get per-slot series in `/metrics`.
    public var topSlots: Int

    public init(
        listenHost: String = "127.0.0.1", listenPort: Int = 7070, token: AdminToken? = nil,
        maxPauseMilliseconds: Int = 50, topSlots: Int = 16
    ) {
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.token = token
        self.maxPauseMilliseconds = maxPauseMilliseconds
        self.topSlots = topSlots
    }

    /// Refuses a listener reachable from other machines without a token.
    public func validate() throws(AdminStartupError) {
        if token == nil && !isLoopbackHost(listenHost) {
            throw AdminStartupError(
                "admin.listen is \(listenHost):\(listenPort), which other machines can reach, but no admin token is "
                    + "configured: set admin.token_file or admin.token_env, or listen on 127.0.0.1")
        }
    }
}

/// The admin HTTP API: ledger, reconciliation, fence control, metrics and health, on its own
/// one-thread event loop group, talking to the data plane only through an ``AdminBackend``.
public final class AdminService: Sendable {
    public let configuration: AdminConfiguration
    public let backend: any AdminBackend
    public let metrics: AdminMetrics
    let fence: Fence
    /// The node's counters when the epoch began; the reconciliation compares against the delta.
    private let baselineStats = Mutex<NodeSlotStats?>(nil)
    let epoch: EpochInfo

    public init(
        backend: any AdminBackend, configuration: AdminConfiguration = AdminConfiguration(),
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
    ) {
        self.backend = backend
        self.configuration = configuration
        self.metrics = AdminMetrics(
            registry: registry, topSlots: configuration.topSlots, version: slotwardenVersion,
            nodeVersion: backend.nodeVersion.description)
        self.fence = Fence(backend: backend)
        self.epoch = EpochInfo(id: 1, startedAt: ISO8601DateFormatter().string(from: Date()))
    }

    /// Reads the node's `CLUSTER SLOT-STATS` as the epoch's starting point. Call it before the data
    /// plane takes traffic.
    public func takeBaseline() async throws {
        let stats = try await backend.nodeSlotStats().parse()
        baselineStats.withLock { $0 = stats }
    }

    /// Sets the baseline directly (tests).
    public func setBaseline(_ stats: NodeSlotStats) {
        baselineStats.withLock { $0 = stats }
    }

    public var baseline: NodeSlotStats? { baselineStats.withLock { $0 } }

    // MARK: running

    /// An application on `eventLoopGroup`, bound to the configured address. The caller owns the group
    /// and shuts it down: a group left running at exit (NIO's singleton) keeps threads, buffers and
    /// channels alive that LeakSanitizer then reports.
    public func makeApplication(
        eventLoopGroup: any EventLoopGroup, logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: makeRouter(),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.listenHost, port: configuration.listenPort), serverName: "slotwarden-admin"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            eventLoopGroupProvider: .shared(eventLoopGroup),
            logger: logger)
    }

    /// Serves until the surrounding task is cancelled, on a dedicated one-thread event loop group.
    /// Cancellation shuts the listener down gracefully (requests in progress finish).
    public func run(logger: Logger, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        try configuration.validate()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let app = makeApplication(eventLoopGroup: group, logger: logger, onServerRunning: onServerRunning)
        let services = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        // Unstructured, so that cancelling the caller becomes a graceful shutdown rather than a
        // cancellation of the server's own tasks.
        let serving = Task { try await services.run() }
        let result = await withTaskCancellationHandler {
            await serving.result
        } onCancel: {
            Task { await services.triggerGracefulShutdown() }
        }
        try await group.shutdownGracefully()
        try result.get()
    }

    // MARK: routes

    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.get("/livez") { _, _ in await self.livez() }
        router.get("/readyz") { request, _ in await self.readyz(verbose: request.uri.queryParameters["verbose"] != nil) }
        router.get("/metrics") { _, _ in await self.metricsText() }
        router.get("/v1/ledger") { request, _ in await self.respond { try await self.ledger(Self.query(request)) } }
        router.get("/v1/ledger/top") { request, _ in await self.respond { try await self.top(Self.query(request)) } }
        router.get("/v1/reconcile") { request, _ in await self.respond { try await self.reconcile(Self.query(request)) } }
        router.get("/v1/epochs") { _, _ in await self.respond { try await self.epochs() } }
        router.get("/v1/epochs/:id") { request, context in
            await self.respond { try await self.epoch(id: context.parameters.get("id")) }
        }
        router.post("/v1/epochs") { request, _ in
            if let refusal = self.authorize(request) { return refusal }
            return await self.respond { try await self.closeEpoch(Self.query(request)) }
        }
        router.post("/v1/fence/pause") { request, _ in
            if let refusal = self.authorize(request) { return refusal }
            return await self.respond { try await self.setOperatorPause(true) }
        }
        router.post("/v1/fence/resume") { request, _ in
            if let refusal = self.authorize(request) { return refusal }
            return await self.respond { try await self.setOperatorPause(false) }
        }
        return router
    }

    // MARK: epochs

    /// The fence's open epoch when there is a fence; otherwise the life of the admin service.
    func currentEpoch() async -> EpochInfo {
        guard let open = await backend.epochs()?.open else { return epoch }
        let started = Date(timeIntervalSince1970: open.startedAt)
        return EpochInfo(id: Int(open.id), startedAt: ISO8601DateFormatter().string(from: started))
    }

    func epochs() async throws -> EpochList {
        guard let list = await backend.epochs() else {
            throw Failure(.serviceUnavailable, code: "no_epochs", "this slotwarden runs without a failover fence")
        }
        return list
    }

    func epoch(id text: String?) async throws -> EpochRecord {
        guard let text, let id = UInt64(text) else {
            throw AdminParameterError(parameter: "id", message: "id: expected an epoch number, got '\(text ?? "")'")
        }
        let list = try await epochs()
        guard let record = list.open.id == id ? list.open : list.closed.first(where: { $0.id == id }) else {
            throw Failure(.notFound, code: "no_such_epoch", "epoch \(id) is not in the history kept in memory")
        }
        return record
    }

    func closeEpoch(_ query: QueryReader) async throws -> EpochRecord {
        let reset = try query.bool("reset_node_stats", default: false)
        guard let closed = await backend.closeEpoch(resetNodeStats: reset) else {
            throw Failure(.serviceUnavailable, code: "no_epochs", "this slotwarden runs without a failover fence")
        }
        return closed
    }

    static func query(_ request: Request) -> QueryReader {
        var parameters: [String: String] = [:]
        for (key, value) in request.uri.queryParameters where parameters[String(key)] == nil {
            parameters[String(key)] = String(value)
        }
        return QueryReader(parameters: parameters)
    }

    // MARK: responses

    /// A failure that becomes an HTTP error with a JSON body.
    struct Failure: Error {
        var status: HTTPResponse.Status
        var body: ErrorBody

        init(_ status: HTTPResponse.Status, code: String, _ message: String, parameter: String? = nil) {
            self.status = status
            self.body = ErrorBody(error: .init(code: code, message: message, parameter: parameter))
        }
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data(#"{"error":{"code":"encoding","message":"cannot encode"}}"#.utf8)
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    func respond(_ body: () async throws -> some Encodable) async -> Response {
        do {
            return Self.json(try await body())
        } catch let error as AdminParameterError {
            return Self.json(
                ErrorBody(error: .init(code: "invalid_parameter", message: error.description, parameter: error.parameter)),
                status: .badRequest)
        } catch let failure as Failure {
            return Self.json(failure.body, status: failure.status)
        } catch {
            return Self.json(ErrorBody(error: .init(code: "internal", message: "\(error)")), status: .internalServerError)
        }
    }

    /// nil when the request carries the right bearer token, else the 401/403 response.
    func authorize(_ request: Request) -> Response? {
        guard let token = configuration.token else {
            return Self.json(
                ErrorBody(
                    error: .init(
                        code: "no_token_configured",
                        message: "mutating endpoints are disabled: configure admin.token_file or admin.token_env")),
                status: .forbidden)
        }
        guard let header = request.headers[.authorization] else {
            var response = Self.json(
                ErrorBody(error: .init(code: "unauthorized", message: "this endpoint needs Authorization: Bearer <token>")),
                status: .unauthorized)
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            var response = Self.json(
                ErrorBody(error: .init(code: "unauthorized", message: "expected the Bearer scheme")), status: .unauthorized)
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        guard token.matches(parts[1].trimmingWhitespace()) else {
            return Self.json(ErrorBody(error: .init(code: "forbidden", message: "wrong token")), status: .forbidden)
        }
        return nil
    }

    // MARK: endpoints

    func nodeInfo() async -> NodeInfo {
        let role = (try? await backend.nodeRole()) ?? "unknown"
        return NodeInfo(version: backend.nodeVersion.description, role: role, clusterEnabled: backend.clusterEnabled)
    }

    func ledger(_ query: QueryReader) async throws -> LedgerResponse {
        let selection = try query.slots("slots")
        let view = try query.optionalChoice("view", as: LedgerView.self)
        let nonzero = try query.bool("nonzero", default: true)
        let node = await nodeInfo()
        let snapshot = await backend.snapshot()
        let views = view.map { [$0] } ?? LedgerView.allCases
        var slots: [LedgerSlot] = []
        for index in selection.slots {
            let slot = HashSlot(rawValue: UInt16(index))!
            let wire = snapshot[.wire, slot]
            let nodeView = snapshot[.node, slot]
            if nonzero && views.allSatisfy({ snapshot[$0, slot].isZero }) { continue }
            slots.append(
                LedgerSlot(
                    slot: index, wire: views.contains(.wire) ? wire : nil, node: views.contains(.node) ? nodeView : nil,
                    scriptRan: snapshot.scriptRan(in: slot)))
        }
        var buckets: [String: SlotCounters] = [:]
        for bucket in Bucket.allCases { buckets[bucket.description] = snapshot[bucket] }
        return LedgerResponse(
            epoch: await currentEpoch(), node: node, views: views.map(\.rawValue), slotRange: selection.description, nonzero: nonzero,
            slots: slots, buckets: buckets, totals: LedgerTotals(wire: snapshot.total(.wire), node: snapshot.total(.node)))
    }

    func top(_ query: QueryReader) async throws -> TopResponse {
        let order = try query.choice("by", default: TopOrder.bytesIn)
        let view = try query.choice("view", default: LedgerView.wire)
        let limit = try query.int("limit", default: 10, in: 1...1000)
        let snapshot = await backend.snapshot()
        let ranked = snapshot.activeSlots
            .map { (slot: Int($0.rawValue), counters: snapshot[view, $0]) }
            .filter { order.value($0.counters) > 0 }
            .sorted { (order.value($0.counters), $1.slot) > (order.value($1.counters), $0.slot) }
            .prefix(limit)
            .map { TopSlot(slot: $0.slot, commands: $0.counters.commands, bytesIn: $0.counters.bytesIn, bytesOut: $0.counters.bytesOut) }
        return TopResponse(epoch: await currentEpoch(), view: view.rawValue, by: order.rawValue, limit: limit, slots: Array(ranked))
    }

    public func reconcile(mode: ReconcileMode) async throws -> ReconcileReport {
        try await reconcile(QueryReader(parameters: ["mode": mode.rawValue]))
    }

    func reconcile(_ query: QueryReader) async throws -> ReconcileReport {
        let mode = try query.choice("mode", default: ReconcileMode.live)
        let epochBaseline = await backend.epochBaseline()
        guard let baseline = epochBaseline ?? self.baseline else {
            throw Failure(
                .serviceUnavailable, code: "no_baseline",
                "the node's CLUSTER SLOT-STATS could not be read when the epoch began; nothing to compare against")
        }
        let node = await nodeInfo()
        let replicas = (try? await backend.nodeReplicas()) ?? 0
        var fenceReport: FenceReport?
        var liveWindow: LiveWindow?
        let raw: RawSlotStats
        let snapshot: LedgerSnapshot
        switch mode {
        case .live:
            let inFlight = await backend.inFlightCount()
            // The node first: a command answered between the two reads is then on the ledger's side
            // as well as the node's, never on the node's alone.
            raw = try await readNodeStats()
            snapshot = await backend.snapshot()
            liveWindow = LiveWindow(
                inFlightCommands: inFlight,
                note: "read without pausing clients: commands in flight may be counted by one side only")
        case .fenced:
            // Pause, drain, read both sides, resume: all within max_pause_ms. A read still going when
            // the budget is spent resumes the clients first and finishes after (max_pause_exceeded:
            // the cut is then not consistent, and the report says so).
            let clock = ContinuousClock()
            let start = clock.now
            await fence.hold()
            let drain = await backend.drain(timeoutMilliseconds: configuration.maxPauseMilliseconds)
            let reading = Task { () -> Result<(RawSlotStats, LedgerSnapshot), any Error> in
                do {
                    let nodeStats = try await self.readNodeStats()
                    return .success((nodeStats, await self.backend.snapshot()))
                } catch {
                    return .failure(error)
                }
            }
            let remaining = configuration.maxPauseMilliseconds - Self.milliseconds(start.duration(to: clock.now))
            let inTime = remaining > 0 ? await answersWithin(milliseconds: remaining) { _ = await reading.value } : false
            await fence.release()
            let paused = Self.milliseconds(start.duration(to: clock.now))
            let read = await reading.value
            let report = FenceReport(
                drained: drain.drained, inFlight: drain.inFlight, drainMilliseconds: drain.elapsedMilliseconds,
                pausedMilliseconds: paused, maxPauseMilliseconds: configuration.maxPauseMilliseconds,
                maxPauseExceeded: !inTime)
            metrics.recordFence(report)
            fenceReport = report
            (raw, snapshot) = try read.get()
        }
        let stats: NodeSlotStats
        do {
            stats = try raw.parse()
        } catch {
            throw Failure(.serviceUnavailable, code: "node_unreadable", "cannot parse CLUSTER SLOT-STATS: \(error)")
        }
        let outcome = Reconciler.reconcile(ledger: snapshot, baseline: baseline, current: stats, replicas: replicas)
        metrics.recordReconciliation(outcome.summary)
        return ReconcileReport(
            mode: mode, epoch: await currentEpoch(), node: node, networkStatsEnabled: stats.networkStatsEnabled,
            nodeResetDetected: outcome.nodeResetDetected, replicas: replicas, fence: fenceReport, liveWindow: liveWindow,
            slots: outcome.slots, summary: outcome.summary, verdict: outcome.verdict)
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }

    private func readNodeStats() async throws -> RawSlotStats {
        do {
            return try await backend.nodeSlotStats()
        } catch {
            throw Failure(.serviceUnavailable, code: "node_unreachable", "cannot read CLUSTER SLOT-STATS: \(error)")
        }
    }

    func setOperatorPause(_ paused: Bool) async throws -> FenceStateResponse {
        if paused { await fence.operatorPause() } else { await fence.operatorResume() }
        let state = await fence.state
        return FenceStateResponse(paused: state.paused, operatorPaused: state.operatorPaused, inFlight: await backend.inFlightCount())
    }

    func livez() async -> Response {
        let backend = backend
        let answered = await answersWithin(milliseconds: 2000) { _ = await backend.inFlightCount() }
        return answered
            ? Self.json(HealthResponse(status: "alive", checks: nil))
            : Self.json(
                HealthResponse(status: "dead", checks: [HealthCheck(name: "loop", ok: false, detail: "the data plane's loop did not answer within 2 s")]),
                status: .serviceUnavailable)
    }

    func readyz(verbose: Bool) async -> Response {
        var checks: [HealthCheck] = []
        do {
            let role = try await backend.nodeRole()
            checks.append(HealthCheck(name: "node_reachable", ok: true, detail: "the node answered ROLE"))
            let known = ["master", "slave", "primary", "replica"].contains(role)
            checks.append(HealthCheck(name: "role_known", ok: known, detail: "role \(role)"))
        } catch {
            checks.append(HealthCheck(name: "node_reachable", ok: false, detail: "\(error)"))
            checks.append(HealthCheck(name: "role_known", ok: false, detail: "the node did not answer"))
        }
        let paused = await fence.state.paused
        checks.append(HealthCheck(name: "not_fenced", ok: !paused, detail: paused ? "client reads are paused" : "client reads flow"))
        let ready = checks.allSatisfy(\.ok)
        return Self.json(
            HealthResponse(status: ready ? "ready" : "not_ready", checks: verbose ? checks : nil),
            status: ready ? .ok : .serviceUnavailable)
    }

    func metricsText() async -> Response {
        let snapshot = await backend.snapshot()
        let connections = await backend.connectionCounts()
        let paused = await fence.state.paused
        let role = (try? await backend.nodeRole()) ?? "unknown"
        let text = metrics.render(
            snapshot: snapshot, connections: connections, paused: paused, role: role, fence: await backend.fenceStatus())
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

/// Runs `body`; true when it finished within the deadline (it is left running otherwise).
func answersWithin(milliseconds: Int, _ body: @escaping @Sendable () async -> Void) async -> Bool {
    final class Once: Sendable {
        let continuation = Mutex<CheckedContinuation<Bool, Never>?>(nil)
        func resume(_ value: Bool) { continuation.withLock { $0.take() }?.resume(returning: value) }
    }
    let once = Once()
    return await withCheckedContinuation { continuation in
        once.continuation.withLock { $0 = continuation }
        let deadline = Task {
            try? await Task.sleep(for: .milliseconds(milliseconds))
            // Cancelled: the body answered (a cancelled sleep returns at once; it must not win).
            if !Task.isCancelled { once.resume(false) }
        }
        Task {
            await body()
            once.resume(true)
            deadline.cancel()
        }
    }
}

/// Who holds client reads paused: the operator, and fenced reconciliations in progress. Reads are
/// paused while anyone holds them; pause and resume calls reach the data plane in order.
actor Fence {
    let backend: any AdminBackend
    private var holders = 0
    private var operatorHold = false
    private var transition: Task<Void, Never>?

    init(backend: any AdminBackend) { self.backend = backend }

    var state: (paused: Bool, operatorPaused: Bool) { (isPaused, operatorHold) }
    private var isPaused: Bool { holders > 0 || operatorHold }

    func hold() async {
        let wasPaused = isPaused
        holders += 1
        if wasPaused { await transition?.value } else { await apply(pause: true) }
    }

    func release() async {
        holders -= 1
        if !isPaused { await apply(pause: false) }
    }

    func operatorPause() async {
        let wasPaused = isPaused
        operatorHold = true
        if wasPaused { await transition?.value } else { await apply(pause: true) }
    }

    func operatorResume() async {
        guard operatorHold else { return }
        operatorHold = false
        if !isPaused { await apply(pause: false) }
    }

    private func apply(pause: Bool) async {
        let previous = transition
        let backend = backend
        let task = Task {
            await previous?.value
            if pause { await backend.pauseClientReads() } else { await backend.resumeClientReads() }
        }
        transition = task
        await task.value
    }
}
