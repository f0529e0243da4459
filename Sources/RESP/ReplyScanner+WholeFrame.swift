/// The whole-frame fast path: a whole top-level `+`, `-`, `:` or `$` reply, or a flat array or
/// push, inside one chunk (most replies) is classified in one step, with the same outcome as the
/// state machine. Anything else — other aggregates, other types, a reply continuing past the chunk,
/// a length the fast path does not take — goes to the state machine from the same byte, which
/// decides. The lanes frame with `plainReply`, `lineEnd` and `wholeBulkString` too.
extension ReplyScanner {

    /// The reply starting at `start` if it is a whole simple one; nil otherwise (nothing changed).
    @inline(__always)
    mutating func wholeSimpleReply(_ buffer: UnsafeRawBufferPointer, from start: Int) -> ScannedReply? {
        let bytes = ReadBytes(buffer)
        let typeByte = bytes[start]
        switch typeByte {
        case UInt8(ascii: "+"):
            guard let plain = Self.plainReply(bytes, from: start, limits: limits) else { return nil }
            capture.reset()
            capture.append(bytes.slice(start &+ 1, start &+ plain.wireBytes &- 2))
            return ScannedReply(wireBytes: plain.wireBytes, type: .simpleString, simple: SimpleReply(line: capture))
        case UInt8(ascii: ":"), UInt8(ascii: "$"):
            guard let plain = Self.plainReply(bytes, from: start, limits: limits) else { return nil }
            return ScannedReply(
                wireBytes: plain.wireBytes, type: typeByte == UInt8(ascii: "$") ? .bulkString : .integer, isNull: plain.isNull)
        case UInt8(ascii: "-"):
            guard let end = Self.lineEnd(bytes, from: start &+ 1) else { return nil }
            capture.reset()
            capture.append(bytes.slice(start &+ 1, end))
            return ScannedReply(wireBytes: end &+ 2 &- start, type: .simpleError, error: ReplyError(message: capture))
        case UInt8(ascii: "*"), UInt8(ascii: ">"):
            return wholeFlatAggregate(bytes, from: start)
        default:
            return nil
        }
    }

    /// The whole `+` line, `:` line or `$` bulk string (or `$-1`) starting at `start`, if it is in
    /// `bytes`; nil for anything else.
    @inline(__always)
    static func plainReply(_ bytes: ReadBytes, from start: Int, limits: RESPLimits) -> PlainReply? {
        switch bytes[start] {
        case UInt8(ascii: "$"):
            // `$-1\r\n` read as one word in memory order.
            if start &+ 4 < bytes.count, bytes.base.loadUnaligned(fromByteOffset: start &+ 1, as: UInt32.self) == UInt32(littleEndian: 0x0A0D_312D) {
                return PlainReply(wireBytes: 5, isNull: true)
            }
            guard let bulk = wholeBulkString(bytes, at: start, limits: limits) else { return nil }
            return PlainReply(wireBytes: bulk.end &- start, isNull: false)
        case UInt8(ascii: "+"), UInt8(ascii: ":"):
            guard let end = lineEnd(bytes, from: start &+ 1) else { return nil }
            return PlainReply(wireBytes: end &+ 2 &- start, isNull: false)
        default:
            return nil
        }
    }

    /// The position of the `\r` of the first `\r\n` at or after `index`, if the line ends in `bytes`.
    @inline(__always)
    static func lineEnd(_ bytes: ReadBytes, from index: Int) -> Int? {
        var end = index
        while end < bytes.count, bytes[end] != 13 { end &+= 1 }
        guard end &+ 1 < bytes.count, bytes[end &+ 1] == 10 else { return nil }
        return end
    }

    /// The bulk string whose `$` is at `index`, if it has a plain length within the limits and is
    /// whole in `bytes` with its `\r\n`: where its payload starts and where it ends.
    @inline(__always)
    static func wholeBulkString(
        _ bytes: ReadBytes, at index: Int, limits: RESPLimits
    ) -> (payload: Int, end: Int)? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "$") else { return nil }
        var payload = index &+ 1
        guard let length = plainLength(bytes, at: &payload, strictNewline: true), length <= limits.maxBulkLength else { return nil }
        let terminator = payload &+ length
        guard terminator &+ 1 < bytes.count, bytes[terminator] == 13, bytes[terminator &+ 1] == 10 else { return nil }
        return (payload, terminator &+ 2)
    }

    /// A whole top-level array or push whose elements are all `$` (not null), `:` or `+` values:
    /// MGET-style replies and pub/sub messages, which a fan-out sends once per subscriber. The first
    /// element names the pub/sub kind and the second is the channel, exactly as the state machine
    /// reads them.
    @inline(__always)
    private mutating func wholeFlatAggregate(_ bytes: ReadBytes, from start: Int) -> ScannedReply? {
        var index = start + 1
        guard let elements = plainLength(bytes, at: &index, strictNewline: true), elements > 0, elements <= limits.maxMultibulkLength
        else { return nil }
        var offsetSum = 0
        // The content of the first two elements (name, channel) if they are strings, and of the
        // third (the subscription count) if it is an integer.
        var name: (start: Int, end: Int)?
        var channel: (start: Int, end: Int)?
        var count: (start: Int, end: Int)?
        for element in 0..<elements {
            guard index < bytes.count else { return nil }
            let type = bytes[index]
            let contentStart: Int
            let contentEnd: Int
            if type == UInt8(ascii: "$") {
                guard let bulk = Self.wholeBulkString(bytes, at: index, limits: limits) else { return nil }
                contentStart = bulk.payload
                contentEnd = bulk.end &- 2
            } else if type == UInt8(ascii: ":") || type == UInt8(ascii: "+") {
                contentStart = index &+ 1
                guard let end = Self.lineEnd(bytes, from: contentStart) else { return nil }
                contentEnd = end
            } else {
                return nil
            }
            if type == UInt8(ascii: ":") {
                if element == 2 { count = (contentStart, contentEnd) }
            } else {
                if element == 0 {
                    name = (contentStart, contentEnd)
                } else if element == 1 {
                    channel = (contentStart, contentEnd)
                }
            }
            index = contentEnd &+ 2
            offsetSum &+= index &- start
        }
        var pubSub: PubSubMessageKind?
        var channelSlot: HashSlot?
        var subscriptionCount: Int?
        if let name {
            pubSub = PubSubMessageKind(name: bytes.slice(name.start, name.end))
            if pubSub?.isSharded == true, let channel {
                var channelHasher = KeyHasher()
                channelHasher.update(bytes.slice(channel.start, channel.end))
                channelSlot = channelHasher.slot
            }
            if pubSub?.isConfirmation == true, let count {
                capture.reset()
                capture.append(bytes.slice(count.start, count.end))
                subscriptionCount = capture.strictInteger()
            }
        }
        return ScannedReply(
            wireBytes: index - start, type: bytes[start] == UInt8(ascii: "*") ? .array : .push, isNull: false, error: nil,
            simple: nil, pubSub: pubSub, channelSlot: channelSlot, subscriptionCount: subscriptionCount, elementCount: elements,
            elementEndOffsetSum: offsetSum)
    }
}
