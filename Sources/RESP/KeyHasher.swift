/// Streaming form of `HashSlot(key:)`: feed a key in any number of chunks and read `slot` at the end.
///
/// Two CRCs run side by side because whether the hash tag counts is only known once its closing
/// brace arrives (or the key ends):
///
/// ```
///   phase .searching   no '{' seen yet          whole-key CRC only
///   phase .inTag       after the first '{'      whole-key CRC + tag CRC
///   phase .tagClosed   first '}' after >=1 byte  slot = tag CRC  (whole-key CRC no longer needed)
///   phase .whole       "{}" seen first          slot = whole-key CRC
/// ```
/// No allocation; 6 bytes of state.
public struct KeyHasher: Sendable {
    private enum Phase: UInt8, Sendable { case searching, inTag, tagClosed, whole }

    private var wholeCRC: UInt16 = 0
    private var tagCRC: UInt16 = 0
    private var phase: Phase = .searching
    private var tagHasBytes = false

    public init() {}

    /// Feeds the next bytes of the key; this runs for every key byte that crosses the proxy. Until a
    /// `{` appears (most keys have none) the whole-key CRC runs two bytes per table step over
    /// everything up to and including it, found eight bytes at a time; from there the per-byte
    /// state machine takes over.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        var index = 0
        if phase == .searching {
            let brace = Self.firstBrace(bytes)
            let end = brace < count ? brace + 1 : count
            wholeCRC = crc16(wholeCRC, bytes, from: 0, to: end)
            if brace == count { return }
            phase = .inTag
            index = end
        }
        while index < count, phase != .tagClosed {
            update(bytes[index])
            index += 1
        }
    }

    /// The slot of a whole key, as `HashSlot(key:)` gives it, in one pass without the streaming
    /// state: the plain request lane has every key whole in its read buffer.
    @inline(__always)
    static func slot(ofWholeKey key: UnsafeRawBufferPointer) -> HashSlot {
        let count = key.count
        let open = firstBrace(key)
        if open < count {
            var close = open &+ 1
            while close < count, key[close] != UInt8(ascii: "}") { close &+= 1 }
            if close < count, close > open &+ 1 { return HashSlot(masked: crc16(0, key, from: open &+ 1, to: close)) }
        }
        return HashSlot(masked: crc16(0, key, from: 0, to: count))
    }

    /// The index of the first `{` in `bytes`, or `bytes.count`.
    @inline(__always)
    private static func firstBrace(_ bytes: UnsafeRawBufferPointer) -> Int {
        var index = 0
        let count = bytes.count
        // A word has a `{` byte when word ^ 0x7B… has a zero byte (the classic has-zero-byte test).
        while index &+ 8 <= count {
            let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) ^ 0x7B7B_7B7B_7B7B_7B7B
            if (word &- 0x0101_0101_0101_0101) & ~word & 0x8080_8080_8080_8080 != 0 { break }
            index &+= 8
        }
        while index < count, bytes[index] != UInt8(ascii: "{") { index &+= 1 }
        return index
    }

    @inline(__always)
    mutating func update(_ byte: UInt8) {
        switch phase {
        case .searching:
            wholeCRC = crc16Step(wholeCRC, byte)
            if byte == UInt8(ascii: "{") { phase = .inTag }
        case .inTag:
            wholeCRC = crc16Step(wholeCRC, byte)
            if byte == UInt8(ascii: "}") {
                phase = tagHasBytes ? .tagClosed : .whole
            } else {
                tagCRC = crc16Step(tagCRC, byte)
                tagHasBytes = true
            }
        case .tagClosed:
            break
        case .whole:
            wholeCRC = crc16Step(wholeCRC, byte)
        }
    }

    /// The slot of the bytes fed so far.
    public var slot: HashSlot {
        HashSlot(masked: phase == .tagClosed ? tagCRC : wholeCRC)
    }
}
