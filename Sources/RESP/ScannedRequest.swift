/// One client request, as the request scanner saw it go by.
public struct ScannedRequest: Equatable, Sendable {
    public var format: RequestFormat
    /// Bytes of this request on the wire (inline: the line including its terminator).
    public var wireBytes: Int
    /// What Valkey counts as network-bytes-in (docs/accounting.md §2.1): `wireBytes` for multibulk; for
    /// inline the reconstruction Σ(unescaped argument lengths) + (argc − 1) + 2.
    public var countedBytes: Int
    public var argumentCount: Int
    /// The command (the subcommand's row for container commands); `.unknown` for unknown names
    /// and unknown subcommands (Valkey rejects both before running anything).
    public var command: CommandIdentity
    /// Per the table's arity (negative = at least); for container commands the subcommand's.
    public var arityIsValid: Bool
    /// Slot of the keys, as `db.c:getKeysFromCommand` finds them. Reported for every known
    /// command, also with an invalid arity (then Valkey rejects it before looking at keys).
    public var keys: KeyOutcome
    public var keyCount: Int
    /// Protocol-state change; `.ordinary` for unknown commands and invalid arity.
    public var effect: CommandEffect
    /// May block: BLPOP & co, WAIT, WAITAOF; XREAD/XREADGROUP only with a BLOCK option.
    public var isBlocking: Bool
    public var isWrite: Bool

    public init(
        format: RequestFormat, wireBytes: Int, countedBytes: Int, argumentCount: Int,
        command: CommandIdentity, arityIsValid: Bool, keys: KeyOutcome, keyCount: Int,
        effect: CommandEffect, isBlocking: Bool, isWrite: Bool
    ) {
        self.format = format
        self.wireBytes = wireBytes
        self.countedBytes = countedBytes
        self.argumentCount = argumentCount
        self.command = command
        self.arityIsValid = arityIsValid
        self.keys = keys
        self.keyCount = keyCount
        self.effect = effect
        self.isBlocking = isBlocking
        self.isWrite = isWrite
    }
}

/// A request the plain lane (`RequestScanner.nextPlain(in:at:)`) took: a whole multibulk request of
/// a known command that changes no protocol state and finds its keys by a position range (GET, SET,
/// HSET, MGET, DEL, BLPOP …: most traffic). Small enough to pass in registers; as a
/// `ScannedRequest` it is `.multibulk`, `.ordinary` and counted as its wire bytes.
public struct PlainRequest: Equatable, Sendable {
    public var wireBytes: Int
    public var argumentCount: Int
    /// The command's row in the scanner's `CommandTable`.
    public var entryIndex: Int
    public var keys: KeyOutcome
    public var keyCount: Int
    public var arityIsValid: Bool
    public var isBlocking: Bool
    public var isWrite: Bool
}

extension ScannedRequest {
    public init(_ request: PlainRequest) {
        self.init(
            format: .multibulk, wireBytes: request.wireBytes, countedBytes: request.wireBytes,
            argumentCount: request.argumentCount, command: .known(request.entryIndex), arityIsValid: request.arityIsValid,
            keys: request.keys, keyCount: request.keyCount, effect: .ordinary, isBlocking: request.isBlocking,
            isWrite: request.isWrite)
    }
}

public enum RequestFormat: Equatable, Sendable {
    /// `*N\r\n` then N × `$len\r\n<bytes>\r\n`.
    case multibulk
    /// A text line split like `sdssplitargs`.
    case inline
}

/// Which slot a request's keys map to.
public enum KeyOutcome: Hashable, Sendable {
    /// No keys: keyless command, or Valkey's key procedure found none.
    case none
    /// Every key hashes to this slot.
    case slot(HashSlot)
    /// Keys in more than one slot; Valkey answers CROSSSLOT. `first` is the first key's slot
    /// (8.x with io-threads counts the request there).
    case crossSlot(first: HashSlot)
}

/// The slots of a request's keys as they are found, in Valkey's order: how many, the first one's,
/// and whether any other differs.
struct KeySlots {
    private(set) var count = 0
    private var first: HashSlot?
    private var crossSlot = false

    @inline(__always)
    mutating func add(_ slot: HashSlot) {
        count += 1
        if let first {
            if slot != first { crossSlot = true }
        } else {
            first = slot
        }
    }

    var outcome: KeyOutcome {
        guard let first else { return .none }
        return crossSlot ? .crossSlot(first: first) : .slot(first)
    }
}

extension ScannedRequest {
    /// The node may propagate something to replicas when it runs this: a write, a script or function
    /// (which may call writes), or EXEC (which runs the queued writes).
    public var mayPropagate: Bool {
        switch effect {
        case .exec, .script: return true
        default: return isWrite
        }
    }
}

public enum CommandEffect: Equatable, Sendable {
    case ordinary
    case multi, exec, discard
    /// SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE with `channels` arguments.
    case subscribe(PubSubKind, channels: Int)
    /// `channels == 0`: "all" (one reply per current subscription: an open-ended number).
    case unsubscribe(PubSubKind, channels: Int)
    /// HELLO [protover ...]; nil when absent or not an integer.
    case hello(protocolVersion: Int?)
    case reset, quit, monitor
    /// CLIENT REPLY ON|OFF|SKIP (any other mode is a syntax error: `.ordinary`).
    case clientReply(ClientReplyMode)
    /// SYNC, PSYNC: the connection becomes a replication pipe.
    case replicationHandshake
    /// EVAL/EVAL_RO: whether the body starts with "#!"; EVALSHA*: nil; FCALL*: true.
    case script(shebang: Bool?)
    /// CONFIG RESETSTAT.
    case resetStat
    /// CLUSTER FAILOVER, CLUSTER RESET, CLUSTER REPLICATE, FAILOVER, REPLICAOF, SLAVEOF.
    case roleChange
    /// CLUSTER SETSLOT, MIGRATESLOTS, ADDSLOTS(RANGE), DELSLOTS(RANGE), FLUSHSLOTS: may change the
    /// owner of slots, which resets their counters on every node.
    case slotOwnership
    /// CLUSTER SYNCSLOTS (`ESTABLISH`, from a Valkey 9 node that migrates slots to this one): once the
    /// node answers it, the connection carries a one-way migration stream in both directions.
    case slotMigrationHandshake
    /// REPLCONF: a replica's handshake (`listening-port`, `capa`, …) and acknowledgements; otherwise
    /// an ordinary command.
    case replicaConfiguration
}

public enum PubSubKind: Equatable, Sendable { case classic, pattern, sharded }

public enum ClientReplyMode: Equatable, Sendable { case on, off, skip }
