import Testing

@testable import RESP

/// Inputs the fuzz targets (Fuzz/) found mishandled, kept as regular tests.
@Suite("Fuzz findings (RESP)")
struct FuzzFindingsTests {
    /// A length or element count too large for the arithmetic on it was an overflow trap.
    @Test(arguments: ["%4611686018427387904\r\n", "|4611686018427387904\r\n", "$9223372036854775807\r\n", "*9223372036854775807\r\n"])
    func hugeLengthsAreRefused(_ text: String) {
        #expect(throws: ProtocolViolation.invalidLength) { try RESPValueDecoder.decode(Array(text.utf8)[...]) }
    }

    /// A bad byte inside a reply's length header was reported at the start of the piece of the line
    /// that the read held, so at another byte when the line arrived cut.
    @Test(arguments: ["*0\u{7F}\r\n", "$12x\r\n", "*?1\r\n", ";1x\r\n"])
    func aBadLengthFailsAtItsByteWhateverTheChunking(_ text: String) {
        let stream = Array("+OK\r\n$?\r\n".utf8).dropLast(text.hasPrefix(";") ? 0 : 4) + Array(text.utf8)
        func failure(_ chunks: [Int]) -> Int? {
            var scanner = ReplyScanner()
            var start = 0
            for size in chunks {
                let chunk = Array(stream[start..<(start + size)])
                let position: Int? = chunk.withUnsafeBytes { bytes in
                    var offset = 0
                    while offset < bytes.count {
                        if case .malformed = scanner.next(in: bytes, at: &offset) { return start + offset }
                    }
                    return nil
                }
                if let position { return position }
                start += size
            }
            return nil
        }
        let whole = failure([stream.count])
        #expect(whole != nil)
        #expect(failure(Array(repeating: 1, count: stream.count)) == whole)
        for split in 1..<stream.count { #expect(failure([split, stream.count - split]) == whole, "split at \(split)") }
    }
}
