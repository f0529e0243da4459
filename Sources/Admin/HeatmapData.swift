import Accounting
import RESP

/// What the heat map of 16384 slots draws (`GET /v1/heatmap/data` for one sidecar's node, and the
/// page `slotwarden fleet heatmap` writes for a whole cluster): per slot its owner and its counts,
/// as one array per measure indexed by slot, so that the page needs no lookups.
public struct HeatmapData: Codable, Sendable, Equatable {
    /// A primary that owns slots, as its node's `CLUSTER NODES` (or `CLUSTER SHARDS`) names it.
    public struct Owner: Codable, Sendable, Equatable {
        public var id: String
        /// `host:port` as announced: with slotwarden, the sidecar's.
        public var address: String

        public init(id: String, address: String) {
            self.id = id
            self.address = address
        }
    }

    /// What the map shows, e.g. the node or the cluster it was made for.
    public var title: String
    /// When the data was read (ISO 8601).
    public var generatedAt: String
    /// Where the counts come from, in a sentence (the ledger's node view since which cut).
    public var source: String
    public var owners: [Owner]
    /// Per slot, an index into `owners`, or -1 while no node owns it.
    public var owner: [Int]
    /// Per slot: the ledger's node view (what the node counts for the traffic that crossed slotwarden).
    public var commands: [UInt64]
    public var bytesIn: [UInt64]
    public var bytesOut: [UInt64]
    /// Per slot, from the owning node's `CLUSTER SLOT-STATS` (nil when it could not be read).
    public var keys: [UInt64]?
    public var cpuUsec: [UInt64]?

    public init(
        title: String, generatedAt: String, source: String, owners: [Owner], owner: [Int], commands: [UInt64], bytesIn: [UInt64],
        bytesOut: [UInt64], keys: [UInt64]?, cpuUsec: [UInt64]?
    ) {
        self.title = title
        self.generatedAt = generatedAt
        self.source = source
        self.owners = owners
        self.owner = owner
        self.commands = commands
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.keys = keys
        self.cpuUsec = cpuUsec
    }

    /// One node's map: `ledger`'s node view for every slot, the owners as the node sees them, and
    /// the node's own key counts and CPU time for the slots it reports.
    public init(title: String, generatedAt: String, source: String, ledger: LedgerSnapshot, owners: SlotOwners?, stats: NodeSlotStats?) {
        var names: [Owner] = []
        var ownerOfSlot = Array(repeating: -1, count: HashSlot.count)
        var indexByID: [String: Int] = [:]
        var commands = Array(repeating: UInt64(0), count: HashSlot.count)
        var bytesIn = commands
        var bytesOut = commands
        for index in 0..<HashSlot.count {
            let slot = HashSlot(rawValue: UInt16(index)).unsafelyUnwrapped
            let counters = ledger[.node, slot]
            (commands[index], bytesIn[index], bytesOut[index]) = (counters.commands, counters.bytesIn, counters.bytesOut)
            guard let name = owners?.owner(of: slot) else { continue }
            if let known = indexByID[name.id] {
                ownerOfSlot[index] = known
            } else {
                indexByID[name.id] = names.count
                ownerOfSlot[index] = names.count
                names.append(Owner(id: name.id, address: name.address))
            }
        }
        var keys: [UInt64]?
        var cpu: [UInt64]?
        if let stats {
            var keyCounts = Array(repeating: UInt64(0), count: HashSlot.count)
            var cpuTimes = keyCounts
            for row in stats.rows {
                keyCounts[Int(row.slot.rawValue)] = row.keyCount
                cpuTimes[Int(row.slot.rawValue)] = row.cpuMicroseconds
            }
            (keys, cpu) = (keyCounts, cpuTimes)
        }
        self.init(
            title: title, generatedAt: generatedAt, source: source, owners: names, owner: ownerOfSlot, commands: commands, bytesIn: bytesIn,
            bytesOut: bytesOut, keys: keys, cpuUsec: cpu)
    }

    /// Whether every per-slot array has one entry per slot and every owner index is valid.
    public var isWellFormed: Bool {
        let counts = [owner.count, commands.count, bytesIn.count, bytesOut.count, keys?.count ?? HashSlot.count, cpuUsec?.count ?? HashSlot.count]
        return counts.allSatisfy { $0 == HashSlot.count } && owner.allSatisfy { $0 >= -1 && $0 < owners.count }
    }
}

/// The same figures as ``HeatmapData`` for the slots with any, one row each (`GET /v1/heatmap/rows`):
/// what `slotwarden fleet` asks every sidecar for. A node counts traffic for its own shard's slots
/// and the few it refused, so on a large cluster this is a few dozen rows instead of 16384 × 6 numbers.
public struct HeatmapRows: Codable, Sendable, Equatable {
    public struct Row: Codable, Sendable, Equatable {
        public var slot: Int
        public var commands: UInt64
        public var bytesIn: UInt64
        public var bytesOut: UInt64
        public var keys: UInt64?
        public var cpuUsec: UInt64?
    }

    public var generatedAt: String
    /// Whether the node's key counts and CPU time were read (rows without them are zero then).
    public var nodeRead: Bool
    public var rows: [Row]

    public init(_ data: HeatmapData) {
        generatedAt = data.generatedAt
        nodeRead = data.keys != nil
        rows = (0..<HashSlot.count).compactMap { slot in
            let keys = data.keys?[slot]
            let cpu = data.cpuUsec?[slot]
            guard data.commands[slot] != 0 || data.bytesIn[slot] != 0 || data.bytesOut[slot] != 0 || (keys ?? 0) != 0 || (cpu ?? 0) != 0 else {
                return nil
            }
            return Row(
                slot: slot, commands: data.commands[slot], bytesIn: data.bytesIn[slot], bytesOut: data.bytesOut[slot], keys: keys,
                cpuUsec: cpu)
        }
    }

    /// Whether every row names a slot.
    public var isWellFormed: Bool { rows.allSatisfy { (0..<HashSlot.count).contains($0.slot) } }
}
