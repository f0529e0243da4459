/// What a ``TCPStream`` tells its owner. Every call arrives on the loop thread.
///
/// The stream holds its delegate `unowned(unsafe)`: the delegate must outlive the stream's last
/// callback, ``streamDidClose(_:)``. After `close()`, the only call still to come is
/// `streamDidClose`.
public protocol TCPStreamDelegate: AnyObject {
    /// The connect started by ``TCPStream/connect(on:to:delegate:)`` succeeded.
    func streamDidConnect(_ stream: TCPStream)
    /// The connect failed (`ECONNREFUSED`, `ETIMEDOUT`, ...). The stream stays open until closed.
    func stream(_ stream: TCPStream, didFailToConnect error: UVError)
    /// Bytes arrived. `bytes` is valid only during the call: it points into a pooled chunk that
    /// goes back to the pool when the call returns.
    func stream(_ stream: TCPStream, didRead bytes: UnsafeRawBufferPointer)
    /// The peer shut down its write side. Reading stopped; writing still works.
    func streamDidReachEOF(_ stream: TCPStream)
    /// A read or write failed (`ECONNRESET`, `EPIPE`, ...). The stream stays open until closed.
    func stream(_ stream: TCPStream, didFail error: UVError)
    /// Called once when ``TCPStream/queuedWriteBytes`` falls to or below
    /// ``TCPStream/lowWatermark`` after having exceeded ``TCPStream/highWatermark``.
    func streamWritesDrained(_ stream: TCPStream)
    /// The write side shut down (``TCPStream/shutdownWrite()``): every queued byte was written and
    /// the FIN sent. Optional; the default does nothing.
    func streamDidShutdownWrite(_ stream: TCPStream)
    /// The handle closed; the stream must not be used any more. The last call.
    func streamDidClose(_ stream: TCPStream)
}

extension TCPStreamDelegate {
    public func streamDidShutdownWrite(_ stream: TCPStream) {}
}

/// The delegate of an accepted stream until the accept callback sets the real one: an immortal
/// object, so that the `unowned(unsafe)` reference is always valid.
final class UnsetDelegate: TCPStreamDelegate, Sendable {
    static let shared = UnsetDelegate()
    func streamDidConnect(_ stream: TCPStream) {}
    func stream(_ stream: TCPStream, didFailToConnect error: UVError) {}
    func stream(_ stream: TCPStream, didRead bytes: UnsafeRawBufferPointer) {}
    func streamDidReachEOF(_ stream: TCPStream) {}
    func stream(_ stream: TCPStream, didFail error: UVError) {}
    func streamWritesDrained(_ stream: TCPStream) {}
    func streamDidClose(_ stream: TCPStream) {}
}
