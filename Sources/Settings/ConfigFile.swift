import Logging
import Proxy
import Yams

/// A configuration problem, located in the file: `path:line:column: message`.
public struct ConfigError: Error, CustomStringConvertible {
    public var path: String
    public var line: Int?
    public var column: Int?
    public var message: String

    public init(path: String, line: Int? = nil, column: Int? = nil, message: String) {
        self.path = path
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String {
        switch (line, column) {
        case (let line?, let column?): "\(path):\(line):\(column): \(message)"
        case (let line?, nil): "\(path):\(line): \(message)"
        default: "\(path): \(message)"
        }
    }
}

/// `config/slotwarden.yaml`, validated. Every key is optional; an absent key keeps its default.
public struct SlotwardenConfig: Sendable {
    public var proxy = ProxyConfiguration()
    public var logLevel = Logger.Level.info
    /// `node`: learn key positions from the node's `COMMAND`; `builtin`: use the built-in table.
    public var commandsSource = "node"
    /// The admin HTTP API (`admin:`, `reconcile:`, `metrics:`).
    public var admin = AdminSettings()
    public var fence = FenceConfiguration()
    /// Where the node's password comes from; it is read at start-up and never logged.
    public var nodeAuth = NodeAuthSettings()
    /// How to reach other nodes' sidecars (`peers:`).
    public var peers = PeerAdminRule()
    /// How the process stops (`shutdown:`).
    public var shutdown = ShutdownSettings()

    public init() {}

    public static func load(path: String) throws -> SlotwardenConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(path: path, message: "cannot read the file: \(error.localizedDescription)")
        }
        return try parse(text, path: path)
    }

    public static func parse(_ text: String, path: String) throws -> SlotwardenConfig {
        var config = SlotwardenConfig()
        var lowWatermarkNode: Node?
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            switch error {
            case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
                .composer(let context, let problem, let mark, _):
                let message = "invalid YAML: \(context.map { "\($0.text): " } ?? "")\(problem)"
                throw ConfigError(path: path, line: mark.line, column: mark.column, message: message)
            default:
                throw ConfigError(path: path, message: "invalid YAML: \(error)")
            }
        }
        guard let root else { return config }
        let reader = ConfigReader(path: path)
        try reader.mapping(root, at: "") { key, value in
            switch key {
            case "listen":
                (config.proxy.listenHost, config.proxy.listenPort) = try reader.hostPort(value, key)
            case "node":
                (config.proxy.nodeHost, config.proxy.nodePort) = try reader.hostPort(value, key)
            case "node_connect_timeout_ms":
                config.proxy.nodeConnectTimeoutMilliseconds = UInt64(try reader.int(value, key, in: 1...600_000))
            case "max_clients":
                config.proxy.maxClients = try reader.int(value, key, in: 1...1_000_000)
            case "tcp_nodelay":
                config.proxy.tcpNoDelay = try reader.bool(value, key)
            case "workers":
                config.proxy.workers = try reader.int(value, key, in: 1...64)
            case "passthrough":
                config.proxy.passthrough = try reader.bool(value, key)
            case "replication_streams":
                config.proxy.readsReplicationStreams = try reader.choice(value, key, ["per_slot", "opaque"]) == "per_slot"
            case "read_buffer_bytes":
                config.proxy.readBufferBytes = try reader.int(value, key, in: 4096...(16 << 20))
            case "commands":
                config.commandsSource = try reader.choice(value, key, ["node", "builtin"])
            case "backpressure":
                try reader.mapping(value, at: key) { inner, innerValue in
                    switch inner {
                    case "high_watermark_bytes":
                        config.proxy.highWatermarkBytes = try reader.int(innerValue, "\(key).\(inner)", in: 1024...(1 << 30))
                    case "low_watermark_bytes":
                        config.proxy.lowWatermarkBytes = try reader.int(innerValue, "\(key).\(inner)", in: 0...(1 << 30))
                        lowWatermarkNode = innerValue
                    default:
                        return false
                    }
                    return true
                }
            case "admin":
                try reader.mapping(value, at: key) { inner, innerValue in
                    switch inner {
                    case "listen":
                        (config.admin.listenHost, config.admin.listenPort) = try reader.hostPort(innerValue, "admin.listen")
                    case "token_file":
                        config.admin.tokenFile = try reader.string(innerValue, "admin.token_file")
                    case "token_env":
                        config.admin.tokenEnvironmentVariable = try reader.string(innerValue, "admin.token_env")
                    default:
                        return false
                    }
                    return true
                }
            case "reconcile":
                try reader.mapping(value, at: key) { inner, innerValue in
                    guard inner == "max_pause_ms" else { return false }
                    config.admin.maxPauseMilliseconds = try reader.int(innerValue, "reconcile.max_pause_ms", in: 1...10_000)
                    return true
                }
            case "metrics":
                try reader.mapping(value, at: key) { inner, innerValue in
                    guard inner == "top_slots" else { return false }
                    config.admin.topSlots = try reader.int(innerValue, "metrics.top_slots", in: 0...1024)
                    return true
                }
            case "fence":
                try reader.mapping(value, at: key) { inner, innerValue in
                    let name = "\(key).\(inner)"
                    switch inner {
                    case "role_poll_interval_ms":
                        config.fence.rolePollIntervalMilliseconds = try reader.int(innerValue, name, in: 10...60_000)
                    case "drain_timeout_ms":
                        config.fence.fence.drainTimeoutMilliseconds = try reader.int(innerValue, name, in: 0...600_000)
                    case "max_pause_ms":
                        config.fence.fence.maxPauseMilliseconds = try reader.int(innerValue, name, in: 1...600_000)
                    case "role_change_timeout_ms":
                        config.fence.fence.roleChangeTimeoutMilliseconds = try reader.int(innerValue, name, in: 1...600_000)
                    case "guard_affected_versions":
                        config.fence.fence.guardsAffectedVersions = try reader.bool(innerValue, name)
                    case "epoch_history":
                        config.fence.epochHistory = try reader.int(innerValue, name, in: 1...100_000)
                    case "epoch_log":
                        config.fence.epochLogPath = try reader.string(innerValue, name)
                    default:
                        return false
                    }
                    return true
                }
            case "peers":
                try reader.mapping(value, at: key) { inner, innerValue in
                    let name = "\(key).\(inner)"
                    switch inner {
                    case "admin_port_offset": config.peers.adminPortOffset = try reader.int(innerValue, name, in: -65535...65535)
                    case "timeout_ms": config.peers.timeoutMilliseconds = try reader.int(innerValue, name, in: 1...60_000)
                    case "admin":
                        try reader.mapping(innerValue, at: name) { announced, adminValue in
                            guard HostPort(announced) != nil else {
                                throw reader.error(at: adminValue, "\(name): '\(announced)' is not host:port")
                            }
                            let (host, port) = try reader.hostPort(adminValue, "\(name).\(announced)")
                            config.peers.addresses[announced] = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
                            return true
                        }
                    default: return false
                    }
                    return true
                }
            case "shutdown":
                try reader.mapping(value, at: key) { inner, innerValue in
                    let name = "\(key).\(inner)"
                    switch inner {
                    case "drain_timeout_ms": config.shutdown.drainTimeoutMilliseconds = try reader.int(innerValue, name, in: 0...3_600_000)
                    case "linger_ms": config.shutdown.lingerMilliseconds = try reader.int(innerValue, name, in: 0...60_000)
                    case "lock_file": config.shutdown.lockFile = try reader.string(innerValue, name)
                    default: return false
                    }
                    return true
                }
            case "node_auth":
                try reader.mapping(value, at: key) { inner, innerValue in
                    let name = "\(key).\(inner)"
                    switch inner {
                    case "user": config.nodeAuth.user = try reader.string(innerValue, name)
                    case "password_env": config.nodeAuth.passwordEnvironmentVariable = try reader.string(innerValue, name)
                    case "password_file": config.nodeAuth.passwordFile = try reader.string(innerValue, name)
                    default: return false
                    }
                    return true
                }
            case "logging":
                try reader.mapping(value, at: key) { inner, innerValue in
                    guard inner == "level" else { return false }
                    let name = try reader.choice(innerValue, "logging.level", Logger.Level.allCases.map(\.rawValue))
                    config.logLevel = Logger.Level(rawValue: name) ?? .info
                    return true
                }
            default:
                return false
            }
            return true
        }
        if config.proxy.lowWatermarkBytes >= config.proxy.highWatermarkBytes {
            throw reader.error(
                at: lowWatermarkNode ?? root, "backpressure.low_watermark_bytes (\(config.proxy.lowWatermarkBytes)) must be below "
                    + "high_watermark_bytes (\(config.proxy.highWatermarkBytes))")
        }
        return config
    }
}

/// Credentials for the control connection, by reference: the password itself never sits in the file.
public struct NodeAuthSettings: Sendable {
    public var user: String?
    public var passwordEnvironmentVariable: String?
    public var passwordFile: String?

    public func credentials(environment: [String: String]) throws -> NodeCredentials? {
        if let passwordEnvironmentVariable {
            guard let password = environment[passwordEnvironmentVariable], !password.isEmpty else {
                throw ConfigError(path: "node_auth", message: "password_env: $\(passwordEnvironmentVariable) is not set")
            }
            return NodeCredentials(user: user, password: password)
        }
        if let passwordFile {
            guard let text = try? String(contentsOfFile: passwordFile, encoding: .utf8) else {
                throw ConfigError(path: "node_auth", message: "password_file: cannot read \(passwordFile)")
            }
            return NodeCredentials(user: user, password: text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return nil
    }
}

/// Reads typed values out of YAML nodes, turning every mismatch into a ``ConfigError`` at the node's line.
private struct ConfigReader {
    var path: String

    func error(at node: Node, _ message: String) -> ConfigError {
        ConfigError(path: path, line: node.mark?.line, column: node.mark?.column, message: message)
    }

    /// Calls `handle` for each key; `handle` returns false for a key it does not know.
    func mapping(_ node: Node, at prefix: String, _ handle: (String, Node) throws -> Bool) throws {
        guard let mapping = node.mapping else {
            throw error(at: node, prefix.isEmpty ? "expected a mapping of options" : "\(prefix): expected a mapping")
        }
        for (keyNode, value) in mapping {
            guard let key = keyNode.string else { throw error(at: keyNode, "option names must be strings") }
            guard try handle(key, value) else {
                let name = prefix.isEmpty ? key : "\(prefix).\(key)"
                throw error(at: keyNode, "unknown option '\(name)'")
            }
        }
    }

    func int(_ node: Node, _ key: String, in range: ClosedRange<Int>) throws -> Int {
        guard let value = node.scalar.flatMap({ Int($0.string) }) else {
            throw error(at: node, "\(key): expected an integer, got '\(node.scalar?.string ?? "a collection")'")
        }
        guard range.contains(value) else {
            throw error(at: node, "\(key): \(value) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    func string(_ node: Node, _ key: String) throws -> String {
        guard let value = node.scalar?.string, !value.isEmpty else {
            throw error(at: node, "\(key): expected a non-empty string")
        }
        return value
    }

    func bool(_ node: Node, _ key: String) throws -> Bool {
        guard let value = node.bool else {
            throw error(at: node, "\(key): expected true or false, got '\(node.scalar?.string ?? "a collection")'")
        }
        return value
    }

    func choice(_ node: Node, _ key: String, _ choices: [String]) throws -> String {
        guard let value = node.scalar?.string, choices.contains(value) else {
            throw error(
                at: node,
                "\(key): expected one of \(choices.joined(separator: ", ")), got '\(node.scalar?.string ?? "a collection")'")
        }
        return value
    }

    func hostPort(_ node: Node, _ key: String) throws -> (String, Int) {
        guard let text = node.scalar?.string, let parsed = HostPort(text) else {
            throw error(at: node, "\(key): expected host:port (for example 127.0.0.1:7000), got '\(node.scalar?.string ?? "a collection")'")
        }
        return (parsed.host, parsed.port)
    }
}

/// `host:port`, `[v6]:port`.
public struct HostPort: Equatable, Sendable {
    public var host: String
    public var port: Int

    public init?(_ text: String) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            // Brackets belong around an IPv6 address only, never inside a host.
            guard !hostPart.contains("["), !hostPart.contains("]") else { return nil }
        }
        guard !hostPart.isEmpty, let port = Int(portPart), (0...65535).contains(port) else { return nil }
        host = String(hostPart)
        self.port = port
    }
}

/// The `admin:`, `reconcile:` and `metrics:` sections.
public struct AdminSettings: Sendable {
    public var listenHost = "127.0.0.1"
    public var listenPort = 7070
    /// A file whose first line is the bearer token of the mutating endpoints.
    public var tokenFile: String?
    /// An environment variable holding that token (used when `token_file` is not set).
    public var tokenEnvironmentVariable: String?
    public var maxPauseMilliseconds = 50
    public var topSlots = 16
}

/// The `shutdown:` section: on SIGTERM or SIGINT, clients are closed at command boundaries within
/// `drain_timeout_ms`; the lock file tells a slotwarden started on the same listen address that this
/// one still runs, so that it takes over when this one exits.
public struct ShutdownSettings: Sendable, Equatable {
    public var drainTimeoutMilliseconds = 10_000
    /// How long a closed client may take to read its last replies and close its side.
    public var lingerMilliseconds = 1_000
    /// Nil: `slotwarden-<listen host>-<listen port>.lock` in the temporary directory.
    public var lockFile: String?

    public init() {}

    /// The lock file for a sidecar listening on `host:port` (none for port 0, a port chosen at start).
    public func lockPath(listenHost host: String, listenPort port: Int, temporaryDirectory: String) -> String? {
        if let lockFile { return lockFile }
        guard port != 0 else { return nil }
        let safeHost = String(host.map { $0.isLetter || $0.isNumber || $0 == "." ? $0 : "_" })
        return "\(temporaryDirectory)/slotwarden-\(safeHost)-\(port).lock"
    }
}
