/// How much of a pooled chunk a stream's next read may take.
///
/// A stream starts at 16 KiB (like haproxy's buffers; the chunk, if that is smaller) and doubles
/// after each read that filled its size, up to the whole chunk: a bulk transfer (a 1 MiB value) soon
/// reads a chunk at a time, with few system calls. A read that used less than half of the size
/// halves it, down to 16 KiB, unless the read before filled it: then it is most likely the tail of
/// the same backlog (a pipelined batch just over the size), not a sign that the traffic got smaller.
/// Small reads keep a connection that carries a stream of small frames (a pub/sub fan-out) from
/// taking a large backlog in one read: what was read is forwarded, and the loop goes on to the other
/// connections, sooner. (libuv reads a stream again in the same pass while reads fill the buffer,
/// so a large backlog is still drained at once.)
struct ReadSize {
    static let smallest = 16 << 10

    /// The most bytes the next read may take.
    private(set) var bytes: Int
    /// The size of a chunk: no read may take more.
    private let chunkSize: Int
    /// The most `bytes` may grow to: the chunk, or `smallest` while reads are kept small.
    private var ceiling: Int
    /// The last read filled `bytes`.
    private var lastReadFilled = false

    /// Reads stay at `smallest` (or the chunk, if that is smaller): for a stream of small frames
    /// where getting each one through soon matters more than fewer system calls, like the messages
    /// to a pub/sub subscriber. Setting it shrinks the size at once.
    var keepsSmall = false {
        didSet {
            ceiling = keepsSmall ? min(Self.smallest, chunkSize) : chunkSize
            bytes = min(bytes, ceiling)
        }
    }

    init(chunkSize: Int) {
        self.chunkSize = chunkSize
        ceiling = chunkSize
        bytes = min(Self.smallest, chunkSize)
    }

    /// Adapts to a read of `count` bytes (at most `bytes`).
    @inline(__always)
    mutating func record(_ count: Int) {
        if count == bytes {
            bytes = min(bytes &* 2, ceiling)
            lastReadFilled = true
            return
        }
        if count < bytes / 2, !lastReadFilled, bytes > Self.smallest { bytes = max(bytes / 2, Self.smallest) }
        lastReadFilled = false
    }
}
