#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RESP

/// A small blocking RESP client for talking to the node outside the data plane: the start-up probe
/// (`INFO server`, `COMMAND`), the demo, and tests. Never used on the event loop.
public final class NodeClient {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    public let host: String
    public let port: Int
    private var socketDescriptor: Int32
    private var received: [UInt8] = []

    /// Connects with a timeout that also bounds every later read and write.
    public init(host: String, port: Int, timeoutMilliseconds: Int = 5000) throws {
        self.host = host
        self.port = port
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var info: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &info)
        guard status == 0, let first = info else {
            throw Failure("cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(info) }
        let descriptor = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure("socket: \(String(cString: strerror(errno)))") }
        var timeout = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: (timeoutMilliseconds % 1000) * 1000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var noDelay: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))
        guard connect(descriptor, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            let reason = String(cString: strerror(errno))
            _ = Glibc.close(descriptor)
            throw Failure("cannot connect to \(host):\(port): \(reason)")
        }
        socketDescriptor = descriptor
    }

    deinit { close() }

    public func close() {
        if socketDescriptor >= 0 {
            _ = Glibc.close(socketDescriptor)
            socketDescriptor = -1
        }
    }

    /// Sends a command and returns its decoded reply (errors come back as `.error`, not thrown).
    @discardableResult
    public func call(_ arguments: String...) throws -> RESPValue {
        try call(arguments)
    }

    @discardableResult
    public func call(_ arguments: [String]) throws -> RESPValue {
        try send(RESPEncoder.command(arguments))
        return try readValue()
    }

    /// Sends raw bytes, unchanged.
    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(socketDescriptor, $0.baseAddress, $0.count) }
            guard written > 0 else { throw Failure("write to \(host):\(port): \(String(cString: strerror(errno)))") }
            offset += written
        }
    }

    /// Half-closes the connection: the peer sees end of input, replies can still be read.
    public func shutdownWrite() {
        _ = Glibc.shutdown(socketDescriptor, Int32(SHUT_WR))
    }

    /// Reads until the peer closes; returns what arrived after the last complete reply.
    public func readUntilClosed() throws -> [UInt8] {
        while true {
            do {
                try fill()
            } catch let failure as Failure where failure.description.hasSuffix("closed the connection") {
                defer { received.removeAll() }
                return received
            }
        }
    }

    /// Reads one complete reply and returns it with the exact bytes it took on the wire.
    public func readFrame() throws -> (value: RESPValue, bytes: [UInt8]) {
        let bytes = try readFrameBytes()
        guard let (value, consumed) = try RESPValueDecoder.decode(bytes[...]), consumed == bytes.count else {
            throw Failure("reply from \(host):\(port) could not be decoded")
        }
        return (value, bytes)
    }

    /// Reads one complete reply and returns its bytes, undecoded (for a reply that has a parser of
    /// its own, like `CLUSTER SLOT-STATS`).
    public func readFrameBytes() throws -> [UInt8] {
        // The streaming scanner finds where the frame ends as bytes arrive, so a large reply
        // (CLUSTER SLOT-STATS over 16384 slots is about 1.5 MB) is scanned once, not once per read.
        var scanner = ReplyScanner()
        var scanned = 0
        while true {
            let end: Int? = try received.withUnsafeBytes { buffer in
                var offset = scanned
                switch scanner.next(in: buffer, at: &offset) {
                case .complete: return offset
                case .incomplete:
                    scanned = offset
                    return nil
                case .malformed(let violation):
                    throw Failure("malformed reply from \(host):\(port): \(violation)")
                }
            }
            if let end {
                let bytes = Array(received[..<end])
                received.removeFirst(end)
                return bytes
            }
            try fill()
        }
    }

    public func readValue() throws -> RESPValue { try readFrame().value }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { read(socketDescriptor, $0.baseAddress, $0.count) }
        if count > 0 {
            received.append(contentsOf: chunk[..<count])
        } else if count == 0 {
            throw Failure("\(host):\(port) closed the connection")
        } else {
            throw Failure("read from \(host):\(port): \(String(cString: strerror(errno)))")
        }
    }
}
