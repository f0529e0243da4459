import RESP

/// The request scanner, on client streams of multibulk and inline requests (`inline`: inline lines
/// only). For every way of cutting the stream into reads, with the plain lane first as a session
/// calls it, the scanner finds the same requests ending at the same bytes and fails at the same
/// byte; a byte-by-byte feed takes the state machine alone, a whole feed the fast lanes, so the
/// lanes agree with the general path. Each request is classified as its arguments, re-encoded as a
/// canonical multibulk request, are classified; an inline request's arguments and counted bytes
/// are those of an independent `sdssplitargs`; every complete request is within the limits.
enum RequestTarget {
    enum Event: Equatable {
        case request(ScannedRequest, end: Int)
        case malformed(ProtocolViolation, at: Int)
    }

    static func run(_ input: [UInt8], inlineOnly: Bool) {
        var draws = Draws(input)
        let limits = draws.byte() & 1 == 0 ? RESPLimits.valkeyDefaults
            : RESPLimits(maxBulkLength: 16, maxMultibulkLength: 6, maxInlineLength: 40, maxNestingDepth: 8)
        var stream = Array(input[min(input.count, 1)...])
        if inlineOnly {
            // No line starts a multibulk request.
            for index in stream.indices where stream[index] == UInt8(ascii: "*") && (index == 0 || stream[index - 1] == 10) {
                stream[index] = UInt8(ascii: "+")
            }
        }
        let whole = scan(stream, chunks: [stream.count], limits: limits)
        for chunks in chunkings(of: stream) {
            let events = scan(stream, chunks: chunks, limits: limits)
            require(events == whole, "chunks \(chunks) found \(events), one read \(whole)")
        }
        var previousEnd = 0
        for event in whole {
            switch event {
            case .request(let request, let end):
                require(request.wireBytes > 0 && request.wireBytes <= end - previousEnd, "\(request) ends at \(end) after \(previousEnd)")
                check(request, bytes: Array(stream[(end - request.wireBytes)..<end]), limits: limits)
                previousEnd = end
            case .malformed(.unbalancedQuotes, let at):
                // The line that ends at `at` is one the reference splitter refuses.
                require(stream[at] == 10, "unbalanced quotes reported at byte \(at), not at a line's end")
                let lineStart = max(previousEnd, (stream[..<at].lastIndex(of: 10) ?? -1) + 1)
                // (Unless a skipped `*-1\r` and the byte after it, not a `\n`, came first on that line.)
                if stream[lineStart] == UInt8(ascii: "*") { break }
                var line = Array(stream[lineStart..<at])
                if line.last == 13 { line.removeLast() }
                require(splitArguments(line) == .unbalanced, "the scanner refuses the line \(line)")
            case .malformed:
                break
            }
        }
    }

    /// Scans `stream` cut into `chunks` as a session does: the plain lane, then the general path.
    static func scan(_ stream: [UInt8], chunks: [Int], limits: RESPLimits) -> [Event] {
        var scanner = RequestScanner(commands: .builtIn, limits: limits)
        var events: [Event] = []
        var chunkStart = 0
        for size in chunks {
            let chunk = Array(stream[chunkStart..<(chunkStart + size)])
            let failed = chunk.withUnsafeBytes { bytes -> Bool in
                var offset = 0
                while offset < bytes.count {
                    if let plain = scanner.nextPlain(in: bytes, at: &offset) {
                        events.append(.request(ScannedRequest(plain), end: chunkStart + offset))
                        continue
                    }
                    switch scanner.next(in: bytes, at: &offset) {
                    case .complete(let request): events.append(.request(request, end: chunkStart + offset))
                    case .incomplete: require(offset == bytes.count, "incomplete at \(offset) of \(bytes.count)")
                    case .malformed(let violation):
                        events.append(.malformed(violation, at: chunkStart + offset))
                        return true
                    }
                }
                return false
            }
            if failed { break }
            chunkStart += size
        }
        return events
    }

    /// Checks one complete request against its arguments, classified again as a canonical request.
    static func check(_ request: ScannedRequest, bytes: [UInt8], limits: RESPLimits) {
        let arguments: [[UInt8]]
        switch request.format {
        case .multibulk:
            arguments = multibulkArguments(bytes)
            require(request.countedBytes == request.wireBytes, "multibulk \(request) counts other bytes than its own")
            require(arguments.allSatisfy { $0.count <= limits.maxBulkLength } && arguments.count <= limits.maxMultibulkLength,
                    "a complete request over the limits")
        case .inline:
            require(bytes.last == 10, "an inline request not ending its line: \(bytes)")
            var line = Array(bytes.dropLast())
            require(line.count <= limits.maxInlineLength, "an inline line of \(line.count) bytes is over the limit")
            if line.last == 13 { line.removeLast() }
            guard case .arguments(let split) = splitArguments(line) else {
                require(false, "an inline request the reference splitter refuses: \(bytes)")
                return
            }
            arguments = split
            let counted = arguments.reduce(0) { $0 + $1.count } + arguments.count - 1 + 2
            require(request.countedBytes == counted, "inline \(request) counts \(request.countedBytes), not \(counted)")
        }
        require(request.argumentCount == arguments.count, "\(request) has \(arguments.count) arguments")
        require((request.keyCount == 0) == (request.keys == .none), "\(request): key count and outcome disagree")
        let canonical = RESPEncoder.command(arguments)
        var scanner = RequestScanner(commands: .builtIn, limits: .valkeyDefaults)
        var offset = 0
        let result = canonical.withUnsafeBytes { scanner.next(in: $0, at: &offset) }
        guard case .complete(var again) = result, offset == canonical.count else {
            require(false, "the canonical form of \(request) scans as \(result)")
            return
        }
        again.format = request.format
        again.wireBytes = request.wireBytes
        again.countedBytes = request.countedBytes
        require(again == request, "\(request) is classified as \(again) in canonical form")
    }

    /// The arguments of a multibulk request as the node frames it: the byte after each `\r` and the
    /// two bytes after each payload are skipped unread.
    static func multibulkArguments(_ bytes: [UInt8]) -> [[UInt8]] {
        var index = 0
        func number() -> Int {
            index += 1
            var value = 0
            while bytes[index] != 13 {
                value = value * 10 + Int(bytes[index] - 48)
                index += 1
            }
            index += 2
            return value
        }
        let count = number()
        var arguments: [[UInt8]] = []
        for _ in 0..<count {
            let length = number()
            arguments.append(Array(bytes[index..<(index + length)]))
            index += length + 2
        }
        require(index == bytes.count, "a multibulk request of \(bytes.count) bytes frames \(index)")
        return arguments
    }

    enum Split: Equatable {
        case arguments([[UInt8]])
        case unbalanced
    }

    /// Valkey's `sdssplitargs` on a line (written from its specification, apart from the scanner's
    /// in-place splitter): blanks separate arguments; double quotes take `\n \r \t \b \a \xHH` and
    /// `\c` for any other c; single quotes take `\'`; a closing quote must be followed by a blank or
    /// the end; the line ends at its first NUL.
    static func splitArguments(_ line: [UInt8]) -> Split {
        let text = Array(line.prefix { $0 != 0 })
        func at(_ index: Int) -> UInt8 { index < text.count ? text[index] : 0 }
        func isSpace(_ byte: UInt8) -> Bool { byte == 32 || (9...13).contains(byte) }
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case 48...57: byte - 48
            case 65...70: byte - 55
            case 97...102: byte - 87
            default: nil
            }
        }
        var arguments: [[UInt8]] = []
        var index = 0
        while true {
            while index < text.count, isSpace(text[index]) { index += 1 }
            if index >= text.count { return .arguments(arguments) }
            var current: [UInt8] = []
            var quote: UInt8 = 0
            argument: while true {
                let byte = at(index)
                if quote == 34 {
                    if byte == 92, at(index + 1) == 120, let high = hex(at(index + 2)), let low = hex(at(index + 3)) {
                        current.append(high << 4 | low)
                        index += 3
                    } else if byte == 92, at(index + 1) != 0 {
                        index += 1
                        let escaped: [UInt8: UInt8] = [110: 10, 114: 13, 116: 9, 98: 8, 97: 7]
                        current.append(escaped[at(index)] ?? at(index))
                    } else if byte == 34 {
                        if at(index + 1) != 0 && !isSpace(at(index + 1)) { return .unbalanced }
                        index += 1
                        break argument
                    } else if byte == 0 {
                        return .unbalanced
                    } else {
                        current.append(byte)
                    }
                } else if quote == 39 {
                    if byte == 92, at(index + 1) == 39 {
                        index += 1
                        current.append(39)
                    } else if byte == 39 {
                        if at(index + 1) != 0 && !isSpace(at(index + 1)) { return .unbalanced }
                        index += 1
                        break argument
                    } else if byte == 0 {
                        return .unbalanced
                    } else {
                        current.append(byte)
                    }
                } else if byte == 0 || byte == 32 || byte == 10 || byte == 13 || byte == 9 {
                    if byte != 0 { index += 1 }
                    break argument
                } else if byte == 34 || byte == 39 {
                    quote = byte
                } else {
                    current.append(byte)
                }
                index += 1
            }
            arguments.append(current)
        }
    }
}
