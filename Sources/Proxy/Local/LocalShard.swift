import Foundation
import Logging
import RESP

/// A one-shard cluster on loopback for the demo: a primary and a replica, each behind its own
/// ``Sidecar`` and announcing the sidecar's port (`cluster-announce-port`; the cluster bus stays
/// direct), so that clients, redirects and the replication link all cross slotwarden. Every process
/// is ended by its pid in `stop()`, also when the set-up fails half-way.
public final class LocalShard: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// One node and the sidecar in front of it.
    public final class Member: @unchecked Sendable {
        public let name: String
        public let valkey: LocalValkey
        public let sidecar: Sidecar
        public let sidecarPort: Int
        public let nodeID: String

        init(name: String, valkey: LocalValkey, sidecar: Sidecar, sidecarPort: Int, nodeID: String) {
            self.name = name
            self.valkey = valkey
            self.sidecar = sidecar
            self.sidecarPort = sidecarPort
            self.nodeID = nodeID
        }

        /// A client through the sidecar.
        public func client() throws -> NodeClient { try NodeClient(host: "127.0.0.1", port: sidecarPort) }
    }

    /// The primary and the replica as started; a failover swaps their roles, not these names.
    public let first: Member
    public let second: Member
    private var stopped = false

    /// Starts both nodes and sidecars, gives every slot to `first`, and waits until `second`
    /// replicates it through `first`'s sidecar.
    public init(executable: String, fence: FenceConfiguration = FenceConfiguration(), logger: Logger) throws {
        var started: [Member] = []
        do {
            started.append(try Self.startMember(name: "a", executable: executable, ownsSlots: true, fence: fence, logger: logger))
            started.append(try Self.startMember(name: "b", executable: executable, ownsSlots: false, fence: fence, logger: logger))
        } catch {
            for member in started { Self.stop(member) }
            throw error
        }
        first = started[0]
        second = started[1]
        do {
            let replica = try second.valkey.client()
            try Self.expectOK(
                replica.call("CLUSTER", "MEET", "127.0.0.1", "\(first.valkey.port)", "\(first.valkey.port + 10000)"), "CLUSTER MEET")
            // REPLICATE works once the replica has learnt the primary and its slots over the bus.
            try Self.poll("b learns a's slots") { try replica.call("CLUSTER", "REPLICATE", first.nodeID) == .simpleString("OK") }
            try waitUntil(replicating: second, from: first)
        } catch {
            stop()
            throw error
        }
    }

    deinit { stop() }

    /// The member that is a primary now.
    public func primary() throws -> Member {
        try Self.role(of: first) == "master" ? first : second
    }

    /// `CLUSTER FAILOVER` through the replica's sidecar; returns once the roles swapped and the old
    /// primary replicates the new one through its sidecar.
    @discardableResult
    public func failover() throws -> (promoted: Member, demoted: Member) {
        let oldPrimary = try primary()
        let replica = oldPrimary === first ? second : first
        try Self.expectOK(replica.client().call("CLUSTER", "FAILOVER"), "CLUSTER FAILOVER")
        try waitUntil(replicating: oldPrimary, from: replica)
        return (replica, oldPrimary)
    }

    public func stop() {
        guard !stopped else { return }
        stopped = true
        Self.stop(first)
        Self.stop(second)
    }

    private static func stop(_ member: Member) {
        member.sidecar.stop()
        member.valkey.stop()
    }

    private func waitUntil(replicating replica: Member, from primary: Member) throws {
        try Self.poll("\(replica.name) replicates \(primary.name) through its sidecar") {
            guard case .array(let role) = try replica.valkey.client().call("ROLE"), role.count >= 4 else { return false }
            return role[0].string == "slave" && role[2].int == primary.sidecarPort && role[3].string == "connected"
        }
    }

    private static func startMember(
        name: String, executable: String, ownsSlots: Bool, fence: FenceConfiguration, logger: Logger
    ) throws -> Member {
        let valkey = try LocalValkey(executable: executable, extraArguments: ["--repl-diskless-sync-delay", "0"], assignAllSlots: ownsSlots)
        var started: Sidecar?
        do {
            let facts = try NodeProbe.probe(host: "127.0.0.1", port: valkey.port)
            let sidecar = try Sidecar(
                proxy: ProxyConfiguration(listenPort: 0, nodePort: valkey.port), fence: fence, node: facts, logger: logger)
            started = sidecar
            let port = try sidecar.start()
            let client = try valkey.client()
            try expectOK(
                client.call("CONFIG", "SET", "cluster-announce-port", "\(port)", "cluster-announce-bus-port", "\(valkey.port + 10000)"),
                "CONFIG SET cluster-announce-port")
            guard let nodeID = try client.call("CLUSTER", "MYID").string else { throw Failure(description: "CLUSTER MYID gave no id") }
            return Member(name: name, valkey: valkey, sidecar: sidecar, sidecarPort: port, nodeID: nodeID)
        } catch {
            started?.stop()
            valkey.stop()
            throw error
        }
    }

    private static func role(of member: Member) throws -> String {
        guard case .array(let role) = try member.valkey.client().call("ROLE"), let name = role.first?.string else {
            throw Failure(description: "ROLE on \(member.name) is not an array")
        }
        return name
    }

    private static func expectOK(_ reply: RESPValue, _ what: String) throws {
        guard reply == .simpleString("OK") else { throw Failure(description: "\(what): \(reply)") }
    }

    /// Polls `check` every 10 ms for up to 15 s.
    private static func poll(_ what: String, _ check: () throws -> Bool) throws {
        for _ in 0..<1500 {
            if (try? check()) == true { return }
            usleep(10_000)
        }
        throw Failure(description: "timed out waiting until \(what)")
    }
}
