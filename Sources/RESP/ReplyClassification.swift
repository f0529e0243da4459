/// One top-level reply frame, as the reply scanner saw it go by.
/// A reply the plain lane (`ReplyScanner.nextPlain(in:at:)`) took: a whole top-level `+`, `:` or
/// `$` frame, so never an error, a push or an aggregate.
public struct PlainReply: Equatable, Sendable {
    public var wireBytes: Int
    /// `$-1`.
    public var isNull: Bool
}

/// Classic pub/sub messages as Valkey writes them, back to back, found by
/// `ReplyScanner.plainMessages(in:at:)`: each `*3` (RESP2) or `>3` (RESP3), `$7 message`, the
/// channel and the payload as bulk strings.
public struct PlainMessages: Equatable, Sendable {
    /// All of them together.
    public var wireBytes: Int
    /// RESP3 pushes (`>`) rather than RESP2 arrays; a run is all one or all the other.
    public var arePushes: Bool
}

public struct ScannedReply: Equatable, Sendable {
    /// The whole top-level frame, including any leading attribute (`|`) frames.
    public var wireBytes: Int
    /// Type of the top-level value (after attributes). `$-1` is `.bulkString` and `*-1` is
    /// `.array`, both with `isNull`; `_` is `.null`.
    public var type: ReplyType
    /// `$-1`, `*-1`, `_`.
    public var isNull: Bool
    /// For `-` and `!` frames: classified from the first bytes.
    public var error: ReplyError?
    /// For `+` frames.
    public var simple: SimpleReply?
    /// A top-level array or push whose first element is a bulk/simple string naming a pub/sub
    /// message kind (case-insensitive).
    public var pubSub: PubSubMessageKind?
    /// When `pubSub` is sharded (`smessage`, `ssubscribe`, `sunsubscribe`) and the second element
    /// is a bulk/simple string: the channel's hash slot. Other kinds leave it nil, so a classic
    /// fan-out does not hash its channel once per delivered message.
    public var channelSlot: HashSlot?
    /// For a subscription confirmation (`subscribe` … `sunsubscribe`) whose third element is an
    /// integer: the number it reports, the client's subscriptions after it (channels and patterns
    /// together, or shard channels).
    public var subscriptionCount: Int?
    /// Top-level aggregate element count (maps: 2 × pairs; streamed aggregates: counted).
    public var elementCount: Int
    /// Σ over top-level elements of the offset (from the frame start, after attributes) at which
    /// that element ends. Mirrors how EXEC's reply is over-counted by Valkey.
    public var elementEndOffsetSum: Int

    public init(
        wireBytes: Int, type: ReplyType, isNull: Bool = false, error: ReplyError? = nil,
        simple: SimpleReply? = nil, pubSub: PubSubMessageKind? = nil, channelSlot: HashSlot? = nil,
        subscriptionCount: Int? = nil, elementCount: Int = 0, elementEndOffsetSum: Int = 0
    ) {
        self.wireBytes = wireBytes
        self.type = type
        self.isNull = isNull
        self.error = error
        self.simple = simple
        self.pubSub = pubSub
        self.channelSlot = channelSlot
        self.subscriptionCount = subscriptionCount
        self.elementCount = elementCount
        self.elementEndOffsetSum = elementEndOffsetSum
    }
}

public enum ReplyType: Equatable, Sendable {
    case simpleString, simpleError, integer, bulkString, array, null, boolean, double, bigNumber
    case blobError, verbatimString, map, set, push

    init?(typeByte: UInt8) {
        switch typeByte {
        case UInt8(ascii: "+"): self = .simpleString
        case UInt8(ascii: "-"): self = .simpleError
        case UInt8(ascii: ":"): self = .integer
        case UInt8(ascii: "$"): self = .bulkString
        case UInt8(ascii: "*"): self = .array
        case UInt8(ascii: "_"): self = .null
        case UInt8(ascii: "#"): self = .boolean
        case UInt8(ascii: ","): self = .double
        case UInt8(ascii: "("): self = .bigNumber
        case UInt8(ascii: "!"): self = .blobError
        case UInt8(ascii: "="): self = .verbatimString
        case UInt8(ascii: "%"): self = .map
        case UInt8(ascii: "~"): self = .set
        case UInt8(ascii: ">"): self = .push
        default: return nil
        }
    }
}

/// Error replies the proxy reacts to, by error code (first word) or `ERR` message prefix.
public enum ReplyError: Equatable, Sendable {
    case moved, ask, tryAgain, crossSlot, clusterDown, readOnly, loading, outOfMemory, busy, noScript
    case noAuth, noPermission, execAbort, wrongType, masterDown, noReplicas, misconfigured, unblocked
    /// "ERR unknown command"
    case unknownCommand
    /// "ERR unknown subcommand"
    case unknownSubcommand
    /// "ERR wrong number of arguments"
    case wrongArity
    /// "ERR Protocol error"
    case `protocol`
    /// "ERR Can't execute" (a command not allowed in RESP2 pub/sub context)
    case notAllowedInContext
    case other

    /// Classifies an error message (the text after `-`, or a blob error's payload).
    init(message: CapturedBytes) {
        if message.hasWord("moved") { self = .moved }
        else if message.hasWord("ask") { self = .ask }
        else if message.hasWord("tryagain") { self = .tryAgain }
        else if message.hasWord("crossslot") { self = .crossSlot }
        else if message.hasWord("clusterdown") { self = .clusterDown }
        else if message.hasWord("readonly") { self = .readOnly }
        else if message.hasWord("loading") { self = .loading }
        else if message.hasWord("oom") { self = .outOfMemory }
        else if message.hasWord("busy") { self = .busy }
        else if message.hasWord("noscript") { self = .noScript }
        else if message.hasWord("noauth") { self = .noAuth }
        else if message.hasWord("noperm") { self = .noPermission }
        else if message.hasWord("execabort") { self = .execAbort }
        else if message.hasWord("wrongtype") { self = .wrongType }
        else if message.hasWord("masterdown") { self = .masterDown }
        else if message.hasWord("noreplicas") { self = .noReplicas }
        else if message.hasWord("misconf") { self = .misconfigured }
        else if message.hasWord("unblocked") { self = .unblocked }
        else if message.hasPrefixIgnoringCase("err unknown command") { self = .unknownCommand }
        else if message.hasPrefixIgnoringCase("err unknown subcommand") { self = .unknownSubcommand }
        else if message.hasPrefixIgnoringCase("err wrong number of arguments") { self = .wrongArity }
        else if message.hasPrefixIgnoringCase("err protocol error") { self = .protocol }
        else if message.hasPrefixIgnoringCase("err can't execute") { self = .notAllowedInContext }
        else { self = .other }
    }
}

/// Simple-string replies the proxy reacts to.
public enum SimpleReply: Equatable, Sendable {
    case ok, queued, reset, pong
    /// A MONITOR line: digits and '.' (the timestamp) then " [".
    case monitorLine
    case other

    init(line: CapturedBytes) {
        if line.equals("ok") { self = .ok }
        else if line.equals("queued") { self = .queued }
        else if line.equals("reset") { self = .reset }
        else if line.equals("pong") { self = .pong }
        else if line.looksLikeMonitorLine { self = .monitorLine }
        else { self = .other }
    }
}

/// Pub/sub and tracking message kinds (first element of an array or push).
public enum PubSubMessageKind: Equatable, Sendable {
    case subscribe, unsubscribe, psubscribe, punsubscribe, ssubscribe, sunsubscribe
    case message, pmessage, smessage, pong, invalidate

    init?(name: CapturedBytes) {
        guard name.isComplete, let kind = Self.named(length: name.length, { name[$0] }) else { return nil }
        self = kind
    }

    /// The kind named by `bytes` (a name still in the read buffer), as `init(name:)` finds it.
    @inline(__always)
    init?(name bytes: UnsafeRawBufferPointer) {
        guard let kind = Self.named(length: bytes.count, { bytes[$0] }) else { return nil }
        self = kind
    }

    /// The confirmation of a subscription command: its third element counts the subscriptions left.
    public var isConfirmation: Bool {
        switch self {
        case .subscribe, .unsubscribe, .psubscribe, .punsubscribe, .ssubscribe, .sunsubscribe: true
        default: false
        }
    }

    /// Sharded pub/sub frames: the node counts them to their channel's slot.
    public var isSharded: Bool { self == .smessage || self == .ssubscribe || self == .sunsubscribe }

    /// The kind whose name (case-insensitive) is the `length` bytes read through `byte`. The length
    /// and at most one byte leave a single candidate, which one comparison confirms: a fan-out
    /// classifies every message it delivers. (`byte | 0x20` equals a lowercase letter exactly
    /// when the byte is that letter in either case, and every name is letters only.)
    @inline(__always)
    private static func named(length: Int, _ byte: (Int) -> UInt8) -> PubSubMessageKind? {
        let kind: PubSubMessageKind
        let token: StaticString
        switch length {
        case 4: (kind, token) = (.pong, "pong")
        case 7: (kind, token) = (.message, "message")
        case 8: (kind, token) = byte(0) | 0x20 == UInt8(ascii: "s") ? (.smessage, "smessage") : (.pmessage, "pmessage")
        case 9: (kind, token) = (.subscribe, "subscribe")
        case 10:
            switch byte(0) | 0x20 {
            case UInt8(ascii: "s"): (kind, token) = (.ssubscribe, "ssubscribe")
            case UInt8(ascii: "p"): (kind, token) = (.psubscribe, "psubscribe")
            default: (kind, token) = (.invalidate, "invalidate")
            }
        case 11: (kind, token) = (.unsubscribe, "unsubscribe")
        case 12: (kind, token) = byte(0) | 0x20 == UInt8(ascii: "s") ? (.sunsubscribe, "sunsubscribe") : (.punsubscribe, "punsubscribe")
        default: return nil
        }
        let letters = token.utf8Start
        for index in 0..<length where byte(index) | 0x20 != letters[index] { return nil }
        return kind
    }
}

extension CapturedBytes {
    /// Whether the text's first word (up to a space or the end) is `word` (ASCII lowercase).
    func hasWord(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard hasPrefixIgnoringCase(word) else { return false }
        return length == count || (count < capturedCount && self[count] == 0x20)
    }

    var looksLikeMonitorLine: Bool {
        let count = capturedCount
        guard count >= 3, self[0] &- 48 < 10 else { return false }
        var index = 1
        while index < count, self[index] &- 48 < 10 || self[index] == UInt8(ascii: ".") { index += 1 }
        return index + 1 < count && self[index] == 0x20 && self[index + 1] == UInt8(ascii: "[")
    }
}
