import Accounting
import Logging

/// Polls `ROLE` on the control connection every `role_poll_interval_ms`, at once when asked (a
/// suspicious reply, the fence), and feeds what it sees to the fence. A lost control connection is
/// retried with capped exponential back-off.
final class RoleWatcher: @unchecked Sendable {
    private let control: NodeControl
    private let intervalMilliseconds: Int
    private let maxBackoffMilliseconds: Int
    private let logger: Logger
    private let wakeUps: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private var task: Task<Void, Never>?

    init(control: NodeControl, intervalMilliseconds: Int, maxBackoffMilliseconds: Int, logger: Logger) {
        self.control = control
        self.intervalMilliseconds = max(1, intervalMilliseconds)
        self.maxBackoffMilliseconds = max(intervalMilliseconds, maxBackoffMilliseconds)
        self.logger = logger
        (wakeUps, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks for a poll now instead of at the next interval. Thread-safe.
    func pollNow() { wake.yield() }

    func start(_ observe: @escaping @Sendable (NodeObservation) async -> Void) {
        task = Task { [control, intervalMilliseconds, maxBackoffMilliseconds, logger, wakeUps, wake] in
            var backoff = intervalMilliseconds
            var connected = true
            let ticker = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(intervalMilliseconds))
                    wake.yield()
                }
            }
            defer { ticker.cancel() }
            for await _ in wakeUps {
                if Task.isCancelled { break }
                do {
                    let observation = try await control.observe()
                    if !connected { logger.info("control connection restored") }
                    connected = true
                    backoff = intervalMilliseconds
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
