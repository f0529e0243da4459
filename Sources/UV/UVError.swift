import CLibUV

/// A libuv error code (a negative errno on Unix, or one of libuv's own codes such as `UV_EOF`).
///
/// `description` reads `"ECONNREFUSED: connection refused"`: libuv's name for the code, then its
/// message.
public struct UVError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The libuv error code; always negative.
    public let code: Int32

    @inlinable
    public init(code: Int32) {
        self.code = code
    }

    init(_ errno: uv_errno_t) {
        self.code = errno.rawValue
    }

    /// libuv's symbolic name for the code, e.g. `"ECONNREFUSED"`.
    public var name: String { String(cString: uv_err_name(code)) }

    public var description: String { "\(name): \(String(cString: uv_strerror(code)))" }

    public static let connectionRefused = UVError(UV_ECONNREFUSED)
    public static let connectionReset = UVError(UV_ECONNRESET)
    public static let brokenPipe = UVError(UV_EPIPE)
    public static let addressInUse = UVError(UV_EADDRINUSE)
    public static let invalidArgument = UVError(UV_EINVAL)
    public static let canceled = UVError(UV_ECANCELED)
    public static let endOfFile = UVError(UV_EOF)
    public static let timedOut = UVError(UV_ETIMEDOUT)
}

extension UVError {
    /// Throws when `result` is a libuv error (negative); returns it otherwise.
    @discardableResult
    static func check(_ result: Int32) throws(UVError) -> Int32 {
        if result < 0 { throw UVError(code: result) }
        return result
    }
}
