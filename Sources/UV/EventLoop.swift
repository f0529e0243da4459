import CLibUV
import Synchronization

/// One libuv loop and the thread that runs it.
///
/// Everything on a loop — its ``TCPStream``s, ``TCPListener``s, ``LoopTimer``s and buffer pools — is
/// loop-confined: create and use them on the loop thread (from a callback or an ``execute(_:)``
/// block), or on any single thread before ``start()``.
///
/// The thread-safe surface, callable from any thread:
/// - ``execute(_:)``: queues work for the loop thread (a `Mutex`-protected queue, woken with
///   `uv_async_send`, the only thread-safe libuv call);
/// - ``stop()``: asks the loop to close every handle and exit;
/// - ``shutdown()``: `stop()`, then waits for the thread and closes the loop;
/// - ``isOnLoopThread``.
///
/// Lifetime: the loop thread holds a strong reference to the `EventLoop` until it exits, and every
/// open handle holds its loop; call ``shutdown()`` to end both.
public final class EventLoop: @unchecked Sendable {
    /// The name given at init, for logs and thread names.
    public let name: String
    /// Read chunks: a read borrows one for the length of its callback, so a loop needs only a few,
    /// and they can be large (fewer reads, and fewer writes, per megabyte). Loop-confined.
    public let readBuffers: BufferPool
    /// Chunks that hold write data the kernel did not take at once; a stalled connection keeps its
    /// tail chunk, so these stay moderate. Loop-confined.
    public let writeBuffers: BufferPool
    let writeRequests: RequestPool<uv_write_t>

    let loop: UnsafeMutablePointer<uv_loop_t>
    private let wakeup: UnsafeMutablePointer<uv_async_t>
    private let shared = Mutex(Shared())
    /// The second half of the work queue's double buffer; only the loop thread touches it.
    private var running: [@Sendable () -> Void] = []
    /// The id of the thread now driving the loop (0: none), for ``isOnLoopThread``.
    private let driver = Atomic<UInt>(0)
    private let finished = Mutex<Int32?>(nil)
    private var thread = uv_thread_t()

    private struct Shared {
        var queue: [@Sendable () -> Void] = []
        var started = false
        var stopRequested = false
    }

    /// Creates the loop; no thread runs until ``start()``.
    ///
    /// - Parameters:
    ///   - name: for logs.
    ///   - readBuffers: the read chunk pool of this loop.
    ///   - writeBuffers: the write chunk pool of this loop.
    /// - Throws: `UVError` when libuv cannot initialise the loop.
    public init(
        name: String, readBuffers: BufferPool = BufferPool(chunkSize: 256 << 10, maxCached: 4),
        writeBuffers: BufferPool = BufferPool()
    ) throws(UVError) {
        slotwarden_ignore_sigpipe()
        self.name = name
        self.readBuffers = readBuffers
        self.writeBuffers = writeBuffers
        self.writeRequests = RequestPool(maxCached: writeBuffers.maxCached)
        self.loop = .allocate(capacity: 1)
        self.wakeup = .allocate(capacity: 1)
        let initialised = uv_loop_init(loop)
        guard initialised == 0 else {
            loop.deallocate()
            wakeup.deallocate()
            throw UVError(code: initialised)
        }
        let asyncInitialised = uv_async_init(loop, wakeup) { handle in
            let loop = Unmanaged<EventLoop>.fromOpaque(handle!.pointee.data).takeUnretainedValue()
            loop.runQueuedWork()
        }
        guard asyncInitialised == 0 else {
            uv_loop_close(loop)
            loop.deallocate()
            wakeup.deallocate()
            throw UVError(code: asyncInitialised)
        }
        // Unretained: the loop owns the wake-up handle and closes it before it goes.
        wakeup.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        loop.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        // Reached only when the loop never started: a running thread keeps `self` alive.
        if finished.withLock({ $0 }) == nil {
            _ = closeEverythingOnThisThread()
        }
        loop.deallocate()
        wakeup.deallocate()
    }

    /// Starts the loop thread, which runs `uv_run(UV_RUN_DEFAULT)` until ``stop()``. Work queued
    /// with ``execute(_:)`` before `start()` runs first. Calling it again does nothing.
    public func start() {
        let first = shared.withLock { shared -> Bool in
            if shared.started || shared.stopRequested { return false }
            shared.started = true
            return true
        }
        guard first else { return }
        let me = Unmanaged.passRetained(self).toOpaque()
        let created = uv_thread_create(&thread, { argument in
            let loop = Unmanaged<EventLoop>.fromOpaque(argument!).takeRetainedValue()
            loop.threadMain()
        }, me)
        precondition(created == 0, "uv_thread_create failed: \(UVError(code: created))")
        // Work queued before start() is waiting behind the wake-up handle.
        uv_async_send(wakeup)
    }

    /// True on the thread now running this loop.
    public var isOnLoopThread: Bool {
        driver.load(ordering: .relaxed) == Self.currentThreadID
    }

    /// True where loop-confined state may be touched: on the loop thread, or anywhere while no
    /// thread drives the loop (before ``start()``).
    var mayTouchLoopState: Bool {
        let id = driver.load(ordering: .relaxed)
        return id == 0 || id == Self.currentThreadID
    }

    private static var currentThreadID: UInt {
        #if os(Linux)
        UInt(uv_thread_self())
        #else
        UInt(bitPattern: uv_thread_self())
        #endif
    }

    /// Thread-safe. Runs `work` on the loop thread soon, after everything queued before it: work
    /// queued from one thread runs in the order it was queued. Work queued after ``stop()`` or
    /// ``shutdown()`` began is dropped: then this returns false, so that a caller waiting for the
    /// work can answer otherwise.
    @discardableResult
    public func execute(_ work: @escaping @Sendable () -> Void) -> Bool {
        shared.withLock { shared in
            guard !shared.stopRequested else { return false }
            shared.queue.append(work)
            // Under the lock, so that it never races with the close of `wakeup`.
            if shared.started { uv_async_send(wakeup) }
            return true
        }
    }

    /// Thread-safe, non-blocking. Asks the loop thread to close every handle (their owners hear
    /// their close callbacks) and exit. Work already queued runs first. ``shutdown()`` waits for it.
    public func stop() {
        shared.withLock { shared in
            guard !shared.stopRequested else { return }
            shared.stopRequested = true
            if shared.started { uv_async_send(wakeup) }
        }
    }

    /// Thread-safe (but not from the loop thread itself, which it would wait for). Closes every
    /// handle still open (`uv_walk` + `uv_close`), runs the loop until every close callback ran,
    /// calls `uv_loop_close` and joins the loop thread. Returns `uv_loop_close`'s result: 0 when the
    /// loop closed cleanly, `UV_EBUSY` when something stayed open. Idempotent: later calls return
    /// the same result.
    @discardableResult
    public func shutdown() -> Int32 {
        precondition(!isOnLoopThread, "shutdown() on the loop thread would wait for itself; call stop()")
        return finished.withLock { finished -> Int32 in
            if let result = finished { return result }
            let started = shared.withLock { shared -> Bool in
                shared.stopRequested = true
                if shared.started { uv_async_send(wakeup) }
                return shared.started
            }
            let result: Int32
            if started {
                uv_thread_join(&thread)
                result = closeResult
            } else {
                result = closeEverythingOnThisThread()
            }
            finished = result
            return result
        }
    }

    /// `uv_now`: the loop's cached clock in milliseconds, updated once per loop iteration.
    public var nowMilliseconds: UInt64 { uv_now(loop) }

    // MARK: - Loop thread

    /// Written by the loop thread before it exits; read after the join.
    private var closeResult: Int32 = 0

    private func threadMain() {
        driver.store(Self.currentThreadID, ordering: .relaxed)
        uv_run(loop, UV_RUN_DEFAULT)
        closeResult = closeAll()
        driver.store(0, ordering: .relaxed)
    }

    /// The shutdown path of a loop that never started: the calling thread drives it.
    private func closeEverythingOnThisThread() -> Int32 {
        driver.store(Self.currentThreadID, ordering: .relaxed)
        defer { driver.store(0, ordering: .relaxed) }
        shared.withLock { $0.stopRequested = true }
        runQueuedWork()
        return closeAll()
    }

    /// The wake-up callback: runs the queued work, then starts closing when asked to stop.
    private func runQueuedWork() {
        let stop = shared.withLock { shared -> Bool in
            swap(&shared.queue, &running)
            return shared.stopRequested
        }
        for work in running { work() }
        running.removeAll(keepingCapacity: true)
        if stop {
            uv_walk(loop, closeWalker, wakeup)
            uv_stop(loop)
        }
    }

    /// Closes every handle, runs the loop until their close callbacks ran (closing a handle can
    /// open another: a delegate that reconnects), then closes the loop.
    private func closeAll() -> Int32 {
        repeat {
            uv_walk(loop, closeWalker, wakeup)
            uv_run(loop, UV_RUN_NOWAIT)
        } while uv_loop_alive(loop) != 0
        return uv_loop_close(loop)
    }
}

/// Closes one handle of a loop being shut down: through its owner, so that the owner's close
/// callback runs, or directly for the wake-up handle (`arg`), which has no owner.
private let closeWalker: uv_walk_cb = { handle, wakeup in
    guard let handle, uv_is_closing(handle) == 0 else { return }
    if UnsafeMutableRawPointer(handle) == wakeup || handle.pointee.data == nil {
        uv_close(handle, nil)
        return
    }
    let owner = Unmanaged<AnyObject>.fromOpaque(handle.pointee.data).takeUnretainedValue()
    if let owner = owner as? any LoopHandleOwner {
        owner.close()
    } else {
        uv_close(handle, nil)
    }
}

/// The Swift object behind a handle's `data`, retained there while the handle is open.
protocol LoopHandleOwner: AnyObject {
    /// Starts closing the handle; the owner releases its `data` retain in the close callback.
    func close()
}

/// Pooled libuv requests (`uv_write_t`, ...), recycled through a free list. Loop-confined.
final class RequestPool<Request> {
    private var free: [UnsafeMutablePointer<Request>] = []
    private let maxCached: Int
    private(set) var outstanding = 0

    init(maxCached: Int) {
        self.maxCached = maxCached
        free.reserveCapacity(maxCached)
    }

    @inline(__always)
    func take() -> UnsafeMutablePointer<Request> {
        outstanding += 1
        return free.popLast() ?? .allocate(capacity: 1)
    }

    @inline(__always)
    func give(_ request: UnsafeMutablePointer<Request>) {
        outstanding -= 1
        if free.count < maxCached {
            free.append(request)
        } else {
            request.deallocate()
        }
    }

    deinit {
        for request in free { request.deallocate() }
    }
}
