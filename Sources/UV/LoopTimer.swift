import CLibUV

/// A `uv_timer_t` on an ``EventLoop``. Loop-confined.
///
/// Lifetime: `data` holds `Unmanaged.passRetained(self)` from `init` until the close callback,
/// which also drops the `fired` closure (breaking any cycle through it). Call ``close()`` when done;
/// a timer left open is closed by the loop's shutdown.
public final class LoopTimer: LoopHandleOwner {
    /// The loop this timer lives on.
    public let loop: EventLoop
    private var handle: UnsafeMutablePointer<uv_timer_t>?
    private var fired: (() -> Void)?
    /// True from ``close()`` on.
    public private(set) var isClosed = false

    public init(on loop: EventLoop) {
        assert(loop.mayTouchLoopState, "LoopTimer used off its loop thread")
        self.loop = loop
        let handle = UnsafeMutablePointer<uv_timer_t>.allocate(capacity: 1)
        let result = uv_timer_init(loop.loop, handle)
        precondition(result == 0, "uv_timer_init failed: \(UVError(code: result))")
        self.handle = handle
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    /// Calls `fired` on the loop thread after `milliseconds` (measured from the loop's cached
    /// ``EventLoop/nowMilliseconds``), then every `repeatMilliseconds` if that is not 0. Restarting
    /// replaces the previous schedule and closure. Does nothing when closed.
    public func start(after milliseconds: UInt64, repeatEvery repeatMilliseconds: UInt64 = 0, _ fired: @escaping () -> Void) {
        guard let handle, !isClosed else { return }
        self.fired = fired
        uv_timer_start(handle, { handle in
            Unmanaged<LoopTimer>.fromOpaque(handle!.pointee.data)._withUnsafeGuaranteedRef { $0.fired?() }
        }, milliseconds, repeatMilliseconds)
    }

    /// Stops the timer; it may be started again.
    public func stop() {
        guard let handle else { return }
        uv_timer_stop(handle)
    }

    /// True while started and not yet fired (one-shot) or not stopped (repeating).
    public var isActive: Bool {
        guard let handle else { return false }
        return uv_is_active(slotwarden_timer_as_handle(handle)) != 0
    }

    /// Stops and closes the timer. Idempotent.
    public func close() {
        guard !isClosed, let handle else { return }
        isClosed = true
        uv_close(slotwarden_timer_as_handle(handle)) { handle in
            let owner = Unmanaged<LoopTimer>.fromOpaque(handle!.pointee.data)
            handle!.pointee.data = nil
            let timer = owner.takeUnretainedValue()
            timer.handle = nil
            timer.fired = nil
            handle!.deallocate()
            owner.release()
        }
    }
}
