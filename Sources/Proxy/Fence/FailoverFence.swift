import Ledger

/// The failover fence as a plain state machine: events in, actions out, no I/O and no clock of its
/// own (times come with the events).
///
/// ```
///   live ──trigger──► paused ──► draining ──drained / drain timeout──► resetting ──epoch opened──► live
///                                   │  (pre-fence: also waits for the role to change, or its timeout)
///   max_pause passes anywhere ──► clients resumed at once; the fence still finishes and says so
/// ```
/// Triggers: a role or run id different from the last one seen, a role-changing command or
/// `CONFIG RESETSTAT` seen by the proxy itself (the fence goes up before that command's effect), or an
/// operator. While paused no client bytes are read; node replies keep flowing, so nothing is
/// rejected, reordered or lost.
public struct FailoverFence: Sendable {
    public enum State: String, Sendable, Codable { case live, paused, draining, resetting }

    public enum Timer: Sendable, Equatable { case maxPause, roleChange }

    public enum Event: Sendable, Equatable {
        /// The control connection read the node's role and run id.
        case roleObserved(NodeRole, runID: String)
        /// A command passing through the proxy will reset the node's counters.
        case commandSeen(EpochReason)
        /// An operator asked to close the epoch.
        case manual
        /// Every client has stopped being read.
        case clientsPaused
        case drainFinished(drained: Bool, inFlight: Int)
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
        case resumeClients
        case startTimer(Timer, milliseconds: Int)
        case cancelTimer(Timer)
    }

    public struct Settings: Sendable, Equatable {
        public var drainTimeoutMilliseconds: Int
        public var maxPauseMilliseconds: Int
        /// How long a pre-fence waits for the role to change after the command was forwarded.
        public var roleChangeTimeoutMilliseconds: Int

        public init(drainTimeoutMilliseconds: Int = 2000, maxPauseMilliseconds: Int = 5000, roleChangeTimeoutMilliseconds: Int = 10000) {
            self.drainTimeoutMilliseconds = drainTimeoutMilliseconds
            self.maxPauseMilliseconds = maxPauseMilliseconds
            self.roleChangeTimeoutMilliseconds = roleChangeTimeoutMilliseconds
        }
    }

    public let settings: Settings
    public private(set) var state = State.live
    /// The role and run id of the node as last observed.
    public private(set) var role = NodeRole.unknown
    public private(set) var runID: String?
    /// Why the fence is up (nil while live).
    public private(set) var reason: EpochReason?
    /// A pre-fence waits for the role to change before it resets.
    public private(set) var awaitingRoleChange = false
    private var drainDone = false
    /// Clients were resumed because `max_pause_ms` passed.
    public private(set) var resumedEarly = false
    public private(set) var lastDrain: (drained: Bool, inFlight: Int) = (true, 0)

    public init(settings: Settings) { self.settings = settings }

    public mutating func handle(_ event: Event) -> [Action] {
        switch event {
        case .roleObserved(let observed, let observedRunID):
            return roleObserved(observed, runID: observedRunID)
        case .commandSeen(let reason):
            guard state == .live else { return [] }
            return raise(reason, awaitRoleChange: reason == .roleChange)
        case .manual:
            guard state == .live else { return [] }
            return raise(.manual, awaitRoleChange: false)
        case .clientsPaused:
            guard state == .paused else { return [] }
            state = .draining
            return [.startDrain(timeoutMilliseconds: settings.drainTimeoutMilliseconds)]
        case .drainFinished(let drained, let inFlight):
            guard state == .draining else { return [] }
            lastDrain = (drained, inFlight)
            drainDone = true
            return awaitingRoleChange ? [.pollRoleNow] : reset()
        case .nodeStatsRead:
            guard state == .resetting, let reason else { return [] }
            return [.closeEpoch(reason)]
        case .epochOpened:
            guard state == .resetting else { return [] }
            state = .live
            reason = nil
            var actions: [Action] = [.cancelTimer(.maxPause), .cancelTimer(.roleChange)]
            if !resumedEarly { actions.append(.resumeClients) }
            resumedEarly = false
            return actions
        case .timerFired(.maxPause):
            guard state != .live, !resumedEarly else { return [] }
            resumedEarly = true
            return [.resumeClients]
        case .timerFired(.roleChange):
            guard state == .paused || state == .draining, awaitingRoleChange else { return [] }
            awaitingRoleChange = false
            return state == .draining && drainDone ? reset() : []
        }
    }

    private mutating func roleObserved(_ observed: NodeRole, runID observedRunID: String) -> [Action] {
        let previousKind = role.kind
        let previousRunID = runID
        role = observed
        runID = observedRunID
        guard previousKind != .unknown, let previousRunID else { return [] }
        let restarted = previousRunID != observedRunID
        let changed = previousKind != observed.kind
        guard restarted || changed else { return [] }
        switch state {
        case .live:
            return raise(restarted ? .nodeRestart : .roleChange, awaitRoleChange: false)
        case .paused, .draining:
            guard awaitingRoleChange else { return [] }
            awaitingRoleChange = false
            return state == .draining && drainDone ? reset() : []
        default:
            return []
        }
    }

    private mutating func raise(_ newReason: EpochReason, awaitRoleChange: Bool) -> [Action] {
        reason = newReason
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

    private mutating func reset() -> [Action] {
        state = .resetting
        return [.readNodeStats]
    }
}
