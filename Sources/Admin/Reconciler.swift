import Accounting
import RESP

/// Compares the ledger's `node` view with the node's `CLUSTER SLOT-STATS` delta since the baseline,
/// slot by slot. Pure: the service reads both sides, this decides.
public enum Reconciler {
    public struct Outcome: Sendable, Equatable {
        public var slots: [SlotReconciliation]
        public var summary: ReconcileSummary
        public var verdict: ReconcileVerdict
        public var nodeResetDetected: Bool
        /// Slots the ledger counted that the node does not report (see ``SlotNotReported``).
        public var notReported: [SlotNotReported]
    }

    /// `replicationIncomplete`: some of the replication stream the node charged is not on the ledger
    /// (see ``ReplicationReport``); it explains a node that counted more bytes out.
    /// `replicaStream`: on a replica, the stream bytes it counted per slot over the period (see
    /// ``ReplicaStreamBaseline``); `replicaStreamUnknown`: it received a stream that could not be counted.
    public static func reconcile(
        ledger: LedgerSnapshot, baseline: NodeSlotStats, current: NodeSlotStats, replicationIncomplete: Bool = false,
        replicaStream: [UInt64]? = nil, replicaStreamUnknown: Bool = false
    )
        -> Outcome
    {
        let before = baseline.bySlot()
        let now = current.bySlot()
        let statsEnabled = current.networkStatsEnabled
        var slots: [SlotReconciliation] = []
        var summary = ReconcileSummary(
            slotsCompared: 0, match: 0, nodeHigher: 0, ledgerHigher: 0, explained: 0, unexplained: 0,
            bytesInDifference: 0, bytesOutDifference: 0)
        var resetDetected = false
        var notReported: [SlotNotReported] = []
        for index in 0..<HashSlot.count {
            let slot = HashSlot(rawValue: UInt16(index))!
            let counted = ledger[.node, slot]
            let streamed = replicaStream?[index] ?? 0
            guard let end = now[slot] else {
                if counted.bytesIn != 0 || counted.bytesOut != 0 {
                    notReported.append(SlotNotReported(slot: index, ledger: ByteCounts(bytesIn: counted.bytesIn, bytesOut: counted.bytesOut)))
                }
                continue
            }
            let start = before[slot] ?? NodeSlotStat(slot: slot)
            let reset = end.networkBytesIn < start.networkBytesIn || end.networkBytesOut < start.networkBytesOut
            // After a reset the node counts from zero: its current value is all that is left.
            let nodeIn = reset ? end.networkBytesIn : end.networkBytesIn - start.networkBytesIn
            let nodeOut = reset ? end.networkBytesOut : end.networkBytesOut - start.networkBytesOut
            if reset { resetDetected = true }
            guard counted.bytesIn != 0 || counted.bytesOut != 0 || nodeIn != 0 || nodeOut != 0 || streamed != 0 || reset else { continue }
            let differenceIn = Int64(bitPattern: nodeIn &- counted.bytesIn &- streamed)
            let differenceOut = Int64(bitPattern: nodeOut &- counted.bytesOut)
            let deciding = differenceIn != 0 ? differenceIn : differenceOut
            let status: SlotStatus = deciding == 0 ? .match : deciding > 0 ? .nodeHigher : .ledgerHigher
            var reasons: [DifferenceReason] = []
            if status != .match {
                if !statsEnabled { reasons.append(.statsDisabled) }
                if reset { reasons.append(.nodeReset) }
                if differenceIn > 0 && !reset && statsEnabled {
                    reasons.append(replicaStreamUnknown ? .replication : .bypassedSidecar)
                }
                if differenceOut > 0 && ledger.scriptRan(in: slot) { reasons.append(.script) }
                if differenceOut < 0 && ledger.isMarked(.replicatedDelete, slot) && statsEnabled { reasons.append(.expiry) }
                if differenceOut > 0 && replicationIncomplete && !reset && statsEnabled { reasons.append(.replication) }
            }
            summary.slotsCompared += 1
            switch status {
            case .match: summary.match += 1
            case .nodeHigher: summary.nodeHigher += 1
            case .ledgerHigher: summary.ledgerHigher += 1
            }
            if status != .match {
                if reasons.isEmpty { summary.unexplained += 1 } else { summary.explained += 1 }
            }
            summary.bytesInDifference += differenceIn
            summary.bytesOutDifference += differenceOut
            slots.append(
                SlotReconciliation(
                    slot: index, status: status,
                    ledger: ByteCounts(bytesIn: counted.bytesIn, bytesOut: counted.bytesOut),
                    replicationIn: streamed == 0 ? nil : streamed,
                    node: ByteCounts(bytesIn: nodeIn, bytesOut: nodeOut),
                    difference: ByteDifference(bytesIn: differenceIn, bytesOut: differenceOut),
                    reasons: reasons))
        }
        let verdict: ReconcileVerdict =
            !statsEnabled ? .unavailable : summary.match == summary.slotsCompared ? .match : .difference
        return Outcome(slots: slots, summary: summary, verdict: verdict, nodeResetDetected: resetDetected, notReported: notReported)
    }
}
