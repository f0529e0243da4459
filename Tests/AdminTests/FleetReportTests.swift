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
    static let shards = RESPValue.array([
        .array([bulk("slots"), .array([.integer(0), .integer(8191)]), bulk("nodes"), .array([node("a", port: 7000, role: "master"), node("b", port: 7001, role: "replica")])]),
        .array([
            bulk("slots"), .array([.integer(12000), .integer(16383), .integer(8192), .integer(11999)]), bulk("nodes"),
            .array([node("d", port: 7003, role: "replica", health: "loading"), node("c", port: 7002, role: "master")]),
        ]),
    ])

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
    }

    static func report(_ verdict: ReconcileVerdict) -> ReconcileReport {
        let unexplained = verdict == .match ? 0 : 1
        let json = """
            {"mode":"fenced","epoch":{"id":1,"started_at":"t"},"node":{"version":"9.1.2","role":"master","cluster_enabled":true},
            "network_stats_enabled":true,"node_reset_detected":false,"replicas":1,
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
