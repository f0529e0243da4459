import Accounting
import Admin
import Foundation
import LocalCluster
import Proxy
import RESP
import Synchronization
import Testing
import TestSupport

/// The deployment users run: shards of a primary and a replica, every node behind its own slotwarden.
/// Traffic runs throughout while slots move and a shard fails over; then every sidecar reconciles.
@Suite("Cluster accounting under slot moves and a failover", .serialized, .enabled(if: ValkeyBinaries.available, ValkeyBinaries.missingReason))
struct ClusterAccountingTests {
    /// Mixed traffic over every slot from its own thread until stopped; remembers every write the
    /// cluster acknowledged.
    final class Traffic: Sendable {
        typealias Outcome = (acknowledged: [String: String], commands: Int, problems: [String])
        /// Shared with the traffic's task.
        private final class State: Sendable {
            let stopped = Atomic<Bool>(false)
            let outcome = Mutex<Outcome>(([:], 0, []))
            let failure = Mutex<(any Error)?>(nil)
        }
        private let state = State()
        private let finished = DispatchGroup()

        /// Runs on a thread of its own: its calls block, and on the cooperative pool they would hold
        /// back the sidecars' fence tasks.
        init(cluster: LocalCluster) {
            let ports = cluster.sidecarPorts
            let entry = cluster.members[0].sidecarPort
            let state = self.state
            finished.enter()
            let thread = Thread { [finished] in
                defer { finished.leave() }
                let client = SidecarClusterClient(sidecarPorts: ports, entryPort: entry)
                defer { client.close() }
                var round = 0
                do {
                    while !state.stopped.load(ordering: .relaxed) {
                        let key = "acceptance:\(round)"
                        let value = "v\(round)"
                        if try client.call(key: key, ["SET", key, value]) == .simpleString("OK") {
                            state.outcome.withLock { $0.acknowledged[key] = value }
                        }
                        _ = try client.call(key: "counter:\(round % 300)", ["INCR", "counter:\(round % 300)"])
                        _ = try client.call(key: "hash:\(round % 200)", ["HSET", "hash:\(round % 200)", "f\(round % 7)", value])
                        _ = try client.call(key: "acceptance:\(round / 2)", ["GET", "acceptance:\(round / 2)"])
                        round += 1
                    }
                } catch {
                    state.failure.withLock { $0 = error }
                }
                state.outcome.withLock {
                    $0.commands = client.commands
                    $0.problems = client.problems
                }
            }
            thread.start()
        }

        func stop() async throws -> Outcome {
            state.stopped.store(true, ordering: .relaxed)
            await withCheckedContinuation { continuation in finished.notify(queue: .global()) { continuation.resume() } }
            if let error = state.failure.withLock({ $0 }) { throw error }
            return state.outcome.withLock { $0 }
        }

        /// Waits until the cluster has acknowledged `writes` more writes.
        func waitForProgress(_ writes: Int) throws {
            let start = state.outcome.withLock { $0.acknowledged.count }
            try waitUntil("\(writes) more acknowledged writes", timeout: .seconds(30)) {
                state.outcome.withLock { $0.acknowledged.count } >= start + writes ? true : nil
            }
        }
    }

    @Test(
        "2 × (primary + replica): 100 slots move (legacy, and atomic on 9.x), a shard fails over; every sidecar matches, no write is lost",
        arguments: [8, 9])
    func acceptance(major: Int) async throws {
        let cluster = try LocalCluster(major: major, shards: 2, replicasPerShard: 1)
        defer { cluster.stop() }
        let traffic = Traffic(cluster: cluster)
        try traffic.waitForProgress(300)

        // 100 slots of shard 0 to shard 1, the legacy way, under traffic.
        let (first, second) = (cluster.shards[0][0], cluster.shards[1][0])
        try cluster.moveSlotsLegacy(Array(0..<100), to: second)
        try traffic.waitForProgress(200)
        if cluster.major >= 9 {
            // And 100 of shard 1's back, atomically.
            try cluster.moveSlotsAtomically(8192...8291, to: first)
            try traffic.waitForProgress(200)
        }
        // Shard 0 fails over through its replica's sidecar.
        try cluster.failover(to: cluster.shards[0][1], timeout: .seconds(15))
        try traffic.waitForProgress(200)
        let outcome = try await traffic.stop()
        #expect(outcome.problems.isEmpty, "clients saw more than redirects: \(outcome.problems.prefix(5))")

        // Every acknowledged write reads back.
        let reader = cluster.client()
        defer { reader.close() }
        var lost: [String] = []
        for (key, value) in outcome.acknowledged where try reader.call(key: key, ["GET", key]) != .bulkString(Array(value.utf8)) {
            lost.append(key)
        }
        #expect(lost.isEmpty, "\(lost.count) of \(outcome.acknowledged.count) acknowledged writes lost: \(lost.prefix(5))")
        try cluster.waitUntilConverged()
        for shard in cluster.shards.indices {
            let primary = try #require(try cluster.roles(ofShard: shard)).primary
            #expect(try primary.viaSidecar().call("WAIT", "1", "5000") == .integer(1))
        }

        for member in cluster.members {
            let report = try await AdminService(backend: ProxyBackend(sidecar: member.sidecar)).reconcile(mode: .fenced)
            let cuts = await member.sidecar.fence.slotCuts.cuts
            #expect(report.summary.unexplained == 0, "\(member.name): \(report.slots.filter { $0.status != .match && $0.reasons.isEmpty }.prefix(5))")
            #expect(report.verdict == .match, "\(member.name): \(report.summary) \(report.slots.filter { $0.status != .match }.prefix(5)) \(report.replication)")
            if try member.role() == "master" {
                #expect(report.replication.replicasOnNode == 1 && report.replication.linksThroughSidecar == 1)
            } else {
                // The replica's bytes in include the stream its primary's sidecar forwarded to it, exactly.
                // (The demoted primary's epoch may open after the last writes reached it.)
                let stream = try #require(report.replication.stream)
                #expect(stream.gap == nil, "\(member.name): \(stream)")
                if member.shard == 1 { #expect((stream.bytesIn ?? 0) > 0, "\(member.name): \(stream)") }
            }
            // Shard 1 kept its roles, so its sidecars cut the moved slots; shard 0's may have closed an
            // epoch at the failover before they saw the move, which restarts every slot anyway.
            if member.shard == 1 {
                #expect(cuts.contains { $0.covers(50) }, "\(member.name) cut the moved slot 50: \(cuts.map(\.slotCount))")
            }
        }
        print("acceptance on Valkey \(cluster.version): \(outcome.commands) commands, \(outcome.acknowledged.count) acknowledged writes, none lost")
    }
}
