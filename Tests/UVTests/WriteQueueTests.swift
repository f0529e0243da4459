import Testing
@testable import UV

@Suite("WriteQueue")
struct WriteQueueTests {
    /// 64-byte chunks hold 48 bytes after their header, so a few bytes span several chunks.
    static func makePool() -> BufferPool { BufferPool(chunkSize: 64, maxCached: 0) }
    static let perChunk = 64 - WriteQueue.headerSize

    /// Starts a write and returns the bytes of each chunk it took, in order.
    static func beginWrite(_ queue: inout WriteQueue) -> [[UInt8]] {
        var chunks: [[UInt8]] = []
        let count = queue.beginWrite { index, bytes in
            #expect(index == chunks.count)
            chunks.append(Array(bytes))
        }
        #expect(count == chunks.count)
        return chunks
    }

    // `#expect` cannot take a mutating call on a local.
    static func withinHigh(_ queue: inout WriteQueue) -> Bool { queue.isWithinHighWatermark() }
    static func drained(_ queue: inout WriteQueue) -> Bool { queue.drained() }

    static func append(_ bytes: [UInt8], to queue: inout WriteQueue, _ pool: BufferPool) {
        bytes.withUnsafeBytes { queue.append($0, chunks: pool) }
    }

    /// Bytes come out in the order they went in, at most four chunks per write, and bytes appended
    /// while a write is in flight go behind it.
    @Test func bytesComeOutInOrder() {
        let pool = Self.makePool()
        var queue = WriteQueue()
        let first = (0..<300).map { UInt8(truncatingIfNeeded: $0) }
        let second = (0..<100).map { UInt8(truncatingIfNeeded: 255 - $0) }
        Self.append(first, to: &queue, pool)
        #expect(queue.queuedBytes == 300)
        var written: [UInt8] = []
        let write1 = Self.beginWrite(&queue)
        #expect(write1.count == WriteQueue.chunksPerWrite)
        #expect(write1.allSatisfy { $0.count == Self.perChunk })
        written += write1.joined()
        Self.append(second, to: &queue, pool)
        #expect(queue.queuedBytes == 400)
        queue.endWrite(chunks: pool)
        #expect(queue.queuedBytes == 400 - 4 * Self.perChunk)
        while queue.hasPending {
            written += Self.beginWrite(&queue).joined()
            queue.endWrite(chunks: pool)
        }
        #expect(written == first + second)
        #expect(queue.queuedBytes == 0)
        #expect(queue.isEmpty)
        #expect(pool.outstanding == 0)
    }

    /// Successive small writes, like the parts a kernel did not take, fill the last pending chunk
    /// before a new one is taken; a chunk in flight is never written into.
    @Test func partialWritesShareTheLastPendingChunk() {
        let pool = Self.makePool()
        var queue = WriteQueue()
        Self.append(Array(repeating: 1, count: 10), to: &queue, pool)
        Self.append(Array(repeating: 2, count: 10), to: &queue, pool)
        #expect(pool.outstanding == 1)
        Self.append(Array(repeating: 3, count: Self.perChunk - 10), to: &queue, pool)
        #expect(pool.outstanding == 2, "the first chunk filled up and the rest went into a second one")
        let write = Self.beginWrite(&queue)
        #expect(write.map(\.count) == [Self.perChunk, 10])
        Self.append([4], to: &queue, pool)
        #expect(pool.outstanding == 3, "bytes appended while a write is in flight take a new chunk")
        queue.endWrite(chunks: pool)
        #expect(Self.beginWrite(&queue) == [[4]])
        queue.endWrite(chunks: pool)
        #expect(queue.isEmpty && pool.outstanding == 0)
    }

    @Test func anEmptyQueueStartsNoWrite() {
        var queue = WriteQueue()
        #expect(!queue.hasPending)
        #expect(Self.beginWrite(&queue).isEmpty)
    }

    /// Past the high watermark the writer is told to hold off; `drained()` says so once, when the
    /// queue is down to the low watermark, not before and not again.
    @Test func watermarks() {
        let pool = Self.makePool()
        var queue = WriteQueue()
        queue.highWatermark = 200
        queue.lowWatermark = 100
        Self.append(Array(repeating: 0, count: 200), to: &queue, pool)
        #expect(Self.withinHigh(&queue), "at the high watermark is still within it")
        #expect(!Self.drained(&queue), "never passed the high watermark")
        Self.append([0], to: &queue, pool)
        #expect(!Self.withinHigh(&queue))
        #expect(!Self.drained(&queue))
        _ = Self.beginWrite(&queue)  // 4 × 48 = 192 bytes
        queue.endWrite(chunks: pool)
        #expect(queue.queuedBytes == 9)
        #expect(Self.drained(&queue))
        #expect(!Self.drained(&queue), "reported once")
        Self.append(Array(repeating: 0, count: 300), to: &queue, pool)
        #expect(!Self.withinHigh(&queue))
        _ = Self.beginWrite(&queue)
        queue.endWrite(chunks: pool)
        #expect(queue.queuedBytes == 117)
        #expect(!Self.drained(&queue), "117 bytes are still above the low watermark")
        _ = Self.beginWrite(&queue)
        queue.endWrite(chunks: pool)
        #expect(queue.queuedBytes == 0)
        #expect(Self.drained(&queue))
        #expect(pool.outstanding == 0)
    }

    /// Dropping the pending bytes (a failed write, a close) keeps the write in flight, which ends
    /// as usual.
    @Test func droppingPendingKeepsTheWriteInFlight() {
        let pool = Self.makePool()
        var queue = WriteQueue()
        Self.append(Array(repeating: 7, count: 6 * Self.perChunk), to: &queue, pool)
        let write = Self.beginWrite(&queue)
        #expect(write.count == 4)
        queue.dropPending(chunks: pool)
        #expect(!queue.hasPending)
        #expect(queue.queuedBytes == 4 * Self.perChunk)
        #expect(pool.outstanding == 4)
        queue.endWrite(chunks: pool)
        #expect(queue.queuedBytes == 0)
        #expect(queue.isEmpty && pool.outstanding == 0)
    }
}
