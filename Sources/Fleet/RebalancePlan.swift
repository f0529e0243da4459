import RESP

/// Which slots to move where so that a measure of traffic is spread over the primaries in
/// proportion to their weights, within a tolerance: the plan `slotwarden fleet rebalance` prints
/// and carries out. Pure: the loads come from the sidecars' ledgers (or the nodes' CPU time).
///
/// Greedy, one slot at a time: the primary furthest above its share gives the slot that brings it
/// and the primary furthest below its share closest together (the smaller of their two loads
/// relative to their shares as large as it can be); between slots that do that equally well, the
/// one with fewer keys. Large slots go first, so the plan needs few moves; a slot that alone
/// carries more than a share cannot be split, and the plan says so when it stops there.
public struct RebalancePlan: Sendable, Equatable, Codable {
    public struct Primary: Sendable, Equatable, Codable {
        public var id: String
        public var address: String
        public var weight: Double
        public var loadBefore: UInt64
        public var loadAfter: UInt64
        public var slotsBefore: Int
        public var slotsAfter: Int
    }

    public struct Move: Sendable, Equatable, Codable {
        public var slot: Int
        /// Indexes into `primaries`.
        public var from: Int
        public var to: Int
        public var load: UInt64
        public var keys: UInt64
    }

    public var measure: String
    public var tolerance: Double
    public var primaries: [Primary]
    public var moves: [Move]
    /// Every primary ends within `tolerance` of its share.
    public var balanced: Bool
    /// Why the plan stopped short, when it did.
    public var note: String?

    /// `load` and `keys` per slot; `owner` per slot, an index into `primaries` (-1: none, never
    /// moved); `weights` per primary (all 1 when empty).
    public init(
        measure: String, primaries names: [(id: String, address: String)], weights: [Double], owner: [Int], load: [UInt64], keys: [UInt64]?,
        tolerance: Double, maxMoves: Int
    ) {
        self.measure = measure
        self.tolerance = tolerance
        let weight = weights.isEmpty ? Array(repeating: 1.0, count: names.count) : weights
        var owner = owner
        var loads = Array(repeating: UInt64(0), count: names.count)
        var slotCounts = Array(repeating: 0, count: names.count)
        for slot in 0..<HashSlot.count where owner[slot] >= 0 {
            loads[owner[slot]] += load[slot]
            slotCounts[owner[slot]] += 1
        }
        let before = loads
        let slotsBefore = slotCounts
        let total = Double(loads.reduce(0, +))
        let weightSum = weight.reduce(0, +)
        let share = weight.map { total * $0 / weightSum }
        func ratio(_ index: Int, _ value: UInt64) -> Double { share[index] > 0 ? Double(value) / share[index] : (value > 0 ? .infinity : 0) }
        var moves: [Move] = []
        var balanced = false
        var note: String?
        while true {
            let ratios = loads.indices.map { ratio($0, loads[$0]) }
            guard let heaviest = ratios.indices.max(by: { ratios[$0] < ratios[$1] }),
                let lightest = ratios.indices.min(by: { ratios[$0] < ratios[$1] })
            else { break }
            if ratios[heaviest] <= 1 + tolerance || total == 0 {
                balanced = true
                break
            }
            if moves.count >= maxMoves {
                note = "stopped at --max-moves \(maxMoves)"
                break
            }
            // The slot of the heaviest primary that leaves the larger of the pair's two ratios smallest.
            var best: (slot: Int, worst: Double, keys: UInt64)?
            for slot in 0..<HashSlot.count where owner[slot] == heaviest && load[slot] > 0 {
                let worst = max(ratio(heaviest, loads[heaviest] - load[slot]), ratio(lightest, loads[lightest] + load[slot]))
                let slotKeys = keys?[slot] ?? 0
                if let current = best, worst > current.worst || (worst == current.worst && slotKeys >= current.keys) { continue }
                best = (slot, worst, slotKeys)
            }
            guard let best, best.worst < ratios[heaviest] else {
                let hottest = (0..<HashSlot.count).filter { owner[$0] == heaviest }.max { load[$0] < load[$1] }
                note = "cannot spread further: "
                    + (hottest.map { "slot \($0) alone carries \(load[$0]) of a share of \(UInt64(share[heaviest]))" } ?? "nothing to move")
                break
            }
            moves.append(Move(slot: best.slot, from: heaviest, to: lightest, load: load[best.slot], keys: best.keys))
            loads[heaviest] -= load[best.slot]
            loads[lightest] += load[best.slot]
            slotCounts[heaviest] -= 1
            slotCounts[lightest] += 1
            owner[best.slot] = lightest
        }
        self.primaries = names.indices.map {
            Primary(
                id: names[$0].id, address: names[$0].address, weight: weight[$0], loadBefore: before[$0], loadAfter: loads[$0],
                slotsBefore: slotsBefore[$0], slotsAfter: slotCounts[$0])
        }
        self.moves = moves
        self.balanced = balanced
        self.note = note
    }

    /// The largest load over the mean (weighted by share), before and after: 1 is perfectly even.
    public var maxOverMeanBefore: Double { Self.maxOverMean(primaries.map { ($0.loadBefore, $0.weight) }) }
    public var maxOverMeanAfter: Double { Self.maxOverMean(primaries.map { ($0.loadAfter, $0.weight) }) }

    static func maxOverMean(_ loads: [(UInt64, Double)]) -> Double {
        let total = Double(loads.reduce(0) { $0 + $1.0 })
        let weights = loads.reduce(0) { $0 + $1.1 }
        guard total > 0, weights > 0 else { return 1 }
        return loads.map { Double($0.0) / (total * $0.1 / weights) }.max() ?? 1
    }

    /// The moves as batches: one per source and target, in plan order, each with its slots as
    /// ascending ranges.
    public var batches: [Batch] {
        var batches: [Batch] = []
        for move in moves {
            if let index = batches.firstIndex(where: { $0.from == move.from && $0.to == move.to }) {
                batches[index].slots.append(move.slot)
            } else {
                batches.append(Batch(from: move.from, to: move.to, slots: [move.slot]))
            }
        }
        return batches
    }

    public struct Batch: Sendable, Equatable {
        public var from: Int
        public var to: Int
        public var slots: [Int]

        public var ranges: [ClosedRange<Int>] {
            var ranges: [ClosedRange<Int>] = []
            for slot in slots.sorted() {
                if let last = ranges.last, last.upperBound + 1 == slot {
                    ranges[ranges.count - 1] = last.lowerBound...slot
                } else {
                    ranges.append(slot...slot)
                }
            }
            return ranges
        }
    }
}
