/// At most `limit` of the admin API's expensive requests (a reconciliation, the whole ledger, the
/// heat map's data, `/metrics`) run at once; the others wait their turn, first come first served.
/// Each builds answers of up to a few MB, so a burst of them is bounded in memory by the limit, not
/// by the burst.
actor RequestLimiter {
    let limit: Int
    private var running = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) { self.limit = max(1, limit) }

    func run<Value: Sendable>(_ body: @Sendable () async -> Value) async -> Value {
        await acquire()
        let value = await body()
        release()
        return value
    }

    private func acquire() async {
        if running < limit {
            running += 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    /// Hands the permit to the longest waiter, if any.
    private func release() {
        if waiting.isEmpty {
            running -= 1
        } else {
            waiting.removeFirst().resume()
        }
    }
}

/// Runs of one operation shared by the callers that ask while it is pending: a caller gets the
/// result of a run that began after it asked (the one under way, if it has not begun yet, or else
/// the next), and at most one run is under way at a time. Fenced reconciliations go through it, so
/// that a burst of them pauses clients once or twice instead of once per request, nested.
actor SharedRuns<Value: Sendable> {
    private var underWay: (id: UInt64, task: Task<Value, any Error>)?
    private var next: (id: UInt64, task: Task<Value, any Error>)?
    private var lastID: UInt64 = 0
    /// Callers waiting for a result.
    private(set) var callers = 0

    func value(_ make: @escaping @Sendable () async throws -> Value) async throws -> Value {
        callers += 1
        defer { callers -= 1 }
        if let next { return try await next.task.value }
        lastID += 1
        let id = lastID
        let previous = underWay?.task
        let task = Task {
            if let previous { _ = await previous.result }
            begin(id)
            return try await make()
        }
        if previous == nil { underWay = (id, task) } else { next = (id, task) }
        let result = await task.result
        end(id)
        return try result.get()
    }

    private func begin(_ id: UInt64) {
        guard let next, next.id == id else { return }
        underWay = next
        self.next = nil
    }

    private func end(_ id: UInt64) {
        if underWay?.id == id { underWay = nil }
    }
}
