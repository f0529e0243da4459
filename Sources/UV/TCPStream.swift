import CLibUV

/// A TCP connection on an ``EventLoop``: a `uv_tcp_t` and the write queue in front of it.
/// Loop-confined.
///
/// Lifetime: while the handle is open its `data` holds `Unmanaged.passRetained(self)`, so the
/// stream lives at least until its close callback, which frees the handle, tells the delegate
/// ``TCPStreamDelegate/streamDidClose(_:)``, nils `data` and releases that retain, exactly once.
/// Every handle left open when the loop shuts down is closed the same way.
///
/// Reads: a chunk is taken from the loop's ``BufferPool`` in the alloc callback and given back as
/// soon as the delegate's `didRead` returns: an idle connection holds no buffer, and a read makes
/// no allocation, no closure call and no retain of the stream. A read takes at most ``readSize``
/// bytes of the chunk, which adapts to the traffic (see ``ReadSize``).
///
/// Writes: ``write(_:)`` hands the bytes to the kernel at once with `uv_try_write`; what the kernel
/// did not take is copied into the ``WriteQueue``. At most one pooled `uv_write_t` is in flight;
/// its callback gives the chunks back and submits the next ones. Invariant: the queue has pending
/// chunks only while a write is in flight.
public final class TCPStream: LoopHandleOwner {
    /// The loop this stream lives on.
    public let loop: EventLoop
    /// Nil from the close callback on.
    private var handle: UnsafeMutablePointer<uv_tcp_t>?

    /// Hears every event of the stream. Not retained: keep the delegate alive until
    /// ``TCPStreamDelegate/streamDidClose(_:)``.
    public unowned(unsafe) var delegate: any TCPStreamDelegate
    /// Above this many queued bytes, ``write(_:)`` returns false. Default 1 MiB.
    public var highWatermark: Int {
        get { writeQueue.highWatermark }
        set { writeQueue.highWatermark = newValue }
    }
    /// After exceeding ``highWatermark``, ``TCPStreamDelegate/streamWritesDrained(_:)`` is called
    /// once the queue falls to or below this. Default 256 KiB.
    public var lowWatermark: Int {
        get { writeQueue.lowWatermark }
        set { writeQueue.lowWatermark = newValue }
    }

    /// Reads stay at the smallest size (16 KiB) instead of growing: for a stream of small frames
    /// where getting each one through soon matters more than fewer system calls, like the messages
    /// to a pub/sub subscriber.
    public var keepsReadsSmall: Bool {
        get { adaptiveReadSize.keepsSmall }
        set { adaptiveReadSize.keepsSmall = newValue }
    }
    /// How many bytes the next read may take (see ``ReadSize``).
    public var readSize: Int { adaptiveReadSize.bytes }
    private var adaptiveReadSize: ReadSize
    /// True between ``startReading()`` and ``stopReading()``, EOF, a read error or close.
    public private(set) var isReading = false
    /// Bytes accepted by ``write(_:)`` and not yet written to the kernel.
    public var queuedWriteBytes: Int { writeQueue.queuedBytes }
    /// True from ``close()`` on (or from the loop's shutdown closing the handle).
    public private(set) var isClosed = false

    private var writeQueue = WriteQueue()
    private var inFlight: UnsafeMutablePointer<uv_write_t>?
    /// Set by ``shutdownWrite()`` or a write failure: later writes are dropped.
    private var writesEnded = false
    private var shutdownAfterPending = false

    /// Creates an unconnected handle owned by `self`.
    private init(loop: EventLoop, delegate: any TCPStreamDelegate) {
        assert(loop.mayTouchLoopState, "TCPStream used off its loop thread")
        self.loop = loop
        self.delegate = delegate
        self.adaptiveReadSize = ReadSize(chunkSize: loop.readBuffers.chunkSize)
        let handle = UnsafeMutablePointer<uv_tcp_t>.allocate(capacity: 1)
        let result = uv_tcp_init(loop.loop, handle)
        precondition(result == 0, "uv_tcp_init failed: \(UVError(code: result))")
        self.handle = handle
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    /// The stream of an accepted connection, with a placeholder delegate.
    static func makeAccepted(on loop: EventLoop) -> TCPStream {
        TCPStream(loop: loop, delegate: UnsetDelegate.shared)
    }

    var streamHandle: UnsafeMutablePointer<uv_stream_t>? {
        handle.map { slotwarden_tcp_as_stream($0) }
    }

    /// Client side: starts a non-blocking connect; the delegate hears
    /// ``TCPStreamDelegate/streamDidConnect(_:)`` or
    /// ``TCPStreamDelegate/stream(_:didFailToConnect:)``, never both, never during this call. If
    /// the stream is closed before the connect finishes, neither comes; `streamDidClose` does.
    /// Writes made before the connect finishes are queued.
    public static func connect(on loop: EventLoop, to address: SocketAddress, delegate: any TCPStreamDelegate) -> TCPStream {
        let stream = TCPStream(loop: loop, delegate: delegate)
        let request = UnsafeMutablePointer<uv_connect_t>.allocate(capacity: 1)
        let result = address.withSockAddr { (address, _) -> Int32 in
            uv_tcp_connect(request, stream.handle, address, connectCallback)
        }
        if result < 0 {
            request.deallocate()
            stream.later { stream in
                if !stream.isClosed { stream.delegate.stream(stream, didFailToConnect: UVError(code: result)) }
            }
        }
        return stream
    }

    fileprivate func connected(_ status: Int32) {
        if isClosed || status == UV_ECANCELED.rawValue { return }
        if status == 0 {
            delegate.streamDidConnect(self)
        } else {
            delegate.stream(self, didFailToConnect: UVError(code: status))
        }
    }

    // MARK: Reading

    /// Starts reading; each read reaches the delegate's `didRead`. Does nothing when closed.
    public func startReading() {
        guard !isReading, let stream = streamHandle, !isClosed else { return }
        let result = uv_read_start(stream, allocCallback, readCallback)
        if result == 0 {
            isReading = true
        } else {
            later { stream in
                if !stream.isClosed { stream.delegate.stream(stream, didFail: UVError(code: result)) }
            }
        }
    }

    /// Stops reading (`uv_read_stop`): the kernel buffers, then TCP flow control holds the peer.
    public func stopReading() {
        guard isReading, let stream = streamHandle else { return }
        isReading = false
        uv_read_stop(stream)
    }

    @inline(__always)
    fileprivate func didRead(_ count: Int, into chunk: UnsafeMutablePointer<CChar>?) {
        if count > 0 {
            adaptiveReadSize.record(count)
            delegate.stream(self, didRead: UnsafeRawBufferPointer(start: chunk, count: count))
            loop.readBuffers.give(UnsafeMutableRawPointer(chunk!))
            return
        }
        if let chunk { loop.readBuffers.give(UnsafeMutableRawPointer(chunk)) }
        if count == 0 { return }  // EAGAIN: nothing to read after all.
        // libuv has stopped reading on EOF and on errors.
        isReading = false
        if isClosed { return }
        if count == Int(UV_EOF.rawValue) {
            delegate.streamDidReachEOF(self)
        } else {
            delegate.stream(self, didFail: UVError(code: Int32(truncatingIfNeeded: count)))
        }
    }

    // MARK: Writing

    /// Writes `bytes` now with `uv_try_write`; whatever the kernel did not take is copied into
    /// pooled chunks and queued with `uv_write` (write requests are pooled too). The caller may
    /// reuse `bytes` as soon as this returns.
    ///
    /// Order is preserved: while anything is queued, new bytes go behind it.
    ///
    /// Errors are never reported during this call: they reach the delegate's `didFail` later.
    /// Writes after ``close()``, ``shutdownWrite()`` or a write error are dropped.
    ///
    /// - Returns: `queuedWriteBytes <= highWatermark`. False tells the caller to stop reading its
    ///   source until ``TCPStreamDelegate/streamWritesDrained(_:)``.
    @discardableResult
    public func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard !bytes.isEmpty, !writesEnded, !isClosed, let stream = streamHandle else {
            return writeQueue.queuedBytes <= writeQueue.highWatermark
        }
        var rest = bytes
        if inFlight == nil {
            var buffer = uv_buf_t(base: UnsafeMutablePointer(mutating: bytes.baseAddress!.assumingMemoryBound(to: CChar.self)), len: bytes.count)
            let written = uv_try_write(stream, &buffer, 1)
            if written == bytes.count { return true }
            // EAGAIN (or still connecting): queue it all. A hard error (EPIPE, ...): queue it all
            // too, and let uv_write report the error from its callback.
            if written > 0 { rest = UnsafeRawBufferPointer(rebasing: bytes[Int(written)...]) }
        }
        writeQueue.append(rest, chunks: loop.writeBuffers)
        if inFlight == nil { submitPending() }
        return writeQueue.isWithinHighWatermark()
    }

    /// Hands up to `WriteQueue.chunksPerWrite` pending chunks to one `uv_write`. Requires
    /// `inFlight == nil`.
    private func submitPending() {
        guard writeQueue.hasPending, let stream = streamHandle else { return }
        let (result, request) = withUnsafeTemporaryAllocation(
            of: uv_buf_t.self, capacity: WriteQueue.chunksPerWrite
        ) { buffers -> (Int32, UnsafeMutablePointer<uv_write_t>) in
            let count = writeQueue.beginWrite { index, bytes in
                buffers[index] = uv_buf_t(base: bytes.baseAddress!.assumingMemoryBound(to: CChar.self), len: bytes.count)
            }
            let request = loop.writeRequests.take()
            // libuv copies the uv_buf_t array into the request: stack storage is enough.
            return (uv_write(request, stream, buffers.baseAddress, UInt32(count), writeCallback), request)
        }
        if result == 0 {
            inFlight = request
        } else {
            loop.writeRequests.give(request)
            // No callback will come for this write: its chunks go back now.
            writeQueue.endWrite(chunks: loop.writeBuffers)
            writeFailed(result)
        }
    }

    fileprivate func writeCompleted(_ request: UnsafeMutablePointer<uv_write_t>, status: Int32) {
        loop.writeRequests.give(request)
        inFlight = nil
        writeQueue.endWrite(chunks: loop.writeBuffers)
        if status < 0 {
            if status != UV_ECANCELED.rawValue { writeFailed(status) }
            return
        }
        if writeQueue.hasPending { submitPending() }
        if shutdownAfterPending, !writeQueue.hasPending, !isClosed {
            shutdownAfterPending = false
            startShutdown()
        }
        if !isClosed, writeQueue.drained() { delegate.streamWritesDrained(self) }
    }

    /// Drops what is still queued, ends writing, and tells the delegate (later, never re-entrantly).
    private func writeFailed(_ status: Int32) {
        writeQueue.dropPending(chunks: loop.writeBuffers)
        writesEnded = true
        shutdownAfterPending = false
        later { stream in
            if !stream.isClosed { stream.delegate.stream(stream, didFail: UVError(code: status)) }
        }
    }

    /// Half-close: `uv_shutdown` once every queued write is flushed; the peer then reads EOF.
    /// Reading goes on. Later writes are dropped. The delegate hears
    /// ``TCPStreamDelegate/streamDidShutdownWrite(_:)`` when done, `didFail` on failure; closing
    /// the stream then loses nothing.
    public func shutdownWrite() {
        guard !writesEnded, !isClosed else { return }
        writesEnded = true
        if writeQueue.hasPending {
            shutdownAfterPending = true
        } else {
            startShutdown()
        }
    }

    private func startShutdown() {
        guard let stream = streamHandle else { return }
        let request = UnsafeMutablePointer<uv_shutdown_t>.allocate(capacity: 1)
        let result = uv_shutdown(request, stream) { request, status in
            let stream = request!.pointee.handle!
            request!.deallocate()
            guard status != UV_ECANCELED.rawValue else { return }
            Unmanaged<TCPStream>.fromOpaque(stream.pointee.data)._withUnsafeGuaranteedRef { stream in
                if stream.isClosed { return }
                if status == 0 {
                    stream.delegate.streamDidShutdownWrite(stream)
                } else {
                    stream.delegate.stream(stream, didFail: UVError(code: status))
                }
            }
        }
        if result < 0 {
            request.deallocate()
            later { stream in
                if !stream.isClosed { stream.delegate.stream(stream, didFail: UVError(code: result)) }
            }
        }
    }

    // MARK: Options and addresses

    /// `TCP_NODELAY`.
    public func setNoDelay(_ on: Bool) {
        guard let handle else { return }
        _ = uv_tcp_nodelay(handle, on ? 1 : 0)
    }

    /// `SO_KEEPALIVE`, first probe after `delaySeconds` of idleness.
    public func setKeepAlive(_ on: Bool, delaySeconds: UInt32) {
        guard let handle else { return }
        _ = uv_tcp_keepalive(handle, on ? 1 : 0, delaySeconds)
    }

    /// The peer's address; nil when not connected or closed.
    public var peerAddress: SocketAddress? {
        guard let handle else { return nil }
        var storage = sockaddr_storage()
        var length = Int32(MemoryLayout<sockaddr_storage>.size)
        return withUnsafeMutablePointer(to: &storage) { storage in
            storage.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                uv_tcp_getpeername(handle, address, &length) == 0 ? SocketAddress(address) : nil
            }
        }
    }

    /// The local address; nil when closed.
    public var localAddress: SocketAddress? {
        guard let handle else { return nil }
        return handle.localAddress
    }

    // MARK: Closing

    /// Closes the handle. Queued writes are dropped (in-flight ones are cancelled). Idempotent.
    /// The delegate hears ``TCPStreamDelegate/streamDidClose(_:)`` from the close callback; after
    /// that the stream must not be used.
    public func close() {
        guard !isClosed, let handle else { return }
        isClosed = true
        isReading = false
        writesEnded = true
        shutdownAfterPending = false
        writeQueue.dropPending(chunks: loop.writeBuffers)
        uv_close(slotwarden_tcp_as_handle(handle)) { handle in
            let owner = Unmanaged<TCPStream>.fromOpaque(handle!.pointee.data)
            handle!.pointee.data = nil
            let stream = owner.takeUnretainedValue()
            stream.handleClosed()
            owner.release()
        }
    }

    private func handleClosed() {
        // libuv cancelled every request before this callback.
        assert(inFlight == nil && writeQueue.isEmpty)
        handle?.deallocate()
        handle = nil
        delegate.streamDidClose(self)
    }

    /// Runs `body` on the loop thread soon: reports errors without re-entering the caller.
    private func later(_ body: @escaping (TCPStream) -> Void) {
        nonisolated(unsafe) let stream = self
        nonisolated(unsafe) let body = body
        loop.execute { body(stream) }
    }
}

extension UnsafeMutablePointer where Pointee == uv_tcp_t {
    var localAddress: SocketAddress? {
        var storage = sockaddr_storage()
        var length = Int32(MemoryLayout<sockaddr_storage>.size)
        return withUnsafeMutablePointer(to: &storage) { storage in
            storage.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                uv_tcp_getsockname(self, address, &length) == 0 ? SocketAddress(address) : nil
            }
        }
    }
}

// MARK: - C callbacks (non-capturing)

private let connectCallback: uv_connect_cb = { request, status in
    let stream = request!.pointee.handle!
    request!.deallocate()
    Unmanaged<TCPStream>.fromOpaque(stream.pointee.data)._withUnsafeGuaranteedRef { $0.connected(status) }
}

private let allocCallback: uv_alloc_cb = { handle, _, buffer in
    Unmanaged<TCPStream>.fromOpaque(handle!.pointee.data)._withUnsafeGuaranteedRef { stream in
        buffer!.pointee = uv_buf_t(
            base: stream.loop.readBuffers.take().assumingMemoryBound(to: CChar.self), len: stream.readSize)
    }
}

private let readCallback: uv_read_cb = { stream, count, buffer in
    Unmanaged<TCPStream>.fromOpaque(stream!.pointee.data)._withUnsafeGuaranteedRef {
        $0.didRead(count, into: buffer!.pointee.base)
    }
}

private let writeCallback: uv_write_cb = { request, status in
    Unmanaged<TCPStream>.fromOpaque(request!.pointee.handle.pointee.data)._withUnsafeGuaranteedRef {
        $0.writeCompleted(request!, status: status)
    }
}
