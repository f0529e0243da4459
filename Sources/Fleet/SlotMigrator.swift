import Foundation
import Proxy
import RESP

/// Moves slots between primaries through their sidecars (the only addresses a cluster behind
/// slotwarden announces): Valkey 9's atomic migration, or the legacy steps on 8.x. Blocking; run it
/// off the cooperative pool's hot paths.
public struct SlotMigrator: Sendable {
    public let timeoutMilliseconds: Int

    public init(timeoutMilliseconds: Int) {
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    /// The commands that move `range` from `source` to `target`, as an operator would type them.
    public static func commands(
        moving ranges: [ClosedRange<Int>], from source: ClusterMap.Node, to target: ClusterMap.Node, atomic: Bool, others: [ClusterMap.Node]
    ) -> [String] {
        let cli = { (node: ClusterMap.Node) in "valkey-cli -h \(node.host) -p \(node.port)" }
        if atomic {
            let bounds = ranges.map { "\($0.lowerBound) \($0.upperBound)" }.joined(separator: " ")
            return ["\(cli(source)) CLUSTER MIGRATESLOTS SLOTSRANGE \(bounds) NODE \(target.id)"]
        }
        return ranges.flatMap { $0 }.flatMap { slot in
            [
                "\(cli(target)) CLUSTER SETSLOT \(slot) IMPORTING \(source.id)",
                "\(cli(source)) CLUSTER SETSLOT \(slot) MIGRATING \(target.id)",
                "# until CLUSTER GETKEYSINSLOT \(slot) 100 on the source is empty:",
                "\(cli(source)) MIGRATE \(target.host) \(target.port) \"\" 0 5000 KEYS <keys from CLUSTER GETKEYSINSLOT \(slot) 100>",
            ] + ([target, source] + others).map { "\(cli($0)) CLUSTER SETSLOT \(slot) NODE \(target.id)" }
        }
    }

    /// Moves `slots` from `source` to `target`; returns once `source` reports the job done (atomic: one
    /// job for all of them, its ranges in one `SLOTSRANGE`) or every slot was handed over (legacy). `others`: the remaining primaries, told the new owner
    /// in the legacy procedure.
    public func move(_ slots: [Int], from source: ClusterMap.Node, to target: ClusterMap.Node, atomic: Bool, others: [ClusterMap.Node]) throws {
        let from = try client(source)
        defer { from.close() }
        if atomic {
            let ranges = RebalancePlan.Batch(from: 0, to: 0, slots: slots).ranges
            let earlier = Set(try Self.exportJobs(on: from).map(\.name))
            try Self.expectOK(
                from.call(["CLUSTER", "MIGRATESLOTS", "SLOTSRANGE"] + ranges.flatMap { ["\($0.lowerBound)", "\($0.upperBound)"] } + ["NODE", target.id]),
                "CLUSTER MIGRATESLOTS of \(slots.count) slots on \(source.address)")
            let job = try waitFor("the migration of \(slots.count) slots from \(source.address) to \(target.address)") {
                try Self.exportJobs(on: from).first { !earlier.contains($0.name) && ["success", "failed", "cancelled"].contains($0.state) }
            }
            guard job.state == "success" else {
                throw Fleet.Failure("migration of \(slots.count) slots from \(source.address) to \(target.address): \(job.state) (\(job.message))")
            }
            return
        }
        let to = try client(target)
        defer { to.close() }
        let informed = try others.map(client)
        defer { informed.forEach { $0.close() } }
        for slot in slots {
            try Self.expectOK(to.call("CLUSTER", "SETSLOT", "\(slot)", "IMPORTING", source.id), "SETSLOT \(slot) IMPORTING on \(target.address)")
            try Self.expectOK(from.call("CLUSTER", "SETSLOT", "\(slot)", "MIGRATING", target.id), "SETSLOT \(slot) MIGRATING on \(source.address)")
            while true {
                let reply = try from.call("CLUSTER", "GETKEYSINSLOT", "\(slot)", "100")
                guard let keys = reply.array?.compactMap(\.string) else {
                    throw Fleet.Failure("CLUSTER GETKEYSINSLOT \(slot) on \(source.address) answered \(reply)")
                }
                if keys.isEmpty { break }
                let migrated = try from.call(["MIGRATE", target.host, "\(target.port)", "", "0", "5000", "KEYS"] + keys)
                guard migrated == .simpleString("OK") || migrated == .simpleString("NOKEY") else {
                    throw Fleet.Failure("MIGRATE of slot \(slot) from \(source.address) to \(target.address) answered \(migrated)")
                }
            }
            // The target first, so that its claim carries the epoch it bumps.
            for (node, client) in zip([target, source] + others, [to, from] + informed) {
                try Self.expectOK(client.call("CLUSTER", "SETSLOT", "\(slot)", "NODE", target.id), "SETSLOT \(slot) NODE on \(node.address)")
            }
        }
    }

    /// Waits until every node of `map` says `cluster_state:ok` and names `target` as the owner of
    /// every one of `slots`.
    public func waitUntilSettled(_ map: ClusterMap, slots: [Int], ownedBy target: ClusterMap.Node) throws {
        _ = try waitFor("every node names \(target.address) as the owner of \(slots.count) moved slots, with cluster_state:ok") { () throws -> Bool? in
            for node in map.nodes {
                let client = try client(node)
                defer { client.close() }
                guard try client.call("CLUSTER", "INFO").string?.contains("cluster_state:ok") == true else { return nil }
                let view = try ClusterMap(clusterShards: client.call("CLUSTER", "SHARDS"))
                guard slots.allSatisfy({ view.owner(of: $0)?.id == target.id }) else { return nil }
            }
            return true
        }
    }

    private func client(_ node: ClusterMap.Node) throws -> NodeClient {
        try NodeClient(host: node.host, port: node.port, timeoutMilliseconds: timeoutMilliseconds)
    }

    private struct ExportJob {
        var name: String
        var state: String
        var message: String
    }

    private static func exportJobs(on client: NodeClient) throws -> [ExportJob] {
        let reply = try client.call("CLUSTER", "GETSLOTMIGRATIONS")
        guard let entries = reply.array else { throw Fleet.Failure("CLUSTER GETSLOTMIGRATIONS: \(reply)") }
        return entries.compactMap { entry in
            var fields: [String: String] = [:]
            for pair in entry.pairs ?? [] {
                if let key = pair.key.string { fields[key] = pair.value.string ?? pair.value.int.map(String.init) }
            }
            guard fields["operation"] == "EXPORT" else { return nil }
            return ExportJob(name: fields["name"] ?? "", state: fields["state"] ?? "", message: fields["message"] ?? "")
        }
    }

    private static func expectOK(_ reply: RESPValue, _ what: String) throws {
        guard reply == .simpleString("OK") else { throw Fleet.Failure("\(what) answered \(reply)") }
    }

    /// Polls `check` every 50 ms until it gives a value, or throws once the timeout passed.
    private func waitFor<Value>(_ what: String, _ check: () throws -> Value?) throws -> Value {
        let deadline = ContinuousClock.now + .milliseconds(timeoutMilliseconds)
        var lastError: (any Error)?
        while ContinuousClock.now < deadline {
            do {
                if let value = try check() { return value }
            } catch {
                lastError = error
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw Fleet.Failure("timed out waiting until \(what)\(lastError.map { ": \($0)" } ?? "")")
    }
}
