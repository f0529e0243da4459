import UV

/// The worker's part in a ``ReplicaStreamFence``: passing the request on, and letting the fence know
/// when its link is done.
extension ProxyWorker {
    /// On the loop: `session` holds a `PSYNC`, or its replica left (`replicaLeft`). Without a server
    /// to fence (tests of a bare worker), it goes on at once.
    func replicaStreamNeedsFence(_ session: ProxySession, replicaLeft: Bool) {
        guard let requestsStreamFence else {
            _ = session.streamFenced(at: nil)
            return
        }
        requestsStreamFence(ReplicaStreamFence(worker: self, session: session.id, replicaLeft: replicaLeft))
    }

    /// With the writers paused and the node's `master_repl_offset` read as `offset`: lets the session
    /// go on, and returns once it is done (its `PSYNC` answered, or its node side closed) or
    /// `timeoutMilliseconds` passed (false). True at once when the session is gone or no longer waits.
    func carryOutStreamFence(session id: UInt64, at offset: Int64?, timeoutMilliseconds: Int) async -> Bool {
        await withCheckedContinuation { continuation in
            let accepted = loop.execute { [self] in
                guard let session = sessions.values.first(where: { $0.id == id }) else {
                    continuation.resume(returning: true)
                    return
                }
                let deadline = LoopTimer(on: loop)
                streamFences[id] = (continuation, deadline)
                deadline.start(after: UInt64(max(1, timeoutMilliseconds))) { [unowned self] in
                    self.finishStreamFence(id, done: false)
                }
                if !session.streamFenced(at: offset) { finishStreamFence(id, done: true) }
            }
            if !accepted { continuation.resume(returning: true) }
        }
    }

    /// On the loop: the session `id` is done with its fence (or closed).
    func streamFenceFinished(_ id: UInt64) {
        finishStreamFence(id, done: true)
    }

    private func finishStreamFence(_ id: UInt64, done: Bool) {
        guard let fence = streamFences.removeValue(forKey: id) else { return }
        fence.deadline.close()
        if !done { sessions.values.first { $0.id == id }?.endNodeSideIfStreamed(now: true) }
        fence.continuation.resume(returning: done)
    }
}
