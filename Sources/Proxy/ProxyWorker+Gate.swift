import Accounting
import UV

/// The worker's side of its ``ClientGate``: the async calls that feed it events, and `perform`,
/// which carries out its actions on the sessions and the loop's timers. On the loop thread.
extension ProxyWorker {
    /// Stops reading every client (and every client that connects meanwhile); replies keep flowing.
    /// The loop resumes them by itself after `maxPauseMilliseconds` (see ``ClientGate``).
    func pauseClientReads(by holder: ClientGate.PauseHolder) async {
        await onLoop { self.perform(self.gate.pause(by: holder, now: self.loop.nowMilliseconds)) }
    }

    /// Ends `holder`'s pause and returns how long the last pause lasted.
    @discardableResult
    func resumeClientReads(by holder: ClientGate.PauseHolder) async -> ProxyServer.PauseRecord {
        await onLoop(orIfStopped: Self.stoppedPause) {
            self.perform(self.gate.resume(by: holder, now: self.loop.nowMilliseconds))
            return self.gate.lastPause
        }
    }

    func lastPauseRecord() async -> ProxyServer.PauseRecord { await onLoop(orIfStopped: Self.stoppedPause) { self.gate.lastPause } }

    func clientReadState() async -> ProxyServer.ClientReadState {
        await onLoop(orIfStopped: ProxyServer.ClientReadState(paused: false, operatorPaused: false)) {
            ProxyServer.ClientReadState(paused: self.gate.clientReadsPaused, operatorPaused: self.gate.isPausedByOperator)
        }
    }

    /// A session forwarded a command that resets the node's counters (a role change, CONFIG
    /// RESETSTAT): stop reading every client now, on the loop, so that nothing else crosses before
    /// the fence takes over. The fence releases this pause once it holds its own.
    func commandWillResetNode(_ reason: EpochReason) {
        guard let commandWillResetNode = events.commandWillResetNode else { return }
        perform(gate.pause(by: .preFence, now: loop.nowMilliseconds))
        commandWillResetNode(reason)
    }

    /// A reply suggested that the node's role may have changed.
    func replySuggestsRoleChange() {
        events.roleMayHaveChanged?()
    }

    // MARK: promotion guard

    /// Holds every client (and every client that connects meanwhile) until `releaseClients`.
    func holdClients() async {
        await onLoop { self.perform(self.gate.hold()) }
    }

    func releaseClients() async {
        await onLoop { self.perform(self.gate.release()) }
    }

    func setCommandsAwaitRoleCheck(_ value: Bool) {
        gate.setCommandsAwaitRoleCheck(value)
    }

    /// A session holds a command for a role check.
    func sessionAwaitsRoleCheck() {
        perform(gate.sessionAwaitsRoleCheck())
    }

    /// A `ROLE` reply arrived (see ``ClientGate/roleChecked(requestedAt:commandsAwaitRoleCheck:)``).
    func roleChecked(requestedAt: UInt64, commandsAwaitRoleCheck: Bool) async {
        await onLoop {
            self.perform(self.gate.roleChecked(requestedAt: requestedAt, commandsAwaitRoleCheck: commandsAwaitRoleCheck))
        }
    }

    /// Connections whose next command waits for a role check.
    func connectionsAwaitingRoleCheck() async -> Int {
        await onLoop(orIfStopped: 0) { self.sessions.values.count { $0.awaitsRoleCheck } }
    }

    /// Waits until no command is in flight on any connection, or the timeout passed. Meant to be called
    /// while client reads are paused, otherwise new commands keep arriving.
    func drain(timeoutMilliseconds: Int) async -> ProxyServer.DrainOutcome {
        await withCheckedContinuation { continuation in
            let accepted = loop.execute { [self] in
                let token = nextDrainToken
                nextDrainToken += 1
                drainWaiters[token] = continuation
                perform(
                    gate.drainRequested(
                        token: token, timeoutMilliseconds: timeoutMilliseconds, inFlight: inFlightTotal, now: loop.nowMilliseconds))
            }
            // Stopped: nothing is in flight any more.
            if !accepted { continuation.resume(returning: ProxyServer.DrainOutcome(drained: true, inFlight: 0, elapsedMilliseconds: 0)) }
        }
    }

    /// Commands in flight over all connections.
    var inFlightTotal: Int { sessions.values.reduce(0) { $0 + $1.inFlightCount } }

    /// A session's FIFO just emptied while someone waits for a drain: check them all.
    func sessionMayHaveDrained() {
        guard sessions.values.allSatisfy({ $0.inFlightCount == 0 }) else { return }
        perform(gate.inFlightChanged(to: 0, now: loop.nowMilliseconds))
    }

    // MARK: carrying out the gate's actions

    func perform(_ actions: [ClientGate.Action]) {
        for action in actions {
            switch action {
            case .stopReadingClients:
                for session in sessions.values { session.setPaused(true) }
            case .startReadingClients:
                for session in sessions.values { session.setPaused(false) }
            case .startPauseDeadline(let milliseconds):
                pauseDeadline?.close()
                let deadline = LoopTimer(on: loop)
                deadline.start(after: milliseconds) { [unowned self] in
                    self.logger.warning("max pause passed; resuming clients", metadata: ["max_pause_ms": "\(milliseconds)"])
                    self.pauseDeadline?.close()
                    self.pauseDeadline = nil
                    self.perform(self.gate.pauseDeadlinePassed(now: self.loop.nowMilliseconds))
                }
                pauseDeadline = deadline
            case .cancelPauseDeadline:
                pauseDeadline?.close()
                pauseDeadline = nil
            case .holdClients:
                for session in sessions.values { session.setGuarded(true) }
            case .releaseClients:
                for session in sessions.values { session.setGuarded(false) }
            case .pollRoleNow:
                events.roleMayHaveChanged?()
            case .startRoleCheckDeadline(let milliseconds):
                let deadline = LoopTimer(on: loop)
                deadline.start(after: milliseconds) { [unowned self] in
                    self.logger.warning(
                        "no ROLE reply within max pause; forwarding the commands held for a role check",
                        metadata: ["max_pause_ms": "\(milliseconds)"])
                    self.roleCheckDeadline?.close()
                    self.roleCheckDeadline = nil
                    self.perform(self.gate.roleCheckDeadlinePassed())
                }
                roleCheckDeadline = deadline
            case .cancelRoleCheckDeadline:
                roleCheckDeadline?.close()
                roleCheckDeadline = nil
            case .releaseRoleChecks(let time):
                var stillWaiting = 0
                for session in sessions.values where session.awaitsRoleCheck {
                    if !session.releaseRoleCheck(ifWaitingSince: time) { stillWaiting += 1 }
                }
                perform(gate.roleChecksReleased(stillWaiting: stillWaiting))
            case .startDrainDeadline(let token, let milliseconds):
                let timer = LoopTimer(on: loop)
                timer.start(after: milliseconds) { [unowned self] in
                    self.perform(self.gate.drainDeadlinePassed(token: token, inFlight: self.inFlightTotal, now: self.loop.nowMilliseconds))
                }
                drainDeadlines[token] = timer
            case .finishDrain(let token, let outcome):
                drainDeadlines.removeValue(forKey: token)?.close()
                drainWaiters.removeValue(forKey: token)?.resume(returning: outcome)
            }
        }
    }
}
