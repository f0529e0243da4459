import UV

/// A worker's graceful stop: the listener closed, each session closing at its next command boundary,
/// a deadline for those that never reach one. On the loop thread.
final class GracefulStop {
    let continuation: CheckedContinuation<ProxyServer.GracefulStopOutcome, Never>
    let startedAt: UInt64
    let deadline: LoopTimer
    var outcome = ProxyServer.GracefulStopOutcome()
    /// Client sessions (not replication links) open when the stop began.
    var clients = 0
    /// Replication links are closed once no client session is left.
    var closingReplicationLinks = false

    init(continuation: CheckedContinuation<ProxyServer.GracefulStopOutcome, Never>, startedAt: UInt64, deadline: LoopTimer) {
        self.continuation = continuation
        self.startedAt = startedAt
        self.deadline = deadline
    }
}

extension ProxyWorker {
    /// See ``ProxyServer/closeClientsGracefully(timeoutMilliseconds:lingerMilliseconds:)``.
    func closeClientsGracefully(timeoutMilliseconds: Int, lingerMilliseconds: Int) async -> ProxyServer.GracefulStopOutcome {
        await withCheckedContinuation { continuation in
            let accepted = loop.execute { [self] in
                guard stopping == nil else {
                    continuation.resume(returning: ProxyServer.GracefulStopOutcome())
                    return
                }
                listener?.close()
                listener = nil
                let deadline = LoopTimer(on: loop)
                stopping = GracefulStop(continuation: continuation, startedAt: loop.nowMilliseconds, deadline: deadline)
                deadline.start(after: UInt64(max(0, timeoutMilliseconds))) { [unowned self] in self.gracefulStopDeadlinePassed() }
                let clients = sessions.values.filter { !$0.isReplicationLink }
                stopping?.clients = clients.count
                for session in clients {
                    session.closeAtCommandBoundary(lingerMilliseconds: UInt64(max(0, lingerMilliseconds)))
                }
                stoppingSessionClosed()
            }
            if !accepted { continuation.resume(returning: ProxyServer.GracefulStopOutcome()) }
        }
    }

    /// A session closed while stopping (or stopping began): once only replication links are left,
    /// close them; once nothing is left, the stop is done.
    func stoppingSessionClosed() {
        guard let stopping else { return }
        if !stopping.closingReplicationLinks, sessions.values.allSatisfy(\.isReplicationLink) {
            stopping.closingReplicationLinks = true
            stopping.outcome.replicationLinksClosed = sessions.count
            for session in sessions.values { session.closeBoth() }
        }
        guard sessions.isEmpty else { return }
        stopping.deadline.close()
        stopping.outcome.closedAtBoundary = stopping.clients - stopping.outcome.closedAtDeadline
        stopping.outcome.elapsedMilliseconds = Int(loop.nowMilliseconds - stopping.startedAt)
        self.stopping = nil
        stopping.continuation.resume(returning: stopping.outcome)
    }

    private func gracefulStopDeadlinePassed() {
        guard let stopping else { return }
        let open = sessions.values.filter { !$0.isReplicationLink }
        stopping.outcome.closedAtDeadline = open.count
        stopping.outcome.inFlightAtDeadline = open.reduce(0) { $0 + $1.inFlightCount }
        logger.warning(
            "stop deadline passed; closing the remaining clients",
            metadata: ["clients": "\(open.count)", "in_flight": "\(stopping.outcome.inFlightAtDeadline)"])
        for session in open { session.closeBoth() }
    }
}
