/// Outcome of one `next(in:at:)` call of a scanner.
public enum ScanResult<Frame> {
    /// A whole frame ended; `offset` points just past its last byte.
    case complete(Frame)
    /// Every byte was consumed (`offset == bytes.count`); call again with the next chunk at offset 0.
    case incomplete
    /// The stream broke the protocol at `offset`; the scanner stays failed.
    case malformed(ProtocolViolation)
}

extension ScanResult: Equatable where Frame: Equatable {}
extension ScanResult: Sendable where Frame: Sendable {}

/// Why a stream is not valid RESP (or exceeds `RESPLimits`).
public enum ProtocolViolation: Error, Equatable, Sendable {
    /// `*N` header that is not a canonical integer, or N above `maxMultibulkLength`.
    case invalidMultibulkLength
    /// `$N` header of a request that is not a canonical non-negative integer.
    case invalidBulkLength
    /// A request argument did not start with `$`.
    case expectedDollar(got: UInt8)
    /// A bulk, verbatim or blob-error length above `maxBulkLength`.
    case bulkTooLarge
    /// An inline request line longer than `maxInlineLength`.
    case inlineTooLong
    /// An inline line that Valkey's `sdssplitargs` rejects.
    case unbalancedQuotes
    /// Reply aggregates nested deeper than `maxNestingDepth`.
    case nestingTooDeep
    /// A reply value started with a byte that is no RESP2/RESP3 type.
    case invalidTypeByte(UInt8)
    /// A reply length header that is not a valid length for its type.
    case invalidLength
    /// A reply line or payload not followed by `\r\n`.
    case missingCRLF
    /// `.` (end of a streamed aggregate) outside of one, or a streamed-string chunk not starting with `;`.
    case unexpectedEnd
}

/// A length as the scanners' fast paths take it: 1–18 digits without a leading zero (a lone `0` is
/// fine), then `\r` and one more byte, all inside `bytes`; moves `index` past them. The byte after
/// `\r` must be `\n` when `strictNewline` (replies); requests skip it unchecked, as the node does.
/// nil for anything else: the state machine then decides.
///
/// One or two digits, nearly every length on the wire, are read without the loop; anything else,
/// including a two-digit length with a leading zero, goes through it.
@inline(__always)
func plainLength(_ bytes: UnsafeRawBufferPointer, at index: inout Int, strictNewline: Bool) -> Int? {
    guard let base = bytes.baseAddress else { return nil }
    return plainLength(base, count: bytes.count, at: &index, strictNewline: strictNewline)
}

/// `plainLength` over the `count` bytes at `base` (the plain lanes read through a bare pointer: a
/// buffer's every subscript and `count` would check its optional base again).
@inline(__always)
func plainLength(_ base: UnsafeRawPointer, count: Int, at index: inout Int, strictNewline: Bool) -> Int? {
    if index &+ 3 < count {
        let first = base.load(fromByteOffset: index, as: UInt8.self) &- 48
        let second = base.load(fromByteOffset: index &+ 1, as: UInt8.self)
        if first < 10, second == 13 {
            if strictNewline, base.load(fromByteOffset: index &+ 2, as: UInt8.self) != 10 { return nil }
            index &+= 3
            return Int(first)
        }
        if first &- 1 < 9, second &- 48 < 10, base.load(fromByteOffset: index &+ 2, as: UInt8.self) == 13 {
            if strictNewline, base.load(fromByteOffset: index &+ 3, as: UInt8.self) != 10 { return nil }
            index &+= 4
            return Int(first) &* 10 &+ Int(second &- 48)
        }
    }
    return plainLengthOfAnySize(base, count: count, at: &index, strictNewline: strictNewline)
}

/// `plainLength` digit by digit, out of line so that the short case stays small enough to inline.
@inline(never)
func plainLengthOfAnySize(_ base: UnsafeRawPointer, count: Int, at index: inout Int, strictNewline: Bool) -> Int? {
    var position = index
    var value = 0
    let end = min(count, index &+ 19)
    while position < end {
        let digit = base.load(fromByteOffset: position, as: UInt8.self) &- 48
        guard digit < 10 else { break }
        if position > index, value == 0 { return nil }  // a leading zero
        value = value &* 10 &+ Int(digit)
        position &+= 1
    }
    let digits = position &- index
    guard digits > 0, digits <= 18, position &+ 1 < count, base.load(fromByteOffset: position, as: UInt8.self) == 13 else { return nil }
    if strictNewline, base.load(fromByteOffset: position &+ 1, as: UInt8.self) != 10 { return nil }
    index = position &+ 2
    return value
}
