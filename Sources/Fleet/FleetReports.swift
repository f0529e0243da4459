import Admin
import Foundation
import RESP

/// One reconciliation for the whole cluster, from every sidecar's fenced reconciliation.
public struct FleetReconciliation: Codable, Sendable, Equatable {
    public enum Verdict: String, Codable, Sendable {
        /// Every sidecar answered and matched its node.
        case match
        /// Every sidecar answered; at least one did not match.
        case difference
        /// Some sidecar could not be asked, could not compare, or read its two sides in more than its
        /// `max_pause_ms` (not a consistent cut: ask again, or give it a longer pause).
        case incomplete

        /// `slotwarden fleet reconcile`'s exit status.
        public var exitCode: Int32 {
            switch self {
            case .match: 0
            case .difference: 1
            case .incomplete: 2
            }
        }
    }

    public struct Node: Codable, Sendable, Equatable {
        public var shard: Int
        public var id: String
        public var address: String
        public var role: String
        public var admin: String?
        /// `match`, `difference` or `unavailable`; nil when the sidecar could not be asked.
        public var verdict: String?
        public var slotsCompared: Int?
        public var explained: Int?
        public var unexplained: Int?
        /// The first unexplained slots, ascending (at most 20), with node minus ledger.
        public var unexplainedSlots: [Int]?
        public var unexplainedDifferences: [ByteDifference]?
        public var error: String?
    }

    /// A primary's replication stream beside what its replicas counted of it.
    public struct Pairing: Codable, Sendable, Equatable {
        public struct Replica: Codable, Sendable, Equatable {
            public var address: String
            /// What the replica counted of the stream over its period, as the primary's sidecar
            /// forwarded it; nil when not exact (`gap` says why) or not asked.
            public var streamBytesIn: UInt64?
            public var gap: String?
            public var primaryItFollows: String?
        }

        public var shard: Int
        public var primary: String
        public var replicasOnNode: Int?
        public var linksThroughSidecar: Int?
        /// Links still behind the node's offset when the primary was read.
        public var linksBehind: Int?
        public var replicas: [Replica]
    }

    public var verdict: Verdict
    public var nodes: [Node]
    public var pairings: [Pairing]

    public init(map: ClusterMap, answers: [Fleet.Answer<ReconcileReport>]) {
        let reports = Dictionary(answers.map { ($0.node.id, $0) }, uniquingKeysWith: { first, _ in first })
        var nodes: [Node] = []
        var pairings: [Pairing] = []
        for (shardIndex, shard) in map.shards.enumerated() {
            for node in shard.nodes {
                let answer = reports[node.id]
                var line = Node(shard: shardIndex, id: node.id, address: node.address, role: node.role, admin: answer?.admin)
                switch answer?.result {
                case .success(let report):
                    line.verdict = report.verdict.rawValue
                    if report.fence?.maxPauseExceeded == true {
                        line.error = "its read took longer than max_pause_ms (\(report.fence?.maxPauseMilliseconds ?? 0) ms): not a consistent cut"
                    }
                    line.slotsCompared = report.summary.slotsCompared
                    line.explained = report.summary.explained
                    line.unexplained = report.summary.unexplained
                    let unexplained = report.slots.filter { $0.status != .match && $0.reasons.isEmpty }.prefix(20)
                    line.unexplainedSlots = unexplained.map(\.slot)
                    line.unexplainedDifferences = unexplained.map(\.difference)
                case .failure(let failure): line.error = failure.description
                case nil: line.error = "not asked"
                }
                nodes.append(line)
            }
            guard let primary = shard.primary else { continue }
            let primaryReport = reports[primary.id]?.value
            pairings.append(
                Pairing(
                    shard: shardIndex, primary: primary.address, replicasOnNode: primaryReport?.replication.replicasOnNode,
                    linksThroughSidecar: primaryReport?.replication.linksThroughSidecar,
                    linksBehind: primaryReport?.replication.behind.count,
                    replicas: shard.replicas.map { replica in
                        let stream = reports[replica.id]?.value?.replication.stream
                        return Pairing.Replica(
                            address: replica.address, streamBytesIn: stream?.bytesIn, gap: stream?.gap?.rawValue, primaryItFollows: stream?.primary)
                    }))
        }
        self.nodes = nodes
        self.pairings = pairings
        if nodes.contains(where: { $0.verdict == nil || $0.verdict == ReconcileVerdict.unavailable.rawValue || $0.error != nil }) {
            verdict = .incomplete
        } else if nodes.allSatisfy({ $0.verdict == ReconcileVerdict.match.rawValue }) {
            verdict = .match
        } else {
            verdict = .difference
        }
    }
}

extension FleetReconciliation.Node {
    init(shard: Int, id: String, address: String, role: String, admin: String?) {
        self.init(
            shard: shard, id: id, address: address, role: role, admin: admin, verdict: nil, slotsCompared: nil, explained: nil,
            unexplained: nil, unexplainedSlots: nil, unexplainedDifferences: nil, error: nil)
    }
}

/// The busiest slots of the whole cluster: every sidecar's ledger (node view) summed per slot.
public struct FleetTop: Codable, Sendable, Equatable {
    public struct Slot: Codable, Sendable, Equatable {
        public var slot: Int
        public var owner: String?
        public var value: UInt64
        /// The nodes whose counts were summed, by address.
        public var nodes: [String]
    }

    public var by: String
    public var slots: [Slot]
    /// Sidecars (or nodes, for cpu) that could not be asked.
    public var unreachable: [String]

    /// Sums `perNode` (each node's counts per slot) and keeps the `limit` largest, ties by slot.
    public init(by: String, map: ClusterMap, perNode: [(node: ClusterMap.Node, counts: [(slot: Int, value: UInt64)])], unreachable: [String], limit: Int) {
        var sums: [Int: (value: UInt64, nodes: [String])] = [:]
        for (node, counts) in perNode {
            for (slot, value) in counts where value > 0 {
                sums[slot, default: (0, [])].value += value
                sums[slot, default: (0, [])].nodes.append(node.address)
            }
        }
        self.by = by
        self.unreachable = unreachable
        slots = sums.sorted { ($0.value.value, $1.key) > ($1.value.value, $0.key) }.prefix(limit).map {
            Slot(slot: $0.key, owner: map.owner(of: $0.key)?.address, value: $0.value.value, nodes: $0.value.nodes.sorted())
        }
    }
}

/// The whole cluster's heat map, merged one node's rows at a time (so that a large fleet's answers
/// need not all be held at once): owners from the cluster map, every node's counts summed per slot,
/// and each slot's keys from the node that owns it.
public struct ClusterHeatmap: Sendable {
    private let primaries: [ClusterMap.Node]
    private var owner: [Int]
    private var commands: [UInt64]
    private var bytesIn: [UInt64]
    private var bytesOut: [UInt64]
    private var keys: [UInt64]
    private var cpu: [UInt64]
    private var sawKeys = false
    private var sawCPU = false
    /// Nodes whose data was merged.
    public private(set) var merged = 0

    public init(map: ClusterMap) {
        primaries = map.shards.compactMap(\.primary)
        owner = Array(repeating: -1, count: HashSlot.count)
        for (index, primary) in primaries.enumerated() {
            for shard in map.shards where shard.primary == primary {
                for range in shard.slots { for slot in range { owner[slot] = index } }
            }
        }
        commands = Array(repeating: 0, count: HashSlot.count)
        (bytesIn, bytesOut, keys, cpu) = (commands, commands, commands, commands)
    }

    /// Adds `node`'s rows; malformed ones are left out (and not counted in `merged`).
    public mutating func add(_ rows: HeatmapRows, from node: ClusterMap.Node) {
        guard rows.isWellFormed else { return }
        merged += 1
        let owns = primaries.firstIndex { $0.id == node.id }
        for row in rows.rows {
            commands[row.slot] &+= row.commands
            bytesIn[row.slot] &+= row.bytesIn
            bytesOut[row.slot] &+= row.bytesOut
            if let nodeCPU = row.cpuUsec { cpu[row.slot] &+= nodeCPU }
            if let owns, owner[row.slot] == owns, let nodeKeys = row.keys { keys[row.slot] = nodeKeys }
        }
        sawKeys = sawKeys || rows.nodeRead
        sawCPU = sawCPU || rows.nodeRead
    }

    public func data(title: String, generatedAt: String) -> HeatmapData {
        HeatmapData(
            title: title, generatedAt: generatedAt,
            source: "every sidecar's ledger (node view, since its open epoch or the slot's last cut) summed per slot; keys from each slot's owner",
            owners: primaries.map { .init(id: $0.id, address: $0.address) }, owner: owner, commands: commands, bytesIn: bytesIn,
            bytesOut: bytesOut, keys: sawKeys ? keys : nil, cpuUsec: sawCPU ? cpu : nil)
    }
}
