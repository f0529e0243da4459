import Testing
@testable import RESP

@Suite("RESPValue decoding and encoding")
struct RESPValueTests {
    private func decode(_ text: String) throws -> RESPValue? {
        try RESPValueDecoder.decode(ArraySlice(text.utf8))?.0
    }

    @Test func everyType() throws {
        #expect(try decode("+OK\r\n") == .simpleString("OK"))
        #expect(try decode("-ERR x\r\n") == .error("ERR x"))
        #expect(try decode(":-42\r\n") == .integer(-42))
        #expect(try decode("$3\r\nabc\r\n") == .bulkString(Array("abc".utf8)))
        #expect(try decode("$-1\r\n") == .null)
        #expect(try decode("*-1\r\n") == .null)
        #expect(try decode("_\r\n") == .null)
        #expect(try decode("#f\r\n") == .boolean(false))
        #expect(try decode(",1.5\r\n") == .double(1.5))
        #expect(try decode(",inf\r\n") == .double(.infinity))
        #expect(try decode("(12345678901234567890\r\n") == .bigNumber("12345678901234567890"))
        #expect(try decode("=8\r\ntxt:abcd\r\n") == .verbatimString(format: "txt", text: "abcd"))
        #expect(try decode("!3\r\nERR\r\n") == .blobError(Array("ERR".utf8)))
        #expect(try decode("*2\r\n:1\r\n+a\r\n") == .array([.integer(1), .simpleString("a")]))
        #expect(try decode("%1\r\n+k\r\n:1\r\n") == .map([RESPValue.Pair(.simpleString("k"), .integer(1))]))
        #expect(try decode("~1\r\n#t\r\n") == .set([.boolean(true)]))
        #expect(try decode(">1\r\n+x\r\n") == .push([.simpleString("x")]))
        #expect(try decode("|1\r\n+a\r\n+b\r\n:7\r\n") == .integer(7))
        #expect(try decode("$?\r\n;2\r\nab\r\n;1\r\nc\r\n;0\r\n") == .bulkString(Array("abc".utf8)))
        #expect(try decode("*?\r\n:1\r\n.\r\n") == .array([.integer(1)]))
    }

    @Test func incompleteAndInvalid() throws {
        #expect(try decode("$3\r\nab") == nil)
        #expect(try decode("*2\r\n:1\r\n") == nil)
        #expect(try decode("+OK") == nil)
        #expect(throws: ProtocolViolation.self) { try decode("?\r\n") }
        #expect(throws: ProtocolViolation.self) { try decode("$3\r\nabcd\r\n") }
    }

    @Test func consumedAndDecodeAll() throws {
        let bytes = Array("+a\r\n:1\r\n$1\r\nx".utf8)
        let result = try #require(try RESPValueDecoder.decode(bytes[4...]))
        #expect(result.consumed == 4)
        #expect(try RESPValueDecoder.decodeAll(bytes) == [.simpleString("a"), .integer(1)])
    }

    @Test func encoderRoundTrip() throws {
        let encoded = RESPEncoder.command(["SET", "key", "value"])
        #expect(encoded == Array("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n".utf8))
        #expect(encoded.count == 33)
        let decoded = try #require(try RESPValueDecoder.decode(encoded[...]))
        #expect(decoded.0.array?.compactMap(\.string) == ["SET", "key", "value"])
        #expect(RESPEncoder.command([[0, 1], []]) == [42, 50, 13, 10, 36, 50, 13, 10, 0, 1, 13, 10, 36, 48, 13, 10, 13, 10])
    }

    @Test func accessors() {
        #expect(RESPValue.integer(5).int == 5)
        #expect(RESPValue.bulkString(Array("12".utf8)).int == 12)
        #expect(RESPValue.array([.integer(1), .integer(2)]).pairs?.count == 1)
        #expect(RESPValue.error("ERR x").errorMessage == "ERR x")
        #expect(RESPValue.null.isNull)
    }
}
