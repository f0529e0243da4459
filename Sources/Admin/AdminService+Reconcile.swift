import Foundation
import Hummingbird
import Accounting

extension AdminService {
    public func reconcile(mode: ReconcileMode) async throws -> ReconcileReport {
        try await reconcile(QueryReader(parameters: ["mode": mode.rawValue]))
    }

    func reconcile(_ query: QueryReader) async throws -> ReconcileReport {
        let mode = try query.choice("mode", default: ReconcileMode.live)
        let epochBaseline = await backend.epochBaseline()
        guard let baseline = epochBaseline ?? self.baseline else {
            throw Failure(
                .serviceUnavailable, code: "no_baseline",
                "the node's CLUSTER SLOT-STATS could not be read when the epoch began; nothing to compare against")
        }
        let node = await nodeInfo()
        let replicas = (try? await backend.nodeReplicas()) ?? 0
        var fenceReport: FenceReport?
        var liveWindow: LiveWindow?
        let raw: RawSlotStats
        let snapshot: LedgerSnapshot
        switch mode {
        case .live:
            let inFlight = await backend.inFlightCount()
            // The node first: a command answered between the two reads is then on the ledger's side
            // as well as the node's, never on the node's alone.
            raw = try await readNodeStats()
            snapshot = await backend.snapshot()
            liveWindow = LiveWindow(
                inFlightCommands: inFlight,
                note: "read without pausing clients: commands in flight may be counted by one side only")
        case .fenced:
            // Pause, drain, read both sides, resume: all within max_pause_ms. A read still going when
            // the budget is spent resumes the clients first and finishes after (max_pause_exceeded:
            // the cut is then not consistent, and the report says so).
            let clock = ContinuousClock()
            let start = clock.now
            await backend.pauseClientReads(by: .nested)
            let drain = await backend.drain(timeoutMilliseconds: configuration.maxPauseMilliseconds)
            let reading = Task { () -> Result<(RawSlotStats, LedgerSnapshot), any Error> in
                do {
                    let nodeStats = try await self.readNodeStats()
                    return .success((nodeStats, await self.backend.snapshot()))
                } catch {
                    return .failure(error)
                }
            }
            let remaining = configuration.maxPauseMilliseconds - Self.milliseconds(start.duration(to: clock.now))
            let inTime = remaining > 0 ? await answersWithin(milliseconds: remaining) { _ = await reading.value } : false
            await backend.resumeClientReads(by: .nested)
            let paused = Self.milliseconds(start.duration(to: clock.now))
            let read = await reading.value
            let report = FenceReport(
                drained: drain.drained, inFlight: drain.inFlight, drainMilliseconds: drain.elapsedMilliseconds,
                pausedMilliseconds: paused, maxPauseMilliseconds: configuration.maxPauseMilliseconds,
                maxPauseExceeded: !inTime)
            metrics.recordFence(report)
            fenceReport = report
            (raw, snapshot) = try read.get()
        }
        let stats: NodeSlotStats
        do {
            stats = try raw.parse()
        } catch {
            throw Failure(.serviceUnavailable, code: "node_unreadable", "cannot parse CLUSTER SLOT-STATS: \(error)")
        }
        let outcome = Reconciler.reconcile(ledger: snapshot, baseline: baseline, current: stats, replicas: replicas)
        metrics.recordReconciliation(outcome.summary)
        return ReconcileReport(
            mode: mode, epoch: await currentEpoch(), node: node, networkStatsEnabled: stats.networkStatsEnabled,
            nodeResetDetected: outcome.nodeResetDetected, replicas: replicas, fence: fenceReport, liveWindow: liveWindow,
            slots: outcome.slots, summary: outcome.summary, verdict: outcome.verdict)
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }

    private func readNodeStats() async throws -> RawSlotStats {
        do {
            return try await backend.nodeSlotStats()
        } catch {
            throw Failure(.serviceUnavailable, code: "node_unreachable", "cannot read CLUSTER SLOT-STATS: \(error)")
        }
    }
}
