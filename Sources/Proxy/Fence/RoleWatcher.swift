import Accounting
import Logging
import Synchronization

/// Polls `ROLE` on the control connection every `role_poll_interval_ms`, at once when asked (a
/// suspicious reply, the fence), and feeds what it sees to the fence. Polls asked for in a burst (a
/// storm of `-MOVED` replies after a failover: each asks) start at least `minimumGapMilliseconds`
/// apart; the asks in between become one poll. A lost control connection is retried with capped
/// exponential back-off.
final class RoleWatcher: @unchecked Sendable {
    private let control: NodeControl
    /// `role_poll_interval_ms`; a reload may change it, from the next poll on.
    private let interval: PollInterval
    private let maxBackoffMilliseconds: Int
    private let minimumGapMilliseconds: Int
    private let logger: Logger
    private let wakeUps: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private var task: Task<Void, Never>?
    /// A hint asked for the next poll (reported with it, then cleared).
    private let hinted = HintFlag()

    init(control: NodeControl, intervalMilliseconds: Int, maxBackoffMilliseconds: Int, logger: Logger) {
        self.control = control
        self.interval = PollInterval(max(1, intervalMilliseconds))
        self.maxBackoffMilliseconds = max(intervalMilliseconds, maxBackoffMilliseconds)
        self.minimumGapMilliseconds = min(5, max(1, intervalMilliseconds))
        self.logger = logger
        (wakeUps, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func setInterval(milliseconds: Int) { interval.milliseconds = max(1, milliseconds) }

    /// Asks for a poll now instead of at the next interval; `hinted` when the data plane saw a sign
    /// of a change (the observation says so). Thread-safe.
    func pollNow(hinted: Bool = false) {
        if hinted { self.hinted.raise() }
        wake.yield()
    }

    func start(_ observe: @escaping @Sendable (NodeObservation) async -> Void) {
        task = Task { [control, interval, maxBackoffMilliseconds, minimumGapMilliseconds, logger, wakeUps, wake, hinted] in
            var backoff = interval.milliseconds
            var connected = true
            let ticker = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(interval.milliseconds))
                    wake.yield()
                }
            }
            defer { ticker.cancel() }
            let clock = ContinuousClock()
            var lastPoll: ContinuousClock.Instant?
            for await _ in wakeUps {
                if Task.isCancelled { break }
                if let lastPoll, clock.now < lastPoll + .milliseconds(minimumGapMilliseconds) {
                    try? await Task.sleep(until: lastPoll + .milliseconds(minimumGapMilliseconds), clock: clock)
                }
                lastPoll = clock.now
                do {
                    var observation = try await control.observe()
                    observation.hinted = hinted.take()
                    if !connected { logger.info("control connection restored") }
                    connected = true
                    backoff = interval.milliseconds
                    await observe(observation)
                } catch {
                    if connected { logger.warning("control connection lost", metadata: ["error": "\(error)"]) }
                    connected = false
                    try? await Task.sleep(for: .milliseconds(backoff))
                    backoff = min(backoff * 2, maxBackoffMilliseconds)
                }
            }
        }
    }

    func stop() {
        task?.cancel()
        wake.finish()
    }
}

/// A flag any thread raises and the watcher takes (reads and clears).
private final class HintFlag: Sendable {
    private let raised = Mutex(false)

    func raise() { raised.withLock { $0 = true } }

    func take() -> Bool {
        raised.withLock { flag in
            defer { flag = false }
            return flag
        }
    }
}

/// The poll interval, shared with the polling task.
private final class PollInterval: Sendable {
    private let value: Atomic<Int>
    init(_ milliseconds: Int) { value = Atomic(milliseconds) }
    var milliseconds: Int {
        get { value.load(ordering: .relaxed) }
        set { value.store(newValue, ordering: .relaxed) }
    }
}
