import Foundation
import Accounting
import LocalCluster
import Logging
import RESP
import Testing
import TestSupport

/// `LocalCluster` with more than one shard: it forms and converges, slots move between shards (the
/// legacy way on 8.1 and 9.1, atomically on 9.1) and a shard fails over, all through the sidecars,
/// and no key is lost. Serialized: each test runs four nodes and four sidecars on two cores.
@Suite(
    "LocalCluster with several shards", .serialized, .timeLimit(.minutes(2)),
    .enabled(if: ValkeyBinaries.available, ValkeyBinaries.missingReason))
struct LocalClusterTests {
    static let keys = 200

    /// 2 shards × (primary + 1 replica): a, b in shard 0 and c, d in shard 1.
    static func twoShards(major: Int) throws -> LocalCluster {
        try LocalCluster(major: major, shards: 2, replicasPerShard: 1)
    }

    /// Writes `keys` unique keys through the sidecars; returns those acknowledged with `+OK`.
    static func write(_ cluster: LocalCluster, prefix: String) throws -> [(key: String, value: String)] {
        let client = cluster.client()
        defer { client.close() }
        var written: [(key: String, value: String)] = []
        for index in 0..<keys {
            let key = "\(prefix):\(index)"
            let value = "\(key):\(UUID().uuidString)"
            let reply = try client.call(key: key, ["SET", key, value])
            #expect(reply == .simpleString("OK"), "SET \(key): \(reply)")
            if reply == .simpleString("OK") { written.append((key, value)) }
        }
        #expect(client.problems.isEmpty, "\(client.problems.prefix(10))")
        return written
    }

    /// Reads every key back through the sidecars, entering at `entry`; returns the keys whose value
    /// differs (or is gone) and the client's problems.
    static func readBack(
        _ written: [(key: String, value: String)], from cluster: LocalCluster, entry: LocalCluster.Member
    ) throws -> (wrong: [String], problems: [String], redirects: Int) {
        let client = cluster.client(entry: entry)
        defer { client.close() }
        var wrong: [String] = []
        for (key, value) in written {
            let reply = try client.call(key: key, ["GET", key])
            if reply != .bulkString(Array(value.utf8)) { wrong.append("\(key): \(reply)") }
        }
        return (wrong, client.problems, client.redirects)
    }

    static func slot(of key: String) -> Int { Int(HashSlot(key: key).rawValue) }

    /// Every member's `CLUSTER NODES`, asked directly.
    static func views(_ cluster: LocalCluster) throws -> [(member: LocalCluster.Member, view: ClusterNodesView)] {
        try cluster.members.map { ($0, try ClusterNodesView(reply: $0.direct().call("CLUSTER", "NODES"))) }
    }

    /// Every node's primary and replica of each shard hold the same number of keys (after `WAIT`
    /// through the primary's sidecar).
    static func expectReplicasCaughtUp(_ cluster: LocalCluster) throws {
        for shard in cluster.shards.indices {
            let roles = try #require(try cluster.roles(ofShard: shard))
            let waited = try roles.primary.viaSidecar().call("WAIT", "1", "5000")
            #expect(waited == .integer(1), "WAIT on \(roles.primary.name): \(waited)")
            let primarySize = try roles.primary.direct().call("DBSIZE")
            for replica in roles.replicas {
                #expect(try replica.direct().call("DBSIZE") == primarySize, "shard \(shard): \(replica.name) vs \(roles.primary.name)")
            }
        }
    }

    /// Bytes in that `member`'s sidecar counted (`node` view) and its node reports
    /// (`CLUSTER SLOT-STATS`), summed over `slots`.
    static func seconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        return String(format: "%.2f s", Double(seconds) + Double(attoseconds) / 1e18)
    }

    @Test("2 shards × (primary + replica) start and converge, each shard owning half the slots", arguments: [8, 9])
    func formsTwoShards(major: Int) throws {
        let clock = ContinuousClock()
        let start = clock.now
        let cluster = try Self.twoShards(major: major)
        defer { cluster.stop() }
        let setUp = clock.now - start
        #expect(cluster.shards.map { $0.map(\.name) } == [["a", "b"], ["c", "d"]])
        #expect(cluster.members.map(\.name) == ["a", "b", "c", "d"])
        #expect(LocalCluster.slotRanges(shards: 1) == [0...16383])
        #expect(LocalCluster.slotRanges(shards: 3) == [0...5461, 5462...10922, 10923...16383])
        let (a, b, c, d) = (cluster.members[0], cluster.members[1], cluster.members[2], cluster.members[3])

        try cluster.waitUntilConverged()
        #expect(try cluster.primaries().map(\.name) == ["a", "c"])
        let roles = try #require(try cluster.currentRoles())
        #expect(roles.primary === a && roles.replica === b)
        for (member, view) in try Self.views(cluster) {
            #expect(view.nodes[a.nodeID]?.slotRanges == [0...8191], "\(member.name)'s view")
            #expect(view.nodes[c.nodeID]?.slotRanges == [8192...16383], "\(member.name)'s view")
            #expect(view.nodes[b.nodeID]?.primaryID == a.nodeID && view.nodes[d.nodeID]?.primaryID == c.nodeID)
            #expect(view.nodes.values.allSatisfy { cluster.sidecarPorts.contains($0.port) })
            #expect(Set(try member.slotsPorts().joined()).isSubset(of: cluster.sidecarPorts))
        }
        for (slot, owner) in [(0, a), (8191, a), (8192, c), (16383, c)] {
            #expect(try cluster.owner(ofSlot: slot, seenBy: d) === owner, "slot \(slot)")
        }
        for (replica, primary) in [(b, a), (d, c)] {
            let replication = try replica.info(section: "replication")
            #expect(replication["master_port"] == "\(primary.sidecarPort)" && replication["master_link_status"] == "up")
        }
        print("LocalCluster 2×(1+1) on Valkey \(cluster.version): set up and converged in \(Self.seconds(setUp))")
    }

    @Test("a legacy migration of 20 slots that hold keys moves them to the other shard and keeps every key", arguments: [8, 9])
    func legacyMove(major: Int) async throws {
        let cluster = try Self.twoShards(major: major)
        defer { cluster.stop() }
        var written = try Self.write(cluster, prefix: "legacy:\(major)")
        let (a, c) = (cluster.shards[0][0], cluster.shards[1][0])
        let slots = Array(Set(written.map { Self.slot(of: $0.key) }).filter { $0 <= 8191 }.sorted().prefix(20))
        try #require(slots.count == 20, "200 keys fill fewer than 20 slots of shard 0")

        // Mid-migration, a client follows -ASK for a key already moved, and keeps the slot's route.
        let tag = try #require((0..<100).lazy.map { "{ask\($0)}" }.first { Self.slot(of: $0) <= 8191 && !slots.contains(Self.slot(of: $0)) })
        let (movedKey, stayingKey) = ("\(tag):moved", "\(tag):staying")
        let askSlot = Self.slot(of: tag)
        let client = cluster.client(entry: a)
        defer { client.close() }
        for key in [movedKey, stayingKey] { #expect(try client.call(key: key, ["SET", key, key]) == .simpleString("OK")) }
        try #require(try c.direct().call("CLUSTER", "SETSLOT", "\(askSlot)", "IMPORTING", a.nodeID) == .simpleString("OK"))
        try #require(try a.direct().call("CLUSTER", "SETSLOT", "\(askSlot)", "MIGRATING", c.nodeID) == .simpleString("OK"))
        let acceptedBefore = await c.server.connectionCounts().accepted
        let migrated = try a.direct().call("MIGRATE", "127.0.0.1", "\(c.sidecarPort)", movedKey, "0", "5000")
        try #require(migrated == .simpleString("OK"), "MIGRATE \(movedKey): \(migrated)")
        let redirectsBefore = client.redirects
        #expect(try client.call(key: movedKey, ["GET", movedKey]) == .bulkString(Array(movedKey.utf8)))
        #expect(client.redirects == redirectsBefore + 1, "one -ASK for the moved key")
        #expect(try client.call(key: stayingKey, ["GET", stayingKey]) == .bulkString(Array(stayingKey.utf8)))
        #expect(client.redirects == redirectsBefore + 1, "the key still on a is served by a without a redirect")
        #expect(client.problems.isEmpty, "\(client.problems)")
        written += [(movedKey, movedKey), (stayingKey, stayingKey)]

        let clock = ContinuousClock()
        let start = clock.now
        try cluster.moveSlotsLegacy(slots + [askSlot], to: c)
        let moved = clock.now - start
        // MIGRATE dialled c's sidecar (its socket is cached between calls; what c's ledger makes of the
        // stream: SlotCutTests).
        #expect(await c.server.connectionCounts().accepted > acceptedBefore, "a's node did not connect to c's sidecar")
        for (member, view) in try Self.views(cluster) {
            let wrong = slots.filter { view.owner(ofSlot: $0)?.id != c.nodeID }
            #expect(wrong.isEmpty, "\(member.name) names another owner for slots \(wrong)")
        }
        for slot in slots {
            #expect(try a.direct().call("CLUSTER", "COUNTKEYSINSLOT", "\(slot)") == .integer(0), "slot \(slot) on a")
            let onTarget = try c.direct().call("CLUSTER", "COUNTKEYSINSLOT", "\(slot)")
            #expect(onTarget.int ?? 0 > 0, "slot \(slot) on c: \(onTarget)")
        }
        try cluster.waitUntilConverged()
        let read = try Self.readBack(written, from: cluster, entry: a)
        #expect(read.wrong.isEmpty, "\(read.wrong.count) of \(written.count) keys: \(read.wrong.prefix(10))")
        #expect(read.problems.isEmpty, "\(read.problems.prefix(10))")
        try Self.expectReplicasCaughtUp(cluster)
        print(
            "legacy move on Valkey \(cluster.version): 21 slots a → c in \(Self.seconds(moved)), \(read.redirects) redirects on read-back")
    }

    @Test("an atomic migration of a slot range keeps every key on 9.x; 8.x refuses it clearly", arguments: [8, 9])
    func atomicMove(major: Int) async throws {
        let cluster = try Self.twoShards(major: major)
        defer { cluster.stop() }
        let (a, c) = (cluster.shards[0][0], cluster.shards[1][0])
        let range = 0...999
        guard major >= 9 else {
            let error = #expect(throws: LocalCluster.Failure.self) { try cluster.moveSlotsAtomically(range, to: c) }
            #expect(error?.description.contains("Valkey 9.0") == true, "\(error.map { "\($0)" } ?? "")")
            #expect(try cluster.owner(ofSlot: 0) === a)
            return
        }
        let written = try Self.write(cluster, prefix: "atomic:\(major)")
        let inRange = written.filter { range.contains(Self.slot(of: $0.key)) }
        try #require(!inRange.isEmpty, "no key of 200 falls in \(range)")

        let acceptedBefore = await c.server.connectionCounts().accepted
        let clock = ContinuousClock()
        let start = clock.now
        try cluster.moveSlotsAtomically(range, to: c)
        let moved = clock.now - start
        // a's node dialled c's sidecar (every admin command went direct); what c's ledger makes of that
        // stream: SlotCutTests.
        let accepted = await c.server.connectionCounts().accepted - acceptedBefore
        #expect(accepted >= 1, "a's node did not connect to c's sidecar")
        for (member, view) in try Self.views(cluster) {
            #expect(view.owner(ofSlot: range.lowerBound)?.id == c.nodeID && view.owner(ofSlot: range.upperBound)?.id == c.nodeID)
            #expect(view.nodes[a.nodeID]?.slotRanges == [1000...8191], "\(member.name)'s view")
            #expect(view.nodes[c.nodeID]?.slotRanges == [0...999, 8192...16383], "\(member.name)'s view")
        }
        let jobs = try cluster.slotMigrations(on: a)
        #expect(jobs.contains { $0.operation == "EXPORT" && $0.slotRanges == "0-999" && $0.targetID == c.nodeID && $0.state == "success" })
        // The source drops the keys of the slots it gave away.
        let kept = written.filter { (1000...8191).contains(Self.slot(of: $0.key)) }.count
        try waitUntil("a holds only the keys of 1000...8191", timeout: .seconds(5)) {
            try a.direct().call("DBSIZE") == .integer(Int64(kept)) ? true : nil
        }
        try cluster.waitUntilConverged()
        let read = try Self.readBack(written, from: cluster, entry: a)
        #expect(read.wrong.isEmpty, "\(read.wrong.count) of \(written.count) keys: \(read.wrong.prefix(10))")
        #expect(read.problems.isEmpty, "\(read.problems.prefix(10))")
        try Self.expectReplicasCaughtUp(cluster)
        print(
            "atomic move on Valkey \(cluster.version): slots \(range) (\(inRange.count) keys) a → c in \(Self.seconds(moved)), "
                + "\(read.redirects) redirects on read-back, \(accepted) connection(s) accepted by c's sidecar")
    }

    @Test("a failover of shard 1 swaps its roles, leaves shard 0 alone and keeps every key", arguments: [8, 9])
    func failoverShard1(major: Int) throws {
        let cluster = try Self.twoShards(major: major)
        defer { cluster.stop() }
        let written = try Self.write(cluster, prefix: "failover:\(major)")
        let (a, c, d) = (cluster.members[0], cluster.members[2], cluster.members[3])

        let timing = try cluster.failover(shard: 1)
        #expect(try cluster.primaries().map(\.name) == ["a", "d"])
        let roles = try #require(try cluster.roles(ofShard: 1))
        #expect(roles.primary === d && roles.replicas.map(\.name) == ["c"])
        let view = try cluster.waitUntilConverged()
        #expect(view.nodes[d.nodeID]?.slotRanges == [8192...16383] && view.nodes[c.nodeID]?.primaryID == d.nodeID)
        #expect(view.nodes[a.nodeID]?.slotRanges == [0...8191] && view.nodes[a.nodeID]?.isPrimary == true)
        for member in cluster.members { #expect(try cluster.owner(ofSlot: 16383, seenBy: member) === d, "\(member.name)'s view") }
        // Enter at the demoted node: every shard-1 key is redirected to d's sidecar.
        let read = try Self.readBack(written, from: cluster, entry: c)
        #expect(read.wrong.isEmpty, "\(read.wrong.count) of \(written.count) keys: \(read.wrong.prefix(10))")
        #expect(read.problems.isEmpty, "\(read.problems.prefix(10))")
        try Self.expectReplicasCaughtUp(cluster)
        print(
            "failover of shard 1 on Valkey \(cluster.version): c → d swapped in \(Self.seconds(timing.swapped)), "
                + "settled in \(Self.seconds(timing.settled)); \(read.redirects) redirects on read-back")
    }
}
