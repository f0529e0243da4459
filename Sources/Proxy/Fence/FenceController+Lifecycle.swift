import Accounting

extension FenceController {
    /// The slotwarden this one took over from has exited, its last epoch `previous`: the epoch open
    /// since start-up (both processes forwarded to the node meanwhile, so it cannot reconcile exactly)
    /// takes the next id and closes at a fenced cut, and this process's own epochs begin there.
    public func tookOver(after previous: UInt64) async -> EpochRecord {
        if history.epochs.isEmpty, current.id != previous + 1 {
            current.id = previous + 1
            await server.renumberOpenEpoch(previous + 1)
        }
        return await closeEpoch(.handover)
    }

    /// New timings from a reload; a fence under way finishes with the ones it began with where it
    /// already started their timers.
    func apply(_ settings: FailoverFence.Settings) {
        fence.settings = settings
    }
}
