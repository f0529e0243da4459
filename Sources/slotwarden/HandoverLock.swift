import Foundation

/// An exclusive `flock` on a file, held for the life of the process: a slotwarden started on the same
/// listen address while another runs finds it taken, serves beside it (both listen with
/// SO_REUSEPORT), and learns that the other one exited when the lock becomes its own. The kernel
/// releases the lock with the process, however it ends.
final class HandoverLock: @unchecked Sendable {
    let path: String
    /// Open for the life of the process; closing it would release the lock.
    private let descriptor: Int32

    init(path: String) throws {
        self.path = path
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw LockError(message: "cannot open the lock file \(path): \(String(cString: strerror(errno)))")
        }
    }

    struct LockError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// Takes the lock if no other process holds it.
    func tryLock() -> Bool { flock(descriptor, LOCK_EX | LOCK_NB) == 0 }

    /// Waits, on a thread of its own, until the process holding the lock has exited, then holds it.
    func lock() async {
        let descriptor = self.descriptor
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                while flock(descriptor, LOCK_EX) != 0 && errno == EINTR {}
                continuation.resume()
            }
        }
    }
}
