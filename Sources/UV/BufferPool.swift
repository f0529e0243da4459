/// Fixed-size chunks of raw memory, recycled through a free list. Loop-confined: only the thread
/// of the owning ``EventLoop`` may touch it.
///
/// Reads borrow a chunk in libuv's alloc callback and give it back as soon as the read callback
/// returns, so an idle connection holds no chunk. Write data that the kernel did not take at once
/// waits in chunks too (see ``TCPStream/write(_:)``) and goes back when its write completes.
///
/// ```
///   take() ──► outstanding += 1 ──► (read into / queue writes in it) ──► give() ──► outstanding -= 1
///                                                                        │
///                    cached < maxCached ? kept on the free list : freed ◄┘
/// ```
///
/// Invariants: `0 <= cached <= maxCached`, `outstanding >= 0`; after every stream on the loop has
/// closed, `outstanding == 0`. The free list is intrusive: a cached chunk's first 8 bytes point to
/// the next cached chunk, so taking and giving back are a pointer swap (two per read, on every read
/// of the data plane) and the list itself never allocates.
public final class BufferPool {
    /// The size in bytes of every chunk.
    public let chunkSize: Int
    /// The most chunks kept for reuse; extra chunks given back are freed.
    public let maxCached: Int
    /// Chunks handed out and not yet given back.
    public private(set) var outstanding: Int = 0
    /// Chunks cached on the free list.
    public private(set) var cached: Int = 0
    private var freeHead: UnsafeMutableRawPointer?

    /// - Parameters:
    ///   - chunkSize: bytes per chunk; at least 64.
    ///   - maxCached: how many given-back chunks stay cached.
    public init(chunkSize: Int = 65536, maxCached: Int = 1024) {
        precondition(chunkSize >= 64, "chunkSize must be at least 64 bytes")
        precondition(maxCached >= 0, "maxCached must not be negative")
        self.chunkSize = chunkSize
        self.maxCached = maxCached
    }

    /// Hands out a chunk of `chunkSize` bytes, 16-byte aligned, uninitialised.
    @inline(__always)
    func take() -> UnsafeMutableRawPointer {
        outstanding &+= 1
        guard let chunk = freeHead else { return UnsafeMutableRawPointer.allocate(byteCount: chunkSize, alignment: 16) }
        freeHead = chunk.load(as: UnsafeMutableRawPointer?.self)
        cached &-= 1
        return chunk
    }

    /// Gives back a chunk that `take()` handed out. The caller must not touch it afterwards.
    @inline(__always)
    func give(_ chunk: UnsafeMutableRawPointer) {
        outstanding &-= 1
        if cached < maxCached {
            chunk.storeBytes(of: freeHead, as: UnsafeMutableRawPointer?.self)
            freeHead = chunk
            cached &+= 1
        } else {
            chunk.deallocate()
        }
    }

    deinit {
        while let chunk = freeHead {
            freeHead = chunk.load(as: UnsafeMutableRawPointer?.self)
            chunk.deallocate()
        }
    }
}
