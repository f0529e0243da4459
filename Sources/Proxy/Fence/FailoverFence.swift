import Accounting

/// The failover fence as a plain state machine: events in, actions out, no I/O and no clock of its
/// own (times come with the events).
///
/// ```
///   live ──trigger──► paused ──► draining ──drained / drain timeout──► resetting ──epoch opened / slots cut──► live
///                                   │  (pre-fence: also waits for the role to change, or its timeout)
///   max_pause passes anywhere ──► clients resumed at once; the fence still finishes and says so
/// ```
/// Triggers of an epoch's cut: a role or run id different from the last one seen, a role-changing
/// command or `CONFIG RESETSTAT` seen by the proxy itself (the fence goes up before that command's
/// effect), or an operator. A slot cut (some slots' owner changed, so the node reset them) runs the
/// same way and ends in ``Action/cutSlots`` instead of closing the epoch; a role change seen during
/// one turns it into an epoch's cut. While paused no client bytes are read; node replies keep
/// flowing, so nothing is rejected, reordered or lost.
///
/// Promotion guard: when a node of a version that aborts on its first write after a promotion
/// (``ValkeyVersion/abortsOnFirstWriteAfterPromotion``) is seen going from replica to primary, the
/// fence asks for the guard (``Action/guardPromotion``) and does not reset until it ran.
public struct FailoverFence: Sendable {
    public enum State: String, Sendable, Codable { case live, paused, draining, resetting }

    /// `rolePoll`: while a pre-fence waits for the role to change, `ROLE` is polled every
    /// `awaitedRolePollMilliseconds` instead of every `role_poll_interval_ms`, so that clients resume
    /// soon after the change.
    public enum Timer: Sendable, Equatable { case maxPause, roleChange, rolePoll }

    public enum Event: Sendable, Equatable {
        /// The control connection read the node's role, run id and (when known) version.
        case roleObserved(NodeRole, runID: String, version: ValkeyVersion? = nil)
        /// The promotion guard finished (or failed; clients resume either way).
        case promotionGuarded
        /// A command passing through the proxy will reset the node's counters.
        case commandSeen(EpochReason)
        /// Close the epoch: an operator asked (`manual`), the process is stopping (`shutdown`), or
        /// the slotwarden it took over from exited (`handover`).
        case closeRequested(EpochReason)
        /// The node's view of some slots' owners changed, and it reports one of them before or after.
        case slotOwnersChanged
        /// The slots were cut (see ``Action/cutSlots``).
        case slotsCut
        /// Every client has stopped being read.
        case clientsPaused
        /// The drain ended, every command answered or its timeout passed (the controller keeps the outcome).
        case drainFinished
        /// The node's counters at the cut were read (or could not be).
        case nodeStatsRead
        /// The ledger was snapshotted and reset, and the next epoch opened.
        case epochOpened
        case timerFired(Timer)
    }

    public enum Action: Sendable, Equatable {
        case stopReadingClients
        case startDrain(timeoutMilliseconds: Int)
        case pollRoleNow
        case readNodeStats
        case closeEpoch(EpochReason)
        /// Cut the slots whose owner changed, from the counters and owners just read.
        case cutSlots
        case resumeClients
        /// Hold every client until the node can no longer abort on its first write, then report
        /// ``Event/promotionGuarded``. Not bounded by `max_pause`: resuming early could kill the node.
        case guardPromotion
        case startTimer(Timer, milliseconds: Int)
        case cancelTimer(Timer)
    }

    public struct Settings: Sendable, Equatable {
        public var drainTimeoutMilliseconds: Int
        public var maxPauseMilliseconds: Int
        /// How long a pre-fence waits for the role to change after the command was forwarded.
        public var roleChangeTimeoutMilliseconds: Int
        /// Guard promotions of nodes whose version aborts on the first write after one.
        public var guardsAffectedVersions: Bool
        /// How often a pre-fence polls `ROLE` while it waits for the role to change.
        public var awaitedRolePollMilliseconds: Int

        public init(
            drainTimeoutMilliseconds: Int = 2000, maxPauseMilliseconds: Int = 5000, roleChangeTimeoutMilliseconds: Int = 10000,
            guardsAffectedVersions: Bool = true, awaitedRolePollMilliseconds: Int = 10
        ) {
            self.drainTimeoutMilliseconds = drainTimeoutMilliseconds
            self.maxPauseMilliseconds = maxPauseMilliseconds
            self.roleChangeTimeoutMilliseconds = roleChangeTimeoutMilliseconds
            self.guardsAffectedVersions = guardsAffectedVersions
            self.awaitedRolePollMilliseconds = awaitedRolePollMilliseconds
        }
    }

    public var settings: Settings
    public private(set) var state = State.live
    /// The role and run id of the node as last observed.
    public private(set) var role = NodeRole.unknown
    public private(set) var runID: String?
    /// The node's version as last observed.
    public private(set) var version: ValkeyVersion?
    /// What the fence is up for (nil while live).
    public enum Cut: Sendable, Equatable {
        case epoch(EpochReason)
        case slots
    }
    public private(set) var cut: Cut?
    /// Why the fence is up for an epoch's cut (nil while live or cutting slots).
    public var reason: EpochReason? {
        if case .epoch(let reason) = cut { reason } else { nil }
    }
    /// A role change seen while a slot cut was reading the node: the epoch's cut follows at once.
    private var epochCutAfterSlots: EpochReason?
    /// A pre-fence waits for the role to change before it resets.
    public private(set) var awaitingRoleChange = false
    /// The promotion guard is running; the fence resets only after it.
    public private(set) var guardingPromotion = false
    private var drainDone = false
    /// Clients were resumed because `max_pause_ms` passed.
    public private(set) var resumedEarly = false

    public init(settings: Settings) { self.settings = settings }

    /// The node may abort on its first write after a promotion, and is a replica now: a client
    /// command that may propagate must wait for a fresh `ROLE` before it reaches the node.
    public var writesNeedRoleCheck: Bool { guardsPromotions && role.kind == .replica }

    private var guardsPromotions: Bool {
        settings.guardsAffectedVersions && version?.abortsOnFirstWriteAfterPromotion == true
    }

    /// Drained, no role change awaited, no guard running.
    private var readyToReset: Bool { state == .draining && drainDone && !awaitingRoleChange && !guardingPromotion }

    public mutating func handle(_ event: Event) -> [Action] {
        switch event {
        case .roleObserved(let observed, let observedRunID, let observedVersion):
            return roleObserved(observed, runID: observedRunID, version: observedVersion)
        case .promotionGuarded:
            guard guardingPromotion else { return [] }
            guardingPromotion = false
            return readyToReset ? reset() : []
        case .commandSeen(let reason):
            guard state == .live else { return [] }
            return raise(reason, awaitRoleChange: reason == .roleChange)
        case .closeRequested(let reason):
            guard state == .live else { return [] }
            return raise(reason, awaitRoleChange: false)
        case .slotOwnersChanged:
            guard state == .live else { return [] }
            return raise(.slots, awaitRoleChange: false)
        case .slotsCut:
            guard state == .resetting, cut == .slots else { return [] }
            if let reason = epochCutAfterSlots {
                // Clients are still paused and were drained: the epoch's cut reads the node now.
                epochCutAfterSlots = nil
                cut = .epoch(reason)
                return [.readNodeStats]
            }
            return goLive()
        case .clientsPaused:
            guard state == .paused else { return [] }
            state = .draining
            return [.startDrain(timeoutMilliseconds: settings.drainTimeoutMilliseconds)]
        case .drainFinished:
            guard state == .draining else { return [] }
            drainDone = true
            if awaitingRoleChange { return [.pollRoleNow] }
            return readyToReset ? reset() : []
        case .nodeStatsRead:
            switch (state, cut) {
            case (.resetting, .epoch(let reason)?): return [.closeEpoch(reason)]
            case (.resetting, .slots?): return [.cutSlots]
            default: return []
            }
        case .epochOpened:
            guard state == .resetting, reason != nil else { return [] }
            return goLive()
        case .timerFired(.maxPause):
            guard state != .live, !resumedEarly else { return [] }
            resumedEarly = true
            return [.resumeClients]
        case .timerFired(.rolePoll):
            guard state == .paused || state == .draining, awaitingRoleChange else { return [] }
            return [.pollRoleNow]
        case .timerFired(.roleChange):
            guard state == .paused || state == .draining, awaitingRoleChange else { return [] }
            awaitingRoleChange = false
            return readyToReset ? reset() : []
        }
    }

    private mutating func roleObserved(_ observed: NodeRole, runID observedRunID: String, version observedVersion: ValkeyVersion?) -> [Action] {
        let previousKind = role.kind
        let previousRunID = runID
        role = observed
        runID = observedRunID
        if let observedVersion { version = observedVersion }
        guard previousKind != .unknown, let previousRunID else { return [] }
        let restarted = previousRunID != observedRunID
        let changed = previousKind != observed.kind
        guard restarted || changed else {
            // A pre-fence still waiting: look again soon.
            let waiting = awaitingRoleChange && (state == .paused || state == .draining)
            return waiting ? [.startTimer(.rolePoll, milliseconds: settings.awaitedRolePollMilliseconds)] : []
        }
        // A restarted node has no replication backlog, so its first write emits nothing to guard.
        let promoted = !restarted && previousKind == .replica && observed.kind == .primary && guardsPromotions
        if promoted { guardingPromotion = true }
        var actions: [Action]
        let epochReason: EpochReason = restarted ? .nodeRestart : .roleChange
        switch state {
        case .live:
            actions = raise(.epoch(epochReason), awaitRoleChange: false)
        case .paused where cut == .slots, .draining where cut == .slots:
            cut = .epoch(epochReason)
            actions = []
        case .resetting where cut == .slots:
            epochCutAfterSlots = epochReason
            actions = []
        case .paused, .draining:
            if awaitingRoleChange {
                awaitingRoleChange = false
                actions = readyToReset ? reset() : []
            } else {
                actions = []
            }
        case .resetting:
            actions = []
        }
        if promoted { actions.append(.guardPromotion) }
        return actions
    }

    private mutating func raise(_ reason: EpochReason, awaitRoleChange: Bool) -> [Action] {
        raise(.epoch(reason), awaitRoleChange: awaitRoleChange)
    }

    private mutating func raise(_ newCut: Cut, awaitRoleChange: Bool) -> [Action] {
        cut = newCut
        awaitingRoleChange = awaitRoleChange
        drainDone = false
        resumedEarly = false
        state = .paused
        var actions: [Action] = [.stopReadingClients, .startTimer(.maxPause, milliseconds: settings.maxPauseMilliseconds)]
        if awaitRoleChange {
            actions.append(.startTimer(.roleChange, milliseconds: settings.roleChangeTimeoutMilliseconds))
            actions.append(.pollRoleNow)
        }
        return actions
    }

    private mutating func goLive() -> [Action] {
        state = .live
        cut = nil
        var actions: [Action] = [.cancelTimer(.maxPause), .cancelTimer(.roleChange)]
        if !resumedEarly { actions.append(.resumeClients) }
        resumedEarly = false
        return actions
    }

    private mutating func reset() -> [Action] {
        state = .resetting
        return [.readNodeStats]
    }
}
