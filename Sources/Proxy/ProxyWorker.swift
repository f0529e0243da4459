import Accounting
import Logging
import RESP
import UV

/// One worker of the data plane: an event loop on its own thread, its own listener on the shared
/// port (SO_REUSEPORT lets the kernel spread connections), its sessions, and the ledger shard they
/// record into. ``ProxyServer`` runs one or more and presents them as one.
///
/// Thread safety: `start`, `stop` and the async accessors may be called from any thread; everything
/// else runs on the loop thread. The ledger is read by taking a snapshot on the loop, so one worker's
/// snapshot is always one consistent cut.
final class ProxyWorker: @unchecked Sendable {
    /// Changed only on the loop, by a reload (see ``ProxyServer/LiveSettings``).
    private(set) var configuration: ProxyConfiguration
    let node: NodeFacts
    let logger: Logger
    let loop: EventLoop
    let nodeAddress: SocketAddress
    let ledger = LedgerShard()

    var listener: TCPListener?
    /// Open sessions, keyed by identity; the server owns them until both of their streams closed.
    var sessions: [ObjectIdentifier: ProxySession] = [:]
    /// The epoch the ledger is recording; a fence closes it and opens the next.
    private var epochID: UInt64
    let events: ProxyEvents
    private var acceptedTotal: UInt64 = 0
    /// Session ids are unique across workers: worker `index` of `count` hands out index+1, index+1+count, …
    private var nextSessionID: UInt64
    private let sessionIDStride: UInt64
    /// Client connections over all workers, against `maxClients`.
    private let clientBudget: ClientBudget
    /// Every worker's replica links, joined per replica across reconnections.
    let replicaStreams: ReplicaStreamChains
    private var rejectedTotal: UInt64 = 0
    /// Pauses, holds, role checks and drain waits: the rules in a sans-IO state machine, carried out
    /// here (`perform`).
    var gate: ClientGate
    var pauseDeadline: LoopTimer?
    var roleCheckDeadline: LoopTimer?
    /// Each drain wait's caller and its deadline timer, by the token the worker gave the gate.
    var drainWaiters: [UInt64: CheckedContinuation<ProxyServer.DrainOutcome, Never>] = [:]
    var drainDeadlines: [UInt64: LoopTimer] = [:]
    var nextDrainToken: UInt64 = 0
    /// Set while the process stops: closing every client at a command boundary (see `closeClientsGracefully`).
    var stopping: GracefulStop?
    /// Asks the server to fence the stream for a replica's link (see ``ReplicaStreamFence``); set
    /// before the loop starts.
    var requestsStreamFence: (@Sendable (ReplicaStreamFence) -> Void)?
    /// Each link the stream fence acts on, by session id: the fence waiting for it, and its deadline.
    var streamFences: [UInt64: (continuation: CheckedContinuation<Bool, Never>, deadline: LoopTimer)] = [:]

    var clientReadsPaused: Bool { gate.clientReadsPaused }
    var clientsHeld: Bool { gate.clientsHeld }
    var commandsAwaitRoleCheck: Bool { gate.commandsAwaitRoleCheck }
    var draining: Bool { gate.isDraining }

    init(
        configuration: ProxyConfiguration, node: NodeFacts, logger: Logger, events: ProxyEvents, index: Int, count: Int,
        clientBudget: ClientBudget, replicaStreams: ReplicaStreamChains
    ) throws {
        self.events = events
        self.replicaStreams = replicaStreams
        self.nextSessionID = UInt64(index + 1)
        self.sessionIDStride = UInt64(count)
        self.clientBudget = clientBudget
        self.gate = ClientGate(maxPauseMilliseconds: configuration.maxPauseMilliseconds)
        self.epochID = configuration.firstEpochID
        self.configuration = configuration
        self.node = node
        self.logger = logger
        self.nodeAddress = try SocketAddress.resolve(host: configuration.nodeHost, port: configuration.nodePort)
        self.loop = try EventLoop(
            name: "slotwarden-loop-\(index)", readBuffers: BufferPool(chunkSize: configuration.readBufferBytes, maxCached: 4))
    }

    /// Binds the listener to `port` (0: a free one) and starts the loop thread. Returns the bound port.
    /// Always with SO_REUSEPORT: the workers share the port, and so does a successor (handover).
    func start(port: Int) throws -> Int {
        let address = try SocketAddress.resolve(host: configuration.listenHost, port: port)
        let listener = try TCPListener(on: loop, address: address, reusePort: true)
        try listener.startAccepting { [unowned self] stream in self.accept(stream) }
        self.listener = listener
        loop.start()
        return listener.localAddress.port
    }

    /// Closes the listener and every connection, then the loop. Returns `uv_loop_close`'s result: 0 when
    /// every handle was closed cleanly.
    func stop() -> Int32 {
        loop.execute { [self] in
            listener?.close()
            listener = nil
            perform(gate.stopping(inFlight: inFlightTotal, now: loop.nowMilliseconds))
            for timer in [pauseDeadline, roleCheckDeadline] { timer?.close() }
            pauseDeadline = nil
            roleCheckDeadline = nil
            for session in sessions.values { session.closeBoth() }
        }
        return loop.shutdown()
    }

    // MARK: async facade

    /// What a pause record query answers once the loop has stopped.
    static let stoppedPause = ProxyServer.PauseRecord(milliseconds: 0, expired: false)

    /// Runs `body` on the loop thread and returns its result. Once the loop has stopped, work is no
    /// longer run, and this answers `stopped` instead (a caller must never wait forever, and a
    /// role poll or an admin request can still arrive while the sidecar stops).
    func onLoop<Result: Sendable>(orIfStopped stopped: Result, _ body: @escaping @Sendable () -> Result) async -> Result {
        await withCheckedContinuation { continuation in
            if !loop.execute({ continuation.resume(returning: body()) }) { continuation.resume(returning: stopped) }
        }
    }

    func onLoop(_ body: @escaping @Sendable () -> Void) async {
        await onLoop(orIfStopped: (), body)
    }

    /// A consistent copy of the ledger, taken on the loop.
    func snapshot() async -> LedgerSnapshot {
        await onLoop(orIfStopped: LedgerSnapshot()) { self.ledger.snapshot() }
    }

    func connectionCounts() async -> ProxyServer.ConnectionCounts {
        await onLoop(orIfStopped: ProxyServer.ConnectionCounts(active: 0, accepted: 0, rejected: 0)) { ProxyServer.ConnectionCounts(active: self.sessions.count, accepted: self.acceptedTotal, rejected: self.rejectedTotal) }
    }

    /// Zeroes `slots` in this worker's ledger and returns what they held (see `LedgerShard.cut`).
    func cut(_ slots: [HashSlot]) async -> [(wire: SlotCounters, node: SlotCounters)] {
        await onLoop(orIfStopped: slots.map { _ in (SlotCounters.zero, SlotCounters.zero) }) { self.ledger.cut(slots) }
    }

    func closeEpoch() async -> ProxyServer.EpochCut {
        await onLoop(orIfStopped: ProxyServer.EpochCut(closedEpoch: 0, ledger: LedgerSnapshot(), carriedOver: [])) {
            let cut = ProxyServer.EpochCut(
                closedEpoch: self.epochID, ledger: self.ledger.snapshot(),
                carriedOver: self.sessions.values.filter { $0.inFlightCount > 0 }
                    .map { CarriedCommand(connection: $0.id, count: $0.inFlightCount) }
                    .sorted { $0.connection < $1.connection })
            self.ledger.reset()
            self.epochID += 1
            return cut
        }
    }

    func currentEpochID() async -> UInt64 { await onLoop(orIfStopped: 0) { self.epochID } }

    func apply(_ live: ProxyServer.LiveSettings) async {
        await onLoop {
            self.configuration.highWatermarkBytes = live.highWatermarkBytes
            self.configuration.lowWatermarkBytes = live.lowWatermarkBytes
            self.configuration.maxClients = live.maxClients
            self.configuration.nodeConnectTimeoutMilliseconds = live.nodeConnectTimeoutMilliseconds
            self.configuration.maxPauseMilliseconds = live.maxPauseMilliseconds
            self.clientBudget.limit = live.maxClients
            self.gate.maxPauseMilliseconds = live.maxPauseMilliseconds
            for session in self.sessions.values { session.setWatermarks(high: live.highWatermarkBytes, low: live.lowWatermarkBytes) }
        }
    }

    func renumberOpenEpoch(_ id: UInt64) async { await onLoop { self.epochID = id } }

    /// Commands forwarded to the node and not answered yet, over all connections.
    func inFlightCount() async -> Int {
        await onLoop(orIfStopped: 0) { self.inFlightTotal }
    }

    func replicaViews(upTo offset: Int64?) async -> [ProxyServer.ReplicaViewReport] {
        await onLoop(orIfStopped: []) { self.sessions.values.compactMap { $0.replicaView(upTo: offset) } }
    }

    /// The counts of the replica link `link` up to `offset`, when it is open on this worker; `.some(nil)`
    /// when its history no longer reaches back to `offset`.
    func replicaLinkCounts(_ link: UInt64, upTo offset: Int64) async -> [UInt64]?? {
        await onLoop(orIfStopped: nil) {
            for session in self.sessions.values {
                if let counts = session.replicaLinkCounts(link, upTo: offset) { return counts }
            }
            return nil
        }
    }

    func replicationLinks() async -> [ProxyServer.ReplicationLinkStatus] {
        await onLoop(orIfStopped: []) { self.sessions.values.compactMap(\.replicationLink) }
    }

    // MARK: loop thread

    private func accept(_ stream: TCPStream) {
        let session = ProxySession(worker: self, client: stream, id: nextSessionID)
        nextSessionID += sessionIDStride
        sessions[ObjectIdentifier(session)] = session
        guard clientBudget.admit() else {
            rejectedTotal += 1
            logger.warning("max_clients reached; refusing a connection", metadata: ["max_clients": "\(configuration.maxClients)"])
            session.refuse(with: "ERR max number of clients reached")
            return
        }
        session.wasAdmitted = true
        acceptedTotal += 1
        session.start()
    }

    func sessionDidClose(_ session: ProxySession) {
        if sessions.removeValue(forKey: ObjectIdentifier(session))?.wasAdmitted == true { clientBudget.release() }
        streamFenceFinished(session.id)
        if draining { sessionMayHaveDrained() }
        if stopping != nil { stoppingSessionClosed() }
    }
}
