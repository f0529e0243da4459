import Foundation
import Accounting
import Admin
import LocalCluster
import Proxy
import RESP
import Testing
import TestSupport

/// A primary charges every replica the stream it writes for it, as bytes out of the slot of the
/// command that caused it. Its sidecar reads each replica's link and charges the same, so a primary
/// whose replicas all connect through its sidecar reconciles `match`; any stream the ledger could not
/// see is reported with its figures under `replication`, never as unexplained drift.
@Suite("Reconciliation of a primary's replication stream", .serialized, .enabled(if: ValkeyBinaries.available, ValkeyBinaries.missingReason))
struct ReplicaReconcileTests {
    /// Writes of every shape the node charges differently: plain, rewritten (SET EX → PXAT), a
    /// transaction (wrapper charged), a delete, keyless ones (charged nowhere).
    static func writeMixedTraffic(through client: NodeClient) throws {
        for index in 0..<20 { #expect(try client.call("SET", "replicated:\(index)", "value") == .simpleString("OK")) }
        #expect(try client.call("SET", "ttl", "v", "EX", "100") == .simpleString("OK"))
        #expect(try client.call("INCR", "counter") == .integer(1))
        #expect(try client.call("MULTI") == .simpleString("OK"))
        _ = try client.call("SET", "{t}a", "1")
        _ = try client.call("INCR", "{t}b")
        #expect(try client.call("EXEC").array?.count == 2)
        #expect(try client.call("DEL", "replicated:0") == .integer(1))
        #expect(try client.call("DEL", "missing") == .integer(0))
        #expect(try client.call("PUBLISH", "news", "hello").int != nil)
    }

    @Test("a primary whose replica replicates through its sidecar reconciles match, bytes out included", arguments: [8, 9])
    func replicaThroughTheSidecarMatches(major: Int) async throws {
        let cluster = try LocalCluster(major: major)
        defer { cluster.stop() }
        let primary = try #require(try cluster.currentRoles()).primary
        let client = try primary.viaSidecar()
        try Self.writeMixedTraffic(through: client)
        #expect(try client.call("WAIT", "1", "2000") == .integer(1))

        let report = try await AdminService(backend: ProxyBackend(sidecar: primary.sidecar)).reconcile(mode: .fenced)
        #expect(report.verdict == .match, "\(report.summary) \(report.slots.filter { $0.status != .match })")
        #expect(report.replication.replicasOnNode == 1)
        #expect(report.replication.linksThroughSidecar == 1)
        #expect(report.replication.behind.isEmpty)
        #expect(report.slots.contains { $0.node.bytesOut > 5 }, "replication bytes were charged: \(report.slots.prefix(3))")

        // A key deleted by active expiry: the node streams the delete without charging it.
        #expect(try client.call("SET", "short", "v", "PX", "1") == .simpleString("OK"))
        let direct = try primary.direct()
        try waitUntil("active expiry deletes the key", timeout: .seconds(10)) {
            try direct.call("INFO", "stats").string?.contains("expired_keys:1\r") == true ? true : nil
        }
        #expect(try client.call("WAIT", "1", "2000") == .integer(1))
        let expired = try await AdminService(backend: ProxyBackend(sidecar: primary.sidecar)).reconcile(mode: .fenced)
        let differing = expired.slots.filter { $0.status != .match }
        #expect(differing.map(\.slot) == [Int(HashSlot(key: "short").rawValue)], "\(expired.summary)")
        #expect(differing.first?.reasons == [.expiry])
        #expect(differing.first?.difference.bytesOut == -Int64(RESPEncoder.command(["UNLINK", "short"]).count))
    }

    @Test("the primary's sidecar knows what its replica counts as bytes in, slot by slot, up to the replica's offset", arguments: [8, 9])
    func replicaViewEqualsTheReplicasCounters(major: Int) async throws {
        let cluster = try LocalCluster(major: major)
        defer { cluster.stop() }
        let roles = try #require(try cluster.currentRoles())
        let client = try roles.primary.viaSidecar()
        try Self.writeMixedTraffic(through: client)
        // Two transactions (8.x and 9.x count them differently), and a key deleted by active expiry
        // (the replica counts the UNLINK, the primary does not charge it).
        for _ in 0..<2 {
            #expect(try client.call("MULTI") == .simpleString("OK"))
            _ = try client.call("SET", "{x}a", "1")
            _ = try client.call("LPUSH", "{x}b", "2")
            #expect(try client.call("EXEC").array?.count == 2)
        }
        #expect(try client.call("SET", "short", "v", "PX", "1") == .simpleString("OK"))
        try waitUntil("active expiry deletes the key", timeout: .seconds(10)) {
            try roles.primary.direct().call("INFO", "stats").string?.contains("expired_keys:1\r") == true ? true : nil
        }
        #expect(try client.call("WAIT", "1", "2000") == .integer(1))

        let replication = try roles.replica.info(section: "replication")
        let processed = try #require(replication["slave_repl_offset"].flatMap { Int64($0) })
        let counted = try NodeSlotStats(reply: roles.replica.direct().call("CLUSTER", "SLOT-STATS", "SLOTSRANGE", "0", "16383"))
        let views = await roles.primary.server.replicaViews(upTo: processed)
        let view = try #require(views.first)
        #expect(views.count == 1 && view.complete)
        // The link names its replica as the primary's INFO replication does.
        let listed = try roles.primary.info(section: "replication")["slave0"] ?? ""
        #expect(view.replicaHost.map { listed.contains("ip=\($0),") } == true, "\(listed) vs \(view)")
        #expect(view.replicaListeningPort.map { listed.contains("port=\($0),") } == true, "\(listed) vs \(view)")
        let expected = counted.rows.filter { $0.networkBytesIn > 0 }.map { ProxyServer.ReplicaViewReport.Slot(slot: Int($0.slot.rawValue), bytesIn: $0.networkBytesIn) }
        #expect(view.slots == expected, "replica \(roles.replica.name) at offset \(processed)")
        #expect(view.slots.count > 20)
    }

    @Test("a replica that bypasses the sidecar, or one still loading its snapshot, is reported under replication", arguments: [8, 9])
    func streamsNotOnTheLedgerAreNamed(major: Int) async throws {
        let cluster = try LocalCluster(major: major)
        defer { cluster.stop() }
        let primary = try #require(try cluster.currentRoles()).primary
        let admin = AdminService(backend: ProxyBackend(sidecar: primary.sidecar))

        // A replica that attaches through the sidecar but does not acknowledge its snapshot yet: the
        // node charges it for every write from now on and holds its stream back until it does.
        let loading = try FakeReplica.loading(through: primary)
        let client = try primary.viaSidecar()
        try Self.writeMixedTraffic(through: client)
        let behind = try await admin.reconcile(mode: .fenced)
        #expect(behind.verdict == .difference)
        #expect(behind.summary.unexplained == 0, "\(behind.slots.filter { $0.reasons.isEmpty })")
        #expect(behind.slots.filter { $0.status != .match }.allSatisfy { $0.reasons == [.replication] && $0.difference.bytesIn == 0 })
        #expect(behind.replication.linksThroughSidecar == 2)
        let pending = try #require(behind.replication.behind.first?.pendingBytes)
        #expect(pending > 0 && behind.replication.behind.count == 1, "\(behind.replication)")

        // Once it acknowledges, its stream crosses the sidecar and everything matches again.
        try loading.acknowledge()
        let caughtUp = try await admin.reconcile(mode: .fenced)
        #expect(caughtUp.verdict == .match, "\(caughtUp.summary) \(caughtUp.replication)")

        // A replica straight at the node's port: the node charges it, the ledger cannot.
        let bypassing = try FakeReplica(port: primary.nodePort)
        try bypassing.acknowledge()
        try waitUntil("the node counts the bypassing replica", timeout: .seconds(10)) {
            try primary.info(section: "replication")["connected_slaves"] == "3" ? true : nil
        }
        #expect(try client.call("SET", "after", "bypass") == .simpleString("OK"))
        let bypassed = try await admin.reconcile(mode: .fenced)
        #expect(bypassed.replication.replicasOnNode == 3 && bypassed.replication.linksThroughSidecar == 2)
        let differing = bypassed.slots.filter { $0.status != .match }
        #expect(!differing.isEmpty && differing.allSatisfy { $0.reasons == [.replication] }, "\(differing)")
        #expect(bypassed.summary.unexplained == 0)
        loading.close()
        bypassing.close()
    }

    @Test("a replica that missed writes resumes with +CONTINUE: the backlog resent is not charged twice, and both sides match", arguments: [8, 9])
    func continuedStreamIsChargedOnce(major: Int) async throws {
        let cluster = try LocalCluster(major: major)
        defer { cluster.stop() }
        let roles = try #require(try cluster.currentRoles())
        let client = try roles.primary.viaSidecar()
        try Self.writeMixedTraffic(through: client)
        #expect(try client.call("WAIT", "1", "2000") == .integer(1))
        let partialSyncs = try roles.primary.info(section: "stats")["sync_partial_ok"]

        // The replica stops and the primary drops it: the writes meanwhile are charged to no replica.
        kill(roles.replica.valkey.pid, SIGSTOP)
        #expect(try roles.primary.direct().call("CLIENT", "KILL", "TYPE", "replica") == .integer(1))
        for index in 0..<50 { #expect(try client.call("SET", "missed:\(index)", "value") == .simpleString("OK")) }
        // It comes back, reads the end of its old link, and asks to continue: the node resends the
        // 50 writes from its backlog.
        kill(roles.replica.valkey.pid, SIGCONT)
        #expect(try client.call("WAIT", "1", "10000") == .integer(1))
        #expect(try roles.primary.info(section: "stats")["sync_partial_ok"] != partialSyncs)

        let primary = try await AdminService(backend: ProxyBackend(sidecar: roles.primary.sidecar)).reconcile(mode: .fenced)
        #expect(primary.verdict == .match, "\(primary.summary) \(primary.slots.filter { $0.status != .match }.prefix(5))")
        let replica = try await AdminService(backend: ProxyBackend(sidecar: roles.replica.sidecar)).reconcile(mode: .fenced)
        #expect(replica.verdict == .match, "\(replica.summary) \(replica.replication.stream.map { "\($0)" } ?? "-")")
    }

    @Test("a replica killed with its stream backed up: what the node charged for it until it noticed is read and charged", arguments: [8, 9])
    func lostReplicaIsChargedToTheEnd(major: Int) async throws {
        let cluster = try LocalCluster(major: major)
        defer { cluster.stop() }
        let roles = try #require(try cluster.currentRoles())
        let client = try roles.primary.viaSidecar()
        // Past its full sync (WAIT would already count a replica still loading its snapshot, whose
        // stream the node holds back and, when it is lost, drops unwritten: see docs/accounting.md §10).
        try waitUntil("the replica is online", timeout: .seconds(10)) {
            try roles.primary.info(section: "replication")["slave0"]?.contains("state=online") == true ? true : nil
        }
        // A stopped replica reads nothing: its link fills the socket buffers on both sides of the
        // sidecar, and the node holds the rest in its output buffer, charged.
        kill(roles.replica.valkey.pid, SIGSTOP)
        let value = String(repeating: "v", count: 64 * 1024)
        for index in 0..<200 { #expect(try client.call("SET", "big:\(index)", value) == .simpleString("OK")) }
        kill(roles.replica.valkey.pid, SIGKILL)
        try waitUntil("the primary drops its replica", timeout: .seconds(20)) {
            try roles.primary.info(section: "replication")["connected_slaves"] == "0" ? true : nil
        }
        let report = try await AdminService(backend: ProxyBackend(sidecar: roles.primary.sidecar)).reconcile(mode: .fenced)
        #expect(report.verdict == .match, "\(report.summary) \(report.slots.filter { $0.status != .match }.prefix(5))")
        #expect(report.slots.reduce(0) { $0 + $1.node.bytesOut } > 200 * 64 * 1024, "the replica was charged for the values")
    }

    @Test(
        "a replica that leaves during its full resync: no client is paused for it, and what the node charged for it is named replication",
        arguments: [8, 9])
    func replicaLostDuringItsFullResync(major: Int) async throws {
        let cluster = try LocalCluster(major: major)
        defer { cluster.stop() }
        let primary = try #require(try cluster.currentRoles()).primary
        let admin = AdminService(backend: ProxyBackend(sidecar: primary.sidecar))
        // It never acknowledges its snapshot: the node charges it for every write and holds its stream.
        let loading = try FakeReplica.loading(through: primary)
        try Self.writeMixedTraffic(through: try primary.viaSidecar())
        let fencesBefore = primary.server.replicaStreamFences
        loading.close()
        try waitUntil("the node lets the replica go", timeout: .seconds(10)) {
            try primary.info(section: "replication")["connected_slaves"] == "1" ? true : nil
        }
        let report = try await admin.reconcile(mode: .fenced)
        #expect(primary.server.replicaStreamFences == fencesBefore, "the node would write nothing more down that link")
        #expect(report.replication.droppedStreams == 1 && report.replication.linksThroughSidecar == 1, "\(report.replication)")
        let differing = report.slots.filter { $0.status != .match }
        #expect(!differing.isEmpty && report.summary.unexplained == 0, "\(report.summary)")
        #expect(differing.allSatisfy { $0.reasons == [.replication] && $0.difference.bytesIn == 0 && $0.difference.bytesOut > 0 }, "\(differing)")
    }
}

/// A replica made by hand: the handshake, `PSYNC ? -1`, and (on `acknowledge`) `REPLCONF ACK`, which
/// a diskless primary waits for before it streams commands. What the primary sends is never read: the
/// socket's buffers hold it.
private final class FakeReplica {
    private let client: NodeClient

    init(port: Int) throws {
        client = try NodeClient(host: "127.0.0.1", port: port)
        for step in [["REPLCONF", "listening-port", "1"], ["REPLCONF", "capa", "eof", "capa", "psync2"]] {
            let reply = try client.call(step)
            guard reply == .simpleString("OK") else { throw NodeClient.Failure("\(step) answered \(reply)") }
        }
        try client.send(RESPEncoder.command(["PSYNC", "?", "-1"]))
    }

    /// One attached through `primary`'s sidecar, beside the cluster's own replica, once the node
    /// counts it: it has not acknowledged its snapshot yet.
    static func loading(through primary: LocalCluster.Member) throws -> FakeReplica {
        let replica = try FakeReplica(port: primary.sidecarPort)
        try waitUntil("the node counts the new replica", timeout: .seconds(10)) {
            try primary.info(section: "replication")["connected_slaves"] == "2" ? true : nil
        }
        return replica
    }

    func acknowledge() throws { try client.send(RESPEncoder.command(["REPLCONF", "ACK", "0"])) }

    func close() { client.close() }
}
