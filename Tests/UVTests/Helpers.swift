@testable import UV

/// Runs `body` on the loop thread and waits until it (or a callback it set up) calls `done`.
/// `done` must be called exactly once.
func onLoop<T: Sendable>(_ loop: EventLoop, _ body: @escaping @Sendable (_ done: @escaping @Sendable (T) -> Void) -> Void) async -> T {
    await withCheckedContinuation { continuation in
        loop.execute {
            body { continuation.resume(returning: $0) }
        }
    }
}

func makeLoop(_ name: String = #function) throws -> EventLoop {
    let loop = try EventLoop(name: name)
    loop.start()
    return loop
}

let localhost = try! SocketAddress(ip: "127.0.0.1", port: 0)

/// A port with nothing listening on it (bound, then closed).
func closedPort(on loop: EventLoop) async -> Int {
    await onLoop(loop) { done in
        let listener = try! TCPListener(on: loop, address: localhost)
        let port = listener.localAddress.port
        listener.close()
        done(port)
    }
}

/// Byte `i` of every test stream: a period (251) prime to every chunk size.
@inline(__always) func patternByte(_ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: i % 251) }

/// An echo server: every accepted stream writes back what it reads, with backpressure, and
/// half-closes after the peer's EOF, then closes when its shutdown completes.
final class EchoServer: @unchecked Sendable {
    let listener: TCPListener
    private(set) var accepted = 0
    private(set) var drained = 0

    init(on loop: EventLoop) throws {
        listener = try TCPListener(on: loop, address: localhost)
        try listener.startAccepting { [unowned self] stream in
            self.accepted += 1
            let session = Session(server: self)
            stream.delegate = session
            stream.setNoDelay(true)
            stream.startReading()
        }
    }

    var address: SocketAddress { listener.localAddress }

    final class Session: TCPStreamDelegate {
        unowned let server: EchoServer
        private var keepAlive: Session?
        init(server: EchoServer) {
            self.server = server
            keepAlive = self
        }
        func streamDidConnect(_ stream: TCPStream) {}
        func stream(_ stream: TCPStream, didFailToConnect error: UVError) {}
        func stream(_ stream: TCPStream, didRead bytes: UnsafeRawBufferPointer) {
            if !stream.write(bytes) { stream.stopReading() }
        }
        func streamDidReachEOF(_ stream: TCPStream) { stream.shutdownWrite() }
        func stream(_ stream: TCPStream, didFail error: UVError) { stream.close() }
        func streamWritesDrained(_ stream: TCPStream) {
            server.drained += 1
            stream.startReading()
        }
        func streamDidShutdownWrite(_ stream: TCPStream) { stream.close() }
        func streamDidClose(_ stream: TCPStream) { keepAlive = nil }
    }
}

/// A client that sends `total` pattern bytes (as fast as backpressure allows), half-closes, reads
/// the echo, checks it byte for byte, and closes on EOF. Reports `(bytesEchoedCorrectly, drained)`.
final class PatternClient: TCPStreamDelegate, @unchecked Sendable {
    struct Result: Sendable, Equatable {
        var received = 0
        var mismatches = 0
        var drained = 0
        var errors: [String] = []
        /// The most bytes one read delivered: a measurement, left out of `==`, which says whether
        /// two transfers went the same way.
        var largestRead = 0

        static func == (lhs: Result, rhs: Result) -> Bool {
            (lhs.received, lhs.mismatches, lhs.drained, lhs.errors) == (rhs.received, rhs.mismatches, rhs.drained, rhs.errors)
        }
    }
    private let total: Int
    private let slice: Int
    private var sent = 0
    private var result = Result()
    private let done: @Sendable (Result) -> Void
    private var keepAlive: PatternClient?
    private let source: [UInt8]
    private(set) var stream: TCPStream?

    init(loop: EventLoop, to address: SocketAddress, total: Int, slice: Int = 65536,
         highWatermark: Int? = nil, keepsReadsSmall: Bool = false, done: @escaping @Sendable (Result) -> Void) {
        self.total = total
        self.slice = slice
        self.done = done
        self.source = (0..<(min(slice, total) + 251)).map(patternByte)
        keepAlive = self
        let stream = TCPStream.connect(on: loop, to: address, delegate: self)
        stream.keepsReadsSmall = keepsReadsSmall
        if let highWatermark {
            stream.highWatermark = highWatermark
            stream.lowWatermark = highWatermark / 4
        }
        self.stream = stream
    }

    private func pump(_ stream: TCPStream) {
        while sent < total {
            let n = min(slice, total - sent)
            let more = source.withUnsafeBytes { source in
                stream.write(UnsafeRawBufferPointer(rebasing: source[(sent % 251)..<(sent % 251 + n)]))
            }
            sent += n
            if !more { return }
        }
        stream.shutdownWrite()
    }

    func streamDidConnect(_ stream: TCPStream) {
        stream.startReading()
        pump(stream)
    }
    func stream(_ stream: TCPStream, didFailToConnect error: UVError) {
        result.errors.append("connect: \(error)")
        stream.close()
    }
    func stream(_ stream: TCPStream, didRead bytes: UnsafeRawBufferPointer) {
        result.largestRead = max(result.largestRead, bytes.count)
        var position = result.received
        for byte in bytes {
            if byte != patternByte(position) { result.mismatches += 1 }
            position += 1
        }
        result.received = position
    }
    func streamDidReachEOF(_ stream: TCPStream) { stream.close() }
    func stream(_ stream: TCPStream, didFail error: UVError) {
        result.errors.append("\(error)")
        stream.close()
    }
    func streamWritesDrained(_ stream: TCPStream) {
        result.drained += 1
        pump(stream)
    }
    func streamDidClose(_ stream: TCPStream) {
        done(result)
        keepAlive = nil
        self.stream = nil
    }
}

extension TCPStream {
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { write($0) } }
}
