/// The first `capacity` bytes of one argument or reply line, plus its full length.
///
/// This is all the scanners ever keep of a value: enough to recognise a command name, a
/// subcommand, a keyword such as `STREAMS`, a number such as `numkeys`, or an error code.
/// Inline storage; no allocation.
struct CapturedBytes: Sendable {
    static let capacity = 32

    private var storage = InlineArray<32, UInt8>(repeating: 0)
    /// Total length of the value fed so far (may exceed `capacity`).
    private(set) var length = 0

    init() {}

    /// Number of bytes actually held.
    var capturedCount: Int { min(length, CapturedBytes.capacity) }

    /// Whether the whole value fits, so comparisons are exact.
    var isComplete: Bool { length <= CapturedBytes.capacity }

    mutating func reset() { length = 0 }

    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        var index = length
        if index < CapturedBytes.capacity {
            for byte in bytes {
                if index == CapturedBytes.capacity { break }
                storage[index] = byte
                index += 1
            }
        }
        length += bytes.count
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        if length < CapturedBytes.capacity { storage[length] = byte }
        length += 1
    }

    subscript(index: Int) -> UInt8 { storage[index] }

    /// Calls `body` with the bytes held (the first `capturedCount`).
    @inline(__always)
    func withCapturedBytes<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        storage.span.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[..<capturedCount])) }
    }

    /// ASCII lowercase of the byte at `index`.
    @inline(__always)
    func lowercased(_ index: Int) -> UInt8 { CommandTable.lowercased(storage[index]) }

    /// Case-insensitive equality with an ASCII lowercase token.
    func equals(_ token: StaticString) -> Bool {
        let count = token.utf8CodeUnitCount
        guard length == count, count <= CapturedBytes.capacity else { return false }
        let start = token.utf8Start
        for index in 0..<count where lowercased(index) != start[index] { return false }
        return true
    }

    /// Whether the value starts with `prefix` (case-sensitive).
    func hasPrefix(_ prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard capturedCount >= count else { return false }
        let start = prefix.utf8Start
        for index in 0..<count where storage[index] != start[index] { return false }
        return true
    }

    /// Case-insensitive prefix test against an ASCII lowercase token.
    func hasPrefixIgnoringCase(_ prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard capturedCount >= count else { return false }
        let start = prefix.utf8Start
        for index in 0..<count where lowercased(index) != start[index] { return false }
        return true
    }

    /// C `atoi` over the captured bytes: leading blanks, an optional sign, then digits up to the first
    /// non-digit. Overflow (undefined in C) saturates, which every caller treats as "too many".
    func atoi() -> Int {
        var index = 0
        let count = capturedCount
        while index < count, isCSpace(storage[index]) { index += 1 }
        var negative = false
        if index < count, storage[index] == UInt8(ascii: "-") || storage[index] == UInt8(ascii: "+") {
            negative = storage[index] == UInt8(ascii: "-")
            index += 1
        }
        var value = 0
        var sawDigit = false
        while index < count, storage[index] &- 48 < 10 {
            sawDigit = true
            let (multiplied, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (added, overflow2) = multiplied.addingReportingOverflow(Int(storage[index] &- 48))
            if overflow1 || overflow2 { return negative ? Int.min : Int.max }
            value = added
            index += 1
        }
        // Digits running past the capture would only make the number larger.
        if sawDigit, index == count, !isComplete { return negative ? Int.min : Int.max }
        return negative ? -value : value
    }

    /// Valkey's `string2ll`: an optional `-`, then no leading zeros and no `+`. `nil` when invalid.
    func strictInteger() -> Int? {
        guard isComplete, length > 0 else { return nil }
        var parser = LengthParser()
        for index in 0..<length where !parser.feed(storage[index]) { return nil }
        return parser.value
    }

    /// The captured bytes as an array (tests, diagnostics).
    var bytes: [UInt8] { (0..<capturedCount).map { storage[$0] } }
}

/// C `isspace` in the "C" locale.
@inline(__always)
func isCSpace(_ byte: UInt8) -> Bool {
    byte == 0x20 || (byte >= 0x09 && byte <= 0x0D)
}

/// Incremental form of Valkey's `string2ll` for length headers: `0`, or an optional `-` followed
/// by a digit 1-9 and more digits. No `+`, no leading zeros, no blanks, no overflow.
struct LengthParser: Sendable {
    private var magnitude = 0
    private var negative = false
    private var digits = 0
    private var leadingZero = false
    private var valid = true

    init() {}

    /// Feeds one byte; returns false once the text can no longer be a valid integer.
    @inline(__always)
    mutating func feed(_ byte: UInt8) -> Bool {
        guard valid else { return false }
        let digit = byte &- 48
        if digit < 10 {
            if leadingZero || (digits == 0 && digit == 0 && negative) { valid = false; return false }
            if digits == 0 && digit == 0 { leadingZero = true }
            let (multiplied, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
            let (added, overflow2) = multiplied.addingReportingOverflow(Int(digit))
            if overflow1 || overflow2 { valid = false; return false }
            magnitude = added
            digits += 1
            return true
        }
        if byte == UInt8(ascii: "-"), digits == 0, !negative {
            negative = true
            return true
        }
        valid = false
        return false
    }

    /// The parsed value, or nil when nothing valid was read.
    var value: Int? {
        guard valid, digits > 0 else { return nil }
        return negative ? -magnitude : magnitude
    }
}
