import Accounting
import RESP

/// Learns the node's version and command table before the data plane starts.
public enum NodeProbe {
    /// Reads `INFO server` and `COMMAND`. Falls back to the built-in command table when `COMMAND` is
    /// refused (renamed, or not allowed for the configured user) or cannot be parsed.
    public static func probe(host: String, port: Int, timeoutMilliseconds: Int = 5000) throws -> NodeFacts {
        let client = try NodeClient(host: host, port: port, timeoutMilliseconds: timeoutMilliseconds)
        defer { client.close() }
        let info = try client.call("INFO", "server")
        guard case .bulkString(let bytes) = info else {
            throw NodeClient.Failure("INFO server answered \(info) instead of a bulk string")
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let version = ValkeyVersion(infoServer: text) else {
            throw NodeClient.Failure("INFO server names no valkey_version")
        }
        let clusterInfo = try client.call("INFO", "cluster")
        var clusterEnabled = false
        if case .bulkString(let clusterBytes) = clusterInfo {
            clusterEnabled = String(decoding: clusterBytes, as: UTF8.self).contains("cluster_enabled:1")
        }
        let reply = try client.call("COMMAND")
        if let table = try? CommandTable(commandReply: reply) {
            return NodeFacts(version: version, commands: table, commandsSource: "node", clusterEnabled: clusterEnabled)
        }
        return NodeFacts(version: version, commands: .builtIn, commandsSource: "built-in", clusterEnabled: clusterEnabled)
    }
}
