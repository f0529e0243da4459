import RESP

/// A cluster node as another node's `CLUSTER NODES` names it.
public struct ClusterNodeName: Hashable, Sendable, Codable {
    /// The 40-character node id.
    public var id: String
    /// `host:port` as announced (with slotwarden, the node's sidecar).
    public var address: String

    public init(id: String, address: String) {
        self.id = id
        self.address = address
    }
}

/// One node's view of who owns each of the 16384 slots, read from its `CLUSTER NODES`.
///
/// A node zeroes a slot's `CLUSTER SLOT-STATS` counters whenever its view of that slot's owner
/// changes (a migration, or a failover of any shard: `clusterAddSlot`/`clusterDelSlot`), and reports
/// only the slots of its own shard (docs/accounting.md §5 and §9). Two views compared slot by slot
/// tell which slots were reset in between, and the view tells which slots the node reports.
public struct SlotOwners: Equatable, Sendable {
    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Every primary that owns at least one slot, in the order first seen.
    public private(set) var primaries: [ClusterNodeName]
    /// Per slot, an index into `primaries`, or `unassigned`.
    private var ownerIndex: [UInt16]
    /// The node that gave this view.
    public private(set) var myself: ClusterNodeName
    /// The primary of the node's shard: the node itself, or the primary it replicates.
    public private(set) var shardPrimaryID: String?

    private static let unassigned = UInt16.max

    /// Parses the text of `CLUSTER NODES`: one line per node, `id host:port@bus[,hostname] flags
    /// primary ping pong epoch link slot…`, where a slot entry is `n`, `a-b`, or an importing or
    /// migrating marker in brackets (not ownership).
    public init(clusterNodes text: String) throws {
        primaries = []
        ownerIndex = Array(repeating: Self.unassigned, count: HashSlot.count)
        var myselfName: ClusterNodeName?
        var myPrimary: String?
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 8 else { throw ParseError(description: "CLUSTER NODES line with \(fields.count) fields: \(line)") }
            let address = fields[1].prefix { $0 != "@" && $0 != "," }
            let name = ClusterNodeName(id: String(fields[0]), address: String(address))
            let flags = fields[2].split(separator: ",")
            if flags.contains("myself") {
                myselfName = name
                myPrimary = flags.contains("master") ? name.id : fields[3] == "-" ? nil : String(fields[3])
            }
            guard fields.count > 8 else { continue }
            var index: UInt16?
            for token in fields[8...] where token.first != "[" {
                let bounds = token.split(separator: "-", maxSplits: 1)
                guard let low = bounds.first.flatMap({ Int($0) }), let high = bounds.count == 2 ? Int(bounds[1]) : low,
                    0 <= low, low <= high, high < HashSlot.count
                else { throw ParseError(description: "CLUSTER NODES slot entry \(token) of \(name.id)") }
                let owner = index ?? UInt16(primaries.count)
                if index == nil {
                    index = owner
                    primaries.append(name)
                }
                for slot in low...high { ownerIndex[slot] = owner }
            }
        }
        guard let myselfName else { throw ParseError(description: "CLUSTER NODES names no node as myself") }
        myself = myselfName
        shardPrimaryID = myPrimary
    }

    /// The primary that owns `slot`, nil while no node does.
    public func owner(of slot: HashSlot) -> ClusterNodeName? {
        let index = ownerIndex[Int(slot.rawValue)]
        return index == Self.unassigned ? nil : primaries[Int(index)]
    }

    /// Whether the node reports `slot` in `CLUSTER SLOT-STATS`: its shard owns it.
    public func isReported(_ slot: HashSlot) -> Bool {
        shardPrimaryID != nil && owner(of: slot)?.id == shardPrimaryID
    }

    /// The slots whose owner (by node id) differs between `earlier` and this view, in slot order.
    public func changes(since earlier: SlotOwners) -> [SlotOwnerChange] {
        var changes: [SlotOwnerChange] = []
        for index in 0..<HashSlot.count {
            let slot = HashSlot(rawValue: UInt16(index)).unsafelyUnwrapped
            let before = earlier.owner(of: slot)
            let after = owner(of: slot)
            if before?.id != after?.id {
                changes.append(
                    SlotOwnerChange(
                        slot: slot, previousOwner: before, newOwner: after, wasReported: earlier.isReported(slot),
                        isReported: isReported(slot)))
            }
        }
        return changes
    }

    /// Whether some slot's owner (by node id) differs from `earlier`. Runs at every role poll, so it
    /// allocates nothing per slot: `earlier`'s few owners are mapped to this view's once, then the two
    /// tables are compared slot by slot.
    public func ownersDiffer(from earlier: SlotOwners) -> Bool {
        let absent = Self.unassigned - 1
        let mapping = earlier.primaries.map { name in primaries.firstIndex { $0.id == name.id }.map { UInt16($0) } ?? absent }
        for slot in 0..<HashSlot.count {
            let old = earlier.ownerIndex[slot]
            if (old == Self.unassigned ? Self.unassigned : mapping[Int(old)]) != ownerIndex[slot] { return true }
        }
        return false
    }
}

/// One slot whose owner changed between two views of the same node.
public struct SlotOwnerChange: Equatable, Sendable {
    public var slot: HashSlot
    public var previousOwner: ClusterNodeName?
    public var newOwner: ClusterNodeName?
    /// The node reported the slot before the change (its shard owned it) …
    public var wasReported: Bool
    /// … and after.
    public var isReported: Bool

    public init(slot: HashSlot, previousOwner: ClusterNodeName?, newOwner: ClusterNodeName?, wasReported: Bool, isReported: Bool) {
        self.slot = slot
        self.previousOwner = previousOwner
        self.newOwner = newOwner
        self.wasReported = wasReported
        self.isReported = isReported
    }
}
