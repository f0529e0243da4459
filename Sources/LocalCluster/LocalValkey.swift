import Foundation
import Proxy
import RESP

/// A `valkey-server` process on loopback, started and stopped by slotwarden itself: for the demo, the
/// integration tests and the benchmarks. It runs in cluster mode with `cluster-slot-stats-enabled yes`,
/// owns every slot unless told not to, keeps no data on disk, and is ended by its pid.
///
/// The server is started with `posix_spawn`, not swift-subprocess: Subprocess resets the signal mask
/// as this needs, but it ties a process's lifetime to the async closure that started it and reaps it
/// itself, while a server here outlives the call that starts it, is stopped later by pid from
/// synchronous code, and is checked for a crash (`hasExited`) in between.
public final class LocalValkey: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let executable: String
    public let port: Int
    public let directory: URL
    /// The server's process id; the server is ended by it.
    public let pid: pid_t
    private var exited = false

    /// Starts the server on a free port and waits until it answers and the cluster is `ok`.
    public init(executable: String, extraArguments: [String] = [], assignAllSlots: Bool = true) throws {
        self.executable = executable
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("slotwarden-valkey-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var lastError: (any Error)?
        // A free port can be taken between probing and binding; try a few.
        for _ in 0..<5 {
            let port = try FreePorts.clusterNodePort()
            let arguments = [
                executable, "--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes-\(port).conf",
                "--cluster-slot-stats-enabled", "yes", "--dir", directory.path,
                "--logfile", "valkey-\(port).log", "--protected-mode", "no",
            ] + extraArguments
            let pid = try Self.spawn(arguments)
            switch Self.waitUntilAnswering(port: port, pid: pid) {
            case .answering:
                self.port = port
                self.pid = pid
                if assignAllSlots { try assignSlots() }
                return
            case .exited:
                break
            case .silent:
                Self.end(pid)
            }
            lastError = Failure(description: "valkey-server did not start on port \(port); see \(directory.path)")
        }
        throw lastError ?? Failure(description: "valkey-server did not start")
    }

    deinit { stop() }

    /// A new blocking client straight to the node (bypassing slotwarden).
    public func client() throws -> NodeClient { try NodeClient(host: "127.0.0.1", port: port) }

    /// The server ended on its own (crashed, say). Does not reap it: `stop()` still can.
    public var hasExited: Bool {
        var info = siginfo_t()
        return waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info._sifields._sigchld.si_pid == pid
    }

    /// The server's log file.
    public var logFile: URL { directory.appendingPathComponent("valkey-\(port).log") }

    /// Ends the server by its pid and waits for it; removes its directory. Idempotent.
    public func stop() {
        guard !exited else { return }
        exited = true
        Self.end(pid)
        try? FileManager.default.removeItem(at: directory)
    }

    /// Starts a process with default signal dispositions and an empty signal mask, so that it reacts
    /// to SIGTERM whatever thread spawns it (threads of the Swift runtime block most signals, and a
    /// child inherits the spawning thread's mask).
    private static func spawn(_ arguments: [String]) throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, arguments[0], &actions, &attributes, argv, environ)
        guard status == 0 else {
            throw Failure(description: "cannot start \(arguments[0]): \(String(cString: strerror(status)))")
        }
        return pid
    }

    /// SIGTERM, then SIGKILL if the server has not exited within 5 s; always reaped.
    private static func end(_ pid: pid_t) {
        kill(pid, SIGTERM)
        for _ in 0..<500 {
            if waitpid(pid, nil, WNOHANG) == pid { return }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        waitpid(pid, nil, 0)
    }

    private func assignSlots() throws {
        let client = try client()
        let reply = try client.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        if case .error(let message) = reply { throw Failure(description: "CLUSTER ADDSLOTSRANGE: \(message)") }
        // The cluster turns ok once the node has seen its own slot assignment; poll its state.
        try waitUntil("cluster_state is ok on :\(port)", timeout: .seconds(5)) {
            try client.call("CLUSTER", "INFO").string?.contains("cluster_state:ok") == true ? true : nil
        }
    }

    private enum StartOutcome { case answering, exited, silent }

    /// Polls with PING: a starting server gives no other sign that it listens.
    private static func waitUntilAnswering(port: Int, pid: pid_t) -> StartOutcome {
        for _ in 0..<500 {
            guard waitpid(pid, nil, WNOHANG) == 0 else { return .exited }
            if let client = try? NodeClient(host: "127.0.0.1", port: port, timeoutMilliseconds: 1000),
                (try? client.call("PING")) == .simpleString("PONG")
            {
                return .answering
            }
            usleep(10_000)
        }
        return .silent
    }
}
