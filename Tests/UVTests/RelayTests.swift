import Testing
@testable import UV

/// A TCP relay built from the module's types: listener → connect to a backend → bytes both ways,
/// with backpressure, half-closes passed through, and both sides closed once both write sides
/// shut down.
final class Relay: @unchecked Sendable {
    let listener: TCPListener
    private(set) var sessionsClosed = 0
    private(set) var failures: [String] = []

    init(on loop: EventLoop, backend: SocketAddress) throws {
        listener = try TCPListener(on: loop, address: localhost)
        try listener.startAccepting { [unowned self] client in
            _ = Session(relay: self, client: client, backend: backend)
        }
    }

    final class Session: TCPStreamDelegate {
        unowned let relay: Relay
        let client: TCPStream
        var backend: TCPStream!
        private var keepAlive: Session?
        private var shutdowns = 0, closed = 0
        private var clientEOF = false, backendEOF = false

        init(relay: Relay, client: TCPStream, backend address: SocketAddress) {
            self.relay = relay
            self.client = client
            keepAlive = self
            client.delegate = self
            backend = TCPStream.connect(on: client.loop, to: address, delegate: self)
            client.startReading()  // what arrives before the backend connects is queued there
        }

        private func peer(of stream: TCPStream) -> TCPStream { stream === client ? backend : client }

        private func closeBoth() {
            client.close()
            backend.close()
        }

        func streamDidConnect(_ stream: TCPStream) { stream.startReading() }
        func stream(_ stream: TCPStream, didFailToConnect error: UVError) {
            relay.failures.append("connect: \(error)")
            closeBoth()
        }
        func stream(_ stream: TCPStream, didRead bytes: UnsafeRawBufferPointer) {
            if !peer(of: stream).write(bytes) { stream.stopReading() }
        }
        func streamDidReachEOF(_ stream: TCPStream) {
            if stream === client { clientEOF = true } else { backendEOF = true }
            peer(of: stream).shutdownWrite()
        }
        func stream(_ stream: TCPStream, didFail error: UVError) {
            relay.failures.append("\(error)")
            closeBoth()
        }
        func streamWritesDrained(_ stream: TCPStream) {
            let source = peer(of: stream)
            if !(source === client ? clientEOF : backendEOF) { source.startReading() }
        }
        func streamDidShutdownWrite(_ stream: TCPStream) {
            shutdowns += 1
            if shutdowns == 2 { closeBoth() }
        }
        func streamDidClose(_ stream: TCPStream) {
            closed += 1
            if closed == 2 {
                relay.sessionsClosed += 1
                keepAlive = nil
            }
        }
    }
}

@Suite("A relay built from UV types", .timeLimit(.minutes(3)))
struct RelayTests {
    struct Wave: Sendable {
        var ok = 0
        var failures: [String] = []
    }

    @Test func thousandsOfConnectionsOpenAndCloseThroughARelay() async throws {
        let loop = try makeLoop()
        let waves = 12, perWave = 250, bytes = 1_000
        let (echo, relay): (EchoServer, Relay) = await onLoop(loop) { done in
            let echo = try! EchoServer(on: loop)
            done((echo, try! Relay(on: loop, backend: echo.address)))
        }
        for _ in 0..<waves {
            let wave: Wave = await onLoop(loop) { done in
                let wave = Box(Wave()), remaining = Box(perWave)  // loop-confined
                for _ in 0..<perWave {
                    _ = PatternClient(loop: loop, to: relay.listener.localAddress, total: bytes) { result in
                        if result == PatternClient.Result(received: bytes) {
                            wave.value.ok += 1
                        } else {
                            wave.value.failures.append("\(result)")
                        }
                        remaining.value -= 1
                        if remaining.value == 0 { done(wave.value) }
                    }
                }
            }
            #expect(wave.ok == perWave)
            #expect(wave.failures.isEmpty)
        }
        let (sessions, accepted, failures): (Int, Int, [String]) = await onLoop(loop) { done in
            done((relay.sessionsClosed, echo.accepted, relay.failures))
        }
        #expect(accepted == waves * perWave)
        #expect(failures.isEmpty)
        // A relay session closes after its client saw EOF: the last few may still be closing.
        #expect(sessions <= waves * perWave)
        #expect(loop.shutdown() == 0)
        #expect(relay.sessionsClosed == waves * perWave)
        #expect(loop.readBuffers.outstanding == 0 && loop.writeBuffers.outstanding == 0)
        #expect(loop.writeRequests.outstanding == 0)
    }
}
