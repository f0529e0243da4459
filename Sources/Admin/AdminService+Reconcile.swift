import Foundation
import AdminQuery
import Proxy
import Hummingbird
import Accounting

extension AdminService {
    public func reconcile(mode: ReconcileMode) async throws -> ReconcileReport {
        try await reconcile(QueryReader(parameters: ["mode": mode.rawValue]))
    }

    /// Fenced reconciliations asked at the same time share one cut (see ``SharedRuns``).
    func reconcile(_ query: QueryReader) async throws -> ReconcileReport {
        let mode = try query.choice("mode", default: ReconcileMode.live)
        guard mode == .fenced else { return try await reconcileNow(mode) }
        return try await fencedReconciliations.value { try await self.reconcileNow(.fenced) }
    }

    private func reconcileNow(_ mode: ReconcileMode) async throws -> ReconcileReport {
        guard await backend.epochBaseline() ?? self.baseline != nil else { throw Self.noBaseline }
        let node = await nodeInfo()
        let replicas = (try? await backend.nodeReplicas()) ?? 0
        var fenceReport: FenceReport?
        var liveWindow: LiveWindow?
        let raw: RawSlotStats
        let snapshot: LedgerSnapshot
        let nodeReplication: ReplicationInfo?
        var replication = ReplicationReport(replicasOnNode: replicas, linksThroughSidecar: 0, primaryOffset: nil, behind: [], stream: nil)
        var baseline: NodeSlotStats?
        switch mode {
        case .live:
            let inFlight = await backend.inFlightCount()
            // The node first: a command answered between the two reads is then on the ledger's side
            // as well as the node's, never on the node's alone.
            let read = try await readNodeStatsAndOwners()
            (raw, nodeReplication) = (read.stats, read.replication)
            snapshot = await backend.snapshot()
            baseline = await backend.epochBaseline() ?? self.baseline
            replication.linksThroughSidecar = await backend.replicationLinks(reaching: 0, timeoutMilliseconds: 0).count
            liveWindow = LiveWindow(
                inFlightCommands: inFlight,
                note: "read without pausing clients: commands in flight may be counted by one side only")
        case .fenced:
            // A slot whose owner changed since the last cut was reset on the node: cut it first (under
            // the sidecar's fence), then read again. So is a reading that a cut of the ledger overlapped
            // (see LedgerCutCount), begun while one was under way or made while the fence cut for a
            // change this read saw too. The third reading is reported as it stands.
            var attempt = 1
            while true {
                let cutsBefore = await backend.ledgerCutsSettled(within: .milliseconds(configuration.maxPauseMilliseconds))
                let read = try await fencedRead()
                if let owners = read.owners, attempt < 3, await backend.cutSlots(ifOwnersDifferFrom: owners) {
                    attempt += 1
                    continue
                }
                baseline = await backend.epochBaseline() ?? self.baseline
                let cutsAfter = await backend.ledgerCutsSettled(within: .zero)
                if attempt < 3, cutsBefore?.inProgress == true || cutsAfter != cutsBefore {
                    attempt += 1
                    continue
                }
                (raw, snapshot, fenceReport, nodeReplication) = (read.stats, read.snapshot, read.report, read.replication)
                replication.primaryOffset = read.replicationOffset
                replication.linksThroughSidecar = read.links.count
                if let offset = read.replicationOffset {
                    replication.behind = read.links.compactMap { link in
                        let pending = link.pendingBytes(primaryOffset: offset)
                        return pending == 0 ? nil : .init(connection: link.connection, pendingBytes: pending)
                    }
                }
                break
            }
        }
        // Read after the node: a slot cut made for this reconciliation moved the baseline.
        guard let baseline else { throw Self.noBaseline }
        let stats: NodeSlotStats
        do {
            stats = try raw.parse()
        } catch {
            throw Failure(.serviceUnavailable, code: "node_unreadable", "cannot parse CLUSTER SLOT-STATS: \(error)")
        }
        replication.droppedStreams = snapshot.droppedReplicaStreams
        let stream = await replicaStream(nodeReplication)
        replication.stream = stream.status
        let outcome = Reconciler.reconcile(
            ledger: snapshot, baseline: baseline, current: stats, replicationIncomplete: replication.isIncomplete,
            replicaStream: stream.bytesIn, replicaStreamUnknown: stream.status != nil && stream.bytesIn == nil)
        metrics.recordReconciliation(outcome.summary)
        return ReconcileReport(
            mode: mode, epoch: await currentEpoch(), node: node, networkStatsEnabled: stats.networkStatsEnabled,
            nodeResetDetected: outcome.nodeResetDetected, replicas: replicas, replication: replication, fence: fenceReport,
            liveWindow: liveWindow,
            slots: outcome.slots, notReported: outcome.notReported,
            slotCuts: await backend.epochs().map { $0.open.slotCuts.count + $0.open.slotCutsOmitted } ?? 0,
            summary: outcome.summary, verdict: outcome.verdict)
    }

    /// Pauses, drains, reads both sides, resumes: all within max_pause_ms. A read still going when
    /// the budget is spent resumes the clients first and finishes after (max_pause_exceeded: the cut
    /// is then not consistent, and the report says so).
    private func fencedRead() async throws -> FencedRead {
        let clock = ContinuousClock()
        let start = clock.now
        await backend.pauseClientReads(by: .nested)
        let drain = await backend.drain(timeoutMilliseconds: configuration.maxPauseMilliseconds)
        let budget = configuration.maxPauseMilliseconds
        let reading = Task { () -> Result<FencedRead, any Error> in
            do {
                let node = try await self.readNodeStatsAndOwners()
                // What the node charged its replicas for crosses their links before the ledger is read.
                let offset = node.replication?.replicationOffset
                let links = await self.backend.replicationLinks(reaching: offset ?? 0, timeoutMilliseconds: offset == nil ? 0 : budget / 2)
                return .success(
                    FencedRead(
                        stats: node.stats, owners: node.owners, replication: node.replication, links: links,
                        snapshot: await self.backend.snapshot(), report: nil))
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
        var fenced = try read.get()
        fenced.report = report
        return fenced
    }

    /// On a replica: what it counted of its primary's stream since the period began, per slot, from
    /// the primary's sidecar (nil figures, with the cause in the status, when not exact). Asked after
    /// the clients resumed: the offset was fixed by the read.
    private func replicaStream(_ replication: ReplicationInfo?) async -> (status: ReplicaStreamStatus?, bytesIn: [UInt64]?) {
        guard let replication, replication.isReplica else { return (nil, nil) }
        var status = ReplicaStreamStatus(
            primary: replication.primaryAddress, processedOffset: replication.processedOffset, bytesIn: nil, gap: nil, detail: nil)
        let delta: Result<[UInt64], ReplicaStreamGap>
        switch await backend.readReplicaStream(replication) {
        case .notReplica:
            return (nil, nil)
        case .failed(_, let gap, let detail):
            status.detail = detail
            delta = .failure(gap)
        case .counts(let primary, let counts):
            if counts.chain == nil && replication.primaryLinkUp == true {
                status.detail = "the primary's sidecar forwarded no stream to this replica"
                delta = .failure(.linkNotThroughSidecar)
            } else if let baseline = await backend.replicaStreamBaseline() {
                delta = baseline.delta(to: counts, primary: primary)
            } else {
                delta = .failure(.noBaseline)
            }
        }
        switch delta {
        case .success(let bytes):
            status.bytesIn = bytes.reduce(0, &+)
            return (status, bytes)
        case .failure(let gap):
            status.gap = gap
            return (status, nil)
        }
    }

    /// Both sides as a fenced read found them.
    private struct FencedRead {
        var stats: RawSlotStats
        var owners: SlotOwners?
        var replication: ReplicationInfo?
        var replicationOffset: Int64? { replication?.replicationOffset }
        var links: [ProxyServer.ReplicationLinkStatus]
        var snapshot: LedgerSnapshot
        var report: FenceReport?
    }

    private static var noBaseline: Failure {
        Failure(
            .serviceUnavailable, code: "no_baseline",
            "the node's CLUSTER SLOT-STATS could not be read when the epoch began; nothing to compare against")
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }

    private func readNodeStatsAndOwners() async throws -> (stats: RawSlotStats, owners: SlotOwners?, replication: ReplicationInfo?) {
        do {
            return try await backend.nodeSlotStatsAndOwners()
        } catch {
            throw Failure(.serviceUnavailable, code: "node_unreachable", "cannot read CLUSTER SLOT-STATS and CLUSTER NODES: \(error)")
        }
    }
}
