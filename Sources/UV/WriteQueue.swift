/// The bytes a stream has accepted and the kernel has not yet taken, copied into pooled chunks that
/// form a FIFO:
///
/// ```
///   in flight (one write, ≤ 4 chunks)         pending (not yet given to libuv)
///   [hdr|bytes] → [hdr|bytes]                 [hdr|bytes] → … → [hdr|bytes.....free]
///                                                                   ▲ pendingTail: later bytes fill it
/// ```
///
/// Each chunk starts with a header (`next`, `length`). At most one write is in flight: `beginWrite`
/// moves the first pending chunks in flight, `endWrite` gives them back when it completes.
/// Invariant: `queuedBytes == inFlightBytes + Σ pending lengths`.
///
/// The stream owns the queue and passes its loop's write pool to each call that takes or gives back
/// chunks. Watermarks: past `highWatermark` the stream tells its writer to hold off, and once the
/// queue falls to `lowWatermark` it tells it to go on (`drained()`).
struct WriteQueue {
    /// Bytes a chunk's header takes: `next` pointer, then payload length.
    static let headerSize = 16
    /// The most chunks one write takes.
    static let chunksPerWrite = 4

    var highWatermark = 1 << 20
    var lowWatermark = 256 << 10
    /// Bytes appended and not yet written (in flight or pending).
    private(set) var queuedBytes = 0

    private var inFlightHead: UnsafeMutableRawPointer?
    private var inFlightBytes = 0
    private var pendingHead: UnsafeMutableRawPointer?
    private var pendingTail: UnsafeMutableRawPointer?
    private var aboveHighWatermark = false

    /// Some bytes wait for a write.
    var hasPending: Bool { pendingHead != nil }
    /// No chunk is held, in flight or pending.
    var isEmpty: Bool { inFlightHead == nil && pendingHead == nil }

    /// Copies `bytes` behind everything queued: into the free room of the last pending chunk first,
    /// then into new chunks from `pool`.
    mutating func append(_ bytes: UnsafeRawBufferPointer, chunks pool: BufferPool) {
        let capacity = pool.chunkSize - Self.headerSize
        var rest = bytes
        queuedBytes += bytes.count
        if let tail = pendingTail {
            let used = Chunk.length(tail)
            let n = min(capacity - used, rest.count)
            if n > 0 {
                (tail + Self.headerSize + used).copyMemory(from: rest.baseAddress!, byteCount: n)
                Chunk.setLength(tail, used + n)
                rest = UnsafeRawBufferPointer(rebasing: rest[n...])
            }
        }
        while !rest.isEmpty {
            let chunk = pool.take()
            let n = min(capacity, rest.count)
            (chunk + Self.headerSize).copyMemory(from: rest.baseAddress!, byteCount: n)
            Chunk.setNext(chunk, nil)
            Chunk.setLength(chunk, n)
            if let tail = pendingTail {
                Chunk.setNext(tail, chunk)
            } else {
                pendingHead = chunk
            }
            pendingTail = chunk
            rest = UnsafeRawBufferPointer(rebasing: rest[n...])
        }
    }

    /// Whether the queue is at or below the high watermark. When it is not, `drained()` reports
    /// when it falls to the low watermark.
    mutating func isWithinHighWatermark() -> Bool {
        if queuedBytes > highWatermark {
            aboveHighWatermark = true
            return false
        }
        return true
    }

    /// Moves up to `chunksPerWrite` pending chunks in flight, handing each one's bytes to `buffer`
    /// with its position, in order; returns how many. Requires no write in flight.
    @inline(__always)
    mutating func beginWrite(_ buffer: (_ index: Int, _ bytes: UnsafeMutableRawBufferPointer) -> Void) -> Int {
        assert(inFlightHead == nil, "a write is already in flight")
        guard let head = pendingHead else { return 0 }
        var count = 0
        var bytes = 0
        var chunk: UnsafeMutableRawPointer? = head
        var last = head
        while let current = chunk, count < Self.chunksPerWrite {
            let length = Chunk.length(current)
            buffer(count, UnsafeMutableRawBufferPointer(start: current + Self.headerSize, count: length))
            bytes += length
            count += 1
            last = current
            chunk = Chunk.next(current)
        }
        Chunk.setNext(last, nil)
        pendingHead = chunk
        if chunk == nil { pendingTail = nil }
        inFlightHead = head
        inFlightBytes = bytes
        return count
    }

    /// The write in flight has ended (written, failed or cancelled): its chunks go back to `pool`.
    mutating func endWrite(chunks pool: BufferPool) {
        Self.giveBack(inFlightHead, to: pool)
        inFlightHead = nil
        queuedBytes -= inFlightBytes
        inFlightBytes = 0
    }

    /// Drops every pending chunk (back to `pool`); the write in flight stays.
    mutating func dropPending(chunks pool: BufferPool) {
        Self.giveBack(pendingHead, to: pool)
        pendingHead = nil
        pendingTail = nil
        queuedBytes = inFlightBytes
    }

    /// True once, when the queue has fallen to the low watermark after passing the high one.
    mutating func drained() -> Bool {
        guard aboveHighWatermark, queuedBytes <= lowWatermark else { return false }
        aboveHighWatermark = false
        return true
    }

    private static func giveBack(_ list: UnsafeMutableRawPointer?, to pool: BufferPool) {
        var chunk = list
        while let current = chunk {
            chunk = Chunk.next(current)
            pool.give(current)
        }
    }
}

/// The header at the start of a write chunk.
private enum Chunk {
    @inline(__always) static func next(_ chunk: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
        chunk.load(as: UnsafeMutableRawPointer?.self)
    }
    @inline(__always) static func setNext(_ chunk: UnsafeMutableRawPointer, _ next: UnsafeMutableRawPointer?) {
        chunk.storeBytes(of: next, as: UnsafeMutableRawPointer?.self)
    }
    @inline(__always) static func length(_ chunk: UnsafeMutableRawPointer) -> Int {
        chunk.load(fromByteOffset: 8, as: Int.self)
    }
    @inline(__always) static func setLength(_ chunk: UnsafeMutableRawPointer, _ length: Int) {
        chunk.storeBytes(of: length, toByteOffset: 8, as: Int.self)
    }
}
