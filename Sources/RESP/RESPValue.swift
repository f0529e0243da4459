/// A fully decoded RESP2/RESP3 value. For the control connection and tests; the hot path never
/// builds these (see `RequestScanner` and `ReplyScanner`).
public indirect enum RESPValue: Equatable, Sendable {
    /// One key/value entry of a `map`.
    public struct Pair: Equatable, Sendable {
        public var key: RESPValue
        public var value: RESPValue
        public init(_ key: RESPValue, _ value: RESPValue) {
            self.key = key
            self.value = value
        }
    }

    case simpleString(String)
    case error(String)
    case integer(Int64)
    case bulkString([UInt8])
    case null
    case array([RESPValue])
    case boolean(Bool)
    case double(Double)
    case bigNumber(String)
    case verbatimString(format: String, text: String)
    case map([Pair])
    case set([RESPValue])
    case push([RESPValue])
    case blobError([UInt8])

    /// Text of a simple string, bulk string, verbatim string or big number.
    public var string: String? {
        switch self {
        case .simpleString(let text), .bigNumber(let text): return text
        case .bulkString(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .verbatimString(_, let text): return text
        default: return nil
        }
    }

    /// Bytes of a bulk string (or the UTF-8 of a simple string).
    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let bytes): return bytes
        case .simpleString(let text): return Array(text.utf8)
        default: return nil
        }
    }

    /// An integer, or a string holding one.
    public var int: Int? {
        switch self {
        case .integer(let value): return Int(exactly: value)
        case .simpleString, .bulkString: return string.flatMap { Int($0) }
        default: return nil
        }
    }

    /// Elements of an array, set or push; a map flattened to key, value, key, value ...
    public var array: [RESPValue]? {
        switch self {
        case .array(let elements), .set(let elements), .push(let elements): return elements
        case .map(let pairs): return pairs.flatMap { [$0.key, $0.value] }
        default: return nil
        }
    }

    /// Pairs of a map, or of a flat RESP2 array of even length.
    public var pairs: [Pair]? {
        switch self {
        case .map(let pairs): return pairs
        case .array(let elements) where elements.count % 2 == 0:
            return stride(from: 0, to: elements.count, by: 2).map { Pair(elements[$0], elements[$0 + 1]) }
        default: return nil
        }
    }

    /// Message of a simple or blob error.
    public var errorMessage: String? {
        switch self {
        case .error(let text): return text
        case .blobError(let bytes): return String(decoding: bytes, as: UTF8.self)
        default: return nil
        }
    }

    /// True for `.null`.
    public var isNull: Bool { self == .null }
}
