import Testing
@testable import UV

@Suite("ReadSize")
struct ReadSizeTests {
    static let chunk = 256 << 10

    /// Reads start at 16 KiB and double while they fill their size, up to the chunk. A read under half
    /// of the size halves it, down to the start, unless the read before filled it (the tail of the
    /// same backlog); a chunk smaller than the start caps it all.
    @Test func readSizeAdaptsToTheTraffic() {
        let chunk = Self.chunk
        var size = ReadSize(chunkSize: chunk)
        #expect(size.bytes == 16 << 10)
        var sizes: [Int] = []
        for _ in 0..<6 {
            size.record(size.bytes)
            sizes.append(size.bytes)
        }
        let doubling: [Int] = [32, 64, 128, 256, 256, 256].map { $0 << 10 }
        #expect(sizes == doubling)
        // The tail after a full read, and reads of at least half, change nothing.
        size.record(100)
        size.record(128 << 10)
        #expect(size.bytes == 256 << 10)
        sizes = []
        for _ in 0..<6 {
            size.record(100)
            sizes.append(size.bytes)
        }
        let halving: [Int] = [128, 64, 32, 16, 16, 16].map { $0 << 10 }
        #expect(sizes == halving)
        // A pipelined batch just over the start: one full read and its tail, then it fits.
        size.record(16 << 10)
        size.record(300)
        size.record((16 << 10) + 300)
        size.record((16 << 10) + 300)
        #expect(size.bytes == 32 << 10)
        // Kept small, a full read no longer grows it; keeping it small applies at once.
        size.keepsSmall = true
        #expect(size.bytes == 16 << 10)
        size.record(16 << 10)
        #expect(size.bytes == 16 << 10)
        var small = ReadSize(chunkSize: 4096)
        #expect(small.bytes == 4096)
        small.record(4096)
        small.record(10)
        small.record(10)
        #expect(small.bytes == 4096)
    }

    @Test func doublingStopsAtTheChunk() {
        var size = ReadSize(chunkSize: 48 << 10)
        size.record(16 << 10)
        #expect(size.bytes == 32 << 10)
        size.record(32 << 10)
        #expect(size.bytes == 48 << 10, "capped by the chunk, not doubled to 64 KiB")
        size.record(48 << 10)
        #expect(size.bytes == 48 << 10)
    }

    @Test func halvingStopsAtTheStart() {
        var size = ReadSize(chunkSize: Self.chunk)
        size.record(16 << 10)
        #expect(size.bytes == 32 << 10)
        size.record(1)  // the tail of the full read
        size.record(1)
        #expect(size.bytes == 16 << 10)
        size.record(1)
        #expect(size.bytes == 16 << 10, "never below 16 KiB")
    }

    /// Only a read under half of the size halves it: exactly half does not.
    @Test func halvingNeedsAReadUnderHalf() {
        var size = ReadSize(chunkSize: Self.chunk)
        size.record(16 << 10)
        size.record(32 << 10)
        #expect(size.bytes == 64 << 10)
        size.record(100)  // the tail of the full read
        size.record(32 << 10)
        #expect(size.bytes == 64 << 10)
        size.record((32 << 10) - 1)
        #expect(size.bytes == 32 << 10)
    }

    /// A short read right after a full one is the tail of the same backlog: only the next short read
    /// halves, and a full read in between starts the exception over.
    @Test func aShortReadAfterAFullOneChangesNothing() {
        var size = ReadSize(chunkSize: Self.chunk)
        size.record(16 << 10)
        size.record(32 << 10)
        #expect(size.bytes == 64 << 10)
        size.record(10)
        #expect(size.bytes == 64 << 10)
        size.record(64 << 10)
        #expect(size.bytes == 128 << 10)
        size.record(10)
        #expect(size.bytes == 128 << 10)
        size.record(10)
        #expect(size.bytes == 64 << 10)
    }

    /// A subscribed client's node connection keeps 16 KiB reads whatever comes, and grows again once
    /// it no longer keeps them small.
    @Test func keepingReadsSmall() {
        var size = ReadSize(chunkSize: Self.chunk)
        size.record(16 << 10)
        size.record(32 << 10)
        #expect(size.bytes == 64 << 10)
        size.keepsSmall = true
        #expect(size.bytes == 16 << 10)
        for _ in 0..<4 { size.record(size.bytes) }
        #expect(size.bytes == 16 << 10)
        size.keepsSmall = false
        #expect(size.bytes == 16 << 10, "no jump back: it grows read by read")
        size.record(16 << 10)
        #expect(size.bytes == 32 << 10)
    }

    /// With a chunk smaller than 16 KiB, keeping reads small never lets a read outgrow the chunk.
    @Test func keepingReadsSmallInASmallChunk() {
        var size = ReadSize(chunkSize: 4096)
        size.keepsSmall = true
        size.record(4096)
        #expect(size.bytes == 4096)
    }
}
