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

    /// Feeds the next bytes of the key. The CRC table is looked up once per call, not once per byte:
    /// this runs for every key byte that crosses the proxy. While no `{` has been seen (most keys
    /// have no hash tag) the CRC stays in a register and each byte costs a table step and a compare;
    /// from a `{` on, the per-byte state machine takes over.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        let table = crc16TablePointer
        var index = 0
        let count = bytes.count
        if phase == .searching {
            var crc = wholeCRC
            while index < count {
                let byte = bytes[index]
                index += 1
                crc = crc16Step(crc, byte, table)
                if byte == UInt8(ascii: "{") {
                    phase = .inTag
                    break
                }
            }
            wholeCRC = crc
        }
        while index < count, phase != .tagClosed {
            update(bytes[index], table: table)
            index += 1
        }
    }

    @inline(__always)
    mutating func update(_ byte: UInt8) {
        update(byte, table: crc16TablePointer)
    }

    @inline(__always)
    private mutating func update(_ byte: UInt8, table: UnsafePointer<UInt16>) {
        switch phase {
        case .searching:
            wholeCRC = crc16Step(wholeCRC, byte, table)
            if byte == UInt8(ascii: "{") { phase = .inTag }
        case .inTag:
            wholeCRC = crc16Step(wholeCRC, byte, table)
            if byte == UInt8(ascii: "}") {
                phase = tagHasBytes ? .tagClosed : .whole
            } else {
                tagCRC = crc16Step(tagCRC, byte, table)
                tagHasBytes = true
            }
        case .tagClosed:
            break
        case .whole:
            wholeCRC = crc16Step(wholeCRC, byte, table)
        }
    }

    /// The slot of the bytes fed so far.
    public var slot: HashSlot {
        HashSlot(masked: phase == .tagClosed ? tagCRC : wholeCRC)
    }
}
