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
        self.classifier = RequestClassifier(table: commands)
    }

    /// Scans `bytes` starting at `offset`. Returns `.complete` with `offset` moved just past the
    /// request's last byte, `.incomplete` with `offset == bytes.count` (everything consumed; call
    /// again with the next chunk, offset 0), or `.malformed` (offset at the offending byte; the
    /// scanner stays failed and every later call returns `.malformed` again).
    public mutating func next(in bytes: UnsafeRawBufferPointer, at offset: inout Int) -> ScanResult<ScannedRequest> {
        if let failure { return .malformed(failure) }
        let count = bytes.count
        var index = offset
        while index < count {
            switch state {
            case .frameStart:
                frameBytes = 0
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
                case .some(.some(let request)):
                    offset = index
                    return .complete(request)
                case .some(.none):
                    continue  // empty line: not a request
                case .none:
                    return fail(.unbalancedQuotes, at: index - 1, &offset)
                }
            }
        }
        offset = count
        return .incomplete
    }

    private mutating func fail(_ violation: ProtocolViolation, at position: Int, _ offset: inout Int) -> ScanResult<ScannedRequest> {
        failure = violation
        offset = position
        return .malformed(violation)
    }

    /// Splits a complete inline line. nil: unbalanced quotes; .some(nil): no arguments.
    private mutating func finishInline(_ buffer: InlineLineBuffer) -> ScannedRequest?? {
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
            case .unbalanced: return nil
            }
        }
        if argc == 0 { return .some(nil) }
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
        return classifier.finish(
            format: .inline, wireBytes: frameBytes, countedBytes: argumentBytes + (argc - 1) + 2)
    }
}
