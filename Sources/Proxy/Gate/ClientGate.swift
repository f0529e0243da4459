/// Whether a worker's clients may send commands to the node, and why not: the pauses that nest (the
/// failover fence, fenced reconciliations), the pauses a worker takes itself before the fence acts,
/// an operator's pause, the promotion guard's hold, the role checks of an affected version, and the
/// waits for the in-flight commands to drain. Sans-IO: it takes events with the loop's clock and
/// returns the actions the worker carries out on its sessions and timers, so every rule here is
/// tested without sockets (`Tests/ProxyTests/ClientGateTests.swift`).
///
/// A pause stops client reads; node replies keep flowing. Pauses nest, and clients read again only
/// when the last holder resumes, or when `maxPauseMilliseconds` passed since the first (that ends
/// every pause at once, the operator's too, and marks the pause expired). A hold (promotion guard)
/// is separate: no deadline ends it but the guard's own.
public struct ClientGate: Sendable {
    /// Who pauses client reads.
    public enum PauseHolder: Sendable, Equatable {
        /// The failover fence, or a fenced reconciliation: each pause is matched by one resume.
        case nested
        /// The worker itself, when a session forwarded a command that resets the node; the fence
        /// releases these together once it holds its own pause.
        case preFence
        /// An operator (`POST /v1/fence/pause`): on or off, whatever the number of requests.
        case `operator`
    }

    /// What the worker does.
    public enum Action: Sendable, Equatable {
        case stopReadingClients
        case startReadingClients
        case startPauseDeadline(milliseconds: UInt64)
        case cancelPauseDeadline
        case holdClients
        case releaseClients
        /// Ask the node for `ROLE` now.
        case pollRoleNow
        case startRoleCheckDeadline(milliseconds: UInt64)
        case cancelRoleCheckDeadline
        /// Forward the commands held for a role check that were held before `before` (`DispatchTime`
        /// uptime nanoseconds), then report how many still wait (`roleChecksReleased`).
        case releaseRoleChecks(before: UInt64)
        case startDrainDeadline(token: UInt64, milliseconds: UInt64)
        /// End the drain wait `token` with `outcome` (and close its deadline timer).
        case finishDrain(token: UInt64, outcome: ProxyServer.DrainOutcome)
    }

    public var maxPauseMilliseconds: UInt64

    private var nestedPauses = 0
    private var preFencePauses = 0
    private var operatorPaused = false
    public private(set) var clientReadsPaused = false
    private var pauseStartedAt: UInt64 = 0
    /// How long the last pause lasted, and whether max pause ended it.
    public private(set) var lastPause = ProxyServer.PauseRecord(milliseconds: 0, expired: false)

    /// True while a promotion guard runs: no client command may reach the node.
    public private(set) var clientsHeld = false

    /// The node is a replica of a version that aborts on its first write after a promotion: a
    /// command that may propagate waits for a `ROLE` reply requested after it arrived.
    public private(set) var commandsAwaitRoleCheck = false
    /// Sessions holding a command for a role check (recounted whenever checks are released).
    private var sessionsAwaitingRoleCheck = 0
    private var roleCheckDeadlineRunning = false

    private struct DrainWaiter: Sendable {
        let token: UInt64
        let startedAt: UInt64
    }
    private var drainWaiters: [DrainWaiter] = []

    public init(maxPauseMilliseconds: UInt64, commandsAwaitRoleCheck: Bool = false) {
        self.maxPauseMilliseconds = maxPauseMilliseconds
        self.commandsAwaitRoleCheck = commandsAwaitRoleCheck
    }

    /// Whether the operator holds a pause.
    public var isPausedByOperator: Bool { operatorPaused }
    /// Whether anyone waits for the in-flight commands to drain.
    public var isDraining: Bool { !drainWaiters.isEmpty }

    // MARK: pauses

    public mutating func pause(by holder: PauseHolder, now: UInt64) -> [Action] {
        switch holder {
        case .nested: nestedPauses += 1
        case .preFence: preFencePauses += 1
        case .operator:
            guard !operatorPaused else { return [] }
            operatorPaused = true
        }
        guard !clientReadsPaused else { return [] }
        clientReadsPaused = true
        pauseStartedAt = now
        return [.stopReadingClients, .startPauseDeadline(milliseconds: maxPauseMilliseconds)]
    }

    /// Ends one pause of `holder` (all of the worker's own, for `.preFence`); a resume with no pause
    /// to match (max pause already ended it) changes nothing.
    public mutating func resume(by holder: PauseHolder, now: UInt64) -> [Action] {
        switch holder {
        case .nested:
            guard nestedPauses > 0 else { return [] }
            nestedPauses -= 1
        case .preFence:
            guard preFencePauses > 0 else { return [] }
            preFencePauses = 0
        case .operator:
            guard operatorPaused else { return [] }
            operatorPaused = false
        }
        guard clientReadsPaused, nestedPauses == 0, preFencePauses == 0, !operatorPaused else { return [] }
        return endPause(now: now, expired: false) + [.cancelPauseDeadline]
    }

    /// `maxPauseMilliseconds` passed since the pause began: every holder's pause ends.
    public mutating func pauseDeadlinePassed(now: UInt64) -> [Action] {
        nestedPauses = 0
        preFencePauses = 0
        operatorPaused = false
        guard clientReadsPaused else { return [] }
        return endPause(now: now, expired: true)
    }

    private mutating func endPause(now: UInt64, expired: Bool) -> [Action] {
        clientReadsPaused = false
        lastPause = ProxyServer.PauseRecord(milliseconds: Int(now - pauseStartedAt), expired: expired)
        return [.startReadingClients]
    }

    // MARK: promotion guard

    public mutating func hold() -> [Action] {
        guard !clientsHeld else { return [] }
        clientsHeld = true
        return [.holdClients]
    }

    public mutating func release() -> [Action] {
        guard clientsHeld else { return [] }
        clientsHeld = false
        return [.releaseClients]
    }

    // MARK: role checks

    public mutating func setCommandsAwaitRoleCheck(_ value: Bool) {
        commandsAwaitRoleCheck = value
    }

    /// A session holds a command for a role check: ask for a `ROLE` now, and bound the wait by max pause.
    public mutating func sessionAwaitsRoleCheck() -> [Action] {
        sessionsAwaitingRoleCheck += 1
        guard !roleCheckDeadlineRunning else { return [.pollRoleNow] }
        roleCheckDeadlineRunning = true
        return [.startRoleCheckDeadline(milliseconds: maxPauseMilliseconds), .pollRoleNow]
    }

    /// A `ROLE` reply requested at `requestedAt` arrived. Commands held before then may go on (once
    /// nothing else blocks them); `commandsAwaitRoleCheck` says whether later ones must wait. A node
    /// that is no longer a replica releases every held command: the guard, if one is due, already
    /// holds every client.
    public mutating func roleChecked(requestedAt: UInt64, commandsAwaitRoleCheck: Bool) -> [Action] {
        self.commandsAwaitRoleCheck = commandsAwaitRoleCheck
        guard sessionsAwaitingRoleCheck > 0 else { return [] }
        return [.releaseRoleChecks(before: commandsAwaitRoleCheck ? requestedAt : .max)]
    }

    /// No `ROLE` reply within max pause: the held commands go on.
    public mutating func roleCheckDeadlinePassed() -> [Action] {
        roleCheckDeadlineRunning = false
        guard sessionsAwaitingRoleCheck > 0 else { return [] }
        return [.releaseRoleChecks(before: .max)]
    }

    /// After `releaseRoleChecks`: how many sessions still hold a command.
    public mutating func roleChecksReleased(stillWaiting: Int) -> [Action] {
        sessionsAwaitingRoleCheck = stillWaiting
        guard stillWaiting == 0, roleCheckDeadlineRunning else { return [] }
        roleCheckDeadlineRunning = false
        return [.cancelRoleCheckDeadline]
    }

    // MARK: drains

    /// Someone waits until no command is in flight, for at most `timeoutMilliseconds`; `inFlight`
    /// commands are in flight now. `token`: the caller's name for this wait, unique among those open.
    public mutating func drainRequested(token: UInt64, timeoutMilliseconds: Int, inFlight: Int, now: UInt64) -> [Action] {
        if inFlight == 0 {
            return [.finishDrain(token: token, outcome: ProxyServer.DrainOutcome(drained: true, inFlight: 0, elapsedMilliseconds: 0))]
        }
        drainWaiters.append(DrainWaiter(token: token, startedAt: now))
        return [.startDrainDeadline(token: token, milliseconds: UInt64(max(0, timeoutMilliseconds)))]
    }

    /// A session's FIFO emptied while a drain waits; `inFlight`: commands in flight on all sessions.
    public mutating func inFlightChanged(to inFlight: Int, now: UInt64) -> [Action] {
        guard inFlight == 0 else { return [] }
        return finishDrains(drainWaiters.map(\.token), inFlight: 0, now: now)
    }

    public mutating func drainDeadlinePassed(token: UInt64, inFlight: Int, now: UInt64) -> [Action] {
        finishDrains([token], inFlight: inFlight, now: now)
    }

    /// The worker stops: every wait ends with what is still in flight.
    public mutating func stopping(inFlight: Int, now: UInt64) -> [Action] {
        finishDrains(drainWaiters.map(\.token), inFlight: inFlight, now: now)
    }

    private mutating func finishDrains(_ tokens: [UInt64], inFlight: Int, now: UInt64) -> [Action] {
        var actions: [Action] = []
        for token in tokens {
            guard let index = drainWaiters.firstIndex(where: { $0.token == token }) else { continue }
            let waiter = drainWaiters.remove(at: index)
            actions.append(
                .finishDrain(
                    token: token,
                    outcome: ProxyServer.DrainOutcome(
                        drained: inFlight == 0, inFlight: inFlight, elapsedMilliseconds: Int(now - waiter.startedAt))))
        }
        return actions
    }
}
