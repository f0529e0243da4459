import Foundation
import Accounting
import Logging

/// Drives a ``FailoverFence``: feeds it events from the role watcher, the proxy and its own timers,
/// and carries out the actions it returns against the ``ProxyServer`` and the control connection.
/// Keeps the epoch history and appends closed epochs to the epoch log.
public actor FenceController {
    var fence: FailoverFence
    let server: ProxyServer
    private let control: NodeControl
    private let logger: Logger
    /// Where closed epochs are appended, when configured.
    private let epochLog: EpochLog?
    var history: EpochHistory
    var current: EpochRecord
    private var timers: [FailoverFence.Timer: Task<Void, Never>] = [:]
    private var lastPause = ProxyServer.PauseRecord(milliseconds: 0, expired: false)
    private var drainOutcome: ProxyServer.DrainOutcome?
    private var statsAtCut: NodeSlotStats?
    /// The node's slot owners, read in the same `MULTI` as `statsAtCut`.
    private var ownersAtCut: SlotOwners?
    private var ownersAfterReset: SlotOwners?
    /// The node's view of the slot owners when the epoch opened or the last slot cut was made: the
    /// owners that the baseline's counters belong to. A different view means slots were reset.
    public private(set) var slotOwners: SlotOwners?
    var cuts: SlotCutHistory
    /// What made the poll that found the change the fence is cutting for.
    private var cutTrigger = SlotCutTrigger.poll
    private var cutWaiters: [CheckedContinuation<Void, Never>] = []
    /// Callers of `slotCut(after:within:)`, by token.
    var cutObservers: [UInt64: (after: UInt64, continuation: CheckedContinuation<SlotCut?, Never>)] = [:]
    private let awaitedPollMilliseconds: Int
    /// An operator asked for the node's counters to be zeroed at this cut (`CONFIG RESETSTAT`).
    private var resetNodeAtCut = false
    /// The node's counters right after that reset: the next epoch's baseline.
    private var statsAfterReset: NodeSlotStats?
    /// The node's counters when the current epoch opened: the baseline of its reconciliation.
    public private(set) var nodeStatsAtOpen: NodeSlotStats?
    /// Called when the fence wants a `ROLE` poll now.
    private let pollRoleNow: @Sendable () -> Void
    /// `INFO replication` as read with `statsAtCut` (and after the reset, with `statsAfterReset`).
    private var replicationAtCut: ReplicationInfo?
    private var replicationAfterReset: ReplicationInfo?
    let streamSource: (any ReplicaStreamSource)?
    /// On a replica: its stream counts when the period began (see ``ReplicaStreamBaseline``); nil on
    /// a primary.
    var streamBaseline: ReplicaStreamBaseline?
    /// The baselines being taken, one after the other, in the order of their cuts.
    var streamFetches: Task<Void, Never>?
    /// The ask made at start-up, before the actor could keep track of it: the first in that order.
    var startupStreamRead: Task<ReplicaStreamRead, Never>?

    struct EpochWaiter {
        let after: UInt64
        /// Finds the waiter again when its deadline passes.
        let token: UInt64
        let continuation: CheckedContinuation<EpochRecord?, Never>
    }
    var epochWaiters: [EpochWaiter] = []
    /// Callers of `ledgerCutsSettled(within:)`, by token.
    var settleWaiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    var nextWaiterToken: UInt64 = 0
    /// The ledger's cuts begun and finished (see ``LedgerCutCount``).
    public internal(set) var ledgerCuts = LedgerCutCount()

    public struct Counters: Sendable, Equatable, Codable {
        public var fences: UInt64 = 0
        public var drainTimeouts: UInt64 = 0
        public var maxPauseTimeouts: UInt64 = 0
        public var carriedOverCommands: UInt64 = 0
        /// Promotions of a node whose version aborts on the first write after one, and guards that failed.
        public var promotionGuards: UInt64 = 0
        public var promotionGuardFailures: UInt64 = 0
        /// Slot cuts made under the fence and without it (see ``SlotCut``), and the slots they cut.
        public var fencedSlotCuts: UInt64 = 0
        public var unfencedSlotCuts: UInt64 = 0
        public var slotsCut: UInt64 = 0
        public var pauseMilliseconds: [Int] = []
        public var drainMilliseconds: [Int] = []

        public init() {}
    }
    public private(set) var counters = Counters()

    /// `baseline`: the node's counters before the proxy started, the first epoch's starting point, and
    /// the slot owners they belong to.
    init(
        server: ProxyServer, control: NodeControl, configuration: FenceConfiguration, logger: Logger,
        baseline: (stats: NodeSlotStats, owners: SlotOwners, replication: ReplicationInfo)?,
        pollRoleNow: @escaping @Sendable () -> Void
    ) {
        self.streamSource = configuration.replicaStreamSource
        self.nodeStatsAtOpen = baseline?.stats
        self.slotOwners = baseline?.owners
        self.cuts = SlotCutHistory(capacity: configuration.epochHistory * 16)
        self.awaitedPollMilliseconds = configuration.fence.awaitedRolePollMilliseconds
        self.fence = FailoverFence(settings: configuration.fence)
        self.server = server
        self.control = control
        self.logger = logger
        self.epochLog = configuration.epochLogPath.map { EpochLog(path: $0, logger: logger) }
        self.history = EpochHistory(capacity: configuration.epochHistory)
        self.current = EpochRecord(id: server.configuration.firstEpochID, openedBy: .startup, startedAt: Date().timeIntervalSince1970, roleAtStart: .unknown)
        self.pollRoleNow = pollRoleNow
        if let replication = baseline?.replication, replication.isReplica {
            let (source, port) = (configuration.replicaStreamSource, server.configuration.nodePort)
            startupStreamRead = Task { await Self.readReplicaStream(replication, from: source, listeningPort: port) }
        }
    }

    public var state: FailoverFence.State { fence.state }
    public var role: NodeRole { fence.role }
    public var openEpoch: EpochRecord { current }
    public var closedEpochs: [EpochRecord] { history.epochs }
    public var slotCuts: SlotCutHistory { cuts }

    /// Feeds one poll of the control connection to the fence, then lets the proxy release (or keep
    /// holding) the commands that waited for it.
    public func observed(_ observation: NodeObservation) async {
        await handle(.roleObserved(observation.role, runID: observation.runID, version: observation.version))
        await server.roleChecked(requestedAt: observation.requestedAt, commandsAwaitRoleCheck: fence.writesNeedRoleCheck)
        guard let seen = observation.owners else { return }
        guard let known = slotOwners else {
            // The start-up read failed: the first view seen is the one the baseline belongs to.
            slotOwners = seen
            return
        }
        if seen.ownersDiffer(from: known) {
            await ownersChanged(seen, since: known, trigger: observation.hinted ? .hint : .poll)
        } else if observation.hinted {
            // A command that moves slots may be seen before the node ran it: look once more.
            Task { [awaitedPollMilliseconds, pollRoleNow] in
                try? await Task.sleep(for: .milliseconds(awaitedPollMilliseconds))
                pollRoleNow()
            }
        }
    }

    /// Some slots' owners changed in the node's view, so it reset their counters. Slots it reports
    /// (before or after) are cut under the fence; the others only lose what the ledger kept for them.
    private func ownersChanged(_ seen: SlotOwners, since known: SlotOwners, trigger: SlotCutTrigger) async {
        let changes = seen.changes(since: known)
        if changes.contains(where: { $0.wasReported || $0.isReported }) {
            guard fence.state == .live else { return }  // the cut under way reads the owners itself
            cutTrigger = trigger
            await handle(.slotOwnersChanged)
            return
        }
        let closed = await server.cut(changes.map(\.slot))
        slotOwners = seen
        record(
            SlotCut(
                id: cuts.total + 1, epoch: current.id, at: Date().timeIntervalSince1970, trigger: trigger, fenced: false,
                slots: zip(changes, closed).map { SlotCutRow(change: $0, wire: $1.wire, node: $1.node, nodeAtCut: nil) }))
    }

    /// Makes sure the slot owners have not changed since the last cut, cutting the slots that did
    /// (under the fence) before returning; `observed` is a view the caller just read.
    /// Returns whether it cut anything.
    public func cutSlots(ifOwnersDifferFrom observed: SlotOwners) async -> Bool {
        guard let known = slotOwners, observed.ownersDiffer(from: known) else { return false }
        await withCheckedContinuation { continuation in
            cutWaiters.append(continuation)
            Task { await self.ownersChanged(observed, since: known, trigger: .reconcile) }
        }
        return true
    }

    private func record(_ cut: SlotCut) {
        if cut.fenced { counters.fencedSlotCuts += 1 } else { counters.unfencedSlotCuts += 1 }
        counters.slotsCut += UInt64(cut.slotCount)
        cuts.append(cut)
        current.record(cut)
        for (token, observer) in cutObservers where cut.id > observer.after {
            cutObservers.removeValue(forKey: token)
            observer.continuation.resume(returning: cut)
        }
        logger.info(
            "slots cut",
            metadata: [
                "epoch": "\(cut.epoch)", "cut": "\(cut.id)", "trigger": "\(cut.trigger.rawValue)", "fenced": "\(cut.fenced)",
                "slots": "\(cut.slotCount)", "first_slot": "\(cut.moves.first?.slotRanges.first?.first ?? 0)",
            ])
        if !cut.fenced { releaseCutWaiters() }
    }

    private func releaseCutWaiters() {
        let waiters = cutWaiters
        cutWaiters.removeAll()
        for waiter in waiters { waiter.resume() }
    }

    public func handle(_ event: FailoverFence.Event) async {
        if case .roleObserved(let role, _, _) = event, current.roleAtStart.kind == .unknown, history.epochs.isEmpty {
            current.roleAtStart = role
        }
        let before = fence.state
        let actions = fence.handle(event)
        if fence.state != before {
            logger.info(
                "fence \(before.rawValue) → \(fence.state.rawValue)",
                metadata: ["epoch": "\(current.id)", "reason": "\(fence.reason?.rawValue ?? "-")"])
        }
        for action in actions { await perform(action) }
        if case .commandSeen = event {
            // The worker that saw the command paused its clients on its loop (so nothing crossed
            // before this fence could act); the fence holds its own pause by now, or ignored the
            // event because one is already up.
            await server.releasePreFencePauses()
        }
    }

    private func perform(_ action: FailoverFence.Action) async {
        switch action {
        case .stopReadingClients:
            counters.fences += 1
            drainOutcome = nil
            statsAtCut = nil
            await server.pauseClientReads()
            await handle(.clientsPaused)
        case .startDrain(let timeout):
            Task {
                let outcome = await server.drain(timeoutMilliseconds: timeout)
                await self.drained(outcome)
            }
        case .pollRoleNow:
            pollRoleNow()
        case .readNodeStats:
            let reset = resetNodeAtCut
            let budget = fence.settings.drainTimeoutMilliseconds
            Task { [server] in
                let read = try? await control.readAtCut()
                if let read {
                    // What the node charged its replicas for must have crossed their links before the
                    // ledger is cut (see ProxyServer.replicationLinks(reaching:timeoutMilliseconds:)).
                    _ = await server.replicationLinks(reaching: read.replication.replicationOffset, timeoutMilliseconds: budget)
                }
                var afterReset: NodeControl.CutRead?
                if reset, (try? await control.resetStatistics()) != nil {
                    afterReset = try? await control.readAtCut()
                }
                await self.statsRead(read, afterReset: afterReset)
            }
        case .closeEpoch(let reason):
            await cutEpoch(reason)
        case .cutSlots:
            await cutSlots()
        case .guardPromotion:
            await guardPromotion()
        case .resumeClients:
            let pause = await server.resumeClientReads()
            counters.pauseMilliseconds.append(pause.milliseconds)
            lastPause = pause
            if fence.resumedEarly || pause.expired {
                counters.maxPauseTimeouts += 1
                logger.warning("max pause passed; clients resumed before the fence finished", metadata: ["epoch": "\(current.id)"])
            }
        case .startTimer(let timer, let milliseconds):
            timers[timer]?.cancel()
            timers[timer] = Task {
                try? await Task.sleep(for: .milliseconds(milliseconds))
                if !Task.isCancelled { await self.handle(.timerFired(timer)) }
            }
        case .cancelTimer(let timer):
            timers.removeValue(forKey: timer)?.cancel()
        }
    }

    /// Holds every client, runs the guard on the control connection, and releases them: the node
    /// was just promoted and its version would abort on the first propagated write.
    private func guardPromotion() async {
        counters.promotionGuards += 1
        await server.holdClients()
        let replicas = try? await control.replication().connectedReplicas
        let outcome: PromotionGuardOutcome
        do {
            outcome = try await control.guardPromotion()
            logger.notice(
                "promotion guarded: slot stats were off for the first propagated write",
                metadata: [
                    "epoch": "\(current.id)", "outcome": "\(outcome.rawValue)", "version": "\(fence.version.map { "\($0)" } ?? "-")",
                    "replicas_attached": "\(replicas.map { "\($0)" } ?? "-")",
                ])
        } catch {
            outcome = .failed
            counters.promotionGuardFailures += 1
            logger.error(
                "promotion guard failed; the node may abort on its first write",
                metadata: ["epoch": "\(current.id)", "error": "\(error)"])
        }
        current.promotionGuard = outcome
        await server.releaseClients()
        await handle(.promotionGuarded)
    }

    /// Cancels the fence's timers; the sidecar is stopping.
    func shutdown() {
        for timer in timers.values { timer.cancel() }
        timers.removeAll()
    }

    private func drained(_ outcome: ProxyServer.DrainOutcome) async {
        drainOutcome = outcome
        counters.drainMilliseconds.append(outcome.elapsedMilliseconds)
        if !outcome.drained { counters.drainTimeouts += 1 }
        await handle(.drainFinished)
    }

    private func statsRead(_ read: NodeControl.CutRead?, afterReset: NodeControl.CutRead?) async {
        statsAtCut = try? read?.stats.parse()
        ownersAtCut = statsAtCut == nil ? nil : read?.owners
        replicationAtCut = statsAtCut == nil ? nil : read?.replication
        statsAfterReset = try? afterReset?.stats.parse()
        ownersAfterReset = statsAfterReset == nil ? nil : afterReset?.owners
        replicationAfterReset = statsAfterReset == nil ? nil : afterReset?.replication
        await handle(.nodeStatsRead)
    }

    /// Under the fence (clients paused, drained): zeroes the slots whose owner changed since the last
    /// cut in the ledger, takes the node's counters for them (read with the owners in one `MULTI`) as
    /// their new baseline, and records the cut.
    private func cutSlots() async {
        guard let seen = ownersAtCut, let stats = statsAtCut, let known = slotOwners else {
            logger.warning("slot owners changed but the node could not be read; the next poll tries again", metadata: ["epoch": "\(current.id)"])
            await handle(.slotsCut)
            releaseCutWaiters()
            return
        }
        let changes = seen.changes(since: known)
        let slots = changes.map(\.slot)
        ledgerCuts.started += 1
        let closed = await server.cut(slots)
        nodeStatsAtOpen = nodeStatsAtOpen?.rebasing(slots, on: stats)
        slotOwners = seen
        if let replication = replicationAtCut { rebaseStream(slots, replication) }
        finishLedgerCut()
        let rows = stats.bySlot()
        var cut = SlotCut(
            id: cuts.total + 1, epoch: current.id, at: Date().timeIntervalSince1970, trigger: cutTrigger, fenced: true,
            slots: zip(changes, closed).map { SlotCutRow(change: $0, wire: $1.wire, node: $1.node, nodeAtCut: rows[$0.slot]) })
        cut.drainMilliseconds = drainOutcome?.elapsedMilliseconds ?? 0
        cut.drainTimedOut = drainOutcome.map { !$0.drained } ?? false
        await handle(.slotsCut)
        cut.pauseMilliseconds = lastPause.milliseconds
        cut.maxPauseExceeded = fence.resumedEarly || lastPause.expired
        record(cut)
        releaseCutWaiters()
    }

    /// Closes the open epoch on an operator's request, optionally zeroing the node's counters at the
    /// same cut, and returns the closed epoch. Returns once the next epoch is open.
    public func closeEpoch(_ reason: EpochReason = .manual, resetNodeStats: Bool = false) async -> EpochRecord {
        let open = current.id
        resetNodeAtCut = resetNodeStats
        await handle(.closeRequested(reason))
        return await closedEpoch(after: open - 1)
    }

    private func cutEpoch(_ reason: EpochReason) async {
        ledgerCuts.started += 1
        let cut = await server.closeEpoch()
        let now = Date().timeIntervalSince1970
        var closed = current
        closed.close(by: reason, at: now, role: fence.role, ledger: cut.ledger, nodeStats: statsAtCut.map { $0.subtracting(nodeStatsAtOpen) })
        closed.carriedOver = cut.carriedOver
        closed.drainMilliseconds = drainOutcome?.elapsedMilliseconds ?? 0
        closed.drainTimedOut = drainOutcome.map { !$0.drained } ?? false
        closed.maxPauseExceeded = fence.resumedEarly || lastPause.expired
        counters.carriedOverCommands += UInt64(cut.carriedOver.reduce(0) { $0 + $1.count })
        history.append(closed)
        logger.info(
            "epoch closed",
            metadata: [
                "epoch": "\(closed.id)", "reason": "\(reason.rawValue)", "carried_over": "\(cut.carriedOver.count)",
                "drain_ms": "\(closed.drainMilliseconds)", "drain_timed_out": "\(closed.drainTimedOut)",
            ])
        current = EpochRecord(id: cut.closedEpoch + 1, openedBy: reason, startedAt: now, roleAtStart: fence.role)
        nodeStatsAtOpen = statsAfterReset ?? statsAtCut
        slotOwners = ownersAfterReset ?? ownersAtCut ?? slotOwners
        newStreamBaseline(replicationAfterReset ?? replicationAtCut)
        statsAfterReset = nil
        ownersAfterReset = nil
        replicationAfterReset = nil
        resetNodeAtCut = false
        finishLedgerCut()
        await handle(.epochOpened)
        // The pause ended with the next epoch's opening; it belongs to the record of the epoch just closed.
        let pause = lastPause
        history.updateLast { record in
            record.pauseMilliseconds = pause.milliseconds
            record.maxPauseExceeded = record.maxPauseExceeded || pause.expired
        }
        releaseCutWaiters()
        guard let final = history.epochs.last else { return }
        epochLog?.append(final)
        let ready = epochWaiters.filter { final.id > $0.after }
        epochWaiters.removeAll { final.id > $0.after }
        for waiter in ready { waiter.continuation.resume(returning: final) }
    }
}
