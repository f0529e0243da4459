import Accounting
import Admin
import Foundation
import LocalCluster
import Logging
import Proxy
import RESP
import Synchronization
import Testing
import TestSupport

/// A replica's node counts its primary's stream as bytes in, but that stream crosses the primary's
/// sidecar. The replica's sidecar asks the primary's for what it forwarded (docs/accounting.md §10),
/// so a replica reconciles `match` too; when it cannot ask, the report says so.
@Suite("Reconciliation of a replica's stream", .serialized, .enabled(if: ValkeyBinaries.available, ValkeyBinaries.missingReason))
struct ReplicaStreamTests {
    /// Writes through the primary's sidecar and reads through the replica's, then waits until the
    /// replica has processed every write.
    static func traffic(_ roles: (primary: LocalCluster.Member, replica: LocalCluster.Member), round: Int) throws {
        let writer = try roles.primary.viaSidecar()
        for index in 0..<10 { #expect(try writer.call("SET", "round\(round):\(index)", "v") == .simpleString("OK")) }
        #expect(try writer.call("SET", "ttl\(round)", "v", "EX", "100") == .simpleString("OK"))
        #expect(try writer.call("MULTI") == .simpleString("OK"))
        _ = try writer.call("SET", "{t\(round)}a", "1")
        _ = try writer.call("INCR", "{t\(round)}b")
        #expect(try writer.call("EXEC").array?.count == 2)
        #expect(try writer.call("DEL", "round\(round):9") == .integer(1))
        #expect(try writer.call("SET", "round\(round):9", "v") == .simpleString("OK"))
        #expect(try writer.call("WAIT", "1", "5000") == .integer(1))
        let reader = try roles.replica.viaSidecar()
        #expect(try reader.call("READONLY") == .simpleString("OK"))
        for index in 0..<10 { #expect(try reader.call("GET", "round\(round):\(index)") == .bulkString(Array("v".utf8))) }
    }

    @Test("a replica reconciles match from its primary's sidecar's counts, also after its link dropped and resumed", arguments: [8, 9])
    func replicaMatchesAcrossAResumedLink(major: Int) async throws {
        let cluster = try LocalCluster(major: major)
        defer { cluster.stop() }
        let roles = try #require(try cluster.currentRoles())
        let admin = AdminService(backend: ProxyBackend(sidecar: roles.replica.sidecar))
        try Self.traffic(roles, round: 1)
        let first = try await admin.reconcile(mode: .fenced)
        #expect(first.verdict == .match, "\(first.summary) \(first.slots.filter { $0.status != .match }.prefix(5)) \(first.replication)")
        let stream = try #require(first.replication.stream)
        #expect(stream.gap == nil && stream.primary == "127.0.0.1:\(roles.primary.sidecarPort)", "\(stream)")
        let streamed = first.slots.reduce(UInt64(0)) { $0 + ($1.replicationIn ?? 0) }
        #expect(streamed > 0 && streamed == stream.bytesIn, "\(stream)")
        // The replica's own clients' reads are on its ledger, beside the stream.
        #expect(first.slots.contains { $0.ledger.bytesIn > 0 && ($0.replicationIn ?? 0) > 0 })

        // The replica drops its link; it reconnects through the sidecar and PSYNC resumes the stream
        // where it had processed it: the new link joins the old one's chain.
        let before = try roles.replica.info(section: "replication")["slave_repl_offset"]
        #expect(try roles.replica.direct().call("CLIENT", "KILL", "TYPE", "master").int == 1)
        try waitUntil("the replica resumed its link", timeout: .seconds(15)) {
            let replication = try roles.replica.info(section: "replication")
            return replication["master_link_status"] == "up" && replication["slave_repl_offset"] != nil ? true : nil
        }
        #expect(before != nil)
        try Self.traffic(roles, round: 2)
        let resumed = try await admin.reconcile(mode: .fenced)
        #expect(resumed.verdict == .match, "\(resumed.summary) \(resumed.slots.filter { $0.status != .match }.prefix(5)) \(resumed.replication)")
        #expect(resumed.replication.stream?.gap == nil && (resumed.replication.stream?.bytesIn ?? 0) > streamed, "\(resumed.replication)")
        let counts = try await roles.primary.server.replicaStream(
            listeningPort: roles.replica.nodePort, host: nil, upTo: try #require(resumed.replication.stream?.processedOffset))
        #expect(counts.chain == 1 && counts.nextLink == 3, "two links in one chain: \(counts.chain as Any), next \(counts.nextLink)")
    }

    @Test("a replica that resyncs in full during load, through its primary's sidecar, still matches", arguments: [8, 9])
    func fullResyncDuringLoad(major: Int) async throws {
        let cluster = try LocalCluster(major: major)
        defer { cluster.stop() }
        let roles = try #require(try cluster.currentRoles())
        let admin = AdminService(backend: ProxyBackend(sidecar: roles.replica.sidecar))
        try Self.traffic(roles, round: 1)
        let primary = try roles.primary.direct()
        // A backlog too small for what is written while the replica is stopped: it must sync in full.
        #expect(try primary.call("CONFIG", "SET", "repl-backlog-size", "16384") == .simpleString("OK"))
        let fullSyncs = try roles.primary.info(section: "stats")["sync_full"]
        let writer = try roles.primary.viaSidecar()
        let value = String(repeating: "x", count: 1000)
        #expect(kill(roles.replica.valkey.pid, SIGSTOP) == 0)
        do {
            #expect(try primary.call("CLIENT", "KILL", "TYPE", "replica").int == 1)
            for index in 0..<200 { #expect(try writer.call("SET", "load:\(index)", value) == .simpleString("OK")) }
        } catch {
            kill(roles.replica.valkey.pid, SIGCONT)
            throw error
        }
        #expect(kill(roles.replica.valkey.pid, SIGCONT) == 0)
        // Writes go on while the replica reconnects, loads the snapshot and catches up.
        for index in 200..<400 { #expect(try writer.call("SET", "load:\(index)", value) == .simpleString("OK")) }
        #expect(try writer.call("WAIT", "1", "15000") == .integer(1))
        #expect(try roles.primary.info(section: "stats")["sync_full"] != fullSyncs, "the replica synced in full")
        try Self.traffic(roles, round: 2)
        let report = try await admin.reconcile(mode: .fenced)
        #expect(report.verdict == .match, "\(report.summary) \(report.slots.filter { $0.status != .match }.prefix(5)) \(report.replication)")
        #expect(report.replication.stream?.gap == nil, "\(report.replication)")
        let primaryReport = try await AdminService(backend: ProxyBackend(sidecar: roles.primary.sidecar)).reconcile(mode: .fenced)
        #expect(primaryReport.verdict == .match, "\(primaryReport.summary) \(primaryReport.replication)")
    }

    @Test("a replica's sidecar asks its primary's over the admin API; a primary's sidecar it cannot reach is named")
    func overHTTPAndUnreachable() async throws {
        let admins = Mutex<[String: String]>([:])
        var fence = LocalCluster.testFence
        fence.replicaStreamSource = PeerStreamClient(timeoutMilliseconds: 1000) { announced in admins.withLock { $0[announced] } }
        let cluster = try LocalCluster(major: 9, fence: fence)
        defer { cluster.stop() }
        let roles = try #require(try cluster.currentRoles())
        let replicaAdmin = AdminService(backend: ProxyBackend(sidecar: roles.replica.sidecar))

        // Until the primary's admin API is known, the replica's epoch began without a baseline.
        let unknown = try await replicaAdmin.reconcile(mode: .fenced)
        #expect(unknown.replication.stream?.gap == .peerUnreachable, "\(unknown.replication)")
        #expect(unknown.replication.stream?.detail?.contains("no admin address") == true, "\(unknown.replication)")

        let server = try await AdminServer.start(
            AdminService(backend: ProxyBackend(sidecar: roles.primary.sidecar), configuration: AdminConfiguration(listenPort: 0)))
        admins.withLock { $0["127.0.0.1:\(roles.primary.sidecarPort)"] = "127.0.0.1:\(server.port)" }
        await roles.replica.sidecar.closeEpoch()
        try Self.traffic(roles, round: 1)
        let matched = try await replicaAdmin.reconcile(mode: .fenced)
        #expect(matched.verdict == .match, "\(matched.summary) \(matched.replication)")
        #expect(matched.replication.stream?.gap == nil && (matched.replication.stream?.bytesIn ?? 0) > 0)

        // The primary's admin API goes away: the replica's stream bytes are named, not guessed.
        await server.stop()
        try Self.traffic(roles, round: 2)
        let unreachable = try await replicaAdmin.reconcile(mode: .fenced)
        #expect(unreachable.verdict == .difference)
        #expect(unreachable.replication.stream?.gap == .peerUnreachable, "\(unreachable.replication)")
        #expect(unreachable.replication.stream?.detail?.contains("cannot ask 127.0.0.1:\(server.port)") == true, "\(unreachable.replication)")
        let differing = unreachable.slots.filter { $0.status != .match }
        #expect(!differing.isEmpty && differing.allSatisfy { $0.reasons == [.replication] }, "\(differing.prefix(3))")
        #expect(unreachable.summary.unexplained == 0)
    }
}

/// An admin API served on a free loopback port until `stop`.
struct AdminServer {
    let port: Int
    private let task: Task<Void, any Error>

    static func start(_ service: AdminService) async throws -> AdminServer {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "admin.test")
        logger.logLevel = .critical
        let task = Task { try await service.run(logger: logger) { port in continuation.yield(port) } }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            task.cancel()
            throw NodeClient.Failure("the admin API did not start")
        }
        return AdminServer(port: port, task: task)
    }

    func stop() async {
        task.cancel()
        _ = await task.result
    }
}
