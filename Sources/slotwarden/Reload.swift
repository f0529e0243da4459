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
        func compare<Value: Equatable>(_ name: String, _ value: (SlotwardenConfig) -> Value, live isLive: Bool) {
            guard value(old) != value(new) else { return }
            if isLive { live.append(name) } else { needRestart.append(name) }
        }
        compare("logging.level", \.logLevel, live: true)
        compare("backpressure.high_watermark_bytes", \.proxy.highWatermarkBytes, live: true)
        compare("backpressure.low_watermark_bytes", \.proxy.lowWatermarkBytes, live: true)
        compare("max_clients", \.proxy.maxClients, live: true)
        compare("node_connect_timeout_ms", \.proxy.nodeConnectTimeoutMilliseconds, live: true)
        compare("admin.token_file", \.admin.tokenFile, live: true)
        compare("admin.token_env", \.admin.tokenEnvironmentVariable, live: true)
        compare("reconcile.max_pause_ms", \.admin.maxPauseMilliseconds, live: true)
        compare("metrics.top_slots", \.admin.topSlots, live: true)
        compare("fence.role_poll_interval_ms", \.fence.rolePollIntervalMilliseconds, live: true)
        compare("fence.drain_timeout_ms", \.fence.fence.drainTimeoutMilliseconds, live: true)
        compare("fence.max_pause_ms", \.fence.fence.maxPauseMilliseconds, live: true)
        compare("fence.role_change_timeout_ms", \.fence.fence.roleChangeTimeoutMilliseconds, live: true)
        compare("fence.guard_affected_versions", \.fence.fence.guardsAffectedVersions, live: true)
        compare("shutdown.drain_timeout_ms", \.shutdown.drainTimeoutMilliseconds, live: true)
        compare("shutdown.linger_ms", \.shutdown.lingerMilliseconds, live: true)
        compare("listen", { "\($0.proxy.listenHost):\($0.proxy.listenPort)" }, live: false)
        compare("node", { "\($0.proxy.nodeHost):\($0.proxy.nodePort)" }, live: false)
        compare("workers", \.proxy.workers, live: false)
        compare("admin.listen", { "\($0.admin.listenHost):\($0.admin.listenPort)" }, live: false)
        compare("commands", \.commandsSource, live: false)
        compare("read_buffer_bytes", \.proxy.readBufferBytes, live: false)
        compare("tcp_nodelay", \.proxy.tcpNoDelay, live: false)
        compare("passthrough", \.proxy.passthrough, live: false)
        compare("replication_streams", \.proxy.readsReplicationStreams, live: false)
        compare("fence.epoch_history", \.fence.epochHistory, live: false)
        compare("fence.epoch_log", \.fence.epochLogPath, live: false)
        compare("node_auth.user", \.nodeAuth.user, live: false)
        compare("node_auth.password_env", \.nodeAuth.passwordEnvironmentVariable, live: false)
        compare("node_auth.password_file", \.nodeAuth.passwordFile, live: false)
        compare("peers", \.peers, live: false)
        compare("shutdown.lock_file", \.shutdown.lockFile, live: false)
    }
}

extension SlotwardenConfig {
    /// Takes the options that can change live from `new`, keeping the others.
    mutating func apply(live new: SlotwardenConfig) {
        logLevel = new.logLevel
        proxy.highWatermarkBytes = new.proxy.highWatermarkBytes
        proxy.lowWatermarkBytes = new.proxy.lowWatermarkBytes
        proxy.maxClients = new.proxy.maxClients
        proxy.nodeConnectTimeoutMilliseconds = new.proxy.nodeConnectTimeoutMilliseconds
        admin.tokenFile = new.admin.tokenFile
        admin.tokenEnvironmentVariable = new.admin.tokenEnvironmentVariable
        admin.maxPauseMilliseconds = new.admin.maxPauseMilliseconds
        admin.topSlots = new.admin.topSlots
        fence.rolePollIntervalMilliseconds = new.fence.rolePollIntervalMilliseconds
        fence.fence = new.fence.fence
        shutdown.drainTimeoutMilliseconds = new.shutdown.drainTimeoutMilliseconds
        shutdown.lingerMilliseconds = new.shutdown.lingerMilliseconds
    }
}
