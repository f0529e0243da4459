/// What made the sidecar look at the slot owners when it found a change.
public enum SlotCutTrigger: String, Sendable, Codable, CaseIterable {
    /// The periodic poll of the control connection.
    case poll
    /// A `-MOVED`/`-ASK` reply or an ownership command (`CLUSTER SETSLOT`, `CLUSTER MIGRATESLOTS`, …)
    /// crossed the sidecar, which polled at once.
    case hint
    /// A fenced reconciliation found the owners changed since the last cut.
    case reconcile
}

/// One slot of a cut: its owner before and after, and the counters that closed with it.
public struct SlotCutRow: Equatable, Sendable, Codable {
    public var slot: UInt16
    public var previousOwner: ClusterNodeName?
    public var newOwner: ClusterNodeName?
    /// The node reported the slot (its shard owned it) before the change, and after it.
    public var wasReported: Bool
    public var isReported: Bool
    /// The ledger's counters for the slot since the epoch opened or the slot's previous cut (wire and
    /// node views): what the node dropped when it reset the slot.
    public var wire: SlotCounters
    public var node: SlotCounters
    /// The node's counters for the slot at the cut, counted since its reset: the open period's
    /// baseline. Nil when the node does not report the slot.
    public var nodeBytesInAtCut: UInt64?
    public var nodeBytesOutAtCut: UInt64?

    public init(change: SlotOwnerChange, wire: SlotCounters, node: SlotCounters, nodeAtCut: NodeSlotStat?) {
        slot = change.slot.rawValue
        previousOwner = change.previousOwner
        newOwner = change.newOwner
        wasReported = change.wasReported
        isReported = change.isReported
        self.wire = wire
        self.node = node
        nodeBytesInAtCut = change.isReported ? nodeAtCut?.networkBytesIn ?? 0 : nil
        nodeBytesOutAtCut = change.isReported ? nodeAtCut?.networkBytesOut ?? 0 : nil
    }
}

/// A cut of some slots inside an epoch: the node reset their counters because their owner changed,
/// so the ledger closed them and both sides restarted together.
///
/// A cut that touches a slot the node reports (before or after the change) is fenced like an epoch's
/// cut: clients paused and drained, the node's counters and owners read in one `MULTI`, the ledger's
/// slots zeroed, the node's values taken as the slots' new baseline. A cut of slots the node reports
/// neither before nor after (another shard's failover or migration, seen from an uninvolved node) only
/// zeroes what the ledger kept for them (`-MOVED`-refused commands, which the node counts but never
/// reports) and does not pause anyone.
public struct SlotCut: Equatable, Sendable, Codable {
    /// Sequential within the process.
    public var id: UInt64
    public var epoch: UInt64
    /// Seconds since 1970.
    public var at: Double
    public var trigger: SlotCutTrigger
    public var fenced: Bool
    public var slots: [SlotCutRow]
    public var pauseMilliseconds: Int
    public var drainMilliseconds: Int
    public var drainTimedOut: Bool
    public var maxPauseExceeded: Bool

    public init(id: UInt64, epoch: UInt64, at: Double, trigger: SlotCutTrigger, fenced: Bool, slots: [SlotCutRow]) {
        self.id = id
        self.epoch = epoch
        self.at = at
        self.trigger = trigger
        self.fenced = fenced
        self.slots = slots
        pauseMilliseconds = 0
        drainMilliseconds = 0
        drainTimedOut = false
        maxPauseExceeded = false
    }
}

/// The most recent cuts, oldest first, bounded; and how many there were in all.
public struct SlotCutHistory: Sendable {
    public let capacity: Int
    public private(set) var cuts: [SlotCut] = []
    public private(set) var total: UInt64 = 0
    public private(set) var slotsCut: UInt64 = 0

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    public mutating func append(_ cut: SlotCut) {
        total += 1
        slotsCut += UInt64(cut.slots.count)
        cuts.append(cut)
        if cuts.count > capacity { cuts.removeFirst(cuts.count - capacity) }
    }
}
