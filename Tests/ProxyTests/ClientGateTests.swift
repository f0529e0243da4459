import Proxy
import Testing

/// The worker's gate, driven without sockets or clocks: times are loop milliseconds the test picks.
@Suite struct ClientGateTests {
    typealias Action = ClientGate.Action

    @Test func aPauseStopsReadsAndArmsMaxPauseAndTheLastResumeStartsThem() {
        var gate = ClientGate(maxPauseMilliseconds: 300)
        #expect(gate.pause(by: .nested, now: 10) == [.stopReadingClients, .startPauseDeadline(milliseconds: 300)])
        #expect(gate.pause(by: .nested, now: 20) == [])
        #expect(gate.resume(by: .nested, now: 30) == [])
        #expect(gate.clientReadsPaused)
        #expect(gate.resume(by: .nested, now: 60) == [.startReadingClients, .cancelPauseDeadline])
        #expect(!gate.clientReadsPaused)
        #expect(gate.lastPause == ProxyServer.PauseRecord(milliseconds: 50, expired: false))
    }

    @Test func theOperatorsPauseIsOnOrOffAndHoldsAcrossAReconciliation() {
        var gate = ClientGate(maxPauseMilliseconds: 300)
        #expect(gate.pause(by: .operator, now: 0).contains(.stopReadingClients))
        #expect(gate.pause(by: .operator, now: 1) == [])
        #expect(gate.pause(by: .nested, now: 2) == [])
        #expect(gate.resume(by: .nested, now: 3) == [], "a reconciliation ending leaves the operator's pause")
        #expect(gate.isPausedByOperator)
        #expect(gate.resume(by: .operator, now: 4) == [.startReadingClients, .cancelPauseDeadline])
        #expect(gate.resume(by: .operator, now: 5) == [])
        #expect(!gate.isPausedByOperator)
    }

    @Test func theWorkersOwnPausesEndTogetherWhenTheFenceReleasesThem() {
        var gate = ClientGate(maxPauseMilliseconds: 300)
        _ = gate.pause(by: .preFence, now: 0)
        _ = gate.pause(by: .preFence, now: 1)
        _ = gate.pause(by: .nested, now: 2)
        #expect(gate.resume(by: .preFence, now: 3) == [], "the fence's own pause still holds")
        #expect(gate.resume(by: .nested, now: 4) == [.startReadingClients, .cancelPauseDeadline])
    }

    @Test func maxPauseEndsEveryPauseAndLaterResumesChangeNothing() {
        var gate = ClientGate(maxPauseMilliseconds: 300)
        _ = gate.pause(by: .nested, now: 100)
        _ = gate.pause(by: .operator, now: 110)
        _ = gate.pause(by: .preFence, now: 120)
        #expect(gate.pauseDeadlinePassed(now: 400) == [.startReadingClients])
        #expect(gate.lastPause == ProxyServer.PauseRecord(milliseconds: 300, expired: true))
        #expect(!gate.isPausedByOperator)
        #expect(gate.resume(by: .nested, now: 410) == [])
        #expect(gate.resume(by: .operator, now: 420) == [])
        #expect(gate.lastPause.expired, "a late resume does not overwrite the expired record")
        // The next pause starts afresh.
        #expect(gate.pause(by: .nested, now: 500) == [.stopReadingClients, .startPauseDeadline(milliseconds: 300)])
    }

    @Test func aHoldIsSeparateFromPausesAndHasNoDeadline() {
        var gate = ClientGate(maxPauseMilliseconds: 300)
        #expect(gate.hold() == [.holdClients])
        #expect(gate.hold() == [])
        _ = gate.pause(by: .nested, now: 0)
        #expect(gate.pauseDeadlinePassed(now: 300) == [.startReadingClients])
        #expect(gate.clientsHeld)
        #expect(gate.release() == [.releaseClients])
        #expect(gate.release() == [])
    }

    @Test func roleChecksReleaseWhatWaitedBeforeTheROLERequestAndDisarmOnceNoneWait() {
        var gate = ClientGate(maxPauseMilliseconds: 300, commandsAwaitRoleCheck: true)
        #expect(gate.sessionAwaitsRoleCheck() == [.startRoleCheckDeadline(milliseconds: 300), .pollRoleNow])
        #expect(gate.sessionAwaitsRoleCheck() == [.pollRoleNow])
        // Still a replica: only commands that waited before the request may go.
        #expect(gate.roleChecked(requestedAt: 5_000, commandsAwaitRoleCheck: true) == [.releaseRoleChecks(before: 5_000)])
        #expect(gate.roleChecksReleased(stillWaiting: 1) == [])
        // Promoted: everything waiting goes, and later commands no longer wait.
        #expect(gate.roleChecked(requestedAt: 6_000, commandsAwaitRoleCheck: false) == [.releaseRoleChecks(before: .max)])
        #expect(!gate.commandsAwaitRoleCheck)
        #expect(gate.roleChecksReleased(stillWaiting: 0) == [.cancelRoleCheckDeadline])
        #expect(gate.roleChecked(requestedAt: 7_000, commandsAwaitRoleCheck: false) == [], "nothing waits")
    }

    @Test func noROLEReplyWithinMaxPauseReleasesEveryWaitingCommand() {
        var gate = ClientGate(maxPauseMilliseconds: 300, commandsAwaitRoleCheck: true)
        _ = gate.sessionAwaitsRoleCheck()
        #expect(gate.roleCheckDeadlinePassed() == [.releaseRoleChecks(before: .max)])
        #expect(gate.roleChecksReleased(stillWaiting: 0) == [], "the deadline that fired needs no cancelling")
        #expect(gate.sessionAwaitsRoleCheck() == [.startRoleCheckDeadline(milliseconds: 300), .pollRoleNow])
    }

    @Test func aDrainWithNothingInFlightEndsAtOnce() {
        var gate = ClientGate(maxPauseMilliseconds: 300)
        let actions = gate.drainRequested(token: 0, timeoutMilliseconds: 500, inFlight: 0, now: 0)
        guard case .finishDrain(_, let outcome) = actions.first, actions.count == 1 else {
            Issue.record("expected one finishDrain, got \(actions)")
            return
        }
        #expect(outcome == ProxyServer.DrainOutcome(drained: true, inFlight: 0, elapsedMilliseconds: 0))
        #expect(!gate.isDraining)
    }

    @Test func drainsEndWhenTheLastFIFOEmptiesOrAtTheirOwnDeadline() {
        var gate = ClientGate(maxPauseMilliseconds: 300)
        let (first, second): (UInt64, UInt64) = (7, 8)
        #expect(gate.drainRequested(token: first, timeoutMilliseconds: 500, inFlight: 3, now: 100) == [.startDrainDeadline(token: first, milliseconds: 500)])
        #expect(gate.drainRequested(token: second, timeoutMilliseconds: 50, inFlight: 3, now: 110) == [.startDrainDeadline(token: second, milliseconds: 50)])
        #expect(gate.isDraining)
        #expect(
            gate.drainDeadlinePassed(token: second, inFlight: 2, now: 160)
                == [.finishDrain(token: second, outcome: ProxyServer.DrainOutcome(drained: false, inFlight: 2, elapsedMilliseconds: 50))])
        #expect(gate.inFlightChanged(to: 1, now: 170) == [])
        #expect(
            gate.inFlightChanged(to: 0, now: 180)
                == [.finishDrain(token: first, outcome: ProxyServer.DrainOutcome(drained: true, inFlight: 0, elapsedMilliseconds: 80))])
        #expect(gate.drainDeadlinePassed(token: first, inFlight: 0, now: 600) == [], "a finished wait has no deadline left")
        #expect(!gate.isDraining)
    }

    @Test func stoppingEndsEveryDrainWithWhatIsStillInFlight() {
        var gate = ClientGate(maxPauseMilliseconds: 300)
        _ = gate.drainRequested(token: 0, timeoutMilliseconds: 500, inFlight: 2, now: 0)
        let actions = gate.stopping(inFlight: 2, now: 40)
        #expect(actions.count == 1)
        guard case .finishDrain(_, let outcome) = actions.first else { return }
        #expect(outcome == ProxyServer.DrainOutcome(drained: false, inFlight: 2, elapsedMilliseconds: 40))
    }
}
