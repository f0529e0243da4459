import RESP

/// The reply scanner, on node streams: raw bytes, or frames that the input spells as valid RESP2
/// (the types a RESP2 connection gets) or RESP3. For every way of cutting the stream into reads the
/// scanner finds the same frames and fails at the same byte; the plain and message lanes, taken at
/// every frame boundary as a session takes them, agree with the general path frame by frame. Every
/// frame it completes is one value to `RESPValueDecoder`, of the same length and type; a spelled
/// stream is all frames, none malformed.
enum ReplyTarget {
    enum Event: Equatable {
        case reply(ScannedReply, end: Int)
        case malformed(ProtocolViolation, at: Int)
    }

    static func run(_ input: [UInt8]) {
        var draws = Draws(input)
        let mode = draws.byte()
        let stream: [UInt8]
        var spelled: [ReplySpeller.Frame] = []
        if mode & 1 == 0 {
            stream = Array(input[min(input.count, 1)...])
        } else {
            var speller = ReplySpeller(draws: draws, resp3: mode & 2 != 0)
            spelled = speller.frames()
            stream = spelled.flatMap(\.bytes)
        }
        let whole = scan(stream, chunks: [stream.count])
        for chunks in chunkings(of: stream) {
            let events = scan(stream, chunks: chunks)
            require(events == whole, "chunks \(chunks) found \(events), one read \(whole)")
        }
        checkLanes(stream, against: whole)
        var previousEnd = 0
        for event in whole {
            guard case .reply(let reply, let end) = event else { break }
            require(reply.wireBytes == end - previousEnd, "\(reply) ends at \(end) after \(previousEnd)")
            checkDecoded(reply, bytes: stream[previousEnd..<end])
            previousEnd = end
        }
        if mode & 1 != 0 {
            require(whole.count == spelled.count, "\(spelled.count) spelled frames scan as \(whole)")
            for (event, frame) in zip(whole, spelled) {
                guard case .reply(let reply, _) = event else { return }
                require(reply.wireBytes == frame.bytes.count && reply.type == frame.type && reply.isNull == frame.isNull,
                        "spelled \(frame) scans as \(reply)")
            }
        }
    }

    /// Scans `stream` cut into `chunks` with `next(in:at:)` alone.
    static func scan(_ stream: [UInt8], chunks: [Int]) -> [Event] {
        var scanner = ReplyScanner()
        var events: [Event] = []
        var chunkStart = 0
        for size in chunks {
            let chunk = Array(stream[chunkStart..<(chunkStart + size)])
            let failed = chunk.withUnsafeBytes { bytes -> Bool in
                var offset = 0
                while offset < bytes.count {
                    switch scanner.next(in: bytes, at: &offset) {
                    case .complete(let reply): events.append(.reply(reply, end: chunkStart + offset))
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

    /// One read of the whole stream as a session takes it (plain lane, message lane, general path),
    /// in step with the frames the general path found.
    static func checkLanes(_ stream: [UInt8], against whole: [Event]) {
        var scanner = ReplyScanner()
        var index = 0
        stream.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count, index < whole.count, case .reply(let reply, let end) = whole[index] {
                if let plain = scanner.nextPlain(in: bytes, at: &offset) {
                    require(offset == end && plain.isNull == reply.isNull && reply.error == nil
                            && [.simpleString, .integer, .bulkString].contains(reply.type),
                            "the plain lane took \(plain) for \(reply)")
                    index += 1
                    continue
                }
                if let messages = scanner.plainMessages(in: bytes, at: offset) {
                    let stop = offset + messages.wireBytes
                    var lastEnd = offset
                    while lastEnd < stop, index < whole.count, case .reply(let message, let messageEnd) = whole[index] {
                        require(message.pubSub == .message && message.type == (messages.arePushes ? .push : .array),
                                "the message lane took \(message)")
                        index += 1
                        lastEnd = messageEnd
                    }
                    require(lastEnd == stop, "the message lane ends at \(stop), inside a frame")
                    offset = stop
                    continue
                }
                let result = scanner.next(in: bytes, at: &offset)
                require(result == .complete(reply) && offset == end, "the session's read found \(result) for \(reply)")
                index += 1
            }
        }
    }

    /// A frame the scanner completes is one value to the decoder, unless its content is not what
    /// its type holds (the scanner frames content, the decoder reads it).
    static func checkDecoded(_ reply: ScannedReply, bytes: ArraySlice<UInt8>) {
        let decoded: (RESPValue, consumed: Int)?
        do {
            decoded = try RESPValueDecoder.decode(bytes)
        } catch ProtocolViolation.invalidLength {
            return
        } catch ProtocolViolation.invalidTypeByte(UInt8(ascii: ".")) {
            // An attribute right before the `.` that ends its streamed aggregate describes nothing: the
            // decoder refuses it, the scanner lets the `.` end the aggregate (nothing a node sends).
            return
        } catch {
            require(false, "the decoder refuses \(reply) with \(error)")
            return
        }
        guard let (value, consumed) = decoded else {
            require(false, "the decoder needs more than the frame \(reply)")
            return
        }
        require(consumed == bytes.count, "the decoder takes \(consumed) bytes of the frame \(reply)")
        require(decodedType(value) == reply.type || (reply.isNull && value == .null), "\(reply) decodes as \(value)")
        if let elements = value.array, value != .null, reply.error == nil {
            require(elements.count == reply.elementCount, "\(reply) has \(elements.count) elements")
        }
    }

    static func decodedType(_ value: RESPValue) -> ReplyType {
        switch value {
        case .simpleString: .simpleString
        case .error: .simpleError
        case .integer: .integer
        case .bulkString: .bulkString
        case .null: .null
        case .array: .array
        case .boolean: .boolean
        case .double: .double
        case .bigNumber: .bigNumber
        case .verbatimString: .verbatimString
        case .map: .map
        case .set: .set
        case .push: .push
        case .blobError: .blobError
        }
    }
}

