import Foundation
import RESP

extension LocalCluster {
    // MARK: roles

    /// Shard 0's primary and its first replica, by `ROLE` asked directly, or nil while the shard has
    /// not (yet) exactly one primary. For the one-shard cluster: the primary and the replica.
    public func currentRoles() throws -> (primary: Member, replica: Member)? {
        guard let roles = try roles(ofShard: 0), let replica = roles.replicas.first else { return nil }
        return (roles.primary, replica)
    }

    /// Asks each member of `shard` directly for `ROLE`; nil while it has not exactly one primary.
    public func roles(ofShard shard: Int) throws -> (primary: Member, replicas: [Member])? {
        var primaries: [Member] = []
        var replicas: [Member] = []
        for member in shards[shard] {
            switch try member.role() {
            case "master": primaries.append(member)
            case "slave": replicas.append(member)
            default: return nil
            }
        }
        guard primaries.count == 1 else { return nil }
        return (primaries[0], replicas)
    }

    /// Each shard's primary now, in shard order, by `ROLE` asked directly. Throws while a shard has
    /// not exactly one (in the middle of a failover, say), so poll it with `waitUntil` then.
    public func primaries() throws -> [Member] {
        try shards.indices.map { shard in
            guard let roles = try roles(ofShard: shard) else {
                throw Failure(description: "shard \(shard) (\(shards[shard].map(\.name))) has not exactly one primary")
            }
            return roles.primary
        }
    }

    /// The member that owns `slot` in `node`'s `CLUSTER NODES` (the first member's unless named), or
    /// nil when that node names no owner.
    public func owner(ofSlot slot: Int, seenBy node: Member? = nil) throws -> Member? {
        let view = try ClusterNodesView(reply: (node ?? members[0]).direct().call("CLUSTER", "NODES"))
        return view.owner(ofSlot: slot).flatMap { member(nodeID: $0.id) }
    }

    // MARK: failover

    /// Issues `CLUSTER FAILOVER` to `replica` (of any shard), through its sidecar (which raises the
    /// fence before the command crosses) or `direct` to the node (the sidecar learns of it from its
    /// role poll), and waits until it and the primary it replicated swapped roles and the cluster
    /// settled again (see `waitUntilSettled`). `options`: `FORCE` or `TAKEOVER`, passed on to
    /// `CLUSTER FAILOVER`.
    @discardableResult
    public func failover(
        to replica: Member, options: [String] = [], direct: Bool = false, timeout: Duration = .seconds(10)
    ) throws -> FailoverTiming {
        // The primary it replicates now, named by the port in its ROLE (a sidecar's).
        guard case .array(let parts) = try replica.direct().call("ROLE"), parts.count >= 3, parts[0].string == "slave",
            let port = parts[2].int, let old = member(sidecarPort: port)
        else { throw Failure(description: "\(replica) replicates no member's sidecar") }
        let clock = ContinuousClock()
        let start = clock.now
        let client = try direct ? replica.direct() : replica.viaSidecar()
        let reply = try client.call(["CLUSTER", "FAILOVER"] + options)
        guard reply == .simpleString("OK") else {
            throw Failure(description: "CLUSTER FAILOVER \(direct ? "on" : "through") \(replica) answered \(reply)")
        }
        let accepted = clock.now - start
        try waitUntil("\(replica.name) becomes primary and \(old.name) a replica", timeout: timeout) {
            try replica.role() == "master" && old.role() == "slave" ? true : nil
        }
        let swapped = clock.now - start
        try waitUntilSettled(primary: replica, replica: old, timeout: timeout)
        return FailoverTiming(accepted: accepted, swapped: swapped, settled: clock.now - start)
    }

    /// `failover(to:)` to the first replica of `shard` (by `ROLE`).
    @discardableResult
    public func failover(
        shard: Int, options: [String] = [], direct: Bool = false, timeout: Duration = .seconds(10)
    ) throws -> FailoverTiming {
        guard let replica = try roles(ofShard: shard)?.replicas.first else {
            throw Failure(description: "shard \(shard) has no replica, or not exactly one primary")
        }
        return try failover(to: replica, options: options, direct: direct, timeout: timeout)
    }

    public struct FailoverTiming: Sendable {
        /// Until `CLUSTER FAILOVER` answered `+OK`.
        public var accepted: Duration
        /// Until `ROLE` said master on the promoted node and slave on the demoted one.
        public var swapped: Duration
        /// Until the demoted node replicates through the new primary's sidecar and all cluster views
        /// agree (the next manual failover can start).
        public var settled: Duration
    }

    // MARK: settled and converged

    /// Waits until `replica` replicates `primary` through its sidecar (`ROLE` names that sidecar with
    /// the link `connected`, `INFO replication` says `master_link_status:up` and `master_port` = that
    /// sidecar) and the cluster has converged (`waitUntilConverged`) with `primary` a primary and
    /// `replica` its replica. In a one-shard cluster that means `primary` owns every slot.
    public func waitUntilSettled(primary: Member, replica: Member, timeout: Duration = .seconds(10)) throws {
        try waitUntil("\(replica.name) replicates \(primary.name) through its sidecar", timeout: timeout) { () throws -> Bool? in
            // The link first: it is the last thing to come up, and the cheapest to ask for.
            try Self.checkLink(replica: replica, primary: primary)
            let view = try Self.checkConverged(members)
            guard view.nodes[primary.nodeID]?.isPrimary == true, view.nodes[replica.nodeID]?.primaryID == primary.nodeID else {
                throw Failure(description: "the nodes agree, but not that \(replica.name) replicates \(primary.name)")
            }
            return true
        }
    }

    /// Waits until every node is `cluster_state:ok`; every node's `CLUSTER NODES` lists every member,
    /// healthy, at its sidecar port and real bus port; all of them agree on each node's role, primary
    /// and slots; no legacy migration is open; and every replica replicates its primary through that
    /// primary's sidecar with the link up. Returns the agreed view (the first member's).
    @discardableResult
    public func waitUntilConverged(timeout: Duration = .seconds(15)) throws -> ClusterNodesView {
        try waitUntil("the cluster converges", timeout: timeout) { try Self.checkConverged(members) }
    }

    /// One look at every node: the agreed view, or a thrown `Failure` naming the first thing that is
    /// not (yet) as `waitUntilConverged` needs it.
    static func checkConverged(_ members: [Member]) throws -> ClusterNodesView {
        var agreed: ClusterNodesView?
        for member in members {
            let client = try member.direct()
            let state = try fields(of: client.call("CLUSTER", "INFO"))["cluster_state"]
            guard state == "ok" else { throw Failure(description: "\(member.name): cluster_state \(state ?? "-")") }
            let view = try ClusterNodesView(reply: client.call("CLUSTER", "NODES"))
            guard view.nodes.count == members.count else {
                throw Failure(description: "\(member.name) knows \(view.nodes.count) nodes, not \(members.count)")
            }
            for other in members {
                guard let node = view.nodes[other.nodeID] else { throw Failure(description: "\(member.name) lacks \(other.name)") }
                guard node.healthy, node.port == other.sidecarPort, node.busPort == other.busPort else {
                    throw Failure(description: "\(member.name) sees \(other.name) at :\(node.port)@\(node.busPort) \(node.flags.sorted())")
                }
                guard node.migrating.isEmpty, node.importing.isEmpty else {
                    throw Failure(description: "\(other.name) has open migrations \(node.migrating) \(node.importing)")
                }
                guard let seen = agreed?.nodes[other.nodeID] else { continue }
                guard seen.isPrimary == node.isPrimary, seen.primaryID == node.primaryID, seen.slotRanges == node.slotRanges else {
                    throw Failure(
                        description: "\(members[0].name) and \(member.name) disagree on \(other.name): "
                            + "\(seen.isPrimary ? "primary" : "replica") \(seen.slotRanges) vs "
                            + "\(node.isPrimary ? "primary" : "replica") \(node.slotRanges)")
                }
            }
            if agreed == nil { agreed = view }
        }
        guard let agreed else { throw Failure(description: "no members") }
        for replica in members {
            guard let node = agreed.nodes[replica.nodeID], !node.isPrimary else { continue }
            guard let primaryID = node.primaryID, let primary = members.first(where: { $0.nodeID == primaryID }),
                agreed.nodes[primaryID]?.isPrimary == true
            else { throw Failure(description: "\(replica.name) replicates \(node.primaryID ?? "nothing"), not a primary") }
            try checkLink(replica: replica, primary: primary)
        }
        return agreed
    }

    /// Throws unless `replica`'s `ROLE` and `INFO replication` show it replicating `primary` through
    /// `primary`'s sidecar with the link up.
    static func checkLink(replica: Member, primary: Member) throws {
        let client = try replica.direct()
        let role = try client.call("ROLE")
        guard case .array(let parts) = role, parts.count >= 4, parts[0].string == "slave",
            parts[2] == .integer(Int64(primary.sidecarPort)), parts[3].string == "connected"
        else { throw Failure(description: "ROLE on \(replica.name): \(role)") }
        let replication = try fields(of: client.call("INFO", "replication"))
        guard replication["master_link_status"] == "up", replication["master_port"] == "\(primary.sidecarPort)" else {
            throw Failure(
                description: "\(replica.name): master_port \(replication["master_port"] ?? "-") "
                    + "link \(replication["master_link_status"] ?? "-"), not through \(primary.name)'s sidecar")
        }
    }
}
