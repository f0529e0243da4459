import Accounting
import Logging
import RESP
import Synchronization
import UV

/// What the data plane tells the control side, from the loop thread.
public struct ProxyEvents: Sendable {
    /// A command passing through will reset the node's counters; every client has already stopped
    /// being read, and the fence takes it from there.
    public var commandWillResetNode: (@Sendable (EpochReason) -> Void)?
    /// A reply (`-MOVED`, `-ASK`, `-READONLY`, `-LOADING`, `-CLUSTERDOWN`, `-UNBLOCKED`, an unasked
    /// `sunsubscribe`) or a slot-ownership command (`CLUSTER SETSLOT`, …) suggests the node's role
    /// or its view of the slot owners changed: poll it now.
    public var roleMayHaveChanged: (@Sendable () -> Void)?
    /// The node's `master_repl_offset` now, for the stream fence (see ``ReplicaStreamFence``).
    public var readsReplicationOffset: (@Sendable () async throws -> Int64)?

    public init(
        commandWillResetNode: (@Sendable (EpochReason) -> Void)? = nil, roleMayHaveChanged: (@Sendable () -> Void)? = nil,
        readsReplicationOffset: (@Sendable () async throws -> Int64)? = nil
    ) {
        self.commandWillResetNode = commandWillResetNode
        self.roleMayHaveChanged = roleMayHaveChanged
        self.readsReplicationOffset = readsReplicationOffset
    }
}

/// The data plane: `workers` event loops, each with its own thread, listener (on one shared port,
/// SO_REUSEPORT) and ledger shard, presented as one. Snapshots merge the shards; pauses, holds,
/// drains and epoch cuts apply to every worker. With one worker a snapshot is one consistent cut;
/// with several, each shard is, and the shards are read one after the other (under a fence, with
/// clients paused and nothing in flight, the merged cut is exact).
///
/// Thread safety: every method may be called from any thread.
public final class ProxyServer: Sendable {
    public let configuration: ProxyConfiguration
    public let node: NodeFacts
    let logger: Logger
    private let workers: [ProxyWorker]
    /// Each replica's links through the sidecar, across reconnections (see ``ReplicaStreamChains``).
    let replicaStreams: ReplicaStreamChains

    let events: ProxyEvents
    /// Stream fences begun (see ``ReplicaStreamFence``).
    let streamFenceCount = Atomic<Int>(0)

    public init(configuration: ProxyConfiguration, node: NodeFacts, logger: Logger, events: ProxyEvents = ProxyEvents()) throws {
        self.configuration = configuration
        self.node = node
        self.logger = logger
        self.events = events
        let count = max(1, configuration.workers)
        let budget = ClientBudget(limit: configuration.maxClients)
        let replicaStreams = ReplicaStreamChains()
        self.replicaStreams = replicaStreams
        workers = try (0..<count).map { index in
            try ProxyWorker(
                configuration: configuration, node: node, logger: logger, events: events, index: index, count: count,
                clientBudget: budget, replicaStreams: replicaStreams)
        }
        if configuration.readsReplicationStreams {
            for worker in workers {
                worker.requestsStreamFence = { [weak self] fence in Task { await self?.fenceReplicaStream(fence) } }
            }
        }
    }

    /// Binds the listeners and starts the loop threads. Returns the port clients connect to (the bound
    /// one when the configuration asked for port 0).
    @discardableResult
    public func start() throws -> Int {
        var port = configuration.listenPort
        // Always SO_REUSEPORT: the workers share the port, and a successor started on the same
        // address takes new connections while this process closes its own (see `closeClientsGracefully`).
        for worker in workers { port = try worker.start(port: port) }
        logger.info(
            "slotwarden listening",
            metadata: [
                "listen": "\(configuration.listenHost):\(port)", "node": "\(configuration.nodeHost):\(configuration.nodePort)",
                "node_version": "\(node.version)", "commands": "\(node.commands.count) from \(node.commandsSource)",
                "workers": "\(workers.count)",
            ])
        return port
    }

    /// Closes the listeners and every connection, then the loops. Returns `uv_loop_close`'s result: 0
    /// when every handle of every worker was closed cleanly.
    @discardableResult
    public func stop() -> Int32 {
        workers.map { $0.stop() }.first { $0 != 0 } ?? 0
    }

    /// How stopping went: clients closed at a command boundary, and those still open when the
    /// time ran out (cut off with commands in flight, like a `BLPOP 0`).
    public struct GracefulStopOutcome: Sendable, Equatable {
        public var closedAtBoundary = 0
        public var closedAtDeadline = 0
        /// Commands unanswered on the connections closed at the deadline.
        public var inFlightAtDeadline = 0
        /// Replicas' replication links, closed once every client was.
        public var replicationLinksClosed = 0
        public var elapsedMilliseconds = 0

        public init() {}
    }

    /// Stops accepting, then closes each client at its next command boundary once every command it
    /// sent is answered and the replies are flushed (the client sees the end of the stream after its
    /// last reply; what it sent after the boundary is never forwarded). Replication links close
    /// last. Connections still open after `timeoutMilliseconds` are closed as they are.
    public func closeClientsGracefully(timeoutMilliseconds: Int, lingerMilliseconds: Int) async -> GracefulStopOutcome {
        await withTaskGroup(of: GracefulStopOutcome.self) { group in
            for worker in workers {
                group.addTask {
                    await worker.closeClientsGracefully(timeoutMilliseconds: timeoutMilliseconds, lingerMilliseconds: lingerMilliseconds)
                }
            }
            var total = GracefulStopOutcome()
            for await outcome in group {
                total.closedAtBoundary += outcome.closedAtBoundary
                total.closedAtDeadline += outcome.closedAtDeadline
                total.inFlightAtDeadline += outcome.inFlightAtDeadline
                total.replicationLinksClosed += outcome.replicationLinksClosed
                total.elapsedMilliseconds = max(total.elapsedMilliseconds, outcome.elapsedMilliseconds)
            }
            return total
        }
    }

    /// What a reload (SIGHUP) may change without a restart: the watermarks apply to open
    /// connections too, `maxClients` and the node connect timeout to new ones, the pause bound to
    /// the next pause.
    public struct LiveSettings: Sendable, Equatable {
        public var highWatermarkBytes: Int
        public var lowWatermarkBytes: Int
        public var maxClients: Int
        public var nodeConnectTimeoutMilliseconds: UInt64
        public var maxPauseMilliseconds: UInt64

        public init(_ configuration: ProxyConfiguration) {
            highWatermarkBytes = configuration.highWatermarkBytes
            lowWatermarkBytes = configuration.lowWatermarkBytes
            maxClients = configuration.maxClients
            nodeConnectTimeoutMilliseconds = configuration.nodeConnectTimeoutMilliseconds
            maxPauseMilliseconds = configuration.maxPauseMilliseconds
        }
    }

    public func apply(_ live: LiveSettings) async {
        for worker in workers { await worker.apply(live) }
    }

    /// Until the first `ROLE`: whether commands that may propagate wait for a role check. Call before `start`.
    func setCommandsAwaitRoleCheck(_ value: Bool) {
        for worker in workers { worker.setCommandsAwaitRoleCheck(value) }
    }

    // MARK: ledger

    /// Asks every worker in turn; the answers come in worker order.
    func eachWorker<Answer: Sendable>(_ ask: (ProxyWorker) async -> Answer) async -> [Answer] {
        var answers: [Answer] = []
        answers.reserveCapacity(workers.count)
        for worker in workers { answers.append(await ask(worker)) }
        return answers
    }

    /// The ledger: every worker's shard, merged.
    public func snapshot() async -> LedgerSnapshot {
        await eachWorker { await $0.snapshot() }.reduce(into: LedgerSnapshot()) { $0.merge($1) }
    }

    public struct ConnectionCounts: Sendable, Equatable {
        public var active: Int
        public var accepted: UInt64
        public var rejected: UInt64

        public init(active: Int, accepted: UInt64, rejected: UInt64) {
            self.active = active
            self.accepted = accepted
            self.rejected = rejected
        }
    }

    public func connectionCounts() async -> ConnectionCounts {
        var total = ConnectionCounts(active: 0, accepted: 0, rejected: 0)
        for counts in await perWorkerConnectionCounts() {
            total.active += counts.active
            total.accepted += counts.accepted
            total.rejected += counts.rejected
        }
        return total
    }

    /// Connection counts of each worker, in worker order.
    public func perWorkerConnectionCounts() async -> [ConnectionCounts] {
        await eachWorker { await $0.connectionCounts() }
    }

    /// The cut at the end of an epoch: the ledger as it stands, then zeroed, and the commands still in
    /// flight (they complete, and count, in the next epoch).
    public struct EpochCut: Sendable {
        public var closedEpoch: UInt64
        public var ledger: LedgerSnapshot
        public var carriedOver: [CarriedCommand]
    }

    public func closeEpoch() async -> EpochCut {
        var merged = EpochCut(closedEpoch: 0, ledger: LedgerSnapshot(), carriedOver: [])
        for cut in await eachWorker({ await $0.closeEpoch() }) {
            merged.closedEpoch = max(merged.closedEpoch, cut.closedEpoch)
            merged.ledger.merge(cut.ledger)
            merged.carriedOver += cut.carriedOver
        }
        merged.carriedOver.sort { $0.connection < $1.connection }
        return merged
    }

    /// Zeroes `slots` in every worker's ledger and returns what they held, summed, in the same order:
    /// the node reset those slots because their owner changed.
    public func cut(_ slots: [HashSlot]) async -> [(wire: SlotCounters, node: SlotCounters)] {
        var sums = slots.map { _ in (wire: SlotCounters.zero, node: SlotCounters.zero) }
        for closed in await eachWorker({ await $0.cut(slots) }) {
            for (index, counters) in closed.enumerated() {
                sums[index].wire += counters.wire
                sums[index].node += counters.node
            }
        }
        return sums
    }

    public func currentEpochID() async -> UInt64 { await workers[0].currentEpochID() }

    /// Gives the open epoch another id (see ``FenceController/tookOver(after:)``).
    func renumberOpenEpoch(_ id: UInt64) async {
        for worker in workers { await worker.renumberOpenEpoch(id) }
    }

    // MARK: pausing

    /// How long the last pause lasted, and whether the loop ended it because `maxPauseMilliseconds` passed.
    public struct PauseRecord: Sendable, Equatable {
        public var milliseconds: Int
        public var expired: Bool

        /// The longest of several workers' pauses; expired if any one expired.
        init(combining records: [PauseRecord]) {
            milliseconds = records.map(\.milliseconds).max() ?? 0
            expired = records.contains { $0.expired }
        }

        public init(milliseconds: Int, expired: Bool) {
            self.milliseconds = milliseconds
            self.expired = expired
        }
    }

    /// Stops reading every client (and every client that connects meanwhile); replies keep flowing.
    /// Each loop resumes its clients by itself after `maxPauseMilliseconds`. Pauses nest: the fence,
    /// fenced reconciliations and an operator may overlap, and clients resume only when the last of
    /// them resumes, or when max pause passes (``ClientGate``).
    public func pauseClientReads(by holder: ClientGate.PauseHolder = .nested) async {
        for worker in workers { await worker.pauseClientReads(by: holder) }
    }

    /// Ends `holder`'s pause and returns how long the last pause lasted.
    @discardableResult
    public func resumeClientReads(by holder: ClientGate.PauseHolder = .nested) async -> PauseRecord {
        PauseRecord(combining: await eachWorker { await $0.resumeClientReads(by: holder) })
    }

    /// Whether client reads are paused, and whether an operator's pause is among the holders.
    public struct ClientReadState: Sendable, Equatable {
        public var paused: Bool
        public var operatorPaused: Bool

        public init(paused: Bool, operatorPaused: Bool) {
            self.paused = paused
            self.operatorPaused = operatorPaused
        }
    }

    public func clientReadState() async -> ClientReadState {
        let states = await eachWorker { await $0.clientReadState() }
        return ClientReadState(paused: states.contains { $0.paused }, operatorPaused: states.contains { $0.operatorPaused })
    }

    public func lastPauseRecord() async -> PauseRecord {
        PauseRecord(combining: await eachWorker { await $0.lastPauseRecord() })
    }

    /// Ends the pauses that workers took themselves when a command that resets the node passed
    /// through; the fence calls it once it holds its own pause.
    func releasePreFencePauses() async {
        for worker in workers { await worker.resumeClientReads(by: .preFence) }
    }

    /// How a wait for the in-flight FIFOs to empty ended.
    public struct DrainOutcome: Sendable, Equatable {
        /// Every FIFO emptied before the deadline.
        public var drained: Bool
        /// Commands still in flight when the wait ended (a blocked `BLPOP 0`, say).
        public var inFlight: Int
        public var elapsedMilliseconds: Int

        public init(drained: Bool, inFlight: Int, elapsedMilliseconds: Int) {
            self.drained = drained
            self.inFlight = inFlight
            self.elapsedMilliseconds = elapsedMilliseconds
        }
    }

    /// Waits until no command is in flight on any connection of any worker, or the timeout passed.
    /// Meant to be called while client reads are paused, otherwise new commands keep arriving.
    public func drain(timeoutMilliseconds: Int) async -> DrainOutcome {
        await withTaskGroup(of: DrainOutcome.self) { group in
            for worker in workers { group.addTask { await worker.drain(timeoutMilliseconds: timeoutMilliseconds) } }
            var total = DrainOutcome(drained: true, inFlight: 0, elapsedMilliseconds: 0)
            for await outcome in group {
                total.drained = total.drained && outcome.drained
                total.inFlight += outcome.inFlight
                total.elapsedMilliseconds = max(total.elapsedMilliseconds, outcome.elapsedMilliseconds)
            }
            return total
        }
    }

    /// Commands forwarded to the node and not answered yet, over all connections.
    public func inFlightCount() async -> Int {
        await eachWorker { await $0.inFlightCount() }.reduce(0, +)
    }

    // MARK: promotion guard

    /// Holds every client (and every client that connects meanwhile) until `releaseClients`. Unlike a
    /// pause, not ended by `maxPauseMilliseconds`.
    public func holdClients() async {
        for worker in workers { await worker.holdClients() }
    }

    public func releaseClients() async {
        for worker in workers { await worker.releaseClients() }
    }

    /// A `ROLE` reply arrived: commands held before its request went out may go on (once nothing
    /// else holds them: a fence, a guard). `commandsAwaitRoleCheck` says whether later ones must wait.
    public func roleChecked(requestedAt: UInt64, commandsAwaitRoleCheck: Bool) async {
        for worker in workers {
            await worker.roleChecked(requestedAt: requestedAt, commandsAwaitRoleCheck: commandsAwaitRoleCheck)
        }
    }

    /// Connections whose next command waits for a role check.
    public func connectionsAwaitingRoleCheck() async -> Int {
        await eachWorker { await $0.connectionsAwaitingRoleCheck() }.reduce(0, +)
    }
}

/// Client connections admitted over all workers, against `max_clients`.
final class ClientBudget: Sendable {
    private let admitted = Atomic<Int>(0)
    private let limitSetting: Atomic<Int>

    init(limit: Int) { limitSetting = Atomic(limit) }

    /// `max_clients`; lowering it closes no connection, it only refuses new ones until below it.
    var limit: Int {
        get { limitSetting.load(ordering: .relaxed) }
        set { limitSetting.store(newValue, ordering: .relaxed) }
    }

    /// Admits one more connection unless the limit is reached.
    func admit() -> Bool {
        if admitted.wrappingAdd(1, ordering: .relaxed).newValue <= limit { return true }
        admitted.wrappingSubtract(1, ordering: .relaxed)
        return false
    }

    func release() { admitted.wrappingSubtract(1, ordering: .relaxed) }
}
