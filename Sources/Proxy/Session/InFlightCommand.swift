import RESP

/// What a forwarded request needs to remember until its reply is complete. A trivial value: no
/// references, so the in-flight queue moves it with a plain copy.
struct InFlightCommand: BitwiseCopyable {
    enum Kind: UInt8, BitwiseCopyable {
        case ordinary
        /// Sent inside `MULTI`: answered `+QUEUED` (or an error), run later by `EXEC`.
        case queued
        case multi
        case exec
        case discard
        case hello
        case reset
        case monitor
        /// `SUBSCRIBE`, `PSUBSCRIBE`, `SSUBSCRIBE` and their `UNSUBSCRIBE` forms: one reply frame per channel.
        case subscription
        /// `EVAL`/`EVALSHA` without a `#!` line: the node moves its bytes to no slot once the script
        /// made a server call.
        case scriptWithoutShebang
        /// `#!lua` scripts and functions: counted to the slot of the last inner call.
        case scriptWithShebang
        /// `SYNC`/`PSYNC`: from its reply on, the connection carries the replication stream.
        case replication
        /// `CLUSTER SYNCSLOTS` (`ESTABLISH`): once answered, the connection carries a slot migration stream.
        case slotMigration
    }

    var kind: Kind
    /// The slot of the command's keys, or -1 when it has none or they span slots: a sentinel rather
    /// than an optional keeps the FIFO entry, which the hot path moves for every command, small.
    var slot: Int32
    var wireBytesIn: Int
    /// network-bytes-in as the node computes it (differs from `wireBytesIn` for inline commands).
    var countedBytesIn: Int
    /// The node may count this command at all: it knows the command and the arity is right.
    var countable: Bool
    var isBlocking: Bool
    var crossSlot: Bool
    /// For `.hello`: the protocol it asks for (0 = unchanged).
    var protocolVersion: UInt8
    /// For `.subscription`: which reply frames it waits for, and how many (0 = until another frame comes).
    var subscriptionFrame: SubscriptionFrame
    var framesExpected: Int32
    /// Reply bytes received so far (several frames for subscriptions).
    var replyBytes: Int

    /// The confirmation frame a subscription command waits for (`none` for every other command).
    enum SubscriptionFrame: UInt8, BitwiseCopyable {
        case none, subscribe, unsubscribe, psubscribe, punsubscribe, ssubscribe, sunsubscribe

        init(_ effect: CommandEffect) {
            switch effect {
            case .subscribe(.classic, _): self = .subscribe
            case .subscribe(.pattern, _): self = .psubscribe
            case .subscribe(.sharded, _): self = .ssubscribe
            case .unsubscribe(.classic, _): self = .unsubscribe
            case .unsubscribe(.pattern, _): self = .punsubscribe
            case .unsubscribe(.sharded, _): self = .sunsubscribe
            default: self = .none
            }
        }

        func matches(_ kind: PubSubMessageKind?) -> Bool {
            switch (self, kind) {
            case (.subscribe, .subscribe?), (.unsubscribe, .unsubscribe?), (.psubscribe, .psubscribe?),
                (.punsubscribe, .punsubscribe?), (.ssubscribe, .ssubscribe?), (.sunsubscribe, .sunsubscribe?):
                true
            default:
                false
            }
        }
    }

    var hasSlot: Bool { slot >= 0 }
    var hashSlot: HashSlot { HashSlot(rawValue: UInt16(truncatingIfNeeded: slot)).unsafelyUnwrapped }
}

extension InFlightCommand {
    /// An `.ordinary` entry for a plain request (a known command, counted as its wire bytes).
    @inline(__always)
    init(_ request: PlainRequest) {
        self.init(
            ordinaryWithWireBytes: request.wireBytes, countedBytes: request.wireBytes, countable: request.arityIsValid,
            isBlocking: request.isBlocking, keys: request.keys)
    }

    /// An `.ordinary` entry for `request`: its bytes, its slot and whether the node may count it.
    init(_ request: ScannedRequest) {
        self.init(
            ordinaryWithWireBytes: request.wireBytes, countedBytes: request.countedBytes,
            countable: request.command != .unknown && request.arityIsValid, isBlocking: request.isBlocking, keys: request.keys)
    }

    @inline(__always)
    private init(ordinaryWithWireBytes wireBytes: Int, countedBytes: Int, countable: Bool, isBlocking: Bool, keys: KeyOutcome) {
        self.init(
            kind: .ordinary, slot: -1, wireBytesIn: wireBytes, countedBytesIn: countedBytes, countable: countable,
            isBlocking: isBlocking, crossSlot: false, protocolVersion: 0, subscriptionFrame: .none, framesExpected: 0,
            replyBytes: 0)
        switch keys {
        case .none: break
        case .slot(let slot): self.slot = Int32(slot.rawValue)
        case .crossSlot: crossSlot = true
        }
    }
}
