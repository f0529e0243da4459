import Ledger
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
    let configuration: ProxyConfiguration
    let node: NodeFacts
    let logger: Logger
    let loop: EventLoop
    let nodeAddress: SocketAddress
    let ledger = LedgerShard()

    private var listener: TCPListener?
    /// Open sessions, keyed by identity; the server owns them until both of their streams closed.
    private var sessions: [ObjectIdentifier: ProxySession] = [:]
    /// The epoch the ledger is recording; a fence closes it and opens the next.
    private var epochID: UInt64 = 1
    private let events: ProxyEvents
    private var acceptedTotal: UInt64 = 0
    /// Session ids are unique across workers: worker `index` of `count` hands out index+1, index+1+count, …
    private var nextSessionID: UInt64
    private let sessionIDStride: UInt64
    /// Client connections over all workers, against `maxClients`.
    private let clientBudget: ClientBudget
    /// Pauses this worker took itself when a session forwarded a command that resets the node; the
    /// fence releases them once it holds its own.
    private var preFencePauses = 0
    private var rejectedTotal: UInt64 = 0
    /// True between `pauseClientReads` and `resumeClientReads`: no client bytes are read.
    private(set) var clientReadsPaused = false
    /// True while a promotion guard runs: no client command may reach the node. Unlike a pause, the
    /// loop does not end it after `maxPauseMilliseconds`; the guard's control-connection timeouts do.
    private(set) var clientsHeld = false
    /// The node is a replica of a version that aborts on its first write after a promotion: a
    /// command that may propagate waits for a `ROLE` reply requested after it arrived.
    var commandsAwaitRoleCheck = false
    /// Sessions holding a command for that check (a hint: recounted whenever checks are released),
    /// and the timer that bounds their wait by `maxPauseMilliseconds`.
    private var sessionsAwaitingRoleCheck = 0
    private var roleCheckDeadline: LoopTimer?
    /// Waiters for every in-flight FIFO to empty, each with its deadline timer.
    private var drainWaiters: [DrainWaiter] = []
    var draining: Bool { !drainWaiters.isEmpty }

    private final class DrainWaiter {
        let started: UInt64
        let timer: LoopTimer
        let continuation: CheckedContinuation<ProxyServer.DrainOutcome, Never>
        init(started: UInt64, timer: LoopTimer, continuation: CheckedContinuation<ProxyServer.DrainOutcome, Never>) {
            self.started = started
            self.timer = timer
            self.continuation = continuation
        }
    }

    init(
        configuration: ProxyConfiguration, node: NodeFacts, logger: Logger, events: ProxyEvents, index: Int, count: Int,
        clientBudget: ClientBudget
    ) throws {
        self.events = events
        self.nextSessionID = UInt64(index + 1)
        self.sessionIDStride = UInt64(count)
        self.clientBudget = clientBudget
        self.configuration = configuration
        self.node = node
        self.logger = logger
        self.nodeAddress = try SocketAddress.resolve(host: configuration.nodeHost, port: configuration.nodePort)
        self.loop = try EventLoop(
            name: "slotwarden-loop-\(index)", readBuffers: BufferPool(chunkSize: configuration.readBufferBytes, maxCached: 4))
    }

    /// Binds the listener to `port` (0: a free one) and starts the loop thread. Returns the bound port.
    func start(port: Int, reusePort: Bool) throws -> Int {
        let address = try SocketAddress.resolve(host: configuration.listenHost, port: port)
        let listener = try TCPListener(on: loop, address: address, reusePort: reusePort)
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
            for waiter in drainWaiters { finishDrain(waiter, inFlight: inFlightTotal) }
            roleCheckDeadline?.close()
            roleCheckDeadline = nil
            for session in sessions.values { session.closeBoth() }
        }
        return loop.shutdown()
    }

    // MARK: async facade

    /// What a pause record query answers once the loop has stopped.
    private static let stoppedPause = ProxyServer.PauseRecord(milliseconds: 0, expired: false)

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

    /// Stops reading every client (and every client that connects meanwhile); replies keep flowing.
    /// The loop resumes them by itself after `maxPauseMilliseconds`.
    func pauseClientReads() async {
        await onLoop { self.pauseClientReadsOnLoop() }
    }

    /// When the current (or last) pause began and how long the last one lasted, in loop time.
    private var pauseStartedAt: UInt64 = 0
    private var lastPause = ProxyServer.PauseRecord(milliseconds: 0, expired: false)
    private var pauseDeadline: LoopTimer?

    func lastPauseRecord() async -> ProxyServer.PauseRecord { await onLoop(orIfStopped: Self.stoppedPause) { self.lastPause } }

    /// Pauses nest: the fence and an operator (or a fenced reconciliation) may overlap, and clients
    /// resume only when the last of them resumes, or when max pause passes.
    private var pauseDepth = 0

    private func pauseClientReadsOnLoop() {
        pauseDepth += 1
        guard !clientReadsPaused else { return }
        clientReadsPaused = true
        pauseStartedAt = loop.nowMilliseconds
        for session in sessions.values { session.setPaused(true) }
        let deadline = LoopTimer(on: loop)
        deadline.start(after: configuration.maxPauseMilliseconds) { [unowned self] in
            self.logger.warning(
                "max pause passed; resuming clients", metadata: ["max_pause_ms": "\(self.configuration.maxPauseMilliseconds)"])
            self.resumeClientReadsOnLoop(expired: true)
        }
        pauseDeadline = deadline
    }

    private func resumeClientReadsOnLoop(expired: Bool) {
        if expired { preFencePauses = 0 }
        guard clientReadsPaused else { return }
        if !expired {
            pauseDepth -= 1
            if pauseDepth > 0 { return }
        }
        pauseDepth = 0
        clientReadsPaused = false
        pauseDeadline?.close()
        pauseDeadline = nil
        lastPause = ProxyServer.PauseRecord(milliseconds: Int(loop.nowMilliseconds - pauseStartedAt), expired: expired)
        for session in sessions.values { session.setPaused(false) }
    }

    /// A session forwarded a command that resets the node's counters (a role change, CONFIG
    /// RESETSTAT): stop reading every client now, on the loop, so that nothing else crosses before
    /// the fence takes over. The fence releases this pause once it holds its own.
    func commandWillResetNode(_ reason: EpochReason) {
        guard let commandWillResetNode = events.commandWillResetNode else { return }
        preFencePauses += 1
        pauseClientReadsOnLoop()
        commandWillResetNode(reason)
    }

    /// Ends the pauses `commandWillResetNode` took (the fence holds its own by now).
    func releasePreFencePauses() async {
        await onLoop {
            while self.preFencePauses > 0 {
                self.preFencePauses -= 1
                self.resumeClientReadsOnLoop(expired: false)
            }
        }
    }

    /// A reply suggested that the node's role may have changed.
    func replySuggestsRoleChange() {
        events.roleMayHaveChanged?()
    }

    // MARK: promotion guard

    /// Holds every client (and every client that connects meanwhile) until `releaseClients`.
    func holdClients() async {
        await onLoop {
            self.clientsHeld = true
            for session in self.sessions.values { session.setHeld(true) }
        }
    }

    func releaseClients() async {
        await onLoop {
            self.clientsHeld = false
            for session in self.sessions.values { session.setHeld(false) }
        }
    }

    /// A session holds a command for a role check: ask for a `ROLE` now.
    func sessionAwaitsRoleCheck() {
        sessionsAwaitingRoleCheck += 1
        if roleCheckDeadline == nil {
            let deadline = LoopTimer(on: loop)
            deadline.start(after: configuration.maxPauseMilliseconds) { [unowned self] in
                self.logger.warning(
                    "no ROLE reply within max pause; forwarding the commands held for a role check",
                    metadata: ["max_pause_ms": "\(self.configuration.maxPauseMilliseconds)"])
                self.releaseRoleChecks(requestedBefore: .max)
            }
            roleCheckDeadline = deadline
        }
        events.roleMayHaveChanged?()
    }

    /// A `ROLE` reply arrived: commands held before its request went out may go on (once nothing
    /// else holds them: a fence, a guard). `commandsAwaitRoleCheck` says whether later ones must wait.
    func roleChecked(requestedAt: UInt64, commandsAwaitRoleCheck: Bool) async {
        await onLoop {
            self.commandsAwaitRoleCheck = commandsAwaitRoleCheck
            // Not a replica any more: the guard (if one is due) already holds every client.
            self.releaseRoleChecks(requestedBefore: commandsAwaitRoleCheck ? requestedAt : .max)
        }
    }

    /// Connections whose next command waits for a role check.
    func connectionsAwaitingRoleCheck() async -> Int {
        await onLoop(orIfStopped: 0) { self.sessions.values.count { $0.awaitsRoleCheck } }
    }

    private func releaseRoleChecks(requestedBefore time: UInt64) {
        guard sessionsAwaitingRoleCheck > 0 else { return }
        var stillWaiting = 0
        for session in sessions.values where session.awaitsRoleCheck {
            if !session.roleCheckPassed(ifHeldBefore: time) { stillWaiting += 1 }
        }
        sessionsAwaitingRoleCheck = stillWaiting
        if stillWaiting == 0 {
            roleCheckDeadline?.close()
            roleCheckDeadline = nil
        }
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

    /// Resumes client reads and returns how long they were paused.
    @discardableResult
    func resumeClientReads() async -> ProxyServer.PauseRecord {
        await onLoop(orIfStopped: Self.stoppedPause) {
            self.resumeClientReadsOnLoop(expired: false)
            return self.lastPause
        }
    }

    /// Commands forwarded to the node and not answered yet, over all connections.
    func inFlightCount() async -> Int {
        await onLoop(orIfStopped: 0) { self.inFlightTotal }
    }

    /// Waits until no command is in flight on any connection, or the timeout passed. Meant to be called
    /// while client reads are paused, otherwise new commands keep arriving.
    func drain(timeoutMilliseconds: Int) async -> ProxyServer.DrainOutcome {
        await withCheckedContinuation { continuation in
            let accepted = loop.execute { [self] in
                let inFlight = inFlightTotal
                if inFlight == 0 {
                    continuation.resume(returning: ProxyServer.DrainOutcome(drained: true, inFlight: 0, elapsedMilliseconds: 0))
                    return
                }
                let timer = LoopTimer(on: loop)
                let waiter = DrainWaiter(started: loop.nowMilliseconds, timer: timer, continuation: continuation)
                drainWaiters.append(waiter)
                timer.start(after: UInt64(max(0, timeoutMilliseconds))) { [unowned self, unowned waiter] in
                    self.finishDrain(waiter, inFlight: self.inFlightTotal)
                }
            }
            // Stopped: nothing is in flight any more.
            if !accepted { continuation.resume(returning: ProxyServer.DrainOutcome(drained: true, inFlight: 0, elapsedMilliseconds: 0)) }
        }
    }

    /// Commands in flight over all connections.
    private var inFlightTotal: Int { sessions.values.reduce(0) { $0 + $1.inFlightCount } }

    /// A session's FIFO just emptied while someone waits for a drain: check them all.
    func sessionMayHaveDrained() {
        guard sessions.values.allSatisfy({ $0.inFlightCount == 0 }) else { return }
        for waiter in drainWaiters { finishDrain(waiter, inFlight: 0) }
    }

    private func finishDrain(_ waiter: DrainWaiter, inFlight: Int) {
        guard let index = drainWaiters.firstIndex(where: { $0 === waiter }) else { return }
        drainWaiters.remove(at: index)
        waiter.timer.close()
        waiter.continuation.resume(
            returning: ProxyServer.DrainOutcome(
                drained: inFlight == 0, inFlight: inFlight,
                elapsedMilliseconds: Int(loop.nowMilliseconds - waiter.started)))
    }

    // MARK: loop thread

    private func accept(_ stream: TCPStream) {
        let session = ProxySession(server: self, client: stream, id: nextSessionID)
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
        if draining { sessionMayHaveDrained() }
    }
}
