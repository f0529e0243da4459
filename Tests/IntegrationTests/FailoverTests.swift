import Foundation
import Accounting
import LocalCluster
import Proxy
import RESP
import Testing
import TestSupport

/// Issue 3, item 7: real `CLUSTER FAILOVER`s in a primary + replica cluster where each node stands
/// behind its own slotwarden and announces it, so that clients, redirects and replication all cross
/// the sidecars. Serialized, so that the failover timings of one version are not measured while the
/// other version's four processes compete for the same two cores.
@Suite("Real failovers through sidecars", .serialized, .enabled(if: ValkeyBinaries.available, ValkeyBinaries.missingReason))
struct FailoverTests {
    /// Failovers in a row (each one alternates the direction, so 20 = 10 there and 10 back).
    static let failovers = 20
    /// Unique keys written between two failovers.
    static let keysPerRound = 50
    /// A second client keeps writing on its own thread for the whole run, so every failover happens
    /// under load (writes in flight while the primary pauses, then `-MOVED`).
    static let writeDuringFailovers = true

    /// What one failover did: the lead's fence/epoch assertions key on this.
    struct FailoverRecord {
        var index: Int
        var promoted: LocalCluster.Member
        var demoted: LocalCluster.Member
        var timing: LocalCluster.FailoverTiming
    }

    @Test("20 failovers through the replica's sidecar lose no acknowledged write", arguments: [8, 9])
    func repeatedFailovers(major: Int) async throws {
        let clock = ContinuousClock()
        let setUpStart = clock.now
        let cluster = try LocalCluster(major: major)
        defer { cluster.stop() }
        let setUp = clock.now - setUpStart
        let version = cluster.version
        let initial = try #require(try cluster.currentRoles(), "one primary and one replica after set-up")
        // The replica replicates through the primary's sidecar, not straight from the node.
        let replication = try initial.replica.info(section: "replication")
        #expect(replication["master_port"] == "\(initial.primary.sidecarPort)", "Valkey \(version): \(replication)")
        #expect(replication["master_link_status"] == "up")

        // Enter through the replica's sidecar: the first write of each slot is redirected at once.
        let client = cluster.client(entry: initial.replica)
        defer { client.close() }
        var acknowledged: [(key: String, value: String)] = []
        var refused: [String] = []
        func writeRound(_ round: Int) {
            for index in 0..<Self.keysPerRound {
                let key = "failover:\(major):\(round):\(index)"
                let value = "\(key):\(UUID().uuidString)"
                do {
                    if try client.call(key: key, ["SET", key, value]) == .simpleString("OK") {
                        acknowledged.append((key, value))
                    } else {
                        refused.append(key)
                    }
                } catch {
                    refused.append("\(key): \(error)")
                }
            }
        }

        let background = Self.writeDuringFailovers ? BackgroundWriter(cluster: cluster, prefix: "load:\(major)") : nil
        background?.start()
        // Also when a failover throws: the writer must not outlive the cluster.
        defer { background?.requestStop() }

        var records: [FailoverRecord] = []
        for index in 0..<Self.failovers {
            writeRound(index)
            let roles = try #require(try cluster.currentRoles(), "Valkey \(version): roles before failover \(index + 1)")
            let timing = try cluster.failover(to: roles.replica)
            records.append(FailoverRecord(index: index, promoted: roles.replica, demoted: roles.primary, timing: timing))
            // Fence/epoch assertions per failover (issue 3 item 7: an epoch closed on both sidecars
            // with reason `role_change`, the pause reported and bounded) belong here.
        }
        writeRound(Self.failovers)
        let load = background?.finish()

        // Settled: the last promoted node is the primary, the other replicates it through its sidecar.
        let settledRoles = try #require(try cluster.currentRoles())
        #expect(settledRoles.primary === records.last?.promoted)
        try cluster.waitUntilSettled(primary: settledRoles.primary, replica: settledRoles.replica)

        // Both nodes' CLUSTER SLOTS name the new primary's sidecar first and no port but the sidecars.
        for member in cluster.members {
            let ports = try waitUntil("CLUSTER SLOTS on \(member) follows the failovers", timeout: .seconds(5)) {
                () throws -> [[Int]]? in
                let ports = try member.slotsPorts()
                return ports.count == 1 && ports[0].first == settledRoles.primary.sidecarPort ? ports : nil
            }
            #expect(
                Set(ports.joined()).isSubset(of: cluster.sidecarPorts), "Valkey \(version): CLUSTER SLOTS on \(member): \(ports)")
        }

        // Every acknowledged write is readable, through the sidecars, following MOVED.
        let all = acknowledged + (load?.acknowledged ?? [])
        let reader = cluster.client(entry: settledRoles.replica)
        defer { reader.close() }
        var lost: [String] = []
        var wrong: [String] = []
        for (key, value) in all {
            switch try reader.call(key: key, ["GET", key]) {
            case .bulkString(let bytes) where String(decoding: bytes, as: UTF8.self) == value: break
            case .null: lost.append(key)
            case let other: wrong.append("\(key): \(other)")
            }
        }
        #expect(lost.isEmpty, "Valkey \(version): \(lost.count) of \(all.count) acknowledged writes lost: \(lost.prefix(20))")
        #expect(wrong.isEmpty, "Valkey \(version): \(wrong.prefix(20))")

        // The replica holds the same data (replicated through the primary's sidecar).
        let waited = try settledRoles.primary.viaSidecar().call("WAIT", "1", "5000")
        #expect(waited == .integer(1), "Valkey \(version): WAIT through the primary's sidecar: \(waited)")
        let primarySize = try settledRoles.primary.direct().call("DBSIZE")
        let replicaSize = try settledRoles.replica.direct().call("DBSIZE")
        #expect(primarySize == replicaSize, "Valkey \(version): DBSIZE primary \(primarySize), replica \(replicaSize)")
        if case .integer(let size) = primarySize { #expect(Int(size) >= all.count) }

        // No client error other than redirects.
        #expect(refused.isEmpty, "Valkey \(version): writes not acknowledged: \(refused.prefix(20))")
        #expect(client.problems.isEmpty, "Valkey \(version): \(client.problems.prefix(20))")
        #expect(reader.problems.isEmpty, "Valkey \(version): \(reader.problems.prefix(20))")
        if let load {
            #expect(load.problems.isEmpty, "Valkey \(version): background writer: \(load.problems.prefix(20))")
            #expect(load.acknowledged.count > 0)
        }

        // Both sidecars still run: their loops answer, and a PING through each comes back.
        for member in cluster.members {
            let counts = await Self.connectionCounts(of: member.server, timeout: .seconds(5))
            #expect(counts != nil, "Valkey \(version): \(member)'s slotwarden did not answer connectionCounts()")
            #expect(try member.viaSidecar().call("PING") == .simpleString("PONG"))
        }

        let swapped = records.map(\.timing.swapped)
        let settled = records.map(\.timing.settled)
        var summary = """
            failovers on Valkey \(version) (cluster set up in \(Self.milliseconds(setUp))): \
            \(records.count) through the replica's sidecar, \
            \(all.count) acknowledged writes (\(acknowledged.count) in rounds, \(load?.acknowledged.count ?? 0) under load), \
            \(lost.count) lost, \(client.redirects + reader.redirects + (load?.redirects ?? 0)) redirects followed
              roles swapped: median \(Self.milliseconds(Self.median(swapped))), max \(Self.milliseconds(swapped.max()))
              settled (replica linked through the new primary's sidecar): median \(Self.milliseconds(Self.median(settled))), \
            max \(Self.milliseconds(settled.max()))
            """
        for member in cluster.members {
            let snapshot = await member.server.snapshot()
            let counts = await Self.connectionCounts(of: member.server, timeout: .seconds(5))
            // Quiescent now (the writers stopped): what a fence's drain would see on each sidecar.
            let inFlight = await member.server.inFlightCount()
            let drain = await member.server.drain(timeoutMilliseconds: 200)
            let role = member === settledRoles.primary ? "primary" : "replica"
            summary += "\n  \(member), \(role): replication bytes via sidecar"
                + " in \(snapshot[.replication].bytesIn) out \(snapshot[.replication].bytesOut)"
                + ", connections accepted \(counts?.accepted ?? 0) active \(counts?.active ?? 0)"
                + ", in flight at rest \(inFlight), drain(200 ms): drained \(drain.drained) after \(drain.elapsedMilliseconds) ms"
        }
        // The fence: every failover closed an epoch on both sidecars with reason role_change, each
        // pause was reported and bounded, and the epoch now open on the primary matches the node's
        // bytes-in slot by slot (its counters since the cut that opened the epoch).
        for member in cluster.members {
            let closed = await member.sidecar.fence.closedEpochs
            let counters = await member.sidecar.fence.counters
            let role = member === settledRoles.primary ? "primary" : "replica"
            #expect(closed.count >= Self.failovers, "Valkey \(version): \(member) closed \(closed.count) epochs")
            #expect(closed.allSatisfy { $0.closedBy == .roleChange }, "Valkey \(version): \(closed.map { $0.closedBy })")
            #expect(closed.allSatisfy { !$0.maxPauseExceeded && $0.pauseMilliseconds < 3000 })
            let pauses = closed.map(\.pauseMilliseconds).sorted()
            let drains = closed.map(\.drainMilliseconds).sorted()
            summary += "\n  \(member), \(role): \(closed.count) epochs closed (role_change), "
                + "pause median \(pauses[pauses.count / 2]) ms max \(pauses.last ?? 0) ms, "
                + "drain median \(drains[drains.count / 2]) ms max \(drains.last ?? 0) ms, "
                + "drain timeouts \(counters.drainTimeouts), carried over \(counters.carriedOverCommands)"
            guard member === settledRoles.primary else { continue }
            let snapshot = await member.server.snapshot()
            let baseline = await member.sidecar.fence.nodeStatsAtOpen
            let stats = try await member.sidecar.control.slotStats().subtracting(baseline)
            let rows = stats.bySlot()
            var differing: [String] = []
            for slot in snapshot.activeSlots + stats.rows.map(\.slot) {
                let node = rows[slot]?.networkBytesIn ?? 0
                let ledger = snapshot[.node, slot].bytesIn
                if node != ledger { differing.append("slot \(slot.rawValue): ledger \(ledger) node \(node)") }
            }
            #expect(differing.isEmpty, "Valkey \(version): new epoch bytes-in on the primary: \(differing.prefix(10))")
            summary += ", new epoch bytes-in: \(differing.isEmpty ? "matches the node in every slot" : "\(Set(differing).count) slots differ")"
        }
        print(summary)
        // A failover, fence included, should settle within two seconds even in a sanitized debug
        // build (most of the fence's pause is reading and decoding SLOT-STATS for 16384 slots).
        #expect(Self.median(settled) ?? .zero < .seconds(2), "Valkey \(version): \(summary)")
    }

    /// `connectionCounts()`, or nil when the loop does not answer within `timeout` (a dead loop would
    /// otherwise hang the test).
    static func connectionCounts(of server: ProxyServer, timeout: Duration) async -> ProxyServer.ConnectionCounts? {
        let box = AnswerBox<ProxyServer.ConnectionCounts>()
        Task { box.set(await server.connectionCounts()) }
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if let value = box.value { return value }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return box.value
    }

    static func median(_ durations: [Duration]) -> Duration? {
        guard !durations.isEmpty else { return nil }
        return durations.sorted()[durations.count / 2]
    }

    static func milliseconds(_ duration: Duration?) -> String {
        guard let duration else { return "-" }
        let (seconds, attoseconds) = duration.components
        return String(format: "%.1f ms", Double(seconds) * 1000 + Double(attoseconds) / 1e15)
    }
}

/// A value set once from another task.
final class AnswerBox<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value?
    var value: Value? { lock.withLock { stored } }
    func set(_ value: Value) { lock.withLock { stored = value } }
}

/// A client on its own thread that writes unique keys through the sidecars until told to finish.
final class BackgroundWriter: @unchecked Sendable {
    struct Result {
        var acknowledged: [(key: String, value: String)]
        var problems: [String]
        var redirects: Int
    }

    private let sidecarPorts: Set<Int>
    private let entryPort: Int
    private let prefix: String
    private let lock = NSLock()
    private var stopRequested = false
    private var result = Result(acknowledged: [], problems: [], redirects: 0)
    private let finished = DispatchSemaphore(value: 0)

    init(cluster: LocalCluster, prefix: String) {
        sidecarPorts = cluster.sidecarPorts
        entryPort = cluster.members[0].sidecarPort
        self.prefix = prefix
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "failover-background-writer"
        thread.start()
    }

    /// Asks the writer to stop after its current command, without waiting.
    func requestStop() {
        lock.withLock { stopRequested = true }
    }

    /// Stops the writer and returns what it did.
    func finish() -> Result {
        requestStop()
        if finished.wait(timeout: .now() + 30) == .timedOut {
            lock.withLock { result.problems.append("background writer did not stop within 30 s") }
        }
        return lock.withLock { result }
    }

    private func run() {
        defer { finished.signal() }
        let client = SidecarClusterClient(sidecarPorts: sidecarPorts, entryPort: entryPort)
        defer { client.close() }
        var index = 0
        while !lock.withLock({ stopRequested }) {
            let key = "\(prefix):\(index)"
            let value = "\(key):\(index &* 2_654_435_761)"
            index += 1
            // Paced, so that the read-back at the end stays short.
            usleep(200)
            do {
                let reply = try client.call(key: key, ["SET", key, value])
                lock.withLock {
                    if reply == .simpleString("OK") {
                        result.acknowledged.append((key, value))
                    } else {
                        result.problems.append("SET \(key): \(reply)")
                    }
                }
            } catch {
                lock.withLock { result.problems.append("SET \(key): \(error)") }
            }
        }
        lock.withLock {
            // The client keeps its own list of every non-redirect error, also those a retry overcame.
            result.problems.append(contentsOf: client.problems.filter { !result.problems.contains($0) })
            result.redirects = client.redirects
        }
    }
}
