import Testing
@testable import UV

@Suite("Values: UVError, SocketAddress, BufferPool, ReadSize")
struct ValueTests {
    @Test func errorDescriptionNamesTheCode() {
        #expect(UVError.connectionRefused.description == "ECONNREFUSED: connection refused")
        #expect(UVError.endOfFile.name == "EOF")
        #expect(UVError(code: UVError.addressInUse.code) == .addressInUse)
    }

    @Test func parsesNumericAddresses() throws {
        let v4 = try SocketAddress(ip: "127.0.0.1", port: 6379)
        #expect(v4.port == 6379)
        #expect(v4.description == "127.0.0.1:6379")
        #expect(!v4.isIPv6)
        let v6 = try SocketAddress(ip: "::1", port: 7000)
        #expect(v6.description == "[::1]:7000")
        #expect(v6.isIPv6)
        #expect(v4 == (try SocketAddress(ip: "127.0.0.1", port: 6379)))
        #expect(v4 != (try SocketAddress(ip: "127.0.0.1", port: 6380)))
        #expect(Set([v4, v6, try SocketAddress(ip: "::1", port: 7000)]).count == 2)
    }

    @Test func rejectsBadAddresses() {
        #expect(throws: UVError.invalidArgument) { try SocketAddress(ip: "localhost", port: 1) }
        #expect(throws: UVError.invalidArgument) { try SocketAddress(ip: "127.0.0.1", port: 65536) }
        #expect(throws: UVError.invalidArgument) { try SocketAddress(ip: "1.2.3", port: 1) }
    }

    @Test func resolvesNamesAndNumbers() throws {
        #expect(try SocketAddress.resolve(host: "127.0.0.1", port: 80).description == "127.0.0.1:80")
        let local = try SocketAddress.resolve(host: "localhost", port: 6379)
        #expect(local.port == 6379)
        #expect(local.ip == "127.0.0.1" || local.ip == "::1")
        #expect(throws: UVError.self) { try SocketAddress.resolve(host: "no-such-host.invalid", port: 1) }
    }

    /// Reads start at 16 KiB and double while they fill their size, up to the limit. A read under half
    /// of the size halves it, down to the start, unless the read before filled it (the tail of the
    /// same backlog); a chunk smaller than the start caps it all.
    @Test func readSizeAdaptsToTheTraffic() {
        let chunk = 256 << 10
        var size = ReadSize(chunkSize: chunk)
        #expect(size.bytes == 16 << 10)
        var sizes: [Int] = []
        for _ in 0..<6 {
            size.record(size.bytes, limit: chunk)
            sizes.append(size.bytes)
        }
        let doubling: [Int] = [32, 64, 128, 256, 256, 256].map { $0 << 10 }
        #expect(sizes == doubling)
        // The tail after a full read, and reads of at least half, change nothing.
        size.record(100, limit: chunk)
        size.record(128 << 10, limit: chunk)
        #expect(size.bytes == 256 << 10)
        sizes = []
        for _ in 0..<6 {
            size.record(100, limit: chunk)
            sizes.append(size.bytes)
        }
        let halving: [Int] = [128, 64, 32, 16, 16, 16].map { $0 << 10 }
        #expect(sizes == halving)
        // A pipelined batch just over the start: one full read and its tail, then it fits.
        size.record(16 << 10, limit: chunk)
        size.record(300, limit: chunk)
        size.record((16 << 10) + 300, limit: chunk)
        size.record((16 << 10) + 300, limit: chunk)
        #expect(size.bytes == 32 << 10)
        // A lower limit stops the growth; shrinking to it applies at once.
        size.record(32 << 10, limit: 16 << 10)
        #expect(size.bytes == 16 << 10)
        size.record(16 << 10, limit: chunk)
        size.shrink(to: 16 << 10)
        #expect(size.bytes == 16 << 10)
        var small = ReadSize(chunkSize: 4096)
        #expect(small.bytes == 4096)
        small.record(4096, limit: 4096)
        small.record(10, limit: 4096)
        small.record(10, limit: 4096)
        #expect(small.bytes == 4096)
    }

    @Test func bufferPoolRecyclesChunks() {
        let pool = BufferPool(chunkSize: 1024, maxCached: 2)
        let a = pool.take(), b = pool.take(), c = pool.take()
        #expect(pool.outstanding == 3)
        #expect(pool.cached == 0)
        pool.give(a); pool.give(b); pool.give(c)
        #expect(pool.outstanding == 0)
        #expect(pool.cached == 2)
        let d = pool.take()
        #expect(d == b)
        #expect(pool.cached == 1)
        let e = pool.take()
        #expect(e == a)
        #expect(pool.cached == 0)
        let f = pool.take()  // the list is empty: a new chunk
        #expect(f != a && f != b)
        pool.give(d); pool.give(e); pool.give(f)
        #expect(pool.cached == 2)
        #expect(pool.outstanding == 0)
    }
}
