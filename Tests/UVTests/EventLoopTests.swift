import Synchronization
import Testing
@testable import UV

@Suite("EventLoop", .timeLimit(.minutes(1)))
struct EventLoopTests {
    final class Log: @unchecked Sendable {
        var entries: [(thread: Int, sequence: Int)] = []
    }

    @Test func executeFromManyThreadsRunsEverythingOnceInOrderPerThread() async throws {
        let loop = try makeLoop()
        let log = Log()
        let threads = 8, perThread = 5_000
        await withTaskGroup(of: Void.self) { group in
            for thread in 0..<threads {
                group.addTask {
                    for sequence in 0..<perThread {
                        loop.execute {
                            precondition(loop.isOnLoopThread)
                            log.entries.append((thread, sequence))
                        }
                    }
                }
            }
        }
        let entries = await onLoop(loop) { done in done(log.entries.map { [$0.thread, $0.sequence] }) }
        #expect(entries.count == threads * perThread)
        var next = [Int](repeating: 0, count: threads)
        for entry in entries {
            #expect(entry[1] == next[entry[0]], "thread \(entry[0]) out of order")
            next[entry[0]] += 1
        }
        #expect(next == [Int](repeating: perThread, count: threads))
        #expect(!loop.isOnLoopThread)
        #expect(loop.shutdown() == 0)
    }

    @Test func workQueuedBeforeStartRunsOnStart() async throws {
        let loop = try EventLoop(name: "late")
        let ran = Mutex(0)
        let value: Int = await withCheckedContinuation { continuation in
            loop.execute { ran.withLock { $0 += 1 } }
            loop.execute { continuation.resume(returning: ran.withLock { $0 }) }
            loop.start()
        }
        #expect(value == 1)
        #expect(loop.shutdown() == 0)
    }

    @Test func shutdownIsIdempotentAndDropsLaterWork() throws {
        let loop = try makeLoop()
        #expect(loop.shutdown() == 0)
        #expect(loop.shutdown() == 0)
        let ran = Mutex(false)
        loop.execute { ran.withLock { $0 = true } }
        #expect(!ran.withLock { $0 })
        loop.start()  // a stopped loop does not start again
        #expect(loop.shutdown() == 0)
    }

    @Test func shutdownOfALoopThatNeverStartedRunsItsWorkAndClosesIt() throws {
        let loop = try EventLoop(name: "never")
        let ran = Mutex(false)
        loop.execute { ran.withLock { $0 = true } }
        let timer = LoopTimer(on: loop)
        timer.start(after: 1_000) {}
        #expect(loop.shutdown() == 0)
        #expect(ran.withLock { $0 })
        #expect(timer.isClosed)
    }

    @Test func shutdownClosesEveryOpenHandle() async throws {
        final class Watcher: TCPStreamDelegate, @unchecked Sendable {
            var closed = 0
            var connected: (() -> Void)?
            func streamDidConnect(_ stream: TCPStream) { connected?(); connected = nil }
            func stream(_ stream: TCPStream, didFailToConnect error: UVError) {}
            func stream(_ stream: TCPStream, didRead bytes: UnsafeRawBufferPointer) {}
            func streamDidReachEOF(_ stream: TCPStream) {}
            func stream(_ stream: TCPStream, didFail error: UVError) {}
            func streamWritesDrained(_ stream: TCPStream) {}
            func streamDidClose(_ stream: TCPStream) { closed += 1 }
        }
        let loop = try makeLoop()
        let watcher = Watcher()
        let queued: Int = await onLoop(loop) { done in
            var pending = 2  // the accept and the connect, in either order
            var client: TCPStream?
            let settle = {
                pending -= 1
                if pending == 0 { done(client!.queuedWriteBytes) }
            }
            let listener = try! TCPListener(on: loop, address: localhost)
            try! listener.startAccepting { stream in
                stream.delegate = watcher  // accepted, never read: the client's writes pile up
                settle()
            }
            let timer = LoopTimer(on: loop)
            timer.start(after: 60_000, repeatEvery: 60_000) {}
            client = TCPStream.connect(on: loop, to: listener.localAddress, delegate: watcher)
            client!.startReading()
            watcher.connected = {
                let megabyte = [UInt8](repeating: 7, count: 1 << 20)
                for _ in 0..<16 { megabyte.withUnsafeBytes { _ = client!.write($0) } }
                settle()
            }
        }
        #expect(queued > 0, "the writes should be partly queued")
        #expect(loop.shutdown() == 0)
        #expect(watcher.closed == 2)
        #expect(loop.readBuffers.outstanding == 0 && loop.writeBuffers.outstanding == 0)
        #expect(loop.writeRequests.outstanding == 0)
    }
}
