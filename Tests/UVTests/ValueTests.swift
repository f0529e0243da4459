import Testing
@testable import UV

@Suite("Values: UVError, SocketAddress, BufferPool")
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
