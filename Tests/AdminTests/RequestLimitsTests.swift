@testable import Admin
import Synchronization
import Testing

@Suite("admin request limits")
struct RequestLimitsTests {
    final class Counter: Sendable {
        private let value = Atomic<Int>(0)
        func add(_ delta: Int) -> Int { value.add(delta, ordering: .sequentiallyConsistent).newValue }
        func raise(to candidate: Int) { value.max(candidate, ordering: .sequentiallyConsistent) }
        var current: Int { value.load(ordering: .sequentiallyConsistent) }
    }

    @Test("no more than the limit run at once, and every request gets its turn")
    func limiter() async {
        let limiter = RequestLimiter(limit: 3)
        let (running, most) = (Counter(), Counter())
        let done = await withTaskGroup(of: Int.self) { group in
            for index in 0..<40 {
                group.addTask {
                    await limiter.run {
                        most.raise(to: running.add(1))
                        for _ in 0..<5 { await Task.yield() }
                        _ = running.add(-1)
                        return index
                    }
                }
            }
            return await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(done.sorted() == Array(0..<40))
        #expect(most.current == 3)
    }

    @Test("callers that ask while a run is under way share the next one; each result began after its caller asked")
    func sharedRuns() async throws {
        let runs = SharedRuns<Int>()
        let started = Counter()
        let (gate, open) = AsyncStream.makeStream(of: Void.self)
        let first = Task {
            try await runs.value {
                let number = started.add(1)
                for await _ in gate { break }
                return number
            }
        }
        while started.current == 0 { await Task.yield() }
        // Asked while run 1 is under way: all of these get run 2, which begins once run 1 ended.
        let later = (0..<10).map { _ in Task { try await runs.value { started.add(1) } } }
        while await runs.callers < 11 { await Task.yield() }
        #expect(started.current == 1, "run 2 waits for run 1")
        open.yield()
        open.finish()
        #expect(try await first.value == 1)
        for task in later { #expect(try await task.value == 2) }
        #expect(started.current == 2)
        #expect(try await runs.value { started.add(1) } == 3, "a new run after they ended")
    }
}
