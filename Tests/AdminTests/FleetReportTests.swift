import Admin
import Fleet
import Foundation
import RESP
import Testing

/// What `slotwarden fleet` makes of the answers, without a cluster.
struct FleetReportTests {
    static func bulk(_ text: String) -> RESPValue { .bulkString(Array(text.utf8)) }

    static func node(_ id: String, port: Int, role: String, health: String = "online") -> RESPValue {
        .array([
            bulk("id"), bulk(id), bulk("port"), .integer(Int64(port)), bulk("ip"), bulk("10.0.0.1"), bulk("endpoint"), bulk("10.0.0.1"),
            bulk("role"), bulk(role), bulk("replication-offset"), .integer(99), bulk("health"), bulk(health),
        ])
    }

    /// Two shards as `CLUSTER SHARDS` answers in RESP2: 0-8191 (a, b), 8192-16383 split in two ranges (c, d).
    static var shards: RESPValue {
        .array([
            .array([
                bulk("slots"), .array([.integer(0), .integer(8191)]), bulk("nodes"),
                .array([node("a", port: 7000, role: "master"), node("b", port: 7001, role: "replica")]),
            ]),
            .array([
                bulk("slots"), .array([.integer(12000), .integer(16383), .integer(8192), .integer(11999)]), bulk("nodes"),
                .array([node("d", port: 7003, role: "replica", health: "loading"), node("c", port: 7002, role: "master")]),
            ]),
        ])
    }

    @Test func clusterShardsGiveShardsSlotsAndRoles() throws {
        let map = try ClusterMap(clusterShards: Self.shards)
        #expect(map.shards.count == 2 && map.nodes.count == 4)
        #expect(map.shards[1].slots == [8192...11999, 12000...16383] && map.shards[1].slotCount == 8192)
        #expect(map.shards[1].primary?.id == "c" && map.shards[1].replicas.map(\.health) == ["loading"])
        #expect(map.owner(of: 12_500)?.address == "10.0.0.1:7002" && map.owner(of: 100)?.id == "a")
        #expect(throws: ClusterMap.ParseError.self) { try ClusterMap(clusterShards: .array([.array([Self.bulk("slots")])])) }
        #expect(throws: ClusterMap.ParseError.self) { try ClusterMap(clusterShards: .error("ERR unknown command")) }
    }

    @Test func oneVerdictForTheCluster() throws {
        let map = try ClusterMap(clusterShards: Self.shards)
        func answers(_ verdicts: [String: ReconcileVerdict?]) -> [Fleet.Answer<ReconcileReport>] {
            map.nodes.map { node in
                guard let entry = verdicts[node.id], let verdict = entry else {
                    return Fleet.Answer(node: node, admin: "x", result: .failure(Fleet.Failure("cannot ask x")))
                }
                return Fleet.Answer(node: node, admin: "x", result: .success(Self.report(verdict)))
            }
        }
        #expect(FleetReconciliation(map: map, answers: answers(["a": .match, "b": .match, "c": .match, "d": .match])).verdict == .match)
        let differing = FleetReconciliation(map: map, answers: answers(["a": .match, "b": .difference, "c": .match, "d": .match]))
        #expect(differing.verdict == .difference && differing.verdict.exitCode == 1)
        let unreachable = FleetReconciliation(map: map, answers: answers(["a": .match, "b": .difference, "c": .match, "d": nil]))
        #expect(unreachable.verdict == .incomplete && unreachable.verdict.exitCode == 2)
        #expect(unreachable.nodes.first { $0.id == "d" }?.error == "cannot ask x")
        #expect(unreachable.pairings.map(\.primary) == ["10.0.0.1:7000", "10.0.0.1:7002"])
        #expect(FleetReconciliation(map: map, answers: answers(["a": .unavailable, "b": .match, "c": .match, "d": .match])).verdict == .incomplete)
        // A sidecar whose read outlasted its max pause did not compare one cut: the cluster is not known.
        var slow = answers(["a": .match, "b": .match, "c": .match, "d": .match])
        slow[0].result = .success(Self.report(.difference, pauseExceeded: true))
        let inconsistent = FleetReconciliation(map: map, answers: slow)
        #expect(inconsistent.verdict == .incomplete && inconsistent.nodes[0].error?.contains("not a consistent cut") == true)
    }

    static func report(_ verdict: ReconcileVerdict, pauseExceeded: Bool = false) -> ReconcileReport {
        let unexplained = verdict == .match ? 0 : 1
        let fence = """
            "fence":{"drained":true,"in_flight":0,"drain_milliseconds":0,"paused_milliseconds":80,"max_pause_milliseconds":50,\
            "max_pause_exceeded":\(pauseExceeded)},
            """
        let json = """
            {"mode":"fenced","epoch":{"id":1,"started_at":"t"},"node":{"version":"9.1.2","role":"master","cluster_enabled":true},
            "network_stats_enabled":true,"node_reset_detected":false,"replicas":1,\(fence)
            "replication":{"replicas_on_node":1,"links_through_sidecar":1,"behind":[]},"slots":[],"not_reported":[],"slot_cuts":0,
            "summary":{"slots_compared":1,"match":\(1 - unexplained),"node_higher":0,"ledger_higher":\(unexplained),"explained":0,
            "unexplained":\(unexplained),"bytes_in_difference":0,"bytes_out_difference":0},"verdict":"\(verdict.rawValue)"}
            """
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try! decoder.decode(ReconcileReport.self, from: Data(json.utf8))
    }

    @Test func theBusiestSlotsSumEveryNode() throws {
        let map = try ClusterMap(clusterShards: Self.shards)
        let (a, b) = (map.nodes[0], map.nodes[1])
        let top = FleetTop(
            by: "commands", map: map, perNode: [(a, [(5, 10), (6, 30)]), (b, [(5, 25)])], unreachable: ["10.0.0.1:7003: gone"], limit: 1)
        #expect(top.slots.count == 1 && top.unreachable == ["10.0.0.1:7003: gone"])
        #expect(top.slots.first.map { ($0.slot, $0.owner, $0.value, $0.nodes) } ?? (0, nil, 0, []) == (5, "10.0.0.1:7000", 35, ["10.0.0.1:7000", "10.0.0.1:7001"]))
    }
}

/// The rebalance plan, on loads made by hand.
struct RebalancePlanTests {
    static let names = [(id: "a", address: "10.0.0.1:7000"), (id: "b", address: "10.0.0.2:7000"), (id: "c", address: "10.0.0.3:7000")]
    /// Three nearly equal ranges, as a fresh cluster has them.
    static let owner = (0..<HashSlot.count).map { $0 * 3 / HashSlot.count }

    @Test func aHotBandIsSpreadWithFewMovesFromTheHotPrimaryOnly() {
        var load = Array(repeating: UInt64(10), count: HashSlot.count)
        for slot in 100..<900 { load[slot] = 1000 }  // 5 % of the slots, on a, carry most of the traffic
        let plan = RebalancePlan(
            measure: "bytes", primaries: Self.names, weights: [], owner: Self.owner, load: load, keys: nil, tolerance: 0.05, maxMoves: 1000)
        #expect(plan.balanced && plan.note == nil)
        #expect(plan.maxOverMeanBefore > 2 && plan.maxOverMeanAfter <= 1.05, "\(plan.maxOverMeanBefore) → \(plan.maxOverMeanAfter)")
        #expect(plan.moves.allSatisfy { $0.from == 0 && $0.to != 0 })
        #expect(plan.moves.count < 600, "hot slots first: \(plan.moves.count) moves")
        #expect(plan.primaries.map(\.loadAfter).reduce(0, +) == load.reduce(0, +))
        #expect(plan.batches.count == 2 && plan.batches.allSatisfy { $0.from == 0 })
    }

    @Test func weightsSetTheShares() {
        let load = Array(repeating: UInt64(6), count: HashSlot.count)
        let plan = RebalancePlan(
            measure: "commands", primaries: Self.names, weights: [2, 1, 1], owner: Self.owner, load: load, keys: nil, tolerance: 0.02,
            maxMoves: 10_000)
        #expect(plan.balanced)
        let after = plan.primaries.map { Double($0.loadAfter) }
        #expect(abs(after[0] / after[1] - 2) < 0.1 && abs(after[1] / after[2] - 1) < 0.1, "\(after)")
    }

    @Test func aSlotHotterThanAShareIsNamedAndFewerKeysWinATie() {
        var load = Array(repeating: UInt64(0), count: HashSlot.count)
        load[42] = 1_000_000
        load[43] = 10
        let alone = RebalancePlan(
            measure: "bytes", primaries: Self.names, weights: [], owner: Self.owner, load: load, keys: nil, tolerance: 0.1, maxMoves: 10)
        #expect(!alone.balanced)
        #expect(alone.note?.contains("slot 42 alone carries 1000000") == true, "\(alone.note ?? "-")")

        var even = Array(repeating: UInt64(0), count: HashSlot.count)
        even[7] = 100
        even[8] = 100
        var keys = Array(repeating: UInt64(0), count: HashSlot.count)
        keys[7] = 50
        keys[8] = 3
        let tie = RebalancePlan(
            measure: "bytes", primaries: Self.names, weights: [], owner: Self.owner, load: even, keys: keys, tolerance: 0.1, maxMoves: 1)
        #expect(tie.moves.first?.slot == 8 && tie.moves.first?.keys == 3)
        #expect(tie.note == "stopped at --max-moves 1")
    }
}
