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
///
/// Three framers share the scanner: the state machine here, which takes any frame a byte at a
/// time; the whole-frame fast path that `next(in:at:)` tries first (ReplyScanner+WholeFrame.swift);
/// and the lanes a session calls before `next(in:at:)` (ReplyScanner+Lanes.swift).
public struct ReplyScanner {
    /// Depth of the inline nesting stack; `RESPLimits.maxNestingDepth` is clamped to it.
    public static let stackCapacity = 128

    private enum State: UInt8 { case typeByte, line, lineNewline, payload, payloadCR, payloadLF, chunkStart }
    private enum LineKind: UInt8 { case value, header, chunkHeader, endMarker }
    private enum Role: UInt8 { case none, topLevel, pubSubName, channel, subscriptionCount }

    let limits: RESPLimits
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
    var capture = CapturedBytes()
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

    /// Between top-level frames, with no failure. (frameBytes > 0 at depth 0 means an attribute came
    /// first and belongs to the next frame: the state machine takes that.)
    var atFrameBoundary: Bool {
        state == .typeByte && depth == 0 && frameBytes == 0 && failure == nil
    }

    // MARK: state machine

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
                    if let (violation, position) = lineContent(content) {
                        return fail(violation, at: index + position, &offset)
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

    /// Handles a piece of a line's content; nil when fine, else the violation and the offending byte's
    /// position in `content` (so that a failure is at the same byte however the line was cut).
    private mutating func lineContent(_ content: UnsafeRawBufferPointer) -> (ProtocolViolation, Int)? {
        switch lineKind {
        case .value:
            switch role {
            case .none: break
            case .topLevel, .pubSubName, .subscriptionCount: capture.append(content)
            case .channel: hasher.update(content)
            }
        case .header, .chunkHeader:
            for (position, byte) in content.enumerated() {
                headerBytes += 1
                if byte == UInt8(ascii: "?"), headerBytes == 1, lineKind == .header {
                    headerStreamed = true
                } else if headerStreamed || !header.feed(byte) {
                    return (.invalidLength, position)
                }
            }
        case .endMarker:
            return (.invalidLength, 0)
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
        switch aggregateCompleted(wasAttribute: false) {
        case .frame(let reply): return reply
        default: return nil
        }
    }

    /// Propagates the end of a value up the stack. `wasAttribute`: the value that ended is an
    /// attribute, which is not an element of its parent.
    private mutating func aggregateCompleted(wasAttribute: Bool) -> LineOutcome {
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
