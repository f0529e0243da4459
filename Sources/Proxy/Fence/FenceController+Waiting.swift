import Accounting

/// How many of the ledger's cuts (fenced slot cuts and epoch closes) have begun and finished.
///
/// A reading of both sides (the node's counters, then the ledger's, then the baseline) compares one
/// period with itself only if no cut ran meanwhile: a cut between the node's read and the ledger's
/// zeroes slots the node read before its reset, or leaves in the ledger what the node already
/// zeroed. Two equal counts with none in progress, taken before and after a reading, prove it.
public struct LedgerCutCount: Equatable, Sendable {
    /// Counted before the ledger is zeroed.
    public internal(set) var started: UInt64 = 0
    /// Counted once the ledger, the baseline and the slot owners all belong to the new period.
    public internal(set) var finished: UInt64 = 0

    public var inProgress: Bool { started != finished }

    public init(started: UInt64 = 0, finished: UInt64 = 0) {
        self.started = started
        self.finished = finished
    }
}

extension FenceController {
    /// Waits until an epoch with an id greater than `id` has closed, and returns the first such.
    public func closedEpoch(after id: UInt64) async -> EpochRecord {
        // Only a deadline answers nil, and this wait has none.
        await epochClosing(after: id, token: newWaiterToken()).unsafelyUnwrapped
    }

    /// `closedEpoch(after:)` that gives up after `timeout`: nil when no such epoch closed in time
    /// (the fence did not see the change that should have closed it).
    public func closedEpoch(after id: UInt64, within timeout: Duration) async -> EpochRecord? {
        let token = newWaiterToken()
        return await waiting(token: token, atMost: timeout) { await epochClosing(after: id, token: token) }
    }

    /// The first slot cut with an id greater than `id`, waiting up to `timeout` for one; nil when
    /// none was made in time.
    public func slotCut(after id: UInt64, within timeout: Duration) async -> SlotCut? {
        if let made = cuts.cuts.first(where: { $0.id > id }) { return made }
        let token = newWaiterToken()
        return await waiting(token: token, atMost: timeout) { await withCheckedContinuation { cutObservers[token] = (id, $0) } }
    }

    /// The ledger's cut count once no cut is in progress, waiting up to `timeout` for the one under
    /// way to finish (then the count as it is).
    public func ledgerCutsSettled(within timeout: Duration) async -> LedgerCutCount {
        guard ledgerCuts.inProgress, timeout > .zero else { return ledgerCuts }
        let token = newWaiterToken()
        await waiting(token: token, atMost: timeout) { await withCheckedContinuation { settleWaiters[token] = $0 } }
        return ledgerCuts
    }

    /// The ledger, the baseline and the slot owners belong to the new period: a cut is finished.
    func finishLedgerCut() {
        ledgerCuts.finished += 1
        guard !ledgerCuts.inProgress else { return }
        let waiters = settleWaiters.values
        settleWaiters.removeAll()
        for waiter in waiters { waiter.resume() }
    }

    private func newWaiterToken() -> UInt64 {
        defer { nextWaiterToken += 1 }
        return nextWaiterToken
    }

    private func epochClosing(after id: UInt64, token: UInt64) async -> EpochRecord? {
        if let closed = history.epochs.first(where: { $0.id > id }) { return closed }
        return await withCheckedContinuation { epochWaiters.append(EpochWaiter(after: id, token: token, continuation: $0)) }
    }

    /// Runs `wait`, whose waiter is registered under `token`, and answers that waiter with nothing
    /// once `timeout` has passed.
    private func waiting<Value>(token: UInt64, atMost timeout: Duration, _ wait: () async -> Value) async -> Value {
        // Holds the controller only until awaited below (a weak reference would outlive the wait).
        let deadline = Task {
            try? await Task.sleep(for: timeout)
            abandon(token)
        }
        let value = await wait()
        // Awaited, so that nothing of this wait outlives it (a process may exit right after).
        deadline.cancel()
        await deadline.value
        return value
    }

    /// The waiter `token`, whichever kind it is, gets no answer: its deadline passed.
    private func abandon(_ token: UInt64) {
        if let index = epochWaiters.firstIndex(where: { $0.token == token }) {
            epochWaiters.remove(at: index).continuation.resume(returning: nil)
        }
        cutObservers.removeValue(forKey: token)?.continuation.resume(returning: nil)
        settleWaiters.removeValue(forKey: token)?.resume()
    }
}
