/// A FIFO ring of the requests forwarded on one connection and still waiting for their replies.
///
/// ```
///   storage: [ . . h e e e e t . . ]   h = head (oldest), t = next free; count = live entries
/// ```
/// Grows by doubling when a pipeline outruns it and never shrinks, so a connection that pipelines
/// N commands once pays for that capacity once; an idle connection holds none (the first push
/// allocates). Entries are trivial values, so push and pop are a copy and an index step.
struct InFlightQueue<Element: BitwiseCopyable>: ~Copyable {
    private var storage: UnsafeMutablePointer<Element>?
    private var capacity = 0
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func append(_ element: Element) {
        if count == capacity { grow() }
        storage.unsafelyUnwrapped[(head &+ count) & (capacity &- 1)] = element
        count &+= 1
    }

    /// The oldest entry. Only valid while `!isEmpty`.
    var first: Element {
        get { storage.unsafelyUnwrapped[head] }
        set { storage.unsafelyUnwrapped[head] = newValue }
    }

    @discardableResult
    mutating func removeFirst() -> Element {
        let element = storage.unsafelyUnwrapped[head]
        head = (head &+ 1) & (capacity &- 1)
        count &-= 1
        return element
    }

    /// Every entry, oldest first (for carrying in-flight commands across an epoch and for tests).
    var elements: [Element] {
        (0..<count).map { storage.unsafelyUnwrapped[(head + $0) & (capacity - 1)] }
    }

    mutating func removeAll() {
        head = 0
        count = 0
    }

    init() {}

    deinit { storage?.deallocate() }

    private mutating func grow() {
        let newCapacity = Swift.max(16, capacity * 2)
        let newStorage = UnsafeMutablePointer<Element>.allocate(capacity: newCapacity)
        for index in 0..<count {
            (newStorage + index).initialize(to: storage.unsafelyUnwrapped[(head + index) & (capacity - 1)])
        }
        storage?.deallocate()
        storage = newStorage
        capacity = newCapacity
        head = 0
    }
}
