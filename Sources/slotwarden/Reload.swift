import Admin
import Foundation
import Logging
import Proxy
import Settings
import Synchronization

/// The log level every logger of the process follows, changed by a reload.
final class ReloadableLogLevel: Sendable {
    private let level: Mutex<Logger.Level>

    init(_ level: Logger.Level) { self.level = Mutex(level) }

    var current: Logger.Level {
        get { level.withLock { $0 } }
        set { level.withLock { $0 = newValue } }
    }

    func handler(label: String) -> some LogHandler {
        LevelFollowingHandler(base: StreamLogHandler.standardError(label: label), level: self)
    }
}

/// A stream handler whose level is the process's current one.
private struct LevelFollowingHandler: LogHandler {
    var base: StreamLogHandler
    let level: ReloadableLogLevel

    var logLevel: Logger.Level {
        get { level.current }
        set { level.current = newValue }
    }

    var metadata: Logger.Metadata {
        get { base.metadata }
        set { base.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { base[metadataKey: key] }
        set { base[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) { base.log(event: event) }
}

/// The configuration `run` is running with, and SIGHUP's reload of its file.
struct RunningConfiguration {
    private(set) var settings: SlotwardenConfig
    let path: String?
    let logLevel: ReloadableLogLevel
    let admin: AdminService

    init(settings: SlotwardenConfig, path: String?, logLevel: ReloadableLogLevel, admin: AdminService) {
        self.settings = settings
        self.path = path
        self.logLevel = logLevel
        self.admin = admin
    }

    /// Reads the file again. Options that can change live are applied without touching a connection;
    /// those that cannot are named and keep their running values; a file that does not load keeps
    /// the whole running configuration, and the error is logged as `file:line:column: message`.
    mutating func reload(overriding run: Run, sidecar: Sidecar, logger: Logger) async {
        guard let path else {
            logger.warning("SIGHUP: nothing to reload, slotwarden was started without --config")
            admin.metrics.recordReload(applied: false)
            return
        }
        var loaded: SlotwardenConfig
        let token: AdminToken?
        do {
            loaded = try SlotwardenConfig.load(path: path)
            try run.applyOverrides(to: &loaded)
            token = try AdminToken.load(
                file: loaded.admin.tokenFile, environmentVariable: loaded.admin.tokenEnvironmentVariable,
                environment: ProcessInfo.processInfo.environment)
        } catch {
            logger.error("configuration reload failed; the running configuration stays", metadata: ["error": "\(error)"])
            admin.metrics.recordReload(applied: false)
            return
        }
        let changes = ConfigurationChanges(from: settings, to: loaded)
        settings.apply(live: loaded)
        logLevel.current = settings.logLevel
        admin.reload(token: token, maxPauseMilliseconds: settings.admin.maxPauseMilliseconds, topSlots: settings.admin.topSlots)
        await sidecar.reload(
            fence: settings.fence.fence, rolePollIntervalMilliseconds: settings.fence.rolePollIntervalMilliseconds,
            proxy: ProxyServer.LiveSettings(settings.proxy))
        admin.metrics.recordReload(applied: true)
        logger.notice(
            "configuration reloaded",
            metadata: ["path": "\(path)", "applied": "\(changes.live.isEmpty ? "-" : changes.live.joined(separator: ", "))"])
        if !changes.needRestart.isEmpty {
            logger.warning(
                "these options change only with a restart and keep their running values",
                metadata: ["options": "\(changes.needRestart.joined(separator: ", "))"])
        }
    }
}

/// The options that differ between two configurations, as named in the file.
struct ConfigurationChanges {
    var live: [String] = []
    var needRestart: [String] = []

    init(from old: SlotwardenConfig, to new: SlotwardenConfig) {
        for option in ReloadableOption.all where option.differs(old, new) {
            if option.takeLive != nil { live.append(option.name) } else { needRestart.append(option.name) }
        }
    }
}

/// An option of the file as a reload sees it: whether it changed, and for one that applies live, how
/// to take it from the new file (nil: it needs a restart).
struct ReloadableOption {
    let name: String
    let differs: (SlotwardenConfig, SlotwardenConfig) -> Bool
    let takeLive: ((inout SlotwardenConfig, SlotwardenConfig) -> Void)?

    static func live<Value: Equatable>(_ name: String, _ path: WritableKeyPath<SlotwardenConfig, Value>) -> Self {
        Self(name: name, differs: { $0[keyPath: path] != $1[keyPath: path] }, takeLive: { $0[keyPath: path] = $1[keyPath: path] })
    }

    static func restartOnly<Value: Equatable>(_ name: String, _ value: @escaping (SlotwardenConfig) -> Value) -> Self {
        Self(name: name, differs: { value($0) != value($1) }, takeLive: nil)
    }

    /// Every option a reload compares, in the order it reports them.
    static var all: [ReloadableOption] {
        [
            .live("logging.level", \.logLevel),
            .live("backpressure.high_watermark_bytes", \.proxy.highWatermarkBytes),
            .live("backpressure.low_watermark_bytes", \.proxy.lowWatermarkBytes),
            .live("max_clients", \.proxy.maxClients),
            .live("node_connect_timeout_ms", \.proxy.nodeConnectTimeoutMilliseconds),
            .live("admin.token_file", \.admin.tokenFile),
            .live("admin.token_env", \.admin.tokenEnvironmentVariable),
            .live("reconcile.max_pause_ms", \.admin.maxPauseMilliseconds),
            .live("metrics.top_slots", \.admin.topSlots),
            .live("fence.role_poll_interval_ms", \.fence.rolePollIntervalMilliseconds),
            .live("fence.drain_timeout_ms", \.fence.fence.drainTimeoutMilliseconds),
            .live("fence.max_pause_ms", \.fence.fence.maxPauseMilliseconds),
            .live("fence.role_change_timeout_ms", \.fence.fence.roleChangeTimeoutMilliseconds),
            .live("fence.guard_affected_versions", \.fence.fence.guardsAffectedVersions),
            .live("shutdown.drain_timeout_ms", \.shutdown.drainTimeoutMilliseconds),
            .live("shutdown.linger_ms", \.shutdown.lingerMilliseconds),
            .restartOnly("listen") { "\($0.proxy.listenHost):\($0.proxy.listenPort)" },
            .restartOnly("node") { "\($0.proxy.nodeHost):\($0.proxy.nodePort)" },
            .restartOnly("workers") { $0.proxy.workers },
            .restartOnly("admin.listen") { "\($0.admin.listenHost):\($0.admin.listenPort)" },
            .restartOnly("commands") { $0.commandsSource },
            .restartOnly("read_buffer_bytes") { $0.proxy.readBufferBytes },
            .restartOnly("tcp_nodelay") { $0.proxy.tcpNoDelay },
            .restartOnly("passthrough") { $0.proxy.passthrough },
            .restartOnly("replication_streams") { $0.proxy.readsReplicationStreams },
            .restartOnly("fence.epoch_history") { $0.fence.epochHistory },
            .restartOnly("fence.epoch_log") { $0.fence.epochLogPath },
            .restartOnly("node_auth.user") { $0.nodeAuth.user },
            .restartOnly("node_auth.password_env") { $0.nodeAuth.passwordEnvironmentVariable },
            .restartOnly("node_auth.password_file") { $0.nodeAuth.passwordFile },
            .restartOnly("peers") { $0.peers },
            .restartOnly("shutdown.lock_file") { $0.shutdown.lockFile },
        ]
    }
}

extension SlotwardenConfig {
    /// Takes the options that can change live from `new`, keeping the others.
    mutating func apply(live new: SlotwardenConfig) {
        for option in ReloadableOption.all { option.takeLive?(&self, new) }
    }
}
