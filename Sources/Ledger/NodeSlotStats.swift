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
                let slot = HashSlot(rawValue: UInt16(clamping: number)), number < HashSlot.count
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

    public var totalBytesIn: UInt64 { rows.reduce(0) { $0 &+ $1.networkBytesIn } }
    public var totalBytesOut: UInt64 { rows.reduce(0) { $0 &+ $1.networkBytesOut } }
}
