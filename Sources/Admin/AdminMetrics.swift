import Accounting
import Proxy
import Prometheus
import RESP
import Synchronization

/// The Prometheus registry behind `GET /metrics`. Ledger counters are brought up to date at each
/// scrape from one snapshot (counters only ever advance by the difference since the last scrape);
/// fence and reconciliation metrics are recorded as they happen.
public final class AdminMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// Per-slot series exist only for this many of the busiest slots, never for all 16384 (a reload
    /// may change it; slots already published keep their series).
    public var topSlots: Int {
        get { topSlotsSetting.load(ordering: .relaxed) }
        set { topSlotsSetting.store(newValue, ordering: .relaxed) }
    }
    private let topSlotsSetting: Atomic<Int>
    private let state = Mutex(State())

    private struct State {
        /// The value each ledger-driven counter had at the last scrape, keyed by name and labels.
        var published: [String: UInt64] = [:]
        var slotSeries: [Int: [Counter]] = [:]
        /// How many of the failover fence's pause and drain durations are already in the histograms.
        var fencePausesRecorded = 0
        var fenceDrainsRecorded = 0
    }

    let fenced: Gauge
    let fences: Counter
    let fenceTimeouts: Counter
    let pauseDuration: DurationHistogram
    let drainDuration: DurationHistogram
    let reconciliations: Counter
    let differingSlots: Gauge
    let differenceBytesIn: Gauge
    let differenceBytesOut: Gauge
    let epoch: Gauge
    /// Reloads of the configuration file (SIGHUP), by result.
    let reloadsApplied: Counter
    let reloadsFailed: Counter

    public init(
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), topSlots: Int = 16, version: String,
        nodeVersion: String
    ) {
        self.registry = registry
        self.topSlotsSetting = Atomic(topSlots)
        let buckets: [Duration] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000].map { .milliseconds($0) }
        fenced = registry.makeGauge(descriptor: Self.name("fenced", "", "1 while client reads are paused"))
        fences = registry.makeCounter(descriptor: Self.name("fences", "total", "Fences taken (pause and drain)"))
        fenceTimeouts = registry.makeCounter(
            descriptor: Self.name("fence_timeouts", "total", "Fences whose drain did not finish within max_pause_ms"))
        pauseDuration = registry.makeDurationHistogram(
            descriptor: Self.name("fence_pause", "seconds", "How long client reads stayed paused"), buckets: buckets)
        drainDuration = registry.makeDurationHistogram(
            descriptor: Self.name("fence_drain", "seconds", "How long the in-flight drain took"), buckets: buckets)
        reconciliations = registry.makeCounter(descriptor: Self.name("reconciliations", "total", "Reconciliations run"))
        differingSlots = registry.makeGauge(
            descriptor: Self.name("reconcile_differing_slots", "", "Slots that differed in the last reconciliation"))
        differenceBytesIn = registry.makeGauge(
            descriptor: Self.name("reconcile_difference_bytes_in", "", "Node minus ledger bytes in, last reconciliation"))
        differenceBytesOut = registry.makeGauge(
            descriptor: Self.name("reconcile_difference_bytes_out", "", "Node minus ledger bytes out, last reconciliation"))
        reloadsApplied = registry.makeCounter(
            descriptor: Self.name("config_reloads", "total", "Configuration reloads (SIGHUP), by result"), labels: [("result", "applied")])
        reloadsFailed = registry.makeCounter(
            descriptor: Self.name("config_reloads", "total", "Configuration reloads (SIGHUP), by result"), labels: [("result", "failed")])
        registry.makeGauge(
            descriptor: Self.name("build_info", "", "slotwarden's version and its node's"),
            labels: [("version", version), ("node_version", nodeVersion)]
        ).set(to: 1)
        epoch = registry.makeGauge(descriptor: Self.name("epoch", "", "The current epoch id"))
        epoch.set(to: 1)
    }

    /// A reload of the configuration file was applied, or refused (the running configuration stays).
    public func recordReload(applied: Bool) {
        (applied ? reloadsApplied : reloadsFailed).increment()
    }

    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "slotwarden", metricName: metric, unitName: unit, helpText: help)
    }

    func recordFence(_ report: FenceReport) {
        fences.increment()
        if !report.drained || report.maxPauseExceeded { fenceTimeouts.increment() }
        pauseDuration.record(.milliseconds(report.pausedMilliseconds))
        drainDuration.record(.milliseconds(report.drainMilliseconds))
    }

    func recordReconciliation(_ summary: ReconcileSummary) {
        reconciliations.increment()
        differingSlots.set(Int64(summary.nodeHigher + summary.ledgerHigher))
        differenceBytesIn.set(summary.bytesInDifference)
        differenceBytesOut.set(summary.bytesOutDifference)
    }

    /// Brings the ledger-driven series up to `snapshot` and renders the exposition text.
    public func render(
        snapshot: LedgerSnapshot, connections: ProxyServer.ConnectionCounts, paused: Bool, role: String?,
        fence: FenceStatus? = nil
    ) -> String {
        fenced.set(to: paused ? 1 : 0)
        if let fence {
            epoch.set(to: Double(fence.epochID))
            state.withLock { state in
                let counters = fence.counters
                advance(&state, "failover_fences", [], to: counters.fences)
                advance(&state, "failover_fence_timeouts", [], to: counters.drainTimeouts + counters.maxPauseTimeouts)
                advance(&state, "carried_over_commands", [], to: counters.carriedOverCommands)
                advance(&state, "promotion_guards", [], to: counters.promotionGuards)
                advance(&state, "promotion_guard_failures", [], to: counters.promotionGuardFailures)
                advance(&state, "slot_cuts", [("fenced", "true")], to: counters.fencedSlotCuts)
                advance(&state, "slot_cuts", [("fenced", "false")], to: counters.unfencedSlotCuts)
                advance(&state, "slots_cut", [], to: counters.slotsCut)
                advance(&state, "replica_stream_fences", [], to: UInt64(fence.replicaStreamFences))
                for milliseconds in counters.pauseMilliseconds.dropFirst(state.fencePausesRecorded) {
                    pauseDuration.record(.milliseconds(milliseconds))
                }
                for milliseconds in counters.drainMilliseconds.dropFirst(state.fenceDrainsRecorded) {
                    drainDuration.record(.milliseconds(milliseconds))
                }
                state.fencePausesRecorded = counters.pauseMilliseconds.count
                state.fenceDrainsRecorded = counters.drainMilliseconds.count
            }
        }
        registry.makeGauge(descriptor: Self.name("connections_active", "", "Client connections open now")).set(Int64(connections.active))
        registry.makeGauge(
            descriptor: Self.name(
                "replica_streams_dropped", "", "Replicas that left during their full resync this epoch: the node dropped the stream it charged them")
        ).set(Int64(snapshot.droppedReplicaStreams))
        state.withLock { state in
            let total = snapshot.total(.wire)
            advance(&state, "bytes_in", [], to: total.bytesIn)
            advance(&state, "bytes_out", [], to: total.bytesOut)
            advance(&state, "commands", [], to: total.commands)
            for bucket in Bucket.allCases {
                let counters = snapshot[bucket]
                let labels = [("bucket", bucket.description)]
                advance(&state, "bucket_bytes_in", labels, to: counters.bytesIn)
                advance(&state, "bucket_bytes_out", labels, to: counters.bytesOut)
                advance(&state, "bucket_commands", labels, to: counters.commands)
            }
            advance(&state, "connections_accepted", [], to: connections.accepted)
            advance(&state, "connections_rejected", [], to: connections.rejected)
            updateTopSlots(&state, snapshot)
        }
        if let role {
            for known in Set(["master", "slave", "unknown", role]).sorted() {
                registry.makeGauge(descriptor: Self.name("node_role", "", "1 for the node's current role"), labels: [("role", known)])
                    .set(to: known == role ? 1 : 0)
            }
        }
        return registry.emitToString()
    }

    /// The help text of each ledger-driven counter (a name must always carry the same text).
    static let counterHelp: [String: String] = [
        "bytes_in": "Bytes received from clients",
        "bytes_out": "Bytes sent to clients",
        "commands": "Commands forwarded",
        "bucket_bytes_in": "Bytes received, outside the slots",
        "bucket_bytes_out": "Bytes sent, outside the slots",
        "bucket_commands": "Commands outside the slots",
        "connections_accepted": "Client connections accepted",
        "connections_rejected": "Client connections refused (max_clients)",
        "slot_bytes_in": "Bytes received for one of the busiest slots",
        "slot_bytes_out": "Bytes sent for one of the busiest slots",
        "slot_commands": "Commands for one of the busiest slots",
        "failover_fences": "Fences raised around a role change, a node restart, a reset or an epoch close",
        "failover_fence_timeouts": "Failover fences whose drain or max pause ran out",
        "carried_over_commands": "Commands still in flight at an epoch's close, completed in the next",
        "promotion_guards": "Promotions of a node of an affected version (Valkey #1912) that the fence guarded",
        "promotion_guard_failures": "Promotion guards the control connection could not carry out",
        "slot_cuts": "Slot cuts: owner changes that reset slots on the node, cut under the fence or (slots it never reported) without",
        "slots_cut": "Slots cut in all slot cuts",
        "replica_stream_fences": "Pauses around a replica's link: a PSYNC that may continue, or a replica that left",
    ]

    private func counter(_ metric: String, _ labels: [(String, String)]) -> Counter {
        registry.makeCounter(descriptor: Self.name(metric, "total", Self.counterHelp[metric] ?? metric), labels: labels)
    }

    private func advance(_ state: inout State, _ metric: String, _ labels: [(String, String)], to value: UInt64) {
        let key = metric + labels.map { "|\($0.0)=\($0.1)" }.joined()
        let last = state.published[key] ?? 0
        var series = counter(metric, labels)
        if value < last {
            // The ledger was reset: a new series starts from zero.
            registry.unregisterCounter(series)
            series = counter(metric, labels)
            series.increment(by: Int64(clamping: value))
        } else if value > last {
            series.increment(by: Int64(clamping: value - last))
        }
        state.published[key] = value
    }

    private func updateTopSlots(_ state: inout State, _ snapshot: LedgerSnapshot) {
        let ranked = snapshot.activeSlots
            .map { (slot: $0, counters: snapshot[.wire, $0]) }
            .sorted { ($0.counters.bytesIn &+ $0.counters.bytesOut, $1.slot) > ($1.counters.bytesIn &+ $1.counters.bytesOut, $0.slot) }
            .prefix(topSlots)
        let keep = Set(ranked.map { Int($0.slot.rawValue) })
        for (slot, series) in state.slotSeries where !keep.contains(slot) {
            series.forEach(registry.unregisterCounter)
            for metric in ["slot_bytes_in", "slot_bytes_out", "slot_commands"] {
                state.published["\(metric)|slot=\(slot)"] = nil
            }
            state.slotSeries[slot] = nil
        }
        for entry in ranked {
            let slot = Int(entry.slot.rawValue)
            let labels = [("slot", "\(slot)")]
            advance(&state, "slot_bytes_in", labels, to: entry.counters.bytesIn)
            advance(&state, "slot_bytes_out", labels, to: entry.counters.bytesOut)
            advance(&state, "slot_commands", labels, to: entry.counters.commands)
            state.slotSeries[slot] = ["slot_bytes_in", "slot_bytes_out", "slot_commands"].map { counter($0, labels) }
        }
    }
}

extension AdminMetrics {
    /// A swift-metrics factory that records into this registry, each name prefixed `slotwarden_`:
    /// bootstrap `MetricsSystem` with it so that any module's swift-metrics instruments appear in
    /// `/metrics` next to the ledger's.
    public func swiftMetricsFactory() -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.nameAndLabelSanitizer = { name, labels in
            (name.hasPrefix("slotwarden_") ? name : "slotwarden_" + name, labels)
        }
        return factory
    }
}
