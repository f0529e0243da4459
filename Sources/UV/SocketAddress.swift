import CLibUV

/// An IPv4 or IPv6 address and port, the value a listener binds to and a stream connects to.
///
/// Equality and hashing use the address bytes, the port and (IPv6) the scope id.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    enum Storage: Sendable {
        case v4(sockaddr_in)
        case v6(sockaddr_in6)
    }

    let storage: Storage

    init(_ storage: Storage) {
        self.storage = storage
    }

    /// Parses a numeric IPv4 (`"127.0.0.1"`) or IPv6 (`"::1"`) address; no name resolution.
    ///
    /// - Throws: `UVError.invalidArgument` when `ip` is not numeric or `port` is not in 0...65535.
    public init(ip: String, port: Int) throws(UVError) {
        guard (0...65535).contains(port) else { throw .invalidArgument }
        var v4 = sockaddr_in()
        if uv_ip4_addr(ip, Int32(port), &v4) == 0 {
            self.storage = .v4(v4)
            return
        }
        var v6 = sockaddr_in6()
        if uv_ip6_addr(ip, Int32(port), &v6) == 0 {
            self.storage = .v6(v6)
            return
        }
        throw .invalidArgument
    }

    /// Resolves `host` with a blocking `getaddrinfo` and returns its first TCP address.
    ///
    /// Blocks the calling thread: call it at start-up, never on a loop thread.
    public static func resolve(host: String, port: Int) throws(UVError) -> SocketAddress {
        if let numeric = try? SocketAddress(ip: host, port: port) { return numeric }
        guard (0...65535).contains(port) else { throw .invalidArgument }
        // A private loop: uv_getaddrinfo runs synchronously when given no callback.
        let loop = UnsafeMutablePointer<uv_loop_t>.allocate(capacity: 1)
        defer { loop.deallocate() }
        try UVError.check(uv_loop_init(loop))
        defer { uv_loop_close(loop) }
        var request = uv_getaddrinfo_t()
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        try UVError.check(uv_getaddrinfo(loop, &request, nil, host, String(port), &hints))
        defer { uv_freeaddrinfo(request.addrinfo) }
        var entry = request.addrinfo
        while let info = entry {
            if let address = SocketAddress(info.pointee.ai_addr) { return address }
            entry = info.pointee.ai_next
        }
        throw UVError(UV_EAI_NONAME)
    }

    /// Copies an IPv4 or IPv6 `sockaddr`; nil for any other family.
    init?(_ address: UnsafePointer<sockaddr>?) {
        guard let address else { return nil }
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            self.storage = .v4(UnsafeRawPointer(address).loadUnaligned(as: sockaddr_in.self))
        case AF_INET6:
            self.storage = .v6(UnsafeRawPointer(address).loadUnaligned(as: sockaddr_in6.self))
        default:
            return nil
        }
    }

    public var port: Int {
        switch storage {
        case .v4(let a): Int(UInt16(bigEndian: a.sin_port))
        case .v6(let a): Int(UInt16(bigEndian: a.sin6_port))
        }
    }

    /// The numeric address without the port: `"127.0.0.1"`, `"::1"`.
    public var ip: String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { text in
            text.initialize(repeating: 0)
            switch storage {
            case .v4(var a): _ = uv_ip4_name(&a, text.baseAddress, text.count)
            case .v6(var a): _ = uv_ip6_name(&a, text.baseAddress, text.count)
            }
            return String(cString: text.baseAddress!)
        }
    }

    public var isIPv6: Bool {
        if case .v6 = storage { return true }
        return false
    }

    /// `"127.0.0.1:6379"` or `"[::1]:6379"`.
    public var description: String {
        isIPv6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    /// Calls `body` with the C view of this address and its length.
    func withSockAddr<R, E: Error>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(E) -> R) throws(E) -> R {
        switch storage {
        case .v4(var a):
            return try withUnsafePointer(to: &a) { (p) throws(E) -> R in
                try body(UnsafeRawPointer(p).assumingMemoryBound(to: sockaddr.self), socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        case .v6(var a):
            return try withUnsafePointer(to: &a) { (p) throws(E) -> R in
                try body(UnsafeRawPointer(p).assumingMemoryBound(to: sockaddr.self), socklen_t(MemoryLayout<sockaddr_in6>.size))
            }
        }
    }

    public static func == (lhs: SocketAddress, rhs: SocketAddress) -> Bool {
        switch (lhs.storage, rhs.storage) {
        case (.v4(let a), .v4(let b)):
            return a.sin_port == b.sin_port && a.sin_addr.s_addr == b.sin_addr.s_addr
        case (.v6(var a), .v6(var b)):
            return a.sin6_port == b.sin6_port && a.sin6_scope_id == b.sin6_scope_id
                && withUnsafeBytes(of: &a.sin6_addr) { x in withUnsafeBytes(of: &b.sin6_addr) { y in x.elementsEqual(y) } }
        default:
            return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch storage {
        case .v4(let a):
            hasher.combine(4 as UInt8)
            hasher.combine(a.sin_port)
            hasher.combine(a.sin_addr.s_addr)
        case .v6(var a):
            hasher.combine(6 as UInt8)
            hasher.combine(a.sin6_port)
            hasher.combine(a.sin6_scope_id)
            withUnsafeBytes(of: &a.sin6_addr) { hasher.combine(bytes: $0) }
        }
    }
}
