/// Finds request boundaries in a client's byte stream and classifies each request, without
/// buffering values. One per client connection; resumable at any byte.
///
/// ```
///   multibulk   *N\r\n  ( $len\r\n <len bytes> \r\n ) × N
///               N <= 0: consumed silently, not a request (Valkey ignores it)
///   inline      anything else up to \n (optional \r before it), split like sdssplitargs;
///               an empty line is not a request
/// ```
/// NOTE: like `networking.c:processMultibulkBuffer`, the byte after a header's `\r` and the two
/// bytes after a payload are skipped without checking that they are `\n` / `\r\n`: the node
/// frames the stream that way, so the proxy must too. Lengths follow `string2ll` (no `+`, no
/// leading zeros). Valkey's "unauthenticated multibulk length" limits are not mirrored (the
/// scanner does not know whether the client authenticated).
///
/// Memory: fixed-size state plus, after the first inline request, one `maxInlineLength` buffer.
public struct RequestScanner {
    private enum State: UInt8 {
        case frameStart, multibulkLength, multibulkNewline
        case bulkDollar, bulkLength, bulkNewline, payload, payloadTerminator, payloadEnd
        case inlineLine
    }

    private let limits: RESPLimits
    private let table: CommandTable
    private var classifier: RequestClassifier
    private var state = State.frameStart
    private var length = LengthParser()
    private var argumentsLeft = 0
    private var payloadLeft = 0
    private var frameBytes = 0
    private var failure: ProtocolViolation?
    private var inline: InlineLineBuffer?

    public init(commands: CommandTable, limits: RESPLimits = .valkeyDefaults) {
        self.limits = limits
        self.table = commands
        self.classifier = RequestClassifier(table: commands)
    }

    /// Between requests, with no failure: everything read so far was requests or skipped (an empty
    /// line, `*0`), none of it belongs to the next request.
    public var isBetweenRequests: Bool { state == .frameStart && failure == nil }

    /// Scans `bytes` starting at `offset`. Returns `.complete` with `offset` moved just past the
    /// request's last byte, `.incomplete` with `offset == bytes.count` (everything consumed; call
    /// again with the next chunk, offset 0), or `.malformed` (offset at the offending byte; the
    /// scanner stays failed and every later call returns `.malformed` again).
    public mutating func next(in bytes: UnsafeRawBufferPointer, at offset: inout Int) -> ScanResult<ScannedRequest> {
        if let request = nextPlain(in: bytes, at: &offset) { return .complete(ScannedRequest(request)) }
        // The next most common case, a whole multibulk request at a request boundary, without
        // entering the state machine (whose frame is large to set up).
        if state == .frameStart, failure == nil, offset < bytes.count, bytes[offset] == UInt8(ascii: "*"),
            let request = scanWholeMultibulk(bytes, from: offset, offset: &offset)
        {
            return .complete(request)
        }
        return scanStateByState(bytes, at: &offset)
    }

    /// The plain lane: the request at `offset` if it is a `PlainRequest` that is whole in `bytes`
    /// and starts at a request boundary, with `offset` moved past it; nil with nothing changed
    /// otherwise (then `next(in:at:)` takes it). A session calls this first for each request, so
    /// most requests are framed, looked up and hashed in one pass over their bytes, with no state
    /// machine, no classifier and no `ScannedRequest`.
    @inline(__always)
    public mutating func nextPlain(in bytes: UnsafeRawBufferPointer, at offset: inout Int) -> PlainRequest? {
        guard state == .frameStart, failure == nil, offset < bytes.count, bytes[offset] == UInt8(ascii: "*"),
            let (request, end) = Self.plainRequest(ReadBytes(bytes), from: offset, limits: limits, table: table)
        else { return nil }
        offset = end
        return request
    }

    /// `next(in:at:)` for everything else; the whole-request fast path is taken again for each
    /// request that starts after the first (past an empty line or a `*0`).
    @inline(never)
    private mutating func scanStateByState(_ bytes: UnsafeRawBufferPointer, at offset: inout Int) -> ScanResult<ScannedRequest> {
        if let failure { return .malformed(failure) }
        let count = bytes.count
        let first = offset
        var index = offset
        while index < count {
            switch state {
            case .frameStart:
                frameBytes = 0
                if bytes[index] == UInt8(ascii: "*"), index != first, let request = scanWholeMultibulk(bytes, from: index, offset: &offset) {
                    return .complete(request)
                }
                if bytes[index] == UInt8(ascii: "*") {
                    index += 1
                    frameBytes = 1
                    length = LengthParser()
                    state = .multibulkLength
                } else {
                    if inline == nil { inline = InlineLineBuffer(capacity: limits.maxInlineLength) }
                    inline?.count = 0
                    state = .inlineLine
                }

            case .multibulkLength:
                let byte = bytes[index]
                if byte == 13 {
                    state = .multibulkNewline
                } else if !length.feed(byte) {
                    return fail(.invalidMultibulkLength, at: index, &offset)
                }
                index += 1
                frameBytes += 1

            case .multibulkNewline:
                guard let value = length.value, value <= limits.maxMultibulkLength else {
                    return fail(.invalidMultibulkLength, at: index, &offset)
                }
                index += 1
                frameBytes += 1
                if value <= 0 {
                    state = .frameStart
                } else {
                    argumentsLeft = value
                    classifier.begin(argumentCount: value)
                    state = .bulkDollar
                }

            case .bulkDollar:
                let byte = bytes[index]
                guard byte == UInt8(ascii: "$") else { return fail(.expectedDollar(got: byte), at: index, &offset) }
                index += 1
                frameBytes += 1
                length = LengthParser()
                state = .bulkLength

            case .bulkLength:
                let byte = bytes[index]
                if byte == 13 {
                    state = .bulkNewline
                } else if !length.feed(byte) {
                    return fail(.invalidBulkLength, at: index, &offset)
                }
                index += 1
                frameBytes += 1

            case .bulkNewline:
                guard let value = length.value, value >= 0 else { return fail(.invalidBulkLength, at: index, &offset) }
                guard value <= limits.maxBulkLength else { return fail(.bulkTooLarge, at: index, &offset) }
                index += 1
                frameBytes += 1
                payloadLeft = value
                classifier.beginArgument()
                state = .payload

            case .payload:
                let take = min(payloadLeft, count - index)
                if take > 0 {
                    classifier.append(UnsafeRawBufferPointer(rebasing: bytes[index..<index + take]))
                    index += take
                    frameBytes += take
                    payloadLeft -= take
                }
                if payloadLeft == 0 { state = .payloadTerminator }

            case .payloadTerminator:
                index += 1
                frameBytes += 1
                state = .payloadEnd

            case .payloadEnd:
                index += 1
                frameBytes += 1
                classifier.endArgument()
                argumentsLeft -= 1
                if argumentsLeft == 0 {
                    state = .frameStart
                    offset = index
                    return .complete(classifier.finish(format: .multibulk, wireBytes: frameBytes, countedBytes: frameBytes))
                }
                state = .bulkDollar

            case .inlineLine:
                guard let buffer = inline else { preconditionFailure("inline buffer missing") }
                var end = index
                while end < count, bytes[end] != 10 { end += 1 }
                let piece = end - index
                if buffer.count + piece > buffer.capacity {
                    return fail(.inlineTooLong, at: index + (buffer.capacity - buffer.count), &offset)
                }
                if piece > 0 {
                    (buffer.base + buffer.count).copyMemory(from: bytes.baseAddress! + index, byteCount: piece)
                    buffer.count += piece
                }
                frameBytes += piece
                index = end
                guard end < count else { break }
                index += 1
                frameBytes += 1
                state = .frameStart
                switch finishInline(buffer) {
                case .request(let request):
                    offset = index
                    return .complete(request)
                case .blank:
                    continue
                case .unbalancedQuotes:
                    return fail(.unbalancedQuotes, at: index - 1, &offset)
                }
            }
        }
        offset = count
        return .incomplete
    }

    // MARK: fast paths

    // A whole multibulk request inside one chunk (the common case) is framed from its lengths alone,
    // without a state transition per header byte: by the plain lane for the commands it takes, by
    // `scanWholeMultibulk` (feeding the classifier argument by argument, the same calls the state
    // machine makes) for the others. Anything else — a request continuing past the chunk, an inline
    // request, a length the fast paths do not take (a sign, a leading zero, 19+ digits, over a
    // limit) — goes to the state machine from the same byte, which decides.

    /// The plain request at `start` (its `*`) and its end, if it is whole in `bytes` with plain
    /// lengths and its command is known, has no special effect and finds its keys by a plain
    /// position range; nil otherwise. The answers are the classifier's for such a request: keys
    /// are hashed in Valkey's order as their arguments go by. Requires `start < bytes.count`.
    @inline(__always)
    private static func plainRequest(
        _ bytes: ReadBytes, from start: Int, limits: RESPLimits, table: CommandTable
    ) -> (PlainRequest, end: Int)? {
        var index: Int
        let arguments: Int
        let name: Int
        let word = start &+ 8 <= bytes.count ? bytes.word(at: start) : 0
        if word & 0x00FF_00FF_00FF_00FF == 0x000D_0024_000D_002A {
            // `*A\r?$L\r?` with one digit each (nearly every request): both headers from one word.
            let argumentDigit = UInt8(truncatingIfNeeded: word &>> 8) &- 48
            let lengthDigit = UInt8(truncatingIfNeeded: word &>> 40) &- 48
            guard argumentDigit &- 1 < 9, lengthDigit < 10 else { return nil }
            arguments = Int(argumentDigit)
            name = start &+ 8
            index = name &+ Int(lengthDigit) &+ 2
            guard index <= bytes.count, arguments <= limits.maxMultibulkLength, Int(lengthDigit) <= limits.maxBulkLength else { return nil }
        } else {
            index = start &+ 1
            guard let argumentCount = plainLength(bytes, at: &index, strictNewline: false), argumentCount > 0,
                argumentCount <= limits.maxMultibulkLength,
                let nameStart = plainArgument(bytes, at: &index, limits: limits)
            else { return nil }
            arguments = argumentCount
            name = nameStart
        }
        let entryIndex = table.find(in: bytes.slice(0, bytes.count), at: name, length: index &- 2 &- name)
        guard entryIndex >= 0 else { return nil }
        let entry = table.entries[entryIndex]
        guard entry.special == .none, !entry.flags.contains(.container), !entry.flags.contains(.blockingWithToken) else { return nil }
        // Key positions: nextKey, nextKey + step, … through lastKey (none when lastKey < nextKey).
        var nextKey = Int.max
        var lastKey = 0
        var step = 1
        switch entry.plan {
        case .none:
            break
        case .range(let first, let last, let rangeStep):
            if let range = KeyPlan.legacyRange(first: first, last: last, step: rangeStep, argumentCount: arguments),
                range.first <= range.last
            {
                (nextKey, lastKey, step) = range
            }
        default:
            return nil
        }
        var keys = KeySlots()
        for argument in 1..<arguments {
            guard let argumentStart = plainArgument(bytes, at: &index, limits: limits) else { return nil }
            if argument == nextKey {
                keys.add(KeyHasher.slot(ofWholeKey: bytes.slice(argumentStart, index &- 2)))
                nextKey = argument &+ step <= lastKey ? argument &+ step : Int.max
            }
        }
        let request = PlainRequest(
            wireBytes: index &- start, argumentCount: arguments, entryIndex: entryIndex, keys: keys.outcome,
            keyCount: keys.count, arityIsValid: entry.accepts(argumentCount: arguments),
            isBlocking: entry.flags.contains(.blocking), isWrite: entry.flags.contains(.write))
        return (request, index)
    }

    /// Frames the bulk argument at `index` (its `$`) if it is whole in `bytes` with a plain length:
    /// returns where its bytes start and moves `index` past its terminator; nil otherwise.
    @inline(__always)
    private static func plainArgument(_ bytes: ReadBytes, at index: inout Int, limits: RESPLimits) -> Int? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "$") else { return nil }
        var payload = index &+ 1
        guard let length = plainLength(bytes, at: &payload, strictNewline: false), length <= limits.maxBulkLength else { return nil }
        let end = payload &+ length &+ 2
        guard end <= bytes.count else { return nil }
        index = end
        return payload
    }

    /// Frames and classifies the multibulk request at `start` if all of it is in `bytes` and every
    /// length is plain; nil (nothing changed) otherwise. On success `offset` is its end.
    @inline(__always)
    private mutating func scanWholeMultibulk(_ buffer: UnsafeRawBufferPointer, from start: Int, offset: inout Int) -> ScannedRequest? {
        let bytes = ReadBytes(buffer)
        var index = start &+ 1
        guard let arguments = plainLength(bytes, at: &index, strictNewline: false), arguments > 0,
            arguments <= limits.maxMultibulkLength
        else { return nil }
        let first = index
        for _ in 0..<arguments {
            guard Self.plainArgument(bytes, at: &index, limits: limits) != nil else { return nil }
        }
        offset = index
        classifier.begin(argumentCount: arguments)
        index = first
        for _ in 0..<arguments {
            let argument = Self.plainArgument(bytes, at: &index, limits: limits).unsafelyUnwrapped
            classifier.beginArgument()
            if index &- 2 > argument { classifier.append(bytes.slice(argument, index &- 2)) }
            classifier.endArgument()
        }
        return classifier.finish(format: .multibulk, wireBytes: offset &- start, countedBytes: offset &- start)
    }

    private mutating func fail(_ violation: ProtocolViolation, at position: Int, _ offset: inout Int) -> ScanResult<ScannedRequest> {
        failure = violation
        offset = position
        return .malformed(violation)
    }

    /// What a complete inline line holds.
    private enum InlineLine {
        case request(ScannedRequest)
        /// No arguments: not a request; the node skips such a line too.
        case blank
        /// A quote that does not close: a protocol error, as on the node.
        case unbalancedQuotes
    }

    /// Splits a complete inline line.
    private mutating func finishInline(_ buffer: InlineLineBuffer) -> InlineLine {
        var length = buffer.count
        if length > 0, buffer.base.load(fromByteOffset: length - 1, as: UInt8.self) == 13 { length -= 1 }
        length = InlineSplitter.cStringLength(buffer.base, length: length)
        // Pass 1: count (argc is needed before the first argument is classified).
        var cursor = 0
        var argc = 0
        countLoop: while true {
            switch InlineSplitter.next(buffer.base, length: length, cursor: &cursor, write: false) {
            case .argument: argc += 1
            case .end: break countLoop
            case .unbalanced: return .unbalancedQuotes
            }
        }
        if argc == 0 { return .blank }
        // Pass 2: unescape in place and classify.
        classifier.begin(argumentCount: argc)
        cursor = 0
        var argumentBytes = 0
        while case .argument(let start, let argumentLength) =
            InlineSplitter.next(buffer.base, length: length, cursor: &cursor, write: true) {
            classifier.beginArgument()
            classifier.append(UnsafeRawBufferPointer(start: buffer.base + start, count: argumentLength))
            classifier.endArgument()
            argumentBytes += argumentLength
        }
        return .request(classifier.finish(
            format: .inline, wireBytes: frameBytes, countedBytes: argumentBytes + (argc - 1) + 2))
    }
}
