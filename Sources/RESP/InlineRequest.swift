/// Inline requests: a text line (not starting with `*`) ending in `\n`, an optional `\r` before it.
///
/// The line is buffered because argc (needed for negative key positions) is only known at its
/// end. The buffer is one fixed region of `maxInlineLength` bytes, allocated the first time the
/// connection sends an inline request and reused for every later one.
final class InlineLineBuffer {
    let capacity: Int
    let base: UnsafeMutableRawPointer
    /// Bytes of the current line held so far (terminator excluded).
    var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(byteCount: max(capacity, 1), alignment: 1)
    }

    deinit { base.deallocate() }
}

/// Valkey's `sds.c:sdssplitargs`, one argument at a time, unescaping in place.
///
/// ```
///   blanks (isspace) separate arguments
///   "double quotes"  \n \r \t \b \a \\ \" and \xHH; any other \c is c
///   'single quotes'  only \' is an escape
///   a closing quote must be followed by a blank or the end, else: unbalanced quotes
///   a quote may open in the middle of a word:  foo"bar baz"  ->  foobar baz
/// ```
/// The line is a C string to Valkey: a NUL byte ends it (pass the length up to the first NUL).
/// In-place unescaping is safe because an argument never grows: the write position trails the
/// read position.
enum InlineSplitter {
    enum Piece: Equatable {
        case argument(start: Int, length: Int)
        case end
        case unbalanced
    }

    /// Splits the next argument starting at `cursor`. With `write`, the unescaped argument is
    /// stored at `start` in `line`; without, `line` is left untouched (counting pass).
    static func next(_ line: UnsafeMutableRawPointer, length: Int, cursor: inout Int, write: Bool) -> Piece {
        @inline(__always) func at(_ position: Int) -> UInt8 {
            position < length ? line.load(fromByteOffset: position, as: UInt8.self) : 0
        }
        var position = cursor
        while position < length, isCSpace(at(position)) { position += 1 }
        if position >= length {
            cursor = position
            return .end
        }
        let start = position
        var out = position
        var inDoubleQuotes = false
        var inSingleQuotes = false
        var done = false
        @inline(__always) func emit(_ byte: UInt8) {
            if write { line.storeBytes(of: byte, toByteOffset: out, as: UInt8.self) }
            out += 1
        }
        while !done {
            let byte = at(position)
            if inDoubleQuotes {
                if byte == UInt8(ascii: "\\"), at(position + 1) == UInt8(ascii: "x"),
                   let high = hexValue(at(position + 2)), let low = hexValue(at(position + 3)) {
                    emit(high << 4 | low)
                    position += 3
                } else if byte == UInt8(ascii: "\\"), at(position + 1) != 0 {
                    position += 1
                    switch at(position) {
                    case UInt8(ascii: "n"): emit(10)
                    case UInt8(ascii: "r"): emit(13)
                    case UInt8(ascii: "t"): emit(9)
                    case UInt8(ascii: "b"): emit(8)
                    case UInt8(ascii: "a"): emit(7)
                    case let other: emit(other)
                    }
                } else if byte == UInt8(ascii: "\"") {
                    if at(position + 1) != 0, !isCSpace(at(position + 1)) { return .unbalanced }
                    done = true
                } else if byte == 0 {
                    return .unbalanced
                } else {
                    emit(byte)
                }
            } else if inSingleQuotes {
                if byte == UInt8(ascii: "\\"), at(position + 1) == UInt8(ascii: "'") {
                    position += 1
                    emit(UInt8(ascii: "'"))
                } else if byte == UInt8(ascii: "'") {
                    if at(position + 1) != 0, !isCSpace(at(position + 1)) { return .unbalanced }
                    done = true
                } else if byte == 0 {
                    return .unbalanced
                } else {
                    emit(byte)
                }
            } else {
                switch byte {
                case 0x20, 0x0A, 0x0D, 0x09, 0: done = true
                case UInt8(ascii: "\""): inDoubleQuotes = true
                case UInt8(ascii: "'"): inSingleQuotes = true
                default: emit(byte)
                }
            }
            if at(position) != 0 { position += 1 }
        }
        cursor = position
        return .argument(start: start, length: out - start)
    }

    @inline(__always)
    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// Length of the line as the C string Valkey sees (up to the first NUL).
    static func cStringLength(_ line: UnsafeMutableRawPointer, length: Int) -> Int {
        for position in 0..<length where line.load(fromByteOffset: position, as: UInt8.self) == 0 { return position }
        return length
    }
}
