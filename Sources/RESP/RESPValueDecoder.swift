/// Decodes one complete RESP2/RESP3 value from the start of a buffer.
///
/// Not the hot path: it builds `RESPValue`s. Attributes (`|`) are decoded and dropped; streamed
/// strings and aggregates are assembled. Returns nil while the buffer holds only part of a value.
public enum RESPValueDecoder {
    /// - Returns: the value and the number of bytes it used, or nil when more bytes are needed.
    /// - Throws: `ProtocolViolation` when the bytes are not valid RESP.
    public static func decode(_ bytes: ArraySlice<UInt8>) throws -> (RESPValue, consumed: Int)? {
        var cursor = Cursor(bytes: bytes, position: bytes.startIndex)
        guard let value = try cursor.value(depth: 0) else { return nil }
        return (value, cursor.position - bytes.startIndex)
    }

    /// Decodes every complete value in `bytes`; trailing partial bytes are ignored.
    public static func decodeAll(_ bytes: [UInt8]) throws -> [RESPValue] {
        var values: [RESPValue] = []
        var start = 0
        while start < bytes.count, let (value, used) = try decode(bytes[start...]) {
            values.append(value)
            start += used
        }
        return values
    }

    private struct Cursor {
        let bytes: ArraySlice<UInt8>
        var position: Int

        /// A line's content (without CRLF), or nil if incomplete.
        mutating func line() throws -> ArraySlice<UInt8>? {
            var index = position
            while index < bytes.endIndex {
                if bytes[index] == 13 {
                    guard index + 1 < bytes.endIndex else { return nil }
                    guard bytes[index + 1] == 10 else { throw ProtocolViolation.missingCRLF }
                    let content = bytes[position..<index]
                    position = index + 2
                    return content
                }
                index += 1
            }
            return nil
        }

        mutating func payload(_ length: Int) throws -> [UInt8]? {
            guard bytes.endIndex - position >= length + 2 else { return nil }
            let content = Array(bytes[position..<position + length])
            guard bytes[position + length] == 13, bytes[position + length + 1] == 10 else {
                throw ProtocolViolation.missingCRLF
            }
            position += length + 2
            return content
        }

        /// A length or element count; one above `Int32.max` (more than any limit a node has) is refused
        /// rather than waited for, and keeps the arithmetic on it from overflowing.
        func length(_ text: ArraySlice<UInt8>) throws -> Int {
            guard let value = Int(String(decoding: text, as: UTF8.self)), value >= -1, value <= Int(Int32.max) else {
                throw ProtocolViolation.invalidLength
            }
            return value
        }

        mutating func elements(_ count: Int, depth: Int) throws -> [RESPValue]? {
            var values: [RESPValue] = []
            values.reserveCapacity(min(count, 1024))
            for _ in 0..<count {
                guard let value = try value(depth: depth + 1) else { return nil }
                values.append(value)
            }
            return values
        }

        /// Elements up to the `.` terminator of a streamed aggregate.
        mutating func streamedElements(depth: Int) throws -> [RESPValue]? {
            var values: [RESPValue] = []
            while true {
                guard position < bytes.endIndex else { return nil }
                if bytes[position] == UInt8(ascii: ".") {
                    position += 1
                    guard let rest = try line() else { return nil }
                    guard rest.isEmpty else { throw ProtocolViolation.invalidLength }
                    return values
                }
                guard let value = try value(depth: depth + 1) else { return nil }
                values.append(value)
            }
        }

        mutating func value(depth: Int) throws -> RESPValue? {
            guard depth <= RESPLimits.valkeyDefaults.maxNestingDepth else { throw ProtocolViolation.nestingTooDeep }
            guard position < bytes.endIndex else { return nil }
            let type = bytes[position]
            position += 1
            guard let header = try line() else { return nil }
            let text = String(decoding: header, as: UTF8.self)
            switch type {
            case UInt8(ascii: "+"): return .simpleString(text)
            case UInt8(ascii: "-"): return .error(text)
            case UInt8(ascii: ":"):
                guard let value = Int64(text) else { throw ProtocolViolation.invalidLength }
                return .integer(value)
            case UInt8(ascii: "_"): return .null
            case UInt8(ascii: "#"):
                switch text {
                case "t": return .boolean(true)
                case "f": return .boolean(false)
                default: throw ProtocolViolation.invalidLength
                }
            case UInt8(ascii: ","):
                switch text.lowercased() {
                case "inf", "+inf": return .double(.infinity)
                case "-inf": return .double(-.infinity)
                case "nan", "-nan": return .double(.nan)
                default:
                    guard let value = Double(text) else { throw ProtocolViolation.invalidLength }
                    return .double(value)
                }
            case UInt8(ascii: "("): return .bigNumber(text)
            case UInt8(ascii: "$"), UInt8(ascii: "!"), UInt8(ascii: "="):
                if text == "?", type == UInt8(ascii: "$") {
                    var all: [UInt8] = []
                    while true {
                        guard position < bytes.endIndex else { return nil }
                        guard bytes[position] == UInt8(ascii: ";") else { throw ProtocolViolation.unexpectedEnd }
                        position += 1
                        guard let chunkHeader = try line() else { return nil }
                        let chunk = try length(chunkHeader)
                        guard chunk >= 0 else { throw ProtocolViolation.invalidLength }
                        if chunk == 0 { return .bulkString(all) }
                        guard let part = try payload(chunk) else { return nil }
                        all += part
                    }
                }
                let count = try length(header)
                if count == -1 {
                    guard type == UInt8(ascii: "$") else { throw ProtocolViolation.invalidLength }
                    return .null
                }
                guard let content = try payload(count) else { return nil }
                switch type {
                case UInt8(ascii: "$"): return .bulkString(content)
                case UInt8(ascii: "!"): return .blobError(content)
                default:
                    guard content.count >= 4, content[3] == UInt8(ascii: ":") else { throw ProtocolViolation.invalidLength }
                    return .verbatimString(
                        format: String(decoding: content[0..<3], as: UTF8.self),
                        text: String(decoding: content[4...], as: UTF8.self))
                }
            case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
                let values: [RESPValue]
                if text == "?", type != UInt8(ascii: "|") {
                    guard let streamed = try streamedElements(depth: depth) else { return nil }
                    values = streamed
                    if type == UInt8(ascii: "%"), values.count % 2 != 0 { throw ProtocolViolation.invalidLength }
                } else {
                    let count = try length(header)
                    if count == -1 {
                        guard type == UInt8(ascii: "*") else { throw ProtocolViolation.invalidLength }
                        return .null
                    }
                    let isPairs = type == UInt8(ascii: "%") || type == UInt8(ascii: "|")
                    guard let decoded = try elements(isPairs ? count * 2 : count, depth: depth) else { return nil }
                    values = decoded
                }
                switch type {
                case UInt8(ascii: "*"): return .array(values)
                case UInt8(ascii: "~"): return .set(values)
                case UInt8(ascii: ">"): return .push(values)
                case UInt8(ascii: "%"):
                    return .map(stride(from: 0, to: values.count, by: 2).map { RESPValue.Pair(values[$0], values[$0 + 1]) })
                default:
                    // Attribute: metadata about the value that follows; decode that value instead.
                    return try value(depth: depth)
                }
            default:
                throw ProtocolViolation.invalidTypeByte(type)
            }
        }
    }
}
