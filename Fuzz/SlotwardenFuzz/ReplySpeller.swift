import RESP

/// Spells valid reply frames from a fuzz input, so that the fuzzer reaches deep, well-formed
/// RESP2/RESP3 values (and pub/sub messages as Valkey writes them) without finding each byte.
struct ReplySpeller {
    struct Frame {
        var bytes: [UInt8]
        var type: ReplyType
        var isNull: Bool
    }

    var draws: Draws
    let resp3: Bool

    mutating func frames() -> [Frame] {
        var frames: [Frame] = []
        while !draws.isAtEnd, frames.count < 32 {
            var bytes: [UInt8] = []
            if resp3, draws.below(8) == 0 { attribute(into: &bytes, depth: 1) }
            let (type, isNull) = value(into: &bytes, depth: 0)
            frames.append(Frame(bytes: bytes, type: type, isNull: isNull))
        }
        return frames
    }

    private mutating func line(_ type: Character, _ text: some Sequence<UInt8>, into bytes: inout [UInt8]) {
        bytes.append(type.asciiValue!)
        bytes += text
        bytes += [13, 10]
    }

    /// Line content from the input, without `\r` or `\n`.
    private mutating func text() -> [UInt8] {
        draws.take(draws.below(12)).map { $0 == 13 || $0 == 10 ? UInt8(ascii: " ") : $0 }
    }

    private mutating func number() -> [UInt8] {
        let value = Int(Int8(bitPattern: draws.byte())) * Int(draws.byte())
        return Array(String(value).utf8)
    }

    private mutating func blob(_ type: Character, into bytes: inout [UInt8]) {
        var payload = Array(draws.take(draws.below(20)))
        if type == "=" { payload = Array("txt:".utf8) + payload }
        line(type, String(payload.count).utf8, into: &bytes)
        bytes += payload + [13, 10]
    }

    private mutating func attribute(into bytes: inout [UInt8], depth: Int) {
        let pairs = draws.below(3)
        line("|", String(pairs).utf8, into: &bytes)
        for _ in 0..<(2 * pairs) { _ = value(into: &bytes, depth: depth + 1) }
    }

    /// Appends one value; returns its type and whether it is a null.
    @discardableResult
    private mutating func value(into bytes: inout [UInt8], depth: Int) -> (ReplyType, Bool) {
        let kinds = resp3 ? 22 : 10
        switch depth > 5 ? draws.below(3) : draws.below(kinds) {
        case 0: line("+", text(), into: &bytes); return (.simpleString, false)
        case 1: line(":", number(), into: &bytes); return (.integer, false)
        case 2: blob("$", into: &bytes); return (.bulkString, false)
        case 3:
            let errors = ["ERR x", "MOVED 3999 127.0.0.1:6381", "ASK 1 h:1", "READONLY You can't", "LOADING", "CROSSSLOT k",
                          "NOSCRIPT", "EXECABORT t", "WRONGTYPE", "UNBLOCKED", "CLUSTERDOWN"]
            line("-", Array(errors[draws.below(errors.count)].utf8) + text(), into: &bytes)
            return (.simpleError, false)
        case 4: line("$", "-1".utf8, into: &bytes); return (.bulkString, true)
        case 5: line("*", "-1".utf8, into: &bytes); return (.array, true)
        case 6, 7: aggregate("*", into: &bytes, depth: depth); return (.array, false)
        case 8: message("*", into: &bytes); return (.array, false)
        case 9: line("+", "OK".utf8, into: &bytes); return (.simpleString, false)
        case 10: line("_", [], into: &bytes); return (.null, true)
        case 11: line("#", draws.byte() & 1 == 0 ? "t".utf8 : "f".utf8, into: &bytes); return (.boolean, false)
        case 12: line(",", Array(number()) + Array(".5".utf8), into: &bytes); return (.double, false)
        case 13: line("(", number(), into: &bytes); return (.bigNumber, false)
        case 14: blob("!", into: &bytes); return (.blobError, false)
        case 15: blob("=", into: &bytes); return (.verbatimString, false)
        case 16: aggregate("%", into: &bytes, depth: depth); return (.map, false)
        case 17: aggregate("~", into: &bytes, depth: depth); return (.set, false)
        case 18: aggregate(">", into: &bytes, depth: depth); return (.push, false)
        case 19: message(">", into: &bytes); return (.push, false)
        case 20:
            line("$", "?".utf8, into: &bytes)
            for _ in 0..<draws.below(3) {
                let chunk = Array(draws.take(1 + draws.below(6)))
                if chunk.isEmpty { break }
                line(";", String(chunk.count).utf8, into: &bytes)
                bytes += chunk + [13, 10]
            }
            line(";", "0".utf8, into: &bytes)
            return (.bulkString, false)
        default:
            let types: [(Character, ReplyType)] = [("*", .array), ("~", .set), (">", .push), ("%", .map)]
            let (type, replyType) = types[draws.below(types.count)]
            line(type, "?".utf8, into: &bytes)
            let elements = draws.below(4) * (type == "%" ? 2 : 1)
            for _ in 0..<elements { value(into: &bytes, depth: depth + 1) }
            line(".", [], into: &bytes)
            return (replyType, false)
        }
    }

    private mutating func aggregate(_ type: Character, into bytes: inout [UInt8], depth: Int) {
        let count = draws.below(4)
        line(type, String(count).utf8, into: &bytes)
        for _ in 0..<(type == "%" ? 2 * count : count) {
            if resp3, draws.below(16) == 0 { attribute(into: &bytes, depth: depth + 1) }
            value(into: &bytes, depth: depth + 1)
        }
    }

    /// A pub/sub frame as Valkey writes it: `message`, `smessage` or a confirmation.
    private mutating func message(_ type: Character, into bytes: inout [UInt8]) {
        let names = ["message", "smessage", "subscribe", "ssubscribe", "unsubscribe", "pmessage", "pong"]
        let name = names[draws.below(names.count)]
        line(type, "3".utf8, into: &bytes)
        line("$", String(name.utf8.count).utf8, into: &bytes)
        bytes += Array(name.utf8) + [13, 10]
        let channel = Array(draws.take(draws.below(8)))
        line("$", String(channel.count).utf8, into: &bytes)
        bytes += channel + [13, 10]
        if name.hasSuffix("subscribe") {
            line(":", String(draws.below(3)).utf8, into: &bytes)
        } else {
            let payload = Array(draws.take(draws.below(16)))
            line("$", String(payload.count).utf8, into: &bytes)
            bytes += payload + [13, 10]
        }
    }
}
