import Foundation
import Hummingbird
import Accounting
import Logging
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import Synchronization

/// The admin HTTP API: ledger, reconciliation, fence control, metrics and health, on its own
/// one-thread event loop group, talking to the data plane only through an ``AdminBackend``.
public final class AdminService: Sendable {
    private let configurationState: Mutex<AdminConfiguration>
    /// As running: a reload (SIGHUP) may change the token, `reconcile.max_pause_ms` and `metrics.top_slots`.
    public var configuration: AdminConfiguration { configurationState.withLock { $0 } }
    public let backend: any AdminBackend
    public let metrics: AdminMetrics
    /// The node's counters when the epoch began; the reconciliation compares against the delta.
    let baselineStats = Mutex<NodeSlotStats?>(nil)
    let epoch: EpochInfo
    /// Bounds the expensive requests running at once (see ``RequestLimiter``).
    let expensiveRequests = RequestLimiter(limit: 4)
    let fencedReconciliations = SharedRuns<ReconcileReport>()

    public init(
        backend: any AdminBackend, configuration: AdminConfiguration = AdminConfiguration(),
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
    ) {
        self.backend = backend
        self.configurationState = Mutex(configuration)
        self.metrics = AdminMetrics(
            registry: registry, topSlots: configuration.topSlots, version: slotwardenVersion,
            nodeVersion: backend.nodeVersion.description)
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

    /// An application on `eventLoopGroup`, bound to the configured address.
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

    /// Serves until the surrounding task is cancelled. Cancellation shuts the listener down
    /// gracefully (requests in progress finish).
    ///
    /// NOTE: it serves on NIO's singleton group, which lives as long as the process, never on a group
    /// of its own that it shuts down on return. Hummingbird (2.28) finishes its graceful shutdown in
    /// an unstructured task that waits for a promise of the server's event loop, and that task may
    /// still be waiting when the application's `run` returns: a group shut down then never fulfils the
    /// promise, and the task, the loop and the server channel stay behind in a cycle (LeakSanitizer
    /// reported it at the test process's exit as 229,509 bytes in 52 allocations, in some runs).
    /// Applies what a reload may change live; the listener stays as it is.
    public func reload(token: AdminToken?, maxPauseMilliseconds: Int, topSlots: Int) {
        configurationState.withLock {
            $0.token = token
            $0.maxPauseMilliseconds = maxPauseMilliseconds
            $0.topSlots = topSlots
        }
        metrics.topSlots = topSlots
    }

    public func run(logger: Logger, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        try configuration.validate()
        let app = makeApplication(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger, onServerRunning: onServerRunning)
        let services = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        // Unstructured, so that cancelling the caller becomes a graceful shutdown rather than a
        // cancellation of the server's own tasks.
        let serving = Task { try await services.run() }
        let result = await withTaskCancellationHandler {
            await serving.result
        } onCancel: {
            Task { await services.triggerGracefulShutdown() }
        }
        try result.get()
    }

    // MARK: routes

    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.get("/livez") { _, _ in await self.livez() }
        router.get("/readyz") { request, _ in await self.readyz(verbose: request.uri.queryParameters["verbose"] != nil) }
        router.get("/metrics") { _, _ in await self.expensive { await self.metricsText() } }
        router.get("/v1/ledger") { request, _ in await self.expensive { await self.respond { try await self.ledger(Self.query(request)) } } }
        router.get("/v1/ledger/top") { request, _ in await self.respond { try await self.top(Self.query(request)) } }
        router.get("/v1/reconcile") { request, _ in
            await self.expensive { await self.respond { try await self.reconcile(Self.query(request)) } }
        }
        router.get("/v1/epochs") { _, _ in await self.respond { try await self.epochs() } }
        router.get("/v1/epochs/:id") { request, context in
            await self.respond { try await self.epoch(id: context.parameters.get("id")) }
        }
        router.get("/v1/cuts") { request, _ in await self.respond { try await self.slotCuts(Self.query(request)) } }
        router.get("/v1/replication/links") { request, _ in await self.respond { try await self.replicaViews(Self.query(request)) } }
        router.get("/v1/replication/stream") { request, _ in await self.respond { try await self.replicaStream(Self.query(request)) } }
        router.get("/v1/heatmap") { request, _ in
            do {
                return try self.heatmapPage(Self.query(request))
            } catch {
                return await self.respond { () async throws -> ErrorBody in throw error }
            }
        }
        router.get("/v1/heatmap/data") { _, _ in await self.expensive { await self.respond { try await self.heatmapData() } } }
        router.get("/v1/heatmap/rows") { _, _ in await self.expensive { await self.respond { try await self.heatmapRows() } } }
        let mutating = router.group().add(middleware: BearerAuthMiddleware { [self] in self.configuration.token })
        mutating.post("/v1/epochs") { request, _ in await self.respond { try await self.closeEpoch(Self.query(request)) } }
        mutating.post("/v1/fence/pause") { _, _ in await self.respond { try await self.setOperatorPause(true) } }
        mutating.post("/v1/fence/resume") { _, _ in await self.respond { try await self.setOperatorPause(false) } }
        return router
    }

    private func expensive(_ body: @Sendable () async -> Response) async -> Response {
        await expensiveRequests.run(body)
    }
}
