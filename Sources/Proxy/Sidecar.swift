import Accounting
import Logging
import Synchronization

/// slotwarden as it runs in front of a node: the data plane, the control connection, the role watcher
/// and the failover fence, wired together.
public final class Sidecar: Sendable {
    public let server: ProxyServer
    public let fence: FenceController
    public let control: NodeControl
    private let watcher: RoleWatcher
    private let configuration: FenceConfiguration
    /// What the node asks of a client, if anything (`AUTH`).
    public var credentials: NodeCredentials? { configuration.credentials }
    /// The proxy reaches the fence through this box; emptied on stop to break the cycle
    /// proxy → trigger → fence → proxy.
    private let box: FenceBox

    public init(proxy: ProxyConfiguration, fence configuration: FenceConfiguration, node: NodeFacts, logger: Logger) throws {
        self.configuration = configuration
        // One bound for the whole fence; the loop enforces it even if the control side stalls.
        var proxy = proxy
        proxy.maxPauseMilliseconds = UInt64(max(1, configuration.fence.maxPauseMilliseconds))
        let control = NodeControl(host: proxy.nodeHost, port: proxy.nodePort, credentials: configuration.credentials)
        let watcher = RoleWatcher(
            control: control, intervalMilliseconds: configuration.rolePollIntervalMilliseconds,
            maxBackoffMilliseconds: configuration.maxReconnectBackoffMilliseconds, logger: logger)
        // The stream fence's own connection: its one read must not queue behind the fence's.
        let streamControl = NodeControl(host: proxy.nodeHost, port: proxy.nodePort, credentials: configuration.credentials)
        let box = FenceBox()
        let events = ProxyEvents(
            commandWillResetNode: { reason in Task { await box.controller?.handle(.commandSeen(reason)) } },
            roleMayHaveChanged: { watcher.pollNow(hinted: true) },
            readsReplicationOffset: { try await streamControl.replication().replicationOffset })
        let server = try ProxyServer(configuration: proxy, node: node, logger: logger, events: events)
        // Until the first ROLE says otherwise, a node of an affected version may be a replica about
        // to be promoted.
        server.setCommandsAwaitRoleCheck(
            configuration.fence.guardsAffectedVersions && node.version.abortsOnFirstWriteAfterPromotion)
        let fence = FenceController(
            server: server, control: control, configuration: configuration, logger: logger,
            baseline: try? control.slotStatsAndOwnersNow(), pollRoleNow: { watcher.pollNow() })
        box.set(fence)
        self.box = box
        self.server = server
        self.fence = fence
        self.control = control
        self.watcher = watcher
    }

    /// Starts the proxy and the role watcher. Returns the port clients connect to.
    @discardableResult
    public func start() throws -> Int {
        let port = try server.start()
        let fence = self.fence
        watcher.start { observation in await fence.observed(observation) }
        return port
    }

    /// Closes the epoch on an operator's request (optionally zeroing the node's counters at the same
    /// cut) and returns it.
    @discardableResult
    public func closeEpoch(resetNodeStats: Bool = false) async -> EpochRecord {
        await fence.closeEpoch(.manual, resetNodeStats: resetNodeStats)
    }

    /// Closes the epoch for `reason`, waiting at most `timeout`; nil if it did not close in time (the
    /// control connection is down, say).
    public func closeEpoch(reason: EpochReason, within timeout: Duration) async -> EpochRecord? {
        let open = await fence.openEpoch.id
        let fence = self.fence
        Task { await fence.closeEpoch(reason) }
        return await fence.closedEpoch(after: open - 1, within: timeout)
    }

    /// Applies what a reload (SIGHUP) may change without a restart: the fence's timings from the next
    /// fence on, the role poll interval from the next poll, and the data plane's live settings. The
    /// fence's pause bound is also the loops' (`max_pause_ms`).
    public func reload(fence settings: FailoverFence.Settings, rolePollIntervalMilliseconds: Int, proxy: ProxyServer.LiveSettings) async {
        var proxy = proxy
        proxy.maxPauseMilliseconds = UInt64(max(1, settings.maxPauseMilliseconds))
        await fence.apply(settings)
        watcher.setInterval(milliseconds: rolePollIntervalMilliseconds)
        await server.apply(proxy)
    }

    @discardableResult
    public func stop() -> Int32 {
        watcher.stop()
        box.clear()
        let fence = self.fence
        Task { await fence.shutdown() }
        return server.stop()
    }
}

/// Lets the proxy's fence trigger reach a controller built after the proxy.
private final class FenceBox: Sendable {
    private let storage = Mutex<FenceController?>(nil)
    var controller: FenceController? { storage.withLock { $0 } }
    func set(_ controller: FenceController) { storage.withLock { $0 = controller } }
    func clear() { storage.withLock { $0 = nil } }
}
