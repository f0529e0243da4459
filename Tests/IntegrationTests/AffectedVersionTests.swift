import Foundation
import Accounting
import LocalCluster
import Proxy
import RESP
import Testing

/// Issue 3, item 6: Valkey 8.0.0–8.0.2 and 8.1.0 abort on the first propagated write after a
/// replica's promotion while slot stats are on and no replica is attached yet (Valkey #1912). No
/// release on PyPI is affected, so these tests run only when `SLOTWARDEN_TEST_VALKEY_AFFECTED` names
/// such a `valkey-server` (built from an affected tag of Valkey's source; nothing here builds one).
enum AffectedValkey {
    static let variable = "SLOTWARDEN_TEST_VALKEY_AFFECTED"

    static var path: String? {
        guard let path = ProcessInfo.processInfo.environment[variable], FileManager.default.isExecutableFile(atPath: path)
        else { return nil }
        return path
    }

    static let skipReason: Comment = """
        SLOTWARDEN_TEST_VALKEY_AFFECTED does not name a valkey-server binary: build one from an affected tag \
        of Valkey's source (8.0.0–8.0.2 or 8.1.0) and point the variable at it to run these tests
        """
}

@Suite(
    "Valkey #1912: the promotion guard", .serialized,
    .enabled(if: AffectedValkey.path != nil, AffectedValkey.skipReason))
struct AffectedVersionTests {
    static let failovers = 6
    /// Valkey before 8.1 votes for a failover of the same primary at most once per two node
    /// timeouts, manual failovers included; a short node timeout keeps that wait short.
    static let nodeTimeoutMilliseconds = 1500

    struct Outcome {
        var failoversDone = 0
        var crashed: [LocalCluster.Member] = []
        var error: (any Error)?
    }

    /// Failovers in a row under load from ordinary cluster clients: the even ones through the
    /// replica's sidecar (the pre-fence holds clients before the command crosses), the odd ones
    /// straight to the node (the sidecar learns of the promotion from its role poll, and the writes
    /// redirected to the promoted node wait for a role check). Stops at the first crashed node.
    static func runFailovers(_ cluster: LocalCluster, client: SidecarClusterClient) -> Outcome {
        var outcome = Outcome()
        let clock = ContinuousClock()
        var lastFailover: ContinuousClock.Instant?
        for index in 0..<failovers {
            do {
                for key in 0..<20 { _ = try client.call(key: "round:\(index):\(key)", ["SET", "round:\(index):\(key)", "v"]) }
                guard let roles = try cluster.currentRoles() else { break }
                // The vote throttle is a timer inside the node, with nothing to wait on but time.
                if let lastFailover {
                    let throttle = Duration.milliseconds(2 * cluster.nodeTimeoutMilliseconds + 200)
                    let remaining = throttle - (clock.now - lastFailover)
                    if remaining > .zero { Thread.sleep(forTimeInterval: Double(remaining.components.seconds) + Double(remaining.components.attoseconds) / 1e18) }
                }
                lastFailover = clock.now
                _ = try cluster.failover(to: roles.replica, direct: index % 2 == 1)
                outcome.failoversDone += 1
            } catch {
                outcome.error = error
            }
            outcome.crashed = cluster.members.filter { $0.valkey.hasExited }
            if !outcome.crashed.isEmpty || outcome.error != nil { break }
        }
        return outcome
    }

    static func logTail(_ member: LocalCluster.Member) -> String {
        let log = (try? String(contentsOf: member.valkey.logFile, encoding: .utf8)) ?? ""
        return "\(member):\n" + log.split(separator: "\n").suffix(25).joined(separator: "\n")
    }

    static func assertionInLog(_ member: LocalCluster.Member) -> String? {
        let log = (try? String(contentsOf: member.valkey.logFile, encoding: .utf8)) ?? ""
        return log.split(separator: "\n").first { $0.contains("==>") }.map(String.init)
    }

    @Test("the guard keeps an affected node alive through failovers, and no acknowledged write is lost")
    func guarded() async throws {
        let cluster = try LocalCluster(
            executable: try #require(AffectedValkey.path), nodeTimeoutMilliseconds: Self.nodeTimeoutMilliseconds)
        defer { cluster.stop() }
        try #require(
            cluster.version.abortsOnFirstWriteAfterPromotion,
            "\(AffectedValkey.variable) names Valkey \(cluster.version), which is not affected")
        let writer = BackgroundWriter(cluster: cluster, prefix: "guarded")
        writer.start()
        defer { writer.requestStop() }
        let client = cluster.client()
        defer { client.close() }

        let outcome = Self.runFailovers(cluster, client: client)
        let load = writer.finish()
        #expect(outcome.crashed.isEmpty, "crashed: \(outcome.crashed.map { "\($0): \(Self.assertionInLog($0) ?? "no assertion in log")" })")
        #expect(outcome.error == nil, "\(outcome.error.map { "\($0)" } ?? "")\n\(cluster.members.map(Self.logTail).joined(separator: "\n"))")
        #expect(outcome.failoversDone == Self.failovers)

        // Every promotion was guarded, on the sidecar of the node that was promoted.
        var guards: UInt64 = 0
        var applied = 0
        for member in cluster.members {
            let counters = await member.sidecar.fence.counters
            #expect(counters.promotionGuardFailures == 0)
            guards += counters.promotionGuards
            applied += await member.sidecar.fence.closedEpochs.filter { $0.promotionGuard == .applied }.count
        }
        #expect(guards == UInt64(outcome.failoversDone), "guards \(guards) for \(outcome.failoversDone) failovers")
        #expect(applied == outcome.failoversDone)

        // Slot stats are back on both nodes, and every acknowledged write is readable.
        for member in cluster.members {
            let setting = try member.direct().call("CONFIG", "GET", "cluster-slot-stats-enabled")
            #expect(setting.array?.last?.string == "yes", "\(member): \(setting)")
        }
        let reader = cluster.client()
        defer { reader.close() }
        var lost: [String] = []
        for (key, value) in load.acknowledged {
            if try reader.call(key: key, ["GET", key]) != .bulkString(Array(value.utf8)) { lost.append(key) }
        }
        #expect(lost.isEmpty, "\(lost.count) of \(load.acknowledged.count) acknowledged writes lost")
        #expect(load.acknowledged.count > 0)
        #expect(load.problems.isEmpty, "\(load.problems.prefix(10))")
        #expect(client.problems.isEmpty, "\(client.problems.prefix(10))")
        print(
            "promotion guard on Valkey \(cluster.version): \(outcome.failoversDone) failovers, \(guards) guards applied, "
                + "nodes alive, \(load.acknowledged.count) acknowledged writes under load, \(lost.count) lost")
    }

    /// Shows that the traffic above does reach the crash: without the guard an affected node aborts.
    @Test("without the guard, the same failovers abort an affected node")
    func unguarded() async throws {
        var fence = LocalCluster.testFence
        fence.fence.guardsAffectedVersions = false
        let cluster = try LocalCluster(
            executable: try #require(AffectedValkey.path), fence: fence, nodeTimeoutMilliseconds: Self.nodeTimeoutMilliseconds)
        defer { cluster.stop() }
        try #require(cluster.version.abortsOnFirstWriteAfterPromotion)
        let writer = BackgroundWriter(cluster: cluster, prefix: "unguarded")
        writer.start()
        defer { writer.requestStop() }
        let client = cluster.client()
        defer { client.close() }

        let outcome = Self.runFailovers(cluster, client: client)
        _ = writer.finish()
        let crashed = try #require(outcome.crashed.first, "no node aborted in \(outcome.failoversDone) failovers")
        let assertion = Self.assertionInLog(crashed)
        #expect(assertion?.contains("network_bytes_out") == true, "\(crashed): \(assertion ?? "no assertion in the log")")
        print("without the guard, Valkey \(cluster.version) aborted during failover \(outcome.failoversDone + 1): \(assertion ?? "-")")
    }
}
