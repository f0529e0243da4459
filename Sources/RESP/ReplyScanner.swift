/// Finds reply boundaries in a node's byte stream (every RESP2/RESP3 type) and classifies each
/// top-level frame, without buffering values. One per node connection; resumable at any byte.
///
/// ```
///   lines       + - : , ( # _         <type><text>\r\n
///   blobs       $ = !                 <type><len>\r\n<len bytes>\r\n      ($-1: null)
///   streamed    $?\r\n  (;<len>\r\n<bytes>\r\n)*  ;0\r\n
///   aggregates  * ~ > (N elements)  % | (2N elements)      (*-1: null)
///   streamed    *? ~? >? %?  ...elements...  .\r\n
///   attribute   |N precedes a value and belongs to that value's frame; it is not an element
/// ```
/// Nesting is tracked in a fixed inline stack of `stackCapacity` levels:
/// ```
///   remaining[d]   elements still expected at depth d (-1: streamed, ends with ".")
///   attribute[d]   the aggregate at depth d is an attribute
/// ```
/// Unlike the request side, replies are checked strictly (`\r\n` after every line and payload):
/// they come from the node, so any deviation means the stream is not understood.
public struct ReplyScanner {
    /// Depth of the inline nesting stack; `RESPLimits.maxNestingDepth` is clamped to it.
    public static let stackCapacity = 128

    private enum State: UInt8 { case typeByte, line, lineNewline, payload, payloadCR, payloadLF, chunkStart }
    private enum LineKind: UInt8 { case value, header, chunkHeader, endMarker }
    private enum Role: UInt8 { case none, topLevel, pubSubName, channel, subscriptionCount }

    private let limits: RESPLimits
    private let maxDepth: Int
    private var state = State.typeByte
    private var failure: ProtocolViolation?

    // Current value.
    private var typeByte: UInt8 = 0
    private var lineKind = LineKind.value
    private var role = Role.none
    private var header = LengthParser()
    private var headerStreamed = false
    private var headerBytes = 0
    private var payloadLeft = 0
    private var inStreamedString = false
    private var capture = CapturedBytes()
    private var hasher = KeyHasher()

    // Nesting.
    private var depth = 0
    private var remaining = InlineArray<128, Int>(repeating: 0)
    private var attribute = InlineArray<128, Bool>(repeating: false)

    // Current top-level frame.
    private var frameBytes = 0
    private var valueStart = 0
    private var topType = ReplyType.null
    private var isNull = false
    private var error: ReplyError?
    private var simple: SimpleReply?
    private var pubSub: PubSubMessageKind?
    private var channelSlot: HashSlot?
    private var subscriptionCount: Int?
    private var elementCount = 0
    private var elementEndOffsetSum = 0

    public init(limits: RESPLimits = .valkeyDefaults) {
        self.limits = limits
        self.maxDepth = min(max(limits.maxNestingDepth, 0), ReplyScanner.stackCapacity)
    }

    /// Scans `bytes` starting at `offset`; same contract as `RequestScanner.next(in:at:)`.
    public mutating func next(in bytes: UnsafeRawBufferPointer, at offset: inout Int) -> ScanResult<ScannedReply> {
        // A whole simple frame at a frame boundary, without entering the state machine (whose frame
        // is large to set up).
        if atFrameBoundary, offset < bytes.count, let reply = wholeSimpleReply(bytes, from: offset) {
            offset += reply.wireBytes
            return .complete(reply)
        }
        return scanStateByState(bytes, at: &offset)
    }

    /// The plain lane: the reply at `offset` if it is a `PlainReply` that is whole in `bytes` and
    /// starts at a frame boundary, with `offset` moved past it; nil with nothing changed otherwise
    /// (then `next(in:at:)` takes it). A session answering ordinary commands calls this first, so
    /// most replies are framed without a `ScannedReply`.
    @inline(__always)
    public mutating func nextPlain(in bytes: UnsafeRawBufferPointer, at offset: inout Int) -> PlainReply? {
        guard atFrameBoundary, offset < bytes.count, let reply = Self.plainReply(ReadBytes(bytes), from: offset, limits: limits) else { return nil }
        offset &+= reply.wireBytes
        return reply
    }

    /// The message lane: the whole classic messages from `offset` on (one or more, back to back, all
    /// of the first one's type), if it starts at a frame boundary; nil otherwise. It does not move
    /// `offset`: whether such frames are messages (out of band) or the reply to a command depends on
    /// the connection's state, so the caller decides, and skips `wireBytes` if it takes them. A
    /// fan-out delivers one message per subscriber per publish, and a subscriber reads many at once.
    /// (`mutating` though it changes nothing: a scanner is large, and a non-mutating call on one
    /// stored in a class copies it.)
    @inline(__always)
    public mutating func plainMessages(in buffer: UnsafeRawBufferPointer, at offset: Int) -> PlainMessages? {
        guard atFrameBoundary, offset < buffer.count else { return nil }
        let bytes = ReadBytes(buffer)
        let type = bytes[offset]
        guard type == UInt8(ascii: "*") || type == UInt8(ascii: ">"),
            let first = Self.classicMessageFrame(bytes, from: offset, limits: limits)
        else { return nil }
        // Messages on one channel with payloads of one length have the same header (everything up
        // to the payload) byte for byte: a message whose header equals the last one framed in full
        // is framed by that comparison and its terminator.
        var framed = offset
        var headerLength = first.payload &- offset
        var frameLength = first.end &- offset
        var end = first.end
        while end < bytes.count, bytes[end] == type {
            let next = end &+ frameLength
            if next <= bytes.count, bytes.bytesEqual(framed, end, count: headerLength), bytes[next &- 2] == 13, bytes[next &- 1] == 10 {
                end = next
                continue
            }
            guard let frame = Self.classicMessageFrame(bytes, from: end, limits: limits) else { break }
            framed = end
            headerLength = frame.payload &- end
            frameLength = frame.end &- end
            end = frame.end
        }
        return PlainMessages(wireBytes: end &- offset, arePushes: type == UInt8(ascii: ">"))
    }

    /// Between top-level frames, with no failure. (frameBytes > 0 at depth 0 means an attribute came
    /// first and belongs to the next frame: the state machine takes that.)
    private var atFrameBoundary: Bool {
        state == .typeByte && depth == 0 && frameBytes == 0 && failure == nil
    }

    /// `next(in:at:)` for every frame the fast path does not take.
    @inline(never)
    private mutating func scanStateByState(_ bytes: UnsafeRawBufferPointer, at offset: inout Int) -> ScanResult<ScannedReply> {
        if let failure { return .malformed(failure) }
        let count = bytes.count
        var index = offset
        while index < count {
            switch state {
            case .typeByte:
                let byte = bytes[index]
                if let violation = startValue(byte) { return fail(violation, at: index, &offset) }
                index += 1
                frameBytes += 1

            case .line:
                // Stream the line's content up to '\r'.
                var end = index
                while end < count, bytes[end] != 13 { end += 1 }
                if end > index {
                    let content = UnsafeRawBufferPointer(rebasing: bytes[index..<end])
                    if let violation = lineContent(content) {
                        return fail(violation, at: index, &offset)
                    }
                    frameBytes += end - index
                    index = end
                }
                if index < count {
                    index += 1
                    frameBytes += 1
                    state = .lineNewline
                }

            case .lineNewline:
                guard bytes[index] == 10 else { return fail(.missingCRLF, at: index, &offset) }
                index += 1
                frameBytes += 1
                switch lineEnded() {
                case .failure(let violation): return fail(violation, at: index - 1, &offset)
                case .frame(let reply):
                    offset = index
                    return .complete(reply)
                case .more: break
                }

            case .payload:
                let take = min(payloadLeft, count - index)
                if take > 0 {
                    let content = UnsafeRawBufferPointer(rebasing: bytes[index..<index + take])
                    switch role {
                    case .none, .subscriptionCount: break
                    case .topLevel, .pubSubName: capture.append(content)
                    case .channel: hasher.update(content)
                    }
                    index += take
                    frameBytes += take
                    payloadLeft -= take
                }
                if payloadLeft == 0 { state = .payloadCR }

            case .payloadCR:
                guard bytes[index] == 13 else { return fail(.missingCRLF, at: index, &offset) }
                index += 1
                frameBytes += 1
                state = .payloadLF

            case .payloadLF:
                guard bytes[index] == 10 else { return fail(.missingCRLF, at: index, &offset) }
                index += 1
                frameBytes += 1
                if inStreamedString {
                    state = .chunkStart
                } else if let reply = valueCompleted() {
                    offset = index
                    return .complete(reply)
                }

            case .chunkStart:
                guard bytes[index] == UInt8(ascii: ";") else { return fail(.unexpectedEnd, at: index, &offset) }
                index += 1
                frameBytes += 1
                beginLine(.chunkHeader)
            }
        }
        offset = count
        return .incomplete
    }

    // MARK: fast path

    // A whole top-level `+`, `-`, `:` or `$` reply inside one chunk (most replies) is classified in
    // one step, with the same outcome as the state machine. Anything else — aggregates, other
    // types, a reply continuing past the chunk, a length the fast path does not take — goes to the
    // state machine from the same byte, which decides.

    /// The reply starting at `start` if it is a whole simple one; nil otherwise (nothing changed).
    @inline(__always)
    private mutating func wholeSimpleReply(_ buffer: UnsafeRawBufferPointer, from start: Int) -> ScannedReply? {
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
    private static func plainReply(_ bytes: ReadBytes, from start: Int, limits: RESPLimits) -> PlainReply? {
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

    /// Frames a classic pub/sub message as Valkey writes it at `start` (a `*` or `>`): `3`,
    /// `$7\r\nmessage`, then the channel and the payload as bulk strings. A fan-out delivers one per
    /// subscriber per publish, so the 16 bytes after the type byte are compared as two words and only
    /// the two lengths are parsed. The same frame in any other spelling is not a `PlainMessages`; the
    /// general path (`wholeFlatAggregate`) frames every spelling. Returns where the payload starts and
    /// where the frame ends.
    @inline(__always)
    private static func classicMessageFrame(_ bytes: ReadBytes, from start: Int, limits: RESPLimits) -> (payload: Int, end: Int)? {
        let nameEnd = start &+ 17
        guard nameEnd < bytes.count,
            bytes.word(at: start &+ 1) == word("3\r\n$7\r\nm"),
            bytes.word(at: start &+ 9) == word("essage\r\n"),
            let channel = wholeBulkString(bytes, at: nameEnd, limits: limits),
            let payload = wholeBulkString(bytes, at: channel.end, limits: limits)
        else { return nil }
        return (payload.payload, payload.end)
    }

    /// The position of the `\r` of the first `\r\n` at or after `index`, if the line ends in `bytes`.
    @inline(__always)
    private static func lineEnd(_ bytes: ReadBytes, from index: Int) -> Int? {
        var end = index
        while end < bytes.count, bytes[end] != 13 { end &+= 1 }
        guard end &+ 1 < bytes.count, bytes[end &+ 1] == 10 else { return nil }
        return end
    }

    /// The bulk string whose `$` is at `index`, if it has a plain length within the limits and is
    /// whole in `bytes` with its `\r\n`: where its payload starts and where it ends.
    @inline(__always)
    private static func wholeBulkString(
        _ bytes: ReadBytes, at index: Int, limits: RESPLimits
    ) -> (payload: Int, end: Int)? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "$") else { return nil }
        var payload = index &+ 1
        guard let length = plainLength(bytes, at: &payload, strictNewline: true), length <= limits.maxBulkLength else { return nil }
        let terminator = payload &+ length
        guard terminator &+ 1 < bytes.count, bytes[terminator] == 13, bytes[terminator &+ 1] == 10 else { return nil }
        return (payload, terminator &+ 2)
    }

    /// The eight bytes of `text` as a word in memory order, to compare with a word of the stream.
    @inline(__always)
    private static func word(_ text: StaticString) -> UInt64 {
        precondition(text.utf8CodeUnitCount == 8)
        return UnsafeRawPointer(text.utf8Start).loadUnaligned(as: UInt64.self)
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
        // The first two string elements (name, channel) as start and length; -1: not a string.
        var nameStart = -1
        var nameLength = 0
        var channelStart = -1
        var channelLength = 0
        // The third element when it is an integer, as start and length; -1: it is not.
        var countStart = -1
        var countLength = 0
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
                if element == 2 {
                    countStart = contentStart
                    countLength = contentEnd &- contentStart
                }
            } else {
                if element == 0 {
                    nameStart = contentStart
                    nameLength = contentEnd &- contentStart
                } else if element == 1 {
                    channelStart = contentStart
                    channelLength = contentEnd &- contentStart
                }
            }
            index = contentEnd &+ 2
            offsetSum &+= index &- start
        }
        var pubSub: PubSubMessageKind?
        var channelSlot: HashSlot?
        var subscriptionCount: Int?
        if nameStart >= 0 {
            pubSub = PubSubMessageKind(name: bytes.slice(nameStart, nameStart &+ nameLength))
            if pubSub?.isSharded == true, channelStart >= 0 {
                var channelHasher = KeyHasher()
                channelHasher.update(bytes.slice(channelStart, channelStart &+ channelLength))
                channelSlot = channelHasher.slot
            }
            if pubSub?.isConfirmation == true, countStart >= 0 {
                capture.reset()
                capture.append(bytes.slice(countStart, countStart &+ countLength))
                subscriptionCount = capture.strictInteger()
            }
        }
        return ScannedReply(
            wireBytes: index - start, type: bytes[start] == UInt8(ascii: "*") ? .array : .push, isNull: false, error: nil,
            simple: nil, pubSub: pubSub, channelSlot: channelSlot, subscriptionCount: subscriptionCount, elementCount: elements,
            elementEndOffsetSum: offsetSum)
    }

    private mutating func fail(_ violation: ProtocolViolation, at position: Int, _ offset: inout Int) -> ScanResult<ScannedReply> {
        failure = violation
        offset = position
        return .malformed(violation)
    }

    private mutating func beginLine(_ kind: LineKind) {
        lineKind = kind
        header = LengthParser()
        headerStreamed = false
        headerBytes = 0
        state = .line
    }

    /// Whether the value now starting is an element of the top-level aggregate.
    private var atTopElement: Bool { depth == 1 && !attribute[0] }

    /// Handles a type byte; nil when fine.
    private mutating func startValue(_ byte: UInt8) -> ProtocolViolation? {
        typeByte = byte
        if byte == UInt8(ascii: ".") {
            guard depth > 0, remaining[depth - 1] < 0 else { return .unexpectedEnd }
            role = .none
            beginLine(.endMarker)
            return nil
        }
        if byte == UInt8(ascii: "|") {
            role = .none
        } else {
            guard let type = ReplyType(typeByte: byte) else { return .invalidTypeByte(byte) }
            let isString = byte == UInt8(ascii: "$") || byte == UInt8(ascii: "+")
            if depth == 0 {
                topType = type
                valueStart = frameBytes
                role = .topLevel
            } else if atTopElement, isString, topType == .array || topType == .push, elementCount == 0 {
                role = .pubSubName
            } else if atTopElement, isString, pubSub?.isSharded == true, elementCount == 1 {
                role = .channel
            } else if atTopElement, byte == UInt8(ascii: ":"), pubSub?.isConfirmation == true, elementCount == 2 {
                role = .subscriptionCount
            } else {
                role = .none
            }
        }
        if role != .none { capture.reset() }
        if role == .channel { hasher = KeyHasher() }
        switch byte {
        case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: ":"), UInt8(ascii: ","), UInt8(ascii: "("),
             UInt8(ascii: "#"), UInt8(ascii: "_"):
            beginLine(.value)
        default:
            beginLine(.header)
        }
        return nil
    }

    /// Handles a piece of a line's content.
    private mutating func lineContent(_ content: UnsafeRawBufferPointer) -> ProtocolViolation? {
        switch lineKind {
        case .value:
            switch role {
            case .none: break
            case .topLevel, .pubSubName, .subscriptionCount: capture.append(content)
            case .channel: hasher.update(content)
            }
        case .header, .chunkHeader:
            for byte in content {
                headerBytes += 1
                if byte == UInt8(ascii: "?"), headerBytes == 1, lineKind == .header {
                    headerStreamed = true
                } else if headerStreamed || !header.feed(byte) {
                    return .invalidLength
                }
            }
        case .endMarker:
            return .invalidLength
        }
        return nil
    }

    private enum LineOutcome { case more, frame(ScannedReply), failure(ProtocolViolation) }

    /// Handles the end of a line (after its `\r\n`).
    private mutating func lineEnded() -> LineOutcome {
        switch lineKind {
        case .value:
            if depth == 0 {
                switch typeByte {
                case UInt8(ascii: "-"): error = ReplyError(message: capture)
                case UInt8(ascii: "+"): simple = SimpleReply(line: capture)
                case UInt8(ascii: "_"): isNull = true
                default: break
                }
            }
            return complete()

        case .endMarker:
            depth -= 1
            return aggregateCompleted(wasAttribute: attribute[depth])

        case .chunkHeader:
            guard let length = header.value, length >= 0 else { return .failure(.invalidLength) }
            guard length <= limits.maxBulkLength else { return .failure(.bulkTooLarge) }
            if length == 0 {
                inStreamedString = false
                return complete()
            }
            payloadLeft = length
            state = .payload
            return .more

        case .header:
            let isAggregate = typeByte == UInt8(ascii: "*") || typeByte == UInt8(ascii: "%")
                || typeByte == UInt8(ascii: "~") || typeByte == UInt8(ascii: ">") || typeByte == UInt8(ascii: "|")
            if headerStreamed {
                if typeByte == UInt8(ascii: "$") {
                    inStreamedString = true
                    state = .chunkStart
                    return .more
                }
                guard isAggregate, typeByte != UInt8(ascii: "|") else { return .failure(.invalidLength) }
                return push(count: -1, isAttribute: false)
            }
            guard let length = header.value else { return .failure(.invalidLength) }
            if length == -1, typeByte == UInt8(ascii: "$") || typeByte == UInt8(ascii: "*") {
                if depth == 0 { isNull = true }
                if role == .channel { role = .none }  // a null channel has no slot
                return complete()
            }
            guard length >= 0 else { return .failure(.invalidLength) }
            if isAggregate {
                guard length <= limits.maxMultibulkLength else { return .failure(.invalidLength) }
                let isPairs = typeByte == UInt8(ascii: "%") || typeByte == UInt8(ascii: "|")
                let elements = isPairs ? length * 2 : length
                let isAttribute = typeByte == UInt8(ascii: "|")
                if elements == 0 {
                    return isAttribute ? attributeDone() : complete()
                }
                return push(count: elements, isAttribute: isAttribute)
            }
            guard length <= limits.maxBulkLength else { return .failure(.bulkTooLarge) }
            payloadLeft = length
            state = .payload
            return .more
        }
    }

    private mutating func push(count: Int, isAttribute: Bool) -> LineOutcome {
        guard depth < maxDepth else { return .failure(.nestingTooDeep) }
        remaining[depth] = count
        attribute[depth] = isAttribute
        depth += 1
        state = .typeByte
        return .more
    }

    /// An attribute ended: the value it describes follows.
    private mutating func attributeDone() -> LineOutcome {
        state = .typeByte
        return .more
    }

    /// A scalar (or empty aggregate) value ended.
    private mutating func complete() -> LineOutcome {
        if let reply = valueCompleted() { return .frame(reply) }
        return .more
    }

    private mutating func valueCompleted() -> ScannedReply? {
        switch role {
        case .pubSubName: pubSub = PubSubMessageKind(name: capture)
        case .channel: channelSlot = hasher.slot
        case .subscriptionCount: subscriptionCount = capture.strictInteger()
        case .topLevel:
            if typeByte == UInt8(ascii: "!") { error = ReplyError(message: capture) }
        case .none: break
        }
        role = .none
        switch aggregateCompleted(wasAttribute: false, scalar: true) {
        case .frame(let reply): return reply
        default: return nil
        }
    }

    /// Propagates the end of a value up the stack. `wasAttribute`: the value that ended is an
    /// attribute, which is not an element of its parent.
    private mutating func aggregateCompleted(wasAttribute: Bool, scalar: Bool = false) -> LineOutcome {
        var attributeEnded = wasAttribute
        state = .typeByte
        while true {
            if attributeEnded { return .more }
            if depth == 0 { return .frame(emit()) }
            if atTopElement {
                elementCount += 1
                elementEndOffsetSum += frameBytes - valueStart
            }
            let top = depth - 1
            guard remaining[top] > 0 else { return .more }  // streamed: stays open until "."
            remaining[top] -= 1
            if remaining[top] > 0 { return .more }
            depth -= 1
            attributeEnded = attribute[top]
        }
    }

    private mutating func emit() -> ScannedReply {
        let reply = ScannedReply(
            wireBytes: frameBytes, type: topType, isNull: isNull, error: error, simple: simple,
            pubSub: pubSub, channelSlot: pubSub == nil ? nil : channelSlot, subscriptionCount: subscriptionCount,
            elementCount: elementCount, elementEndOffsetSum: elementEndOffsetSum)
        frameBytes = 0
        valueStart = 0
        isNull = false
        error = nil
        simple = nil
        pubSub = nil
        channelSlot = nil
        subscriptionCount = nil
        elementCount = 0
        elementEndOffsetSum = 0
        state = .typeByte
        return reply
    }
}
