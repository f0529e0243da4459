import Testing
@testable import RESP

/// `plainLength` reads one- and two-digit lengths without its loop; both ways must agree with the
/// rule written out plainly here, for every input the fast path could see.
@Suite("plainLength")
struct PlainLengthTests {
    /// The rule: 1–18 digits, no leading zero unless the digit is alone, then `\r` and one more
    /// byte inside the buffer (`\n` when strict).
    private static func reference(_ bytes: [UInt8], strict: Bool) -> (value: Int, end: Int)? {
        var position = 0
        while position < bytes.count, bytes[position] >= 48, bytes[position] <= 57 { position += 1 }
        let digits = position
        guard digits > 0, digits <= 18, !(digits > 1 && bytes[0] == 48) else { return nil }
        guard position + 1 < bytes.count, bytes[position] == 13 else { return nil }
        if strict, bytes[position + 1] != 10 { return nil }
        return (Int(String(decoding: bytes[..<digits], as: UTF8.self))!, position + 2)
    }

    @Test func agreesWithTheRuleOnShortInputs() {
        let alphabet: [UInt8] = Array("0159\r\n$x".utf8)
        var checked = 0
        for length in 0...6 {
            var digits = [Int](repeating: 0, count: length)
            while true {
                let input = digits.map { alphabet[$0] }
                for strict in [false, true] {
                    var index = 0
                    let got = input.withUnsafeBytes { plainLength(ReadBytes($0), at: &index, strictNewline: strict) }
                    let expected = Self.reference(input, strict: strict)
                    #expect(got == expected?.value, "\(input) strict \(strict)")
                    #expect(index == (expected?.end ?? 0), "\(input) strict \(strict)")
                    checked += 1
                }
                var position = 0
                while position < length, digits[position] == alphabet.count - 1 {
                    digits[position] = 0
                    position += 1
                }
                if position == length { break }
                digits[position] += 1
            }
        }
        #expect(checked > 500_000)
    }

    @Test func longLengthsAndOffsets() {
        let cases: [(String, Int?)] = [
            ("123\r\n", 123), ("999999999999999999\r\n", 999_999_999_999_999_999), ("1000000000000000000\r\n", nil),
            ("07\r\n", nil), ("0\r\n", 0), ("10\r\n", 10), ("99\r\n", 99), ("-1\r\n", nil), ("+1\r\n", nil),
        ]
        for (text, value) in cases {
            let input = Array(("*" + text + "rest").utf8)
            var index = 1
            let got = input.withUnsafeBytes { plainLength(ReadBytes($0), at: &index, strictNewline: true) }
            #expect(got == value, "\(text.debugDescription)")
            #expect(index == (value == nil ? 1 : 1 + text.utf8.count), "\(text.debugDescription)")
        }
    }
}
