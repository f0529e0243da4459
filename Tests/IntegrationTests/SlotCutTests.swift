import Accounting
import Admin
import LocalCluster
import Proxy
import RESP
import Testing
import TestSupport

/// A node zeroes a slot's counters whenever its view of the slot's owner changes, on every node of
/// the cluster. These tests move slots and fail shards over under real traffic, and check that every
/// sidecar cuts those slots and still reconciles `match`.
@Suite("Slot cuts across a cluster", .serialized, .enabled(if: ValkeyBinaries.available, ValkeyBinaries.missingReason))
struct SlotCutTests {
    /// A key whose hash slot is `slot`.
    static func key(inSlot slot: Int, _ prefix: String = "k") -> String {
        var index = 0
        while true {
            let candidate = "\(prefix)\(index)"
            if HashSlot(key: candidate).rawValue == slot { return candidate }
            index += 1
        }
    }

    static func fencedReconcile(_ member: LocalCluster.Member) async throws -> ReconcileReport {
        try await AdminService(backend: ProxyBackend(sidecar: member.sidecar)).reconcile(mode: .fenced)
    }

    /// The first cut of `slot` on `member`'s sidecar with an id above `after`, waiting for cuts as
    /// they are made (10 s at most).
    static func waitForCut(of slot: Int, on member: LocalCluster.Member, after: UInt64) async throws -> SlotCut {
        // One cut after another by id, each taken from the history or waited for: a cut made between
        // two reads cannot be skipped.
        var last = after
        while true {
            guard let cut = await member.sidecar.fence.slotCut(after: last, within: .seconds(10)) else {
                throw LocalCluster.Failure(description: "\(member.name) made no cut of slot \(slot) within 10 s")
            }
            if cut.covers(UInt16(slot)) { return cut }
            last = cut.id
        }
    }

    @Test("a legacy move cuts the slot on the source, the target and an uninvolved node; all three match", arguments: [8, 9])
    func legacyMove(major: Int) async throws {
        let cluster = try LocalCluster(major: major, shards: 3, replicasPerShard: 0)
        defer { cluster.stop() }
        let (a, b, c) = (cluster.shards[0][0], cluster.shards[1][0], cluster.shards[2][0])
        let slot = 100
        let key = Self.key(inSlot: slot)
        #expect(try cluster.owner(ofSlot: slot) === a)

        // Traffic on A for the slot, and a GET refused with -MOVED by B and by C: both count it in a
        // slot they do not report.
        let client = cluster.client(entry: a)
        defer { client.close() }
        for index in 0..<10 { #expect(try client.call(key: key, ["SET", key, "v\(index)"]) == .simpleString("OK")) }
        for member in [b, c] {
            let refused = try member.viaSidecar().call("GET", key)
            #expect(refused.errorMessage?.hasPrefix("MOVED \(slot) ") == true, "\(refused)")
        }
        let before = try await Self.fencedReconcile(c)
        #expect(before.verdict == .match, "\(before.summary)")
        #expect(before.notReported.map(\.slot) == [slot])

        var cutsBefore: [UInt64] = []
        for member in [a, b, c] { cutsBefore.append(await member.sidecar.fence.slotCuts.total) }
        try cluster.moveSlotsLegacy([slot], to: b)
        #expect(try client.call(key: key, ["GET", key]) == .bulkString(Array("v9".utf8)))
        for index in 0..<5 { #expect(try client.call(key: key, ["SET", key, "w\(index)"]) == .simpleString("OK")) }

        let onA = try await Self.waitForCut(of: slot, on: a, after: cutsBefore[0])
        let onB = try await Self.waitForCut(of: slot, on: b, after: cutsBefore[1])
        let onC = try await Self.waitForCut(of: slot, on: c, after: cutsBefore[2])
        let rowA = try #require(onA.slots.first { $0.slot == UInt16(slot) })
        #expect(onA.fenced && rowA.wasReported && !rowA.isReported)
        #expect(rowA.previousOwner?.id == a.nodeID && rowA.newOwner?.id == b.nodeID)
        #expect(rowA.node.commands >= 10, "A closed the slot's traffic before the move: \(rowA.node)")
        let rowB = try #require(onB.slots.first { $0.slot == UInt16(slot) })
        #expect(onB.fenced && !rowB.wasReported && rowB.isReported)
        let rowC = try #require(onC.slots.first { $0.slot == UInt16(slot) })
        #expect(!onC.fenced && !rowC.wasReported && !rowC.isReported)
        #expect(rowC.node.bytesIn == UInt64(RESPEncoder.command(["GET", key]).count), "C closed the refused GET: \(rowC.node)")

        for member in [a, b, c] {
            let report = try await Self.fencedReconcile(member)
            #expect(report.verdict == .match, "\(member.name): \(report.summary) \(report.slots.filter { $0.status != .match })")
            #expect(report.summary.unexplained == 0)
            #expect(report.notReported.isEmpty, "\(member.name): \(report.notReported)")
        }
        #expect(client.problems.isEmpty, "\(client.problems)")
    }

    @Test("a 9.x atomic migration crosses the target's sidecar as a migration stream; every node matches after the cut")
    func atomicMove() async throws {
        let cluster = try LocalCluster(major: 9, shards: 3, replicasPerShard: 0)
        defer { cluster.stop() }
        let (a, b, c) = (cluster.shards[0][0], cluster.shards[1][0], cluster.shards[2][0])
        let range = 200...219
        let client = cluster.client(entry: a)
        defer { client.close() }
        var written: [String: String] = [:]
        for slot in range {
            let key = Self.key(inSlot: slot, "m")
            #expect(try client.call(key: key, ["SET", key, "value-\(slot)"]) == .simpleString("OK"))
            written[key] = "value-\(slot)"
        }
        var cutsBefore: [UInt64] = []
        for member in [a, b, c] { cutsBefore.append(await member.sidecar.fence.slotCuts.total) }

        try cluster.moveSlotsAtomically(range, to: b)

        for (key, value) in written { #expect(try client.call(key: key, ["GET", key]) == .bulkString(Array(value.utf8))) }
        let migration = await b.server.snapshot()[.migration]
        #expect(migration.commands >= UInt64(range.count), "the snapshot's SETs crossed b's sidecar: \(migration)")
        #expect(await b.server.inFlightCount() == 0)
        let onB = try await Self.waitForCut(of: range.lowerBound, on: b, after: cutsBefore[1])
        #expect(onB.fenced && !onB.drainTimedOut, "\(onB)")
        _ = try await Self.waitForCut(of: range.lowerBound, on: a, after: cutsBefore[0])
        _ = try await Self.waitForCut(of: range.lowerBound, on: c, after: cutsBefore[2])
        for member in [a, b, c] {
            let report = try await Self.fencedReconcile(member)
            #expect(report.verdict == .match, "\(member.name): \(report.summary) \(report.slots.filter { $0.status != .match })")
            // The reads after the move went to a first, which refused them with -MOVED and counts them in
            // slots it no longer reports; a refusal that came before a's cut was zeroed by it, as the
            // node had not (these counts are never compared: the node hides them).
            let refusable = member === a ? Set(range) : []
            #expect(report.notReported.allSatisfy { refusable.contains($0.slot) }, "\(member.name): \(report.notReported)")
        }
        #expect(client.problems.isEmpty, "\(client.problems)")
    }

    @Test(
        "fenced reconciliations asked on both ends all through ten atomic migrations say match: none compares a node read after an owner change with a ledger read before its cut"
    )
    func reconcilesWhileSlotsMove() async throws {
        let cluster = try LocalCluster(major: 9, shards: 2, replicasPerShard: 0)
        defer { cluster.stop() }
        let (a, b) = (cluster.shards[0][0], cluster.shards[1][0])
        let range = 300...339
        let keys = range.map { Self.key(inSlot: $0, "r") }
        let value = String(repeating: "x", count: 2000)
        // A debug build reads CLUSTER SLOT-STATS in a few hundred ms: the fenced read needs more than
        // the default 50 ms pause to be a consistent cut.
        let admins = [a, b].map {
            AdminService(backend: ProxyBackend(sidecar: $0.sidecar), configuration: AdminConfiguration(listenPort: 0, maxPauseMilliseconds: 3000))
        }
        let reconciling = zip([a, b], admins).map { member, admin in
            Task {
                var reports: [(String, ReconcileReport)] = []
                while !Task.isCancelled { reports.append((member.name, try await admin.reconcile(mode: .fenced))) }
                return reports
            }
        }
        let clock = ContinuousClock()
        let start = clock.now
        for round in 0..<10 {
            let target = round % 2 == 0 ? b : a
            let cutsBefore = (await a.sidecar.fence.slotCuts.total, await b.sidecar.fence.slotCuts.total)
            try await offThePool {
                let client = cluster.client(entry: a)
                defer { client.close() }
                for key in keys { _ = try client.call(key: key, ["SET", key, value]) }
                try cluster.moveSlotsAtomically(range, to: target)
            }
            // Both sidecars see each owner before the next move: a move and its undoing between two
            // polls of a sidecar look like no change to it (see README, "Slot moves").
            _ = try await Self.waitForCut(of: range.lowerBound, on: a, after: cutsBefore.0)
            _ = try await Self.waitForCut(of: range.lowerBound, on: b, after: cutsBefore.1)
        }
        let elapsed = start.duration(to: clock.now)
        var reports: [(String, ReconcileReport)] = []
        for task in reconciling {
            task.cancel()
            reports += try await task.value
        }
        print("\(reports.count) fenced reconciliations during 10 migrations in \(elapsed)")
        #expect(reports.count >= 10, "\(reports.count) reconciliations")
        for (name, report) in reports where report.verdict != .match {
            Issue.record("\(name): \(report.summary) \(report.slots.filter { $0.status != .match }.prefix(3))")
        }
    }

    @Test("another shard's failover cuts its slots on an uninvolved node without a pause", arguments: [8, 9])
    func failoverElsewhere(major: Int) async throws {
        let cluster = try LocalCluster(major: major, shards: 2, replicasPerShard: 1)
        defer { cluster.stop() }
        let roles = try #require(try cluster.roles(ofShard: 1))
        let uninvolved = try #require(try cluster.roles(ofShard: 0))
        let foreignSlot = 16000
        let key = Self.key(inSlot: foreignSlot)
        for member in [uninvolved.primary] + uninvolved.replicas {
            let refused = try member.viaSidecar().call("GET", key)
            #expect(refused.errorMessage?.hasPrefix("MOVED \(foreignSlot) ") == true, "\(refused)")
        }
        let fencesBefore = await uninvolved.primary.sidecar.fence.counters.fences
        var cutsBefore: [UInt64] = []
        for member in [uninvolved.primary] + uninvolved.replicas { cutsBefore.append(await member.sidecar.fence.slotCuts.total) }

        try cluster.failover(to: try #require(roles.replicas.first))
        for (member, after) in zip([uninvolved.primary] + uninvolved.replicas, cutsBefore) {
            let cut = try await Self.waitForCut(of: foreignSlot, on: member, after: after)
            #expect(!cut.fenced)
            #expect(cut.slotCount == 16384 - 8192, "every slot of shard 1 changed owner: \(cut.slotCount)")
            // Only the slot that held the refused GET keeps a row; the rest are ranges.
            #expect(cut.slots.map(\.slot) == [UInt16(foreignSlot)], "\(cut.slots.count) rows")
            #expect(cut.moves.count == 1 && cut.moves.first?.slotRanges == [SlotRange(first: 8192, last: 16383)])
            let report = try await Self.fencedReconcile(member)
            #expect(report.verdict == .match, "\(member.name): \(report.summary)")
            #expect(report.notReported.isEmpty, "\(member.name): \(report.notReported)")
        }
        // The two fenced reconciliations are the only fences on the uninvolved primary.
        #expect(await uninvolved.primary.sidecar.fence.counters.fences == fencesBefore)
    }
}
