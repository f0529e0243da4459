import Testing
@testable import UV

@Suite("LoopTimer", .timeLimit(.minutes(1)))
struct TimerTests {
    @Test func firesOnce() async throws {
        let loop = try makeLoop()
        let start = await onLoop(loop) { done in done(loop.nowMilliseconds) }
        let (fired, active): (UInt64, Bool) = await onLoop(loop) { done in
            let timer = LoopTimer(on: loop)
            timer.start(after: 20) {
                // libuv stops a one-shot timer before calling it.
                done((loop.nowMilliseconds, timer.isActive))
                timer.close()
            }
        }
        #expect(fired >= start + 20)
        #expect(!active)
        #expect(loop.shutdown() == 0)
    }

    @Test func repeatsUntilStopped() async throws {
        let loop = try makeLoop()
        let count: Int = await onLoop(loop) { done in
            let timer = LoopTimer(on: loop)
            var count = 0
            timer.start(after: 1, repeatEvery: 2) {
                count += 1
                if count == 5 {
                    timer.stop()
                    #expect(!timer.isActive)
                    // Had stop() failed, the next fire would come before this one-shot.
                    let check = LoopTimer(on: loop)
                    check.start(after: 20) {
                        done(count)
                        check.close()
                        timer.close()
                    }
                }
            }
        }
        #expect(count == 5)
        #expect(loop.shutdown() == 0)
    }

    @Test func stoppedTimerDoesNotFire() async throws {
        let loop = try makeLoop()
        let fired: Bool = await onLoop(loop) { done in
            let stopped = LoopTimer(on: loop)
            var fired = false
            stopped.start(after: 5) { fired = true }
            stopped.stop()
            let later = LoopTimer(on: loop)
            later.start(after: 30) {
                done(fired)
                later.close()
                stopped.close()
            }
        }
        #expect(!fired)
        #expect(loop.shutdown() == 0)
    }
}
