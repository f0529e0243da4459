import Foundation
import Proxy
import RESP

/// Slot moves between shards, both kinds.
///
/// Where the commands go: every admin command (`CLUSTER SETSLOT`, `CLUSTER GETKEYSINSLOT`,
/// `CLUSTER MIGRATESLOTS`, `CLUSTER GETSLOTMIGRATIONS`, and `MIGRATE` itself) goes straight to the
/// node. The traffic a move causes between the nodes crosses the sidecars anyway, because the nodes
/// only know sidecar ports: `MIGRATE`'s destination is the target's sidecar (its `RESTORE-ASKING`
/// stream is what the target's sidecar must account), and in an atomic move the source dials the
/// target's announced port. Sending the operator's own commands direct keeps them out of the
/// sidecars' ledgers and out of their fences' pauses, so that a test sees only what the move itself
/// put on the wire; what the source's node counts for a direct `MIGRATE` in the moving slot is
/// reset when the slot leaves it (`clusterDelSlot` → `clusterSlotStatReset`).
extension LocalCluster {
    /// Moves each of `slots` to `target`, a primary now, by the legacy procedure: `CLUSTER SETSLOT s
    /// IMPORTING <source>` on the target, `CLUSTER SETSLOT s MIGRATING <target>` on the source,
    /// `CLUSTER GETKEYSINSLOT` + `MIGRATE 127.0.0.1 <target's sidecar> "" 0 5000 KEYS …` on the
    /// source until the slot is empty, then `CLUSTER SETSLOT s NODE <target>` on the target, the
    /// source and every other primary, in that order (the target first, so that its claim carries
    /// the epoch it bumps). Slots `target` already owns are skipped. Returns once every node's
    /// `CLUSTER NODES` names `target` as the owner of every slot, with no migration left open.
    /// Keys are handled as UTF-8 text.
    public func moveSlotsLegacy(_ slots: [Int], to target: Member, timeout: Duration = .seconds(15)) throws {
        let primaries = try primaries()
        guard primaries.contains(where: { $0 === target }) else { throw Failure(description: "\(target) is not a primary") }
        var clients: [String: NodeClient] = [:]
        func client(_ member: Member) throws -> NodeClient {
            if let client = clients[member.nodeID] { return client }
            let client = try member.direct()
            clients[member.nodeID] = client
            return client
        }
        for slot in slots {
            guard let source = try owner(ofSlot: slot, seenBy: target) else {
                throw Failure(description: "\(target.name) names no owner of slot \(slot)")
            }
            guard source !== target else { continue }
            let (from, to) = (try client(source), try client(target))
            try expectOK(to.call("CLUSTER", "SETSLOT", "\(slot)", "IMPORTING", source.nodeID), "SETSLOT \(slot) IMPORTING on \(target.name)")
            try expectOK(from.call("CLUSTER", "SETSLOT", "\(slot)", "MIGRATING", target.nodeID), "SETSLOT \(slot) MIGRATING on \(source.name)")
            while true {
                let reply = try from.call("CLUSTER", "GETKEYSINSLOT", "\(slot)", "100")
                guard let keys = reply.array?.compactMap(\.string) else {
                    throw Failure(description: "CLUSTER GETKEYSINSLOT \(slot) on \(source.name) answered \(reply)")
                }
                if keys.isEmpty { break }
                let migrated = try from.call(["MIGRATE", "127.0.0.1", "\(target.sidecarPort)", "", "0", "5000", "KEYS"] + keys)
                guard migrated == .simpleString("OK") || migrated == .simpleString("NOKEY") else {
                    throw Failure(description: "MIGRATE of slot \(slot) from \(source.name) to \(target.name) answered \(migrated)")
                }
            }
            for member in [target, source] + primaries.filter({ $0 !== target && $0 !== source }) {
                try expectOK(
                    client(member).call("CLUSTER", "SETSLOT", "\(slot)", "NODE", target.nodeID), "SETSLOT \(slot) NODE on \(member.name)")
            }
        }
        try waitUntilOwned(slots, by: target, timeout: timeout)
    }

    /// Moves `range` to `target`, a primary now, by Valkey 9's atomic slot migration:
    /// `CLUSTER MIGRATESLOTS SLOTSRANGE <first> <last> NODE <target>` sent to the range's owner (which
    /// must own all of it), then polls that node's `CLUSTER GETSLOTMIGRATIONS` until the new export
    /// job is `success` (throws if it `failed` or was `cancelled`), and waits until every node's
    /// `CLUSTER NODES` names `target` as the owner of the whole range. Throws at once on Valkey 8.
    public func moveSlotsAtomically(_ range: ClosedRange<Int>, to target: Member, timeout: Duration = .seconds(15)) throws {
        guard version.major >= 9 else {
            throw Failure(
                description: "atomic slot migration (CLUSTER MIGRATESLOTS) needs Valkey 9.0 or later; this cluster runs \(version): "
                    + "use moveSlotsLegacy")
        }
        guard let source = try owner(ofSlot: range.lowerBound, seenBy: target) else {
            throw Failure(description: "\(target.name) names no owner of slot \(range.lowerBound)")
        }
        guard source !== target else { throw Failure(description: "\(target.name) owns slot \(range.lowerBound) already") }
        let earlier = Set(try slotMigrations(on: source).map(\.name))
        try expectOK(
            source.direct().call(
                "CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", "\(range.lowerBound)", "\(range.upperBound)", "NODE", target.nodeID),
            "CLUSTER MIGRATESLOTS \(range) to \(target.name) on \(source.name)")
        let job = try waitUntil("the migration of \(range) from \(source.name) to \(target.name) ends", timeout: timeout) {
            try slotMigrations(on: source).first { !earlier.contains($0.name) && $0.operation == "EXPORT" && $0.isFinished }
        }
        guard job.state == "success" else {
            throw Failure(description: "migration of \(range) from \(source.name) to \(target.name): \(job.state) (\(job.message))")
        }
        try waitUntilOwned(Array(range), by: target, timeout: timeout)
    }

    /// One entry of `CLUSTER GETSLOTMIGRATIONS` (Valkey 9): an export on the source, an import on
    /// the target, kept for a while after it ends (`cluster-slot-migration-log-max-len`).
    public struct SlotMigrationJob: Sendable {
        public var name: String
        /// `EXPORT` or `IMPORT`.
        public var operation: String
        /// As Valkey prints them: `first-last`, space-separated.
        public var slotRanges: String
        public var sourceID: String
        public var targetID: String
        /// `success`, `failed`, `cancelled`, or a state of a job in progress (`snapshotting`, …).
        public var state: String
        public var message: String

        public var isFinished: Bool { ["success", "failed", "cancelled"].contains(state) }
    }

    /// `CLUSTER GETSLOTMIGRATIONS` on `member`, asked directly.
    public func slotMigrations(on member: Member) throws -> [SlotMigrationJob] {
        let reply = try member.direct().call("CLUSTER", "GETSLOTMIGRATIONS")
        guard let entries = reply.array else { throw Failure(description: "CLUSTER GETSLOTMIGRATIONS on \(member.name): \(reply)") }
        return try entries.map { entry in
            guard let pairs = entry.pairs else { throw Failure(description: "CLUSTER GETSLOTMIGRATIONS entry \(entry)") }
            var fields: [String: String] = [:]
            for pair in pairs {
                if let key = pair.key.string { fields[key] = pair.value.string ?? pair.value.int.map(String.init) }
            }
            return SlotMigrationJob(
                name: fields["name"] ?? "", operation: fields["operation"] ?? "", slotRanges: fields["slot_ranges"] ?? "",
                sourceID: fields["source_node"] ?? "", targetID: fields["target_node"] ?? "", state: fields["state"] ?? "",
                message: fields["message"] ?? "")
        }
    }

    /// Waits until every node's `CLUSTER NODES` names `target` as the owner of every one of `slots`
    /// and lists no legacy migration open on itself.
    public func waitUntilOwned(_ slots: [Int], by target: Member, timeout: Duration = .seconds(15)) throws {
        try waitUntil("every node names \(target.name) as the owner of \(slots.count) slots", timeout: timeout) {
            () throws -> Bool? in
            for member in members {
                let view = try ClusterNodesView(reply: member.direct().call("CLUSTER", "NODES"))
                if let slot = slots.first(where: { view.owner(ofSlot: $0)?.id != target.nodeID }) {
                    throw Failure(description: "\(member.name) names \(view.owner(ofSlot: slot)?.id.prefix(8) ?? "no node") for slot \(slot)")
                }
                if let myself = view.myself, !myself.migrating.isEmpty || !myself.importing.isEmpty {
                    throw Failure(description: "\(member.name) has open migrations \(myself.migrating) \(myself.importing)")
                }
            }
            return true
        }
    }
}
