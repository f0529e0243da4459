import Foundation

/// Runs `work` on a thread of its own and returns what it returned (or throws what it threw).
///
/// For the blocking calls of the test helpers (a node client, a wait that polls): called straight
/// from an async test they hold a thread of the cooperative pool, which has one per core, and on a
/// 2-core machine the sidecars' fence tasks then wait behind them.
public func offThePool<Value: Sendable>(_ work: @escaping @Sendable () throws -> Value) async throws -> Value {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}
