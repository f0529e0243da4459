/// The lanes: replies framed without a `ScannedReply` (lengths and terminators only), for the
/// session to forward as they are. Each takes a frame at a frame boundary, or nothing.
extension ReplyScanner {
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

    /// The eight bytes of `text` as a word in memory order, to compare with a word of the stream.
    @inline(__always)
    private static func word(_ text: StaticString) -> UInt64 {
        precondition(text.utf8CodeUnitCount == 8)
        return UnsafeRawPointer(text.utf8Start).loadUnaligned(as: UInt64.self)
    }
}
