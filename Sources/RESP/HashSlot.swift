/// One of the 16384 cluster hash slots.
///
/// The slot of a key is `CRC16/XMODEM(key) & 16383`, where only the hash tag is hashed when the key
/// has one. The hash-tag rule mirrors Valkey's `cluster.c:keyHashSlot`:
///
/// ```
///   find the FIRST '{'                      no '{'            -> hash the whole key
///   find the FIRST '}' after it             no '}'            -> hash the whole key
///                                           "{}" (empty tag)  -> hash the whole key
///   otherwise hash the bytes strictly between them
///
///   "{user1000}.following"  -> hashes "user1000"
///   "foo{}{bar}"            -> hashes "foo{}{bar}"  (the first tag is empty)
///   "foo{{bar}}zap"         -> hashes "{bar"
/// ```
public struct HashSlot: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Number of slots in a Valkey cluster.
    public static let count = 16384

    public let rawValue: UInt16

    /// `nil` when `rawValue >= 16384`.
    public init?(rawValue: UInt16) {
        guard Int(rawValue) < HashSlot.count else { return nil }
        self.rawValue = rawValue
    }

    /// Used internally when the value is masked already.
    init(masked: UInt16) {
        self.rawValue = masked & 0x3FFF
    }

    /// The slot of `key`, hash tags included.
    public init<Bytes: Sequence>(key: Bytes) where Bytes.Element == UInt8 {
        var hasher = KeyHasher()
        for byte in key { hasher.update(byte) }
        self = hasher.slot
    }

    /// The slot of the UTF-8 bytes of `key`.
    public init(key: String) {
        self.init(key: key.utf8)
    }

    /// CRC16/XMODEM (polynomial 0x1021, initial value 0, no reflection) as used by Valkey's `crc16.c`.
    public static func crc16<Bytes: Sequence>(_ bytes: Bytes) -> UInt16 where Bytes.Element == UInt8 {
        let table = crc16TablePointer
        var crc: UInt16 = 0
        for byte in bytes { crc = crc16Step(crc, byte, table) }
        return crc
    }

    public static func < (lhs: HashSlot, rhs: HashSlot) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { String(rawValue) }
}

/// One table-driven CRC16/XMODEM step.
@inline(__always)
func crc16Step(_ crc: UInt16, _ byte: UInt8, _ table: UnsafePointer<UInt16>) -> UInt16 {
    (crc &<< 8) ^ table[Int(UInt8(truncatingIfNeeded: crc &>> 8) ^ byte)]
}

/// The CRC of `bytes[start..<end]` continued from `crc`, two bytes per step: for x = crc ^ (b0 b1),
/// the CRC after both bytes is `pairTable[x >> 8] ^ table[x & 0xFF]` (CRC is linear, and the pair
/// table folds the first byte through a second step).
@inline(__always)
func crc16(_ crc: UInt16, _ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> UInt16 {
    let table = crc16TablePointer
    let pairTable = crc16PairTablePointer
    var crc = crc
    var index = start
    while index &+ 1 < end {
        let x = crc ^ (UInt16(bytes[index]) &<< 8 | UInt16(bytes[index &+ 1]))
        crc = pairTable[Int(x &>> 8)] ^ table[Int(x & 0xFF)]
        index &+= 2
    }
    if index < end { crc = crc16Step(crc, bytes[index], table) }
    return crc
}

/// Entry i: the CRC of byte i followed by a zero byte, from 0; see `crc16(_:_:from:to:)`.
nonisolated(unsafe) let crc16PairTablePointer: UnsafePointer<UInt16> = {
    let table = UnsafeMutablePointer<UInt16>.allocate(capacity: 256)
    for index in 0..<256 {
        let once = crc16TablePointer[index]
        table[index] = ((once & 0xFF) &<< 8) ^ crc16TablePointer[Int(once &>> 8)]
    }
    return UnsafePointer(table)
}()

/// 256-entry lookup table for polynomial 0x1021, built once and never freed. A raw pointer rather
/// than an array: the per-byte lookup then has no bounds check and no retain.
nonisolated(unsafe) let crc16TablePointer: UnsafePointer<UInt16> = {
    let table = UnsafeMutablePointer<UInt16>.allocate(capacity: 256)
    for index in 0..<256 {
        var crc = UInt16(index) << 8
        for _ in 0..<8 {
            crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        table[index] = crc
    }
    return UnsafePointer(table)
}()
