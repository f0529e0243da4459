import Testing
@testable import UV

@Suite("TCP streams and listeners", .timeLimit(.minutes(2)))
struct TCPTests {
    @Test func echoesAFewBytes() async throws {
        let loop = try makeLoop()
        let result: PatternClient.Result = await onLoop(loop) { done in
            let server = try! EchoServer(on: loop)
            _ = PatternClient(loop: loop, to: server.address, total: 1_000) { result in
                server.listener.close()
                done(result)
            }
        }
        #expect(result == PatternClient.Result(received: 1_000))
        #expect(loop.shutdown() == 0)
        #expect(loop.readBuffers.outstanding == 0 && loop.writeBuffers.outstanding == 0)
    }

    @Test func echoes16MiBWithBackpressure() async throws {
        let loop = try makeLoop()
        let total = 16 << 20
        let (result, serverDrained): (PatternClient.Result, Int) = await onLoop(loop) { done in
            let server = try! EchoServer(on: loop)
            _ = PatternClient(loop: loop, to: server.address, total: total, slice: 100_000, highWatermark: 256 << 10) { result in
                server.listener.close()
                done((result, server.drained))
            }
        }
        #expect(result.errors.isEmpty)
        #expect(result.received == total)
        #expect(result.mismatches == 0)
        #expect(result.drained > 0, "the client's queue should have crossed its high watermark")
        #expect(serverDrained >= 0)
        #expect(loop.shutdown() == 0)
        #expect(loop.readBuffers.outstanding == 0 && loop.writeBuffers.outstanding == 0)
        #expect(loop.writeRequests.outstanding == 0)
    }

    /// A bulk transfer's reads grow past the first 16 KiB; a stream that keeps its reads small never
    /// gets more than that from one read.
    @Test(arguments: [false, true])
    func readsGrowUnlessKeptSmall(_ keepsReadsSmall: Bool) async throws {
        let loop = try makeLoop()
        let total = 4 << 20
        let result: PatternClient.Result = await onLoop(loop) { done in
            let server = try! EchoServer(on: loop)
            _ = PatternClient(loop: loop, to: server.address, total: total, slice: 100_000, keepsReadsSmall: keepsReadsSmall) { result in
                server.listener.close()
                done(result)
            }
        }
        #expect(result.errors.isEmpty)
        #expect(result.received == total && result.mismatches == 0)
        if keepsReadsSmall {
            #expect(result.largestRead <= ReadSize.smallest)
        } else {
            #expect(result.largestRead > ReadSize.smallest)
        }
        #expect(loop.shutdown() == 0)
    }

    @Test func connectToAClosedPortIsRefused() async throws {
        final class Probe: TCPStreamDelegate, @unchecked Sendable {
            let done: @Sendable (String) -> Void
            init(done: @escaping @Sendable (String) -> Void) { self.done = done }
            func streamDidConnect(_ stream: TCPStream) { done("connected"); stream.close() }
            func stream(_ stream: TCPStream, didFailToConnect error: UVError) {
                done(error == .connectionRefused ? "refused" : "\(error)")
                stream.close()
            }
            func stream(_ stream: TCPStream, didRead bytes: UnsafeRawBufferPointer) {}
            func streamDidReachEOF(_ stream: TCPStream) {}
            func stream(_ stream: TCPStream, didFail error: UVError) {}
            func streamWritesDrained(_ stream: TCPStream) {}
            func streamDidClose(_ stream: TCPStream) {}
        }
        let loop = try makeLoop()
        let port = await closedPort(on: loop)
        let probe = Box<Probe?>(nil)
        let outcome: String = await onLoop(loop) { done in
            probe.value = Probe(done: done)
            let stream = TCPStream.connect(on: loop, to: try! SocketAddress(ip: "127.0.0.1", port: port), delegate: probe.value!)
            stream.send([1, 2, 3])  // queued behind the connect, then cancelled
        }
        #expect(outcome == "refused")
        #expect(loop.shutdown() == 0)
        #expect(loop.readBuffers.outstanding == 0 && loop.writeBuffers.outstanding == 0)
    }

    @Test func halfCloseLetsThePeerAnswerAfterEOF() async throws {
        final class Side: TCPStreamDelegate, @unchecked Sendable {
            var received: [UInt8] = []
            var events: [String] = []
            var onEOF: ((TCPStream) -> Void)?
            var onClose: (() -> Void)?
            var onConnect: ((TCPStream) -> Void)?
            func streamDidConnect(_ stream: TCPStream) { onConnect?(stream) }
            func stream(_ stream: TCPStream, didFailToConnect error: UVError) { events.append("\(error)") }
            func stream(_ stream: TCPStream, didRead bytes: UnsafeRawBufferPointer) { received += bytes }
            func streamDidReachEOF(_ stream: TCPStream) { events.append("eof"); onEOF?(stream) }
            func stream(_ stream: TCPStream, didFail error: UVError) { events.append("\(error)") }
            func streamWritesDrained(_ stream: TCPStream) {}
            func streamDidShutdownWrite(_ stream: TCPStream) { events.append("shutdown") }
            func streamDidClose(_ stream: TCPStream) { events.append("closed"); onClose?() }
        }
        let loop = try makeLoop()
        let client = Side(), server = Side()
        _ = await onLoop(loop) { (done: @escaping @Sendable (Bool) -> Void) in
            let listener = try! TCPListener(on: loop, address: localhost)
            try! listener.startAccepting { stream in
                stream.delegate = server
                stream.startReading()
                listener.close()
            }
            server.onEOF = { stream in
                // The peer can no longer send, but still reads.
                stream.send(Array("pong".utf8))
                stream.shutdownWrite()
            }
            server.onClose = {}
            client.onConnect = { stream in
                stream.startReading()
                stream.send(Array("ping".utf8))
                stream.shutdownWrite()
                stream.send(Array("dropped".utf8))
            }
            client.onEOF = { stream in stream.close() }
            client.onClose = { done(true) }
            _ = TCPStream.connect(on: loop, to: listener.localAddress, delegate: client)
        }
        #expect(String(decoding: server.received, as: UTF8.self) == "ping")
        #expect(String(decoding: client.received, as: UTF8.self) == "pong")
        #expect(client.events == ["shutdown", "eof", "closed"])
        #expect(server.events.prefix(2) == ["eof", "shutdown"])
        #expect(loop.shutdown() == 0)
        #expect(server.events.last == "closed")
        #expect(loop.readBuffers.outstanding == 0 && loop.writeBuffers.outstanding == 0)
    }

    @Test func bindingATakenAddressThrowsAddressInUse() async throws {
        let loop = try makeLoop()
        let outcome: String = await onLoop(loop) { done in
            let first = try! TCPListener(on: loop, address: localhost)
            try! first.startAccepting { $0.close() }
            let taken = try! SocketAddress(ip: "127.0.0.1", port: first.localAddress.port)
            do {
                _ = try TCPListener(on: loop, address: taken)
                done("bound")
            } catch {
                done("\(error)")
            }
            first.close()
        }
        #expect(outcome == UVError.addressInUse.description)
        #expect(loop.shutdown() == 0)
    }

    @Test func reusePortLetsTwoListenersShareAPort() async throws {
        let loop = try makeLoop()
        let ports: [Int] = await onLoop(loop) { done in
            let first = try! TCPListener(on: loop, address: localhost, reusePort: true)
            try! first.startAccepting { $0.close() }
            let shared = try! SocketAddress(ip: "127.0.0.1", port: first.localAddress.port)
            let second = try! TCPListener(on: loop, address: shared, reusePort: true)
            try! second.startAccepting { $0.close() }
            done([first.localAddress.port, second.localAddress.port])
        }
        #expect(ports[0] == ports[1])
        #expect(loop.shutdown() == 0)  // closes both listeners
    }

    @Test func peerAddressIsTheOtherEnd() async throws {
        let loop = try makeLoop()
        let (peer, listening): (SocketAddress?, SocketAddress) = await onLoop(loop) { done in
            let listener = try! TCPListener(on: loop, address: localhost)
            try! listener.startAccepting { stream in
                done((stream.peerAddress, listener.localAddress))
            }
            let probe = TCPStream.connect(on: loop, to: listener.localAddress, delegate: UnsetDelegate.shared)
            _ = probe
        }
        #expect(peer?.ip == "127.0.0.1")
        #expect(peer?.port != listening.port)
        #expect(loop.shutdown() == 0)
    }
}

final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}
