import CLibUV

/// A listening TCP socket on an ``EventLoop``. Loop-confined.
///
/// The socket is created and bound in `init` (not with `uv_tcp_bind`, which defers a bind error
/// to `uv_listen`), so that `EADDRINUSE` is thrown where the address is given. Lifetime: like
/// ``TCPStream``, `data` holds `Unmanaged.passRetained(self)` from `init` to the close callback.
public final class TCPListener: LoopHandleOwner {
    /// The loop this listener lives on.
    public let loop: EventLoop
    /// The bound address: the port the kernel chose when port 0 was asked.
    public let localAddress: SocketAddress
    private var handle: UnsafeMutablePointer<uv_tcp_t>?
    private let backlog: Int32
    private var onAccept: ((TCPStream) -> Void)?
    /// True from ``close()`` on.
    public private(set) var isClosed = false

    /// Binds a socket to `address` (`SO_REUSEADDR`; `SO_REUSEPORT` too when `reusePort`).
    ///
    /// - Throws: `UVError`, e.g. `EADDRINUSE` when another socket holds the address.
    public init(on loop: EventLoop, address: SocketAddress, backlog: Int32 = 1024, reusePort: Bool = false) throws(UVError) {
        assert(loop.mayTouchLoopState, "TCPListener used off its loop thread")
        self.loop = loop
        self.backlog = backlog
        var socket = uv_os_sock_t()
        try UVError.check(address.withSockAddr { address, length in
            slotwarden_bound_tcp_socket(address, length, reusePort ? 1 : 0, &socket)
        })
        let handle = UnsafeMutablePointer<uv_tcp_t>.allocate(capacity: 1)
        let initialised = uv_tcp_init(loop.loop, handle)
        guard initialised == 0 else {
            slotwarden_close_socket(socket)
            handle.deallocate()
            throw UVError(code: initialised)
        }
        let opened = uv_tcp_open(handle, socket)
        guard opened == 0, let bound = handle.localAddress else {
            slotwarden_close_socket(socket)
            uv_close(slotwarden_tcp_as_handle(handle)) { $0!.deallocate() }
            throw UVError(code: opened < 0 ? opened : UV_EINVAL.rawValue)
        }
        self.localAddress = bound
        self.handle = handle
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    /// Listens (`uv_listen`) and calls `onAccept` once per accepted connection, on the loop thread.
    /// The new stream is not reading: set its delegate inside `onAccept`, then start reading.
    /// Accept errors (`EMFILE`, ...) are skipped; libuv keeps listening.
    ///
    /// - Throws: `UVError` from `uv_listen`; `EINVAL` when closed.
    public func startAccepting(_ onAccept: @escaping (TCPStream) -> Void) throws(UVError) {
        guard let handle, !isClosed else { throw .invalidArgument }
        self.onAccept = onAccept
        try UVError.check(uv_listen(slotwarden_tcp_as_stream(handle), backlog) { server, status in
            Unmanaged<TCPListener>.fromOpaque(server!.pointee.data)._withUnsafeGuaranteedRef { $0.accept(status) }
        })
    }

    private func accept(_ status: Int32) {
        guard status == 0, !isClosed, let handle else { return }
        let stream = TCPStream.makeAccepted(on: loop)
        guard uv_accept(slotwarden_tcp_as_stream(handle), stream.streamHandle) == 0 else {
            stream.close()
            return
        }
        onAccept?(stream)
    }

    /// Stops listening and closes the socket. Idempotent. Accepted streams stay open.
    public func close() {
        guard !isClosed, let handle else { return }
        isClosed = true
        uv_close(slotwarden_tcp_as_handle(handle)) { handle in
            let owner = Unmanaged<TCPListener>.fromOpaque(handle!.pointee.data)
            handle!.pointee.data = nil
            let listener = owner.takeUnretainedValue()
            listener.handle = nil
            listener.onAccept = nil
            handle!.deallocate()
            owner.release()
        }
    }
}
