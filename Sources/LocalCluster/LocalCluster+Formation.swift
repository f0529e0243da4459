import Foundation
import Accounting
import Logging
import Proxy
import RESP

extension LocalCluster {
    static func startMember(
        name: String, shard: Int, executable: String, fence: FenceConfiguration, nodeTimeoutMilliseconds: Int, logger: Logger
    ) throws -> Member {
        // A full sync starts at once instead of after the default 5 s wait for more replicas; a
        // shorter node timeout makes the nodes ping each other (and learn replication offsets, which
        // CLUSTER SLOTS needs to list a replica) more often. Neither changes a manual failover.
        let valkey = try LocalValkey(
            executable: executable,
            extraArguments: ["--repl-diskless-sync-delay", "0", "--cluster-node-timeout", "\(nodeTimeoutMilliseconds)"],
            assignAllSlots: false)
        var started: Sidecar?
        do {
            let facts = try NodeProbe.probe(host: "127.0.0.1", port: valkey.port)
            // Port 0: slotwarden binds a free port itself and reports it, so there is no window in
            // which another process (or another node) can take a port probed in advance. The node
            // learns it through CONFIG SET, which applies at once.
            let sidecar = try Sidecar(
                proxy: ProxyConfiguration(listenPort: 0, nodePort: valkey.port), fence: fence, node: facts, logger: logger)
            started = sidecar
            let sidecarPort = try sidecar.start()
            let direct = try valkey.client()
            try expectOK(
                direct.call(
                    "CONFIG", "SET", "cluster-announce-port", "\(sidecarPort)", "cluster-announce-bus-port", "\(valkey.port + 10000)"),
                "CONFIG SET cluster-announce-port on \(name)")
            guard let nodeID = try direct.call("CLUSTER", "MYID").string else {
                throw Failure(description: "CLUSTER MYID on \(name) gave no id")
            }
            return Member(
                name: name, shard: shard, valkey: valkey, sidecar: sidecar, facts: facts, sidecarPort: sidecarPort, nodeID: nodeID)
        } catch {
            started?.stop()
            valkey.stop()
            throw error
        }
    }

    /// Slots to each shard's first member, MEET, REPLICATE, then waits until everything is in place.
    static func form(shards: [[Member]]) throws {
        let ranges = slotRanges(shards: shards.count)
        for (shard, range) in zip(shards, ranges) {
            try expectOK(
                shard[0].direct().call("CLUSTER", "ADDSLOTSRANGE", "\(range.lowerBound)", "\(range.upperBound)"),
                "CLUSTER ADDSLOTSRANGE on \(shard[0])")
        }
        // Everyone meets the first member; gossip introduces the rest. MEET takes the node's real
        // address and bus port; the handshake then learns the announced port.
        let first = shards[0][0]
        let members = shards.flatMap { $0 }
        for member in members.dropFirst() {
            try expectOK(
                member.direct().call("CLUSTER", "MEET", "127.0.0.1", "\(first.nodePort)", "\(first.busPort)"),
                "CLUSTER MEET from \(member)")
        }
        // REPLICATE needs the replica to see its primary, as a master with slots.
        for (shard, range) in zip(shards, ranges) {
            let primary = shard[0]
            for replica in shard.dropFirst() {
                try waitUntil("\(replica.name) sees \(primary.name) at its sidecar, owning \(range)", timeout: .seconds(15)) {
                    () throws -> Bool? in
                    let view = try ClusterNodesView(reply: replica.direct().call("CLUSTER", "NODES"))
                    guard let entry = view.nodes[primary.nodeID], entry.healthy, entry.isPrimary, entry.port == primary.sidecarPort,
                        entry.busPort == primary.busPort, entry.slotRanges == [range]
                    else { return nil }
                    return true
                }
                try expectOK(replica.direct().call("CLUSTER", "REPLICATE", primary.nodeID), "CLUSTER REPLICATE on \(replica)")
            }
        }
        try waitUntil("every node agrees and every replica replicates through its primary's sidecar", timeout: .seconds(20)) {
            try checkConverged(members)
        }
        try checkSlotsNameSidecars(shards: shards)
    }

    /// CLUSTER SLOTS on every node names only sidecars, one range per shard, its primary first.
    /// Valkey lists a replica only when it knows a non-zero replication offset for it, and 8.1 keeps
    /// serving a cached reply for several seconds after that, so the replicas' entries are not
    /// waited for; CLUSTER NODES (in `checkConverged`) already showed them at their sidecar ports.
    private static func checkSlotsNameSidecars(shards: [[Member]]) throws {
        let sidecars = Set(shards.joined().map(\.sidecarPort))
        let primaries = Set(shards.map(\.[0].sidecarPort))
        var ports: [[Int]] = []
        do {
            try waitUntil("CLUSTER SLOTS names the sidecars", timeout: .seconds(15)) { () throws -> Bool? in
                for member in shards.joined() {
                    ports = try member.slotsPorts()
                    guard ports.count == shards.count,
                        ports.allSatisfy({ $0.first.map(primaries.contains) == true && Set($0).isSubset(of: sidecars) })
                    else { return nil }
                }
                return true
            }
        } catch {
            throw Failure(description: "CLUSTER SLOTS names \(ports), not the sidecars \(sidecars.sorted()) (primaries first)")
        }
    }
}
