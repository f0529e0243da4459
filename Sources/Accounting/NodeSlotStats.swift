import RESP

/// One slot's row of `CLUSTER SLOT-STATS`.
public struct NodeSlotStat: Equatable, Sendable, Codable {
    public var slot: HashSlot
    public var keyCount: UInt64
    public var cpuMicroseconds: UInt64
    public var networkBytesIn: UInt64
    public var networkBytesOut: UInt64

    public init(slot: HashSlot, keyCount: UInt64 = 0, cpuMicroseconds: UInt64 = 0, networkBytesIn: UInt64 = 0, networkBytesOut: UInt64 = 0) {
        self.slot = slot
        self.keyCount = keyCount
        self.cpuMicroseconds = cpuMicroseconds
        self.networkBytesIn = networkBytesIn
        self.networkBytesOut = networkBytesOut
    }
}

extension HashSlot: Codable {
    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(UInt16.self)
        guard let slot = HashSlot(rawValue: raw) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "slot \(raw) out of range"))
        }
        self = slot
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// The node's `CLUSTER SLOT-STATS` reply, parsed. Only the slots of the node's shard appear.
public struct NodeSlotStats: Equatable, Sendable {
    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    public private(set) var rows: [NodeSlotStat]
    /// False when the node reports only `key-count` (`cluster-slot-stats-enabled no`).
    public private(set) var networkStatsEnabled: Bool

    public init(rows: [NodeSlotStat], networkStatsEnabled: Bool) {
        self.rows = rows
        self.networkStatsEnabled = networkStatsEnabled
    }

    /// Parses `[[slot, {key-count: n, cpu-usec: n, network-bytes-in: n, network-bytes-out: n}], …]`,
    /// with the inner map as a RESP3 map or a RESP2 flat array.
    public init(reply: RESPValue) throws {
        guard case .array(let entries) = reply else {
            throw ParseError(description: "CLUSTER SLOT-STATS answered \(reply)")
        }
        var rows: [NodeSlotStat] = []
        var networkStatsEnabled = entries.isEmpty
        for entry in entries {
            guard case .array(let pair) = entry, pair.count == 2, case .integer(let number) = pair[0],
                number >= 0, number < HashSlot.count, let slot = HashSlot(rawValue: UInt16(number))
            else { throw ParseError(description: "unexpected CLUSTER SLOT-STATS entry \(entry)") }
            var fields: [(String, Int64)] = []
            switch pair[1] {
            case .map(let map):
                for element in map {
                    if case .integer(let value) = element.value { fields.append((Self.name(element.key), value)) }
                }
            case .array(let flat):
                var index = 0
                while index + 1 < flat.count {
                    if case .integer(let value) = flat[index + 1] { fields.append((Self.name(flat[index]), value)) }
                    index += 2
                }
            default:
                throw ParseError(description: "unexpected CLUSTER SLOT-STATS fields \(pair[1])")
            }
            var row = NodeSlotStat(slot: slot)
            for (name, value) in fields {
                let value = UInt64(clamping: value)
                switch name {
                case "key-count": row.keyCount = value
                case "cpu-usec": row.cpuMicroseconds = value
                case "network-bytes-in":
                    row.networkBytesIn = value
                    networkStatsEnabled = true
                case "network-bytes-out": row.networkBytesOut = value
                default: break
                }
            }
            rows.append(row)
        }
        self.rows = rows
        self.networkStatsEnabled = networkStatsEnabled
    }

    /// Parses the reply straight from its bytes, without building a value tree: the reply for 16384
    /// slots is about 1.5 MB, and the fence reads it while clients wait. Takes exactly the shapes
    /// `init(reply:)` takes (RESP2 flat field arrays or RESP3 maps, integer values). A reply of any
    /// other shape (a field a later Valkey reports as something else than an integer, say) is
    /// decoded and read by `init(reply:)` instead, so the two always agree. Reads the reply at the
    /// start of `bytes`; bytes after it are not looked at.
    public init(replyBytes bytes: UnsafeRawBufferPointer) throws {
        do {
            try self.init(plainReplyBytes: bytes)
        } catch {
            guard let (value, _) = try RESPValueDecoder.decode(Array(bytes)[...]) else { throw error }
            try self.init(reply: value)
        }
    }

    private init(plainReplyBytes bytes: UnsafeRawBufferPointer) throws {
        var cursor = ReplyCursor(bytes: bytes)
        let entries = try cursor.header("*")
        guard entries >= 0 else { throw ParseError(description: "CLUSTER SLOT-STATS answered a null") }
        var rows: [NodeSlotStat] = []
        rows.reserveCapacity(min(entries, HashSlot.count))  // the count is the node's word, not a size
        var networkStatsEnabled = entries == 0
        for _ in 0..<entries {
            guard try cursor.header("*") == 2 else { throw ParseError(description: "a CLUSTER SLOT-STATS entry is not a pair") }
            let number = try cursor.integer()
            guard number >= 0, number < HashSlot.count, let slot = HashSlot(rawValue: UInt16(number)) else {
                throw ParseError(description: "CLUSTER SLOT-STATS names slot \(number)")
            }
            let fields = try cursor.fieldCount()
            var row = NodeSlotStat(slot: slot)
            for _ in 0..<fields {
                let name = try cursor.name()
                let value = UInt64(clamping: try cursor.integer())
                if name.elementsEqual("key-count".utf8) {
                    row.keyCount = value
                } else if name.elementsEqual("cpu-usec".utf8) {
                    row.cpuMicroseconds = value
                } else if name.elementsEqual("network-bytes-in".utf8) {
                    row.networkBytesIn = value
                    networkStatsEnabled = true
                } else if name.elementsEqual("network-bytes-out".utf8) {
                    row.networkBytesOut = value
                }
            }
            rows.append(row)
        }
        self.rows = rows
        self.networkStatsEnabled = networkStatsEnabled
    }

    private static func name(_ value: RESPValue) -> String {
        switch value {
        case .bulkString(let bytes): String(decoding: bytes, as: UTF8.self)
        case .simpleString(let text): text
        default: ""
        }
    }

    /// Rows indexed by slot (nil for slots the node does not report).
    public func bySlot() -> [HashSlot: NodeSlotStat] {
        Dictionary(rows.map { ($0.slot, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// What the node counted since `baseline`, slot by slot. A slot below its baseline was reset on the
    /// node meanwhile (a failover, CONFIG RESETSTAT), so everything it shows now is new.
    public func subtracting(_ baseline: NodeSlotStats?) -> NodeSlotStats {
        guard let baseline else { return self }
        let before = baseline.bySlot()
        return NodeSlotStats(
            rows: rows.map { row in
                guard let old = before[row.slot], row.networkBytesIn >= old.networkBytesIn,
                    row.networkBytesOut >= old.networkBytesOut, row.cpuMicroseconds >= old.cpuMicroseconds
                else { return row }
                var delta = row
                delta.networkBytesIn -= old.networkBytesIn
                delta.networkBytesOut -= old.networkBytesOut
                delta.cpuMicroseconds -= old.cpuMicroseconds
                return delta
            }, networkStatsEnabled: networkStatsEnabled)
    }

    /// This baseline with the rows of `slots` taken from `current` (dropped where `current` has none):
    /// those slots were reset on the node and restart from what it counted since.
    public func rebasing(_ slots: [HashSlot], on current: NodeSlotStats) -> NodeSlotStats {
        let moved = Set(slots)
        let now = current.bySlot()
        var rebased = rows.filter { !moved.contains($0.slot) }
        rebased += slots.compactMap { now[$0] }
        rebased.sort { $0.slot.rawValue < $1.slot.rawValue }
        return NodeSlotStats(rows: rebased, networkStatsEnabled: networkStatsEnabled)
    }

    public var totalBytesIn: UInt64 { rows.reduce(0) { $0 &+ $1.networkBytesIn } }
    public var totalBytesOut: UInt64 { rows.reduce(0) { $0 &+ $1.networkBytesOut } }
}

/// Reads the few RESP shapes of a `CLUSTER SLOT-STATS` reply from its bytes, checking every one.
private struct ReplyCursor {
    let bytes: UnsafeRawBufferPointer
    var index = 0

    private func failure(_ what: String) -> NodeSlotStats.ParseError {
        NodeSlotStats.ParseError(description: "CLUSTER SLOT-STATS: \(what) at byte \(index)")
    }

    /// A signed decimal line up to `\r\n`.
    private mutating func line() throws -> Int {
        var negative = false
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        var value = 0
        var digits = 0
        while index < bytes.count, bytes[index] &- 48 < 10, digits < 18 {
            value = value * 10 + Int(bytes[index] &- 48)
            index += 1
            digits += 1
        }
        guard digits > 0, index + 1 < bytes.count, bytes[index] == 13, bytes[index + 1] == 10 else { throw failure("a bad number") }
        index += 2
        return negative ? -value : value
    }

    private mutating func type(_ expected: UInt8) throws {
        guard index < bytes.count, bytes[index] == expected else { throw failure("expected '\(Character(Unicode.Scalar(expected)))'") }
        index += 1
    }

    /// `<type><count>\r\n`.
    mutating func header(_ type: Character) throws -> Int {
        try self.type(type.asciiValue!)
        return try line()
    }

    mutating func integer() throws -> Int {
        try type(UInt8(ascii: ":"))
        return try line()
    }

    /// The fields of a row: a RESP3 map (`%n`, n pairs) or a RESP2 flat array (`*2n`).
    mutating func fieldCount() throws -> Int {
        guard index < bytes.count else { throw failure("the reply ended") }
        if bytes[index] == UInt8(ascii: "%") {
            let pairs = try header("%")
            guard pairs >= 0 else { throw failure("a negative field count") }
            return pairs
        }
        let elements = try header("*")
        guard elements >= 0, elements % 2 == 0 else { throw failure("an odd field array") }
        return elements / 2
    }

    /// A field name: a bulk or simple string.
    mutating func name() throws -> UnsafeRawBufferPointer {
        guard index < bytes.count else { throw failure("the reply ended") }
        if bytes[index] == UInt8(ascii: "+") {
            index += 1
            let start = index
            while index < bytes.count, bytes[index] != 13 { index += 1 }
            let name = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
            guard index + 1 < bytes.count, bytes[index + 1] == 10 else { throw failure("an unterminated name") }
            index += 2
            return name
        }
        let length = try header("$")
        guard length >= 0, index + length + 2 <= bytes.count, bytes[index + length] == 13, bytes[index + length + 1] == 10 else {
            throw failure("a bad name")
        }
        let name = UnsafeRawBufferPointer(rebasing: bytes[index..<index + length])
        index += length + 2
        return name
    }
}

/// A `CLUSTER SLOT-STATS` reply as read, parsed on demand: the reply for 16384 slots is large, and a
/// fenced reconciliation keeps parsing out of the pause.
public enum RawSlotStats: Sendable {
    case bytes([UInt8])
    case parsed(NodeSlotStats)

    public func parse() throws -> NodeSlotStats {
        switch self {
        case .parsed(let stats):
            return stats
        case .bytes(let bytes):
            return try bytes.withUnsafeBytes { try NodeSlotStats(replyBytes: $0) }
        }
    }
}
