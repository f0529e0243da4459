/// A read buffer as the scanners' fast paths read it: a base that is never nil and a count. A load
/// is then one instruction, where an `UnsafeRawBufferPointer` checks its optional base again on
/// every subscript and every `count`.
struct ReadBytes {
    let base: UnsafeRawPointer
    let count: Int

    @inline(__always)
    init(_ bytes: UnsafeRawBufferPointer) {
        // An empty buffer may have no base; with a count of 0 nothing is ever read through it.
        base = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1).unsafelyUnwrapped
        count = bytes.count
    }

    @inline(__always)
    subscript(index: Int) -> UInt8 { base.load(fromByteOffset: index, as: UInt8.self) }

    /// The eight bytes at `index` as a word in memory order (they must be inside the buffer).
    @inline(__always)
    func word(at index: Int) -> UInt64 { base.loadUnaligned(fromByteOffset: index, as: UInt64.self) }

    /// Whether the `count` bytes at `first` equal those at `second` (all inside the buffer), compared
    /// a word at a time.
    @inline(__always)
    func bytesEqual(_ first: Int, _ second: Int, count: Int) -> Bool {
        var index = 0
        while index &+ 8 <= count {
            if word(at: first &+ index) != word(at: second &+ index) { return false }
            index &+= 8
        }
        while index < count {
            if self[first &+ index] != self[second &+ index] { return false }
            index &+= 1
        }
        return true
    }

    /// The bytes `start..<end` as a buffer.
    @inline(__always)
    func slice(_ start: Int, _ end: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base + start, count: end &- start) }
}

/// A length as the scanners' fast paths take it: 1–18 digits without a leading zero (a lone `0` is
/// fine), then `\r` and one more byte, all inside `bytes`; moves `index` past them. The byte after
/// `\r` must be `\n` when `strictNewline` (replies); requests skip it unchecked, as the node does.
/// nil for anything else: the state machine then decides.
///
/// One or two digits, nearly every length on the wire, are read without the loop; anything else,
/// including a two-digit length with a leading zero, goes through it.
@inline(__always)
func plainLength(_ bytes: ReadBytes, at index: inout Int, strictNewline: Bool) -> Int? {
    if index &+ 3 < bytes.count {
        let first = bytes[index] &- 48
        let second = bytes[index &+ 1]
        if first < 10, second == 13 {
            if strictNewline, bytes[index &+ 2] != 10 { return nil }
            index &+= 3
            return Int(first)
        }
        if first &- 1 < 9, second &- 48 < 10, bytes[index &+ 2] == 13 {
            if strictNewline, bytes[index &+ 3] != 10 { return nil }
            index &+= 4
            return Int(first) &* 10 &+ Int(second &- 48)
        }
    }
    return plainLengthOfAnySize(bytes, at: &index, strictNewline: strictNewline)
}

/// `plainLength` digit by digit, out of line so that the short case stays small enough to inline.
@inline(never)
func plainLengthOfAnySize(_ bytes: ReadBytes, at index: inout Int, strictNewline: Bool) -> Int? {
    var position = index
    var value = 0
    let end = min(bytes.count, index &+ 19)
    while position < end {
        let digit = bytes[position] &- 48
        guard digit < 10 else { break }
        if position > index, value == 0 { return nil }  // a leading zero
        value = value &* 10 &+ Int(digit)
        position &+= 1
    }
    let digits = position &- index
    guard digits > 0, digits <= 18, position &+ 1 < bytes.count, bytes[position] == 13 else { return nil }
    if strictNewline, bytes[position &+ 1] != 10 { return nil }
    index = position &+ 2
    return value
}
