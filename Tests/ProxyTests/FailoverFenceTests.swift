import Accounting
import Proxy
import Testing

@Suite("FailoverFence (sans-IO)")
struct FailoverFenceTests {
    let settings = FailoverFence.Settings(drainTimeoutMilliseconds: 200, maxPauseMilliseconds: 500, roleChangeTimeoutMilliseconds: 3000)
    let primary = NodeRole(kind: .primary)
    let replica = NodeRole(kind: .replica, primaryHost: "127.0.0.1", primaryPort: 7001, linkState: "connected")

    private func liveFence(role: NodeRole) -> FailoverFence {
        var fence = FailoverFence(settings: settings)
        #expect(fence.handle(.roleObserved(role, runID: "a")) == [])
        return fence
    }

    @Test("a role change observed by the poll walks live → paused → draining → resetting → live")
    func roleChange() {
        var fence = liveFence(role: replica)
        #expect(fence.handle(.roleObserved(replica, runID: "a")) == [])
        #expect(fence.handle(.roleObserved(primary, runID: "a")) == [.stopReadingClients, .startTimer(.maxPause, milliseconds: 500)])
        #expect(fence.state == .paused)
        #expect(fence.reason == .roleChange)
        #expect(fence.handle(.clientsPaused) == [.startDrain(timeoutMilliseconds: 200)])
        #expect(fence.state == .draining)
        #expect(fence.handle(.drainFinished) == [.readNodeStats])
        #expect(fence.state == .resetting)
        #expect(fence.handle(.nodeStatsRead) == [.closeEpoch(.roleChange)])
        #expect(fence.handle(.epochOpened) == [.cancelTimer(.maxPause), .cancelTimer(.roleChange), .resumeClients])
        #expect(fence.state == .live)
        #expect(fence.reason == nil)
    }

    @Test("a new run id means the node restarted")
    func restart() {
        var fence = liveFence(role: primary)
        #expect(fence.handle(.roleObserved(primary, runID: "b")).first == .stopReadingClients)
        #expect(fence.reason == .nodeRestart)
    }

    @Test("the first observation only learns the role")
    func firstObservation() {
        var fence = FailoverFence(settings: settings)
        #expect(fence.handle(.roleObserved(primary, runID: "a")) == [])
        #expect(fence.state == .live)
        #expect(fence.role == primary)
    }

    @Test("a pre-fence waits for the role change after draining, then resets")
    func preFence() {
        var fence = liveFence(role: replica)
        #expect(
            fence.handle(.commandSeen(.roleChange)) == [
                .stopReadingClients, .startTimer(.maxPause, milliseconds: 500), .startTimer(.roleChange, milliseconds: 3000),
                .pollRoleNow,
            ])
        #expect(fence.awaitingRoleChange)
        #expect(fence.handle(.clientsPaused) == [.startDrain(timeoutMilliseconds: 200)])
        #expect(fence.handle(.drainFinished) == [.pollRoleNow])
        #expect(fence.state == .draining)
        // Not changed yet: poll again soon rather than at the next role_poll_interval_ms.
        #expect(fence.handle(.roleObserved(replica, runID: "a")) == [.startTimer(.rolePoll, milliseconds: 10)])
        #expect(fence.handle(.timerFired(.rolePoll)) == [.pollRoleNow])
        #expect(fence.handle(.roleObserved(primary, runID: "a")) == [.readNodeStats])
        #expect(fence.handle(.timerFired(.rolePoll)) == [])
        #expect(fence.handle(.nodeStatsRead) == [.closeEpoch(.roleChange)])
    }

    @Test("a pre-fence whose role never changes resets when its timer fires")
    func preFenceTimeout() {
        var fence = liveFence(role: replica)
        _ = fence.handle(.commandSeen(.roleChange))
        _ = fence.handle(.clientsPaused)
        _ = fence.handle(.drainFinished)
        #expect(fence.handle(.timerFired(.roleChange)) == [.readNodeStats])
    }

    @Test("max_pause resumes clients early; the fence still finishes and does not resume twice")
    func maxPause() {
        var fence = liveFence(role: primary)
        _ = fence.handle(.commandSeen(.nodeResetStat))
        _ = fence.handle(.clientsPaused)
        #expect(fence.handle(.timerFired(.maxPause)) == [.resumeClients])
        #expect(fence.resumedEarly)
        #expect(fence.handle(.timerFired(.maxPause)) == [])
        #expect(fence.handle(.drainFinished) == [.readNodeStats])
        _ = fence.handle(.nodeStatsRead)
        #expect(fence.handle(.epochOpened) == [.cancelTimer(.maxPause), .cancelTimer(.roleChange)])
        #expect(fence.state == .live)
    }

    @Test("triggers while a fence is up are absorbed")
    func absorbed() {
        var fence = liveFence(role: primary)
        _ = fence.handle(.closeRequested(.manual))
        #expect(fence.handle(.commandSeen(.nodeResetStat)) == [])
        #expect(fence.handle(.closeRequested(.manual)) == [])
        #expect(fence.reason == .manual)
        #expect(fence.handle(.nodeStatsRead) == [])
        #expect(fence.handle(.epochOpened) == [])
    }

    // MARK: slot cuts

    @Test("a slot cut walks the same states and ends in cutSlots, not in an epoch's close")
    func slotCut() {
        var fence = liveFence(role: primary)
        #expect(fence.handle(.slotOwnersChanged) == [.stopReadingClients, .startTimer(.maxPause, milliseconds: 500)])
        #expect(fence.cut == .slots)
        #expect(fence.reason == nil)
        #expect(fence.handle(.clientsPaused) == [.startDrain(timeoutMilliseconds: 200)])
        #expect(fence.handle(.drainFinished) == [.readNodeStats])
        #expect(fence.handle(.nodeStatsRead) == [.cutSlots])
        #expect(fence.handle(.epochOpened) == [])
        #expect(fence.handle(.slotsCut) == [.cancelTimer(.maxPause), .cancelTimer(.roleChange), .resumeClients])
        #expect(fence.state == .live)
        #expect(fence.cut == nil)
    }

    @Test("a role change while a slot cut drains makes it an epoch's cut")
    func roleChangeDuringSlotCut() {
        var fence = liveFence(role: primary)
        _ = fence.handle(.slotOwnersChanged)
        _ = fence.handle(.clientsPaused)
        #expect(fence.handle(.roleObserved(replica, runID: "a")) == [])
        #expect(fence.reason == .roleChange)
        #expect(fence.handle(.drainFinished) == [.readNodeStats])
        #expect(fence.handle(.nodeStatsRead) == [.closeEpoch(.roleChange)])
        #expect(fence.handle(.slotsCut) == [])
    }

    @Test("a role change while a slot cut reads the node is followed by the epoch's cut before clients resume")
    func roleChangeWhileSlotCutReads() {
        var fence = liveFence(role: primary)
        _ = fence.handle(.slotOwnersChanged)
        _ = fence.handle(.clientsPaused)
        _ = fence.handle(.drainFinished)
        #expect(fence.handle(.roleObserved(replica, runID: "a")) == [])
        #expect(fence.handle(.nodeStatsRead) == [.cutSlots])
        #expect(fence.handle(.slotsCut) == [.readNodeStats])
        #expect(fence.reason == .roleChange)
        #expect(fence.handle(.nodeStatsRead) == [.closeEpoch(.roleChange)])
        #expect(fence.handle(.epochOpened) == [.cancelTimer(.maxPause), .cancelTimer(.roleChange), .resumeClients])
    }

    @Test("owner changes while a fence is up are absorbed: that cut reads the owners itself")
    func slotCutAbsorbed() {
        var fence = liveFence(role: primary)
        _ = fence.handle(.closeRequested(.manual))
        #expect(fence.handle(.slotOwnersChanged) == [])
        #expect(fence.reason == .manual)
    }

    // MARK: promotion guard (Valkey #1912)

    let affected = ValkeyVersion(major: 8, minor: 1, patch: 0)
    let fixed = ValkeyVersion(major: 8, minor: 1, patch: 1)

    private func liveReplica(version: ValkeyVersion, settings: FailoverFence.Settings? = nil) -> FailoverFence {
        var fence = FailoverFence(settings: settings ?? self.settings)
        #expect(fence.handle(.roleObserved(replica, runID: "a", version: version)) == [])
        return fence
    }

    @Test("an affected node's promotion is guarded first, and the fence resets only after the guard")
    func promotionGuard() {
        var fence = liveReplica(version: affected)
        #expect(fence.writesNeedRoleCheck)
        #expect(
            fence.handle(.roleObserved(primary, runID: "a", version: affected)) == [
                .stopReadingClients, .startTimer(.maxPause, milliseconds: 500), .guardPromotion,
            ])
        #expect(!fence.writesNeedRoleCheck)
        #expect(fence.guardingPromotion)
        _ = fence.handle(.clientsPaused)
        #expect(fence.handle(.drainFinished) == [])
        #expect(fence.state == .draining)
        #expect(fence.handle(.promotionGuarded) == [.readNodeStats])
        #expect(fence.handle(.promotionGuarded) == [])
        #expect(fence.handle(.nodeStatsRead) == [.closeEpoch(.roleChange)])
    }

    @Test("a guard that finishes before the drain lets the drain reset")
    func guardBeforeDrain() {
        var fence = liveReplica(version: affected)
        _ = fence.handle(.roleObserved(primary, runID: "a"))
        _ = fence.handle(.clientsPaused)
        #expect(fence.handle(.promotionGuarded) == [])
        #expect(fence.handle(.drainFinished) == [.readNodeStats])
    }

    @Test("a pre-fence that sees the promotion guards it before resetting")
    func preFenceGuard() {
        var fence = liveReplica(version: affected)
        _ = fence.handle(.commandSeen(.roleChange))
        _ = fence.handle(.clientsPaused)
        #expect(fence.handle(.drainFinished) == [.pollRoleNow])
        #expect(fence.handle(.roleObserved(primary, runID: "a")) == [.guardPromotion])
        #expect(fence.handle(.timerFired(.roleChange)) == [])
        #expect(fence.handle(.promotionGuarded) == [.readNodeStats])
    }

    @Test("no guard for fixed versions, demotions, restarts, or when switched off")
    func noGuard() {
        var fixedNode = liveReplica(version: fixed)
        #expect(!fixedNode.writesNeedRoleCheck)
        #expect(fixedNode.handle(.roleObserved(primary, runID: "a")).first == .stopReadingClients)

        var demoted = FailoverFence(settings: settings)
        _ = demoted.handle(.roleObserved(primary, runID: "a", version: affected))
        #expect(!demoted.writesNeedRoleCheck)
        #expect(demoted.handle(.roleObserved(replica, runID: "a")).first == .stopReadingClients)
        #expect(demoted.writesNeedRoleCheck)

        var restarted = liveReplica(version: affected)
        #expect(restarted.handle(.roleObserved(primary, runID: "b")).first == .stopReadingClients)
        #expect(restarted.reason == .nodeRestart)

        var off = settings
        off.guardsAffectedVersions = false
        var unguarded = liveReplica(version: affected, settings: off)
        #expect(!unguarded.writesNeedRoleCheck)
        #expect(unguarded.handle(.roleObserved(primary, runID: "a")).first == .stopReadingClients)
    }
}
