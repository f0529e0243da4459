import Accounting
import RESP

/// The protocol state of one client connection and the accounting that follows from it, without I/O.
///
/// The session feeds it every request the request scanner completes and every reply frame the reply
/// scanner completes, in stream order. It keeps the in-flight FIFO, follows every state that changes
/// how replies map to requests (MULTI, RESP2 pub/sub, RESP3 pushes, MONITOR, CLIENT REPLY, HELLO,
/// RESET, SYNC/PSYNC) and records each completed command in both views of a ``LedgerShard``:
/// `wire` by plain rules, `node` by ``NodeCountingRules``.
struct SessionAccounting: ~Copyable {
    let rules: NodeCountingRules
    private(set) var inFlight = InFlightQueue<InFlightCommand>()

    // Request-side state: what the node will do with the next request.
    private(set) var inTransaction = false
    private var clientReply = ClientReplyMode.on
    private var skipNextReply = false
    /// After `SYNC`/`PSYNC` every further client byte is replication traffic.
    private(set) var requestsArePipe = false
    /// After malformed input every further client byte is unparsed.
    private(set) var requestsUnparsed = false
    /// After a node answered `CLUSTER SYNCSLOTS ESTABLISH`, every further request is part of a slot
    /// migration stream: one-way, never answered (``migrationRequestScanned(_:ledger:)``).
    private(set) var requestsAreMigrationStream = false

    // Reply-side state: what the node has already done.
    private var protocolVersion = 2
    /// The node has the client in pub/sub mode: it has a subscription of any kind.
    private(set) var subscribed = false
    /// The subscriptions the node reported last, in the third element of a confirmation: channels
    /// and patterns together (`subscribe` … `punsubscribe`), and shard channels (`ssubscribe`,
    /// `sunsubscribe`). The client leaves pub/sub mode when both are 0 (`pubsub.c`).
    private var channelSubscriptions = 0
    private var shardSubscriptions = 0
    private var monitoring = false
    /// The slot that the open transaction's queued commands agreed on so far.
    private var transactionSlot = TransactionSlot.none
    /// Bytes of pushes the node added to this client's output counter since its last command: Valkey
    /// adds them to the next keyed command's network-bytes-out (docs/accounting.md §3.1 quirk 3).
    private var pendingPushBytes = 0
    /// Once the replication reply is reached every further node byte is replication traffic (or, on a
    /// slot migration stream, the node's one-way messages to the source): opaque, in `pipeBucket`.
    private(set) var repliesArePipe = false
    private(set) var pipeBucket = Bucket.replication
    private(set) var repliesUnparsed = false

    init(rules: NodeCountingRules) { self.rules = rules }

    /// Requests forwarded and not answered yet.
    var inFlightCount: Int { inFlight.count }

    // MARK: requests

    mutating func requestScanned(_ request: ScannedRequest, ledger: LedgerShard) {
        var command = InFlightCommand(request)
        // Most requests: an ordinary command outside a transaction that will be answered. Below,
        // such a request changes no state and only joins the FIFO; and a command that is not a
        // replication handshake joining the FIFO never makes one the head (see noteHeadChanged).
        if case .ordinary = request.effect, !inTransaction, clientReply == .on, !skipNextReply {
            inFlight.append(command)
            return
        }

        var repliesExpected = !(clientReply == .off || skipNextReply)
        skipNextReply = false

        switch request.effect {
        case .multi:
            command.kind = .multi
            inTransaction = true
        case .exec:
            if inTransaction { command.kind = .exec }
            inTransaction = false
        case .discard:
            command.kind = inTransaction ? .discard : .ordinary
            inTransaction = false
        case .reset:
            command.kind = .reset
            inTransaction = false
            clientReply = .on
            repliesExpected = true
        case .clientReply(let mode) where !inTransaction:
            switch mode {
            case .on:
                clientReply = .on
                repliesExpected = true
            case .off:
                clientReply = .off
                repliesExpected = false
            case .skip:
                repliesExpected = false
                skipNextReply = clientReply == .on
            }
        case _ where inTransaction:
            command.kind = .queued
        case .hello(let version):
            command.kind = .hello
            command.protocolVersion = UInt8(clamping: version ?? 0)
        case .monitor:
            command.kind = .monitor
        case .subscribe(_, let channels), .unsubscribe(_, let channels):
            command.kind = .subscription
            command.subscriptionFrame = .init(request.effect)
            command.framesExpected = Int32(clamping: channels)
        case .script(let shebang):
            command.kind = shebang == true ? .scriptWithShebang : .scriptWithoutShebang
        case .replicationHandshake:
            command.kind = .replication
            requestsArePipe = true
        case .slotMigrationHandshake:
            command.kind = .slotMigration
        case .ordinary, .quit, .resetStat, .roleChange, .slotOwnership, .replicaConfiguration, .clientReply:
            break
        }

        if repliesExpected || command.kind == .replication {
            inFlight.append(command)
            noteHeadChanged(ledger: ledger)
        } else {
            complete(command, reply: nil, ledger: ledger)
        }
    }

    /// Whether a request joins the FIFO as it is, with no state to follow: outside a transaction,
    /// with every reply expected. The session then feeds plain requests to `plainRequestScanned`.
    var takesPlainRequests: Bool { !inTransaction && clientReply == .on && !skipNextReply }

    /// `requestScanned` for a plain request while `takesPlainRequests`: an ordinary command only
    /// joins the FIFO (and one that is not a replication handshake never makes one the head).
    mutating func plainRequestScanned(_ request: PlainRequest) {
        inFlight.append(InFlightCommand(request))
    }

    /// One request of a slot migration stream (the source node's `CLUSTER SYNCSLOTS` messages, its
    /// snapshot and live writes): nothing answers it. The node counts a keyed one's bytes in to its
    /// slot, one it does not report while importing it and zeroes when it takes it over
    /// (docs/accounting.md §9), so the node view counts it the same and the slot cut does the rest.
    mutating func migrationRequestScanned(_ request: ScannedRequest, ledger: LedgerShard) {
        ledger.recordWire(bucket: .migration, commands: 1, bytesIn: request.wireBytes, bytesOut: 0)
        guard case .known = request.command, request.arityIsValid, case .slot(let slot) = request.keys else { return }
        ledger.recordNode(slot: slot, commands: 1, bytesIn: request.countedBytes, bytesOut: 0)
    }

    /// The client sent bytes that are not RESP. `pendingBytes` are the bytes of the broken request that
    /// were already forwarded; everything from here on is unparsed.
    mutating func requestsBecameUnparsed(pendingBytes: Int, ledger: LedgerShard) {
        requestsUnparsed = true
        ledger.recordWire(bucket: .unparsed, commands: 0, bytesIn: pendingBytes, bytesOut: 0)
    }

    // MARK: replies

    mutating func replyScanned(_ reply: ScannedReply, ledger: LedgerShard) {
        // Most replies: a frame answering an ordinary command, on a connection that is neither
        // subscribed nor monitoring. The checks below all pass such a frame through to the same steps.
        if takesPlainReplies, reply.type != .push, reply.error == nil {
            completeHead(answeredWith: reply.wireBytes, isNull: reply.isNull, ledger: ledger)
            return
        }
        // An open-ended UNSUBSCRIBE ends at the first frame that is not one of its confirmations.
        if !inFlight.isEmpty, inFlight.first.kind == .subscription, inFlight.first.framesExpected == 0,
            !inFlight.first.subscriptionFrame.matches(reply.pubSub)
        {
            let finished = inFlight.removeFirst()
            complete(finished, reply: nil, ledger: ledger)
            noteHeadChanged(ledger: ledger)
        }

        if isOutOfBand(reply) {
            outOfBand(reply, ledger: ledger)
            return
        }

        inFlight.first.replyBytes += reply.wireBytes
        if inFlight.first.kind == .subscription && reply.error == nil {
            noteConfirmation(reply)
            if inFlight.first.framesExpected == 0 { return }
            inFlight.first.framesExpected -= 1
            if inFlight.first.framesExpected > 0 { return }
        }
        let command = inFlight.removeFirst()
        complete(command, reply: reply, ledger: ledger)
        noteHeadChanged(ledger: ledger)
    }

    /// Whether the next reply answers an ordinary command on a connection neither subscribed,
    /// monitoring nor a pipe (an established migration link): then any frame but a push or an error
    /// completes it, and the session feeds plain replies to `plainReplyScanned`.
    var takesPlainReplies: Bool { !inFlight.isEmpty && inFlight.first.kind == .ordinary && !subscribed && !monitoring && !repliesArePipe }

    /// `replyScanned` for a plain reply while `takesPlainReplies`.
    @inline(__always)
    mutating func plainReplyScanned(_ reply: PlainReply, ledger: LedgerShard) {
        completeHead(answeredWith: reply.wireBytes, isNull: reply.isNull, ledger: ledger)
    }

    /// Whether classic pub/sub message frames (`message`; RESP3 pushes when `arePushes`) arriving now
    /// answer no command and are recorded as keyless pushes, what `replyScanned` would find for each:
    /// pushes always, RESP2 arrays while subscribed (otherwise one is a reply), except after
    /// unparsable input, on a pipe, or while an open-ended UNSUBSCRIBE waits for its end (all go the
    /// general way). Recording them changes none of this, so it holds for a whole run of them.
    func takesMessages(arePushes: Bool) -> Bool {
        if requestsUnparsed || repliesArePipe { return false }
        if inFlight.isEmpty { return true }
        if inFlight.first.kind == .subscription && inFlight.first.framesExpected == 0 { return false }
        return arePushes || (subscribed && protocolVersion == 2)
    }

    /// `replyScanned` for each of a run of classic messages while `takesMessages`: the counters are
    /// sums, so the run is recorded once.
    @inline(__always)
    mutating func plainMessagesScanned(_ messages: PlainMessages, ledger: LedgerShard) {
        keylessPush(wireBytes: messages.wireBytes, ledger: ledger)
    }

    /// Completes the head, an ordinary command, with its whole answer of `wireBytes` (no error).
    @inline(__always)
    private mutating func completeHead(answeredWith wireBytes: Int, isNull: Bool, ledger: LedgerShard) {
        var command = inFlight.removeFirst()
        command.replyBytes += wireBytes
        completeAnswered(command, isNull: isNull, ledger: ledger)
        noteHeadChanged(ledger: ledger)
    }

    /// The node sent bytes that are not RESP: the rest of the connection is unparsed, and the commands
    /// still waiting (with the replies some of them got) will never be matched.
    mutating func repliesBecameUnparsed(pendingBytes: Int, ledger: LedgerShard) {
        repliesUnparsed = true
        requestsUnparsed = true
        let commands = inFlight.elements
        inFlight.removeAll()
        ledger.recordWire(bucket: .unparsed, commands: 0, bytesIn: commands.reduce(0) { $0 + $1.wireBytesIn },
            bytesOut: pendingBytes + commands.reduce(0) { $0 + $1.replyBytes })
    }

    /// Once every reply before `SYNC`/`PSYNC` has arrived, the rest of the connection is the
    /// replication stream: the handshake is recorded now and nothing stays in flight, so a drain never
    /// waits on a replica's link.
    @inline(__always)
    private mutating func noteHeadChanged(ledger: LedgerShard) {
        guard !inFlight.isEmpty, inFlight.first.kind == .replication else { return }
        replicationReachedHead(ledger: ledger)
    }

    @inline(never)
    private mutating func replicationReachedHead(ledger: LedgerShard) {
        repliesArePipe = true
        complete(inFlight.removeFirst(), reply: nil, ledger: ledger)
    }

    /// Follows the subscriptions a confirmation reports. One without a count (not what the node
    /// sends) leaves the client subscribed.
    private mutating func noteConfirmation(_ reply: ScannedReply) {
        guard let kind = reply.pubSub, kind.isConfirmation else { return }
        guard let count = reply.subscriptionCount else {
            subscribed = true
            return
        }
        if kind.isSharded { shardSubscriptions = count } else { channelSubscriptions = count }
        subscribed = channelSubscriptions + shardSubscriptions > 0
    }

    /// Frames that answer no request: RESP3 pushes (other than the confirmations a subscription command
    /// waits for), RESP2 pub/sub messages, MONITOR lines, and anything when nothing is in flight.
    private func isOutOfBand(_ reply: ScannedReply) -> Bool {
        if inFlight.isEmpty { return true }
        let head = inFlight.first
        if head.kind == .subscription && head.subscriptionFrame.matches(reply.pubSub) { return false }
        if reply.type == .push { return true }
        if subscribed && protocolVersion == 2 && reply.type == .array && reply.pubSub != nil {
            return reply.pubSub != .pong
        }
        if monitoring && reply.simple == .monitorLine { return true }
        return false
    }

    private mutating func outOfBand(_ reply: ScannedReply, ledger: LedgerShard) {
        if requestsUnparsed && inFlight.isEmpty {
            ledger.recordWire(bucket: .unparsed, commands: 0, bytesIn: 0, bytesOut: reply.wireBytes)
            return
        }
        // The node unsubscribes clients on its own too: `sunsubscribe` when a slot moves away.
        noteConfirmation(reply)
        if reply.pubSub == .smessage, let channel = reply.channelSlot {
            ledger.recordWire(slot: channel, commands: 0, bytesIn: 0, bytesOut: reply.wireBytes)
            // NOTE: pubsub.c pubsubPublishMessageInternal adds the subscriber's whole running output
            // counter to the channel's slot and zeroes it.
            ledger.recordNode(slot: channel, commands: 0, bytesIn: 0, bytesOut: pendingPushBytes + reply.wireBytes)
            pendingPushBytes = 0
        } else {
            keylessPush(wireBytes: reply.wireBytes, ledger: ledger)
        }
    }

    /// A frame that answers no command and names no slot: the wire view's keyless bucket now, and the
    /// node adds it to the next keyed command's bytes out.
    @inline(__always)
    private mutating func keylessPush(wireBytes: Int, ledger: LedgerShard) {
        ledger.recordWire(bucket: .keyless, commands: 0, bytesIn: 0, bytesOut: wireBytes)
        pendingPushBytes &+= wireBytes
    }

    // MARK: completion

    /// Records a command whose reply is complete (`reply` is its last frame, nil when it had none).
    private mutating func complete(_ command: InFlightCommand, reply: ScannedReply?, ledger: LedgerShard) {
        if command.kind == .ordinary, let reply, reply.error == nil {
            completeAnswered(command, isNull: reply.isNull, ledger: ledger)
            return
        }
        let error = reply?.error
        let succeeded = reply != nil && error == nil
        updateReplySideState(command, reply: reply, succeeded: succeeded)

        // Wire view: to the slot of the first key, unless the node refused the command.
        var wireSlot = command.slot
        if command.kind == .exec { wireSlot = transactionSlot.agreed ?? -1 }
        if let error, NodeCountingRules.isRejection(error) {
            ledger.recordWire(bucket: .rejected, commands: 1, bytesIn: command.wireBytesIn, bytesOut: command.replyBytes)
        } else if command.kind == .replication || command.kind == .slotMigration {
            ledger.recordWire(
                bucket: command.kind == .replication ? .replication : .migration, commands: 1, bytesIn: command.wireBytesIn,
                bytesOut: command.replyBytes)
        } else if wireSlot >= 0 {
            ledger.recordWire(
                slot: HashSlot(rawValue: UInt16(wireSlot)).unsafelyUnwrapped, commands: 1,
                bytesIn: command.wireBytesIn, bytesOut: command.replyBytes)
        } else {
            ledger.recordWire(bucket: .keyless, commands: 1, bytesIn: command.wireBytesIn, bytesOut: command.replyBytes)
        }

        // Node view.
        let pushes = pendingPushBytes
        pendingPushBytes = 0
        switch command.kind {
        case .queued:
            completeQueued(command, error: error, ledger: ledger)
        case .exec:
            completeExec(command, reply: reply, ledger: ledger)
        case .multi, .discard, .reset:
            transactionSlot = .none
        case .scriptWithoutShebang:
            if command.hasSlot { ledger.markScript(slot: command.hashSlot) }
        case .scriptWithShebang:
            if command.hasSlot { ledger.markScript(slot: command.hashSlot) }
            countOrdinary(command, error: error, isNull: reply?.isNull == true, pushes: pushes, ledger: ledger)
        case .ordinary, .hello, .monitor, .subscription, .replication, .slotMigration:
            countOrdinary(command, error: error, isNull: reply?.isNull == true, pushes: pushes, ledger: ledger)
        }
    }

    /// `complete` for an ordinary command answered without an error, most commands: no state
    /// changes; the wire view takes it to its slot (or the keyless bucket), the node view as it
    /// counts it.
    @inline(__always)
    private mutating func completeAnswered(_ command: InFlightCommand, isNull: Bool, ledger: LedgerShard) {
        if command.hasSlot {
            ledger.recordWire(slot: command.hashSlot, commands: 1, bytesIn: command.wireBytesIn, bytesOut: command.replyBytes)
        } else {
            ledger.recordWire(bucket: .keyless, commands: 1, bytesIn: command.wireBytesIn, bytesOut: command.replyBytes)
        }
        let pushes = pendingPushBytes
        pendingPushBytes = 0
        countOrdinary(command, error: nil, isNull: isNull, pushes: pushes, ledger: ledger)
    }

    private mutating func updateReplySideState(_ command: InFlightCommand, reply: ScannedReply?, succeeded: Bool) {
        guard succeeded else { return }
        switch command.kind {
        case .hello where command.protocolVersion != 0:
            protocolVersion = Int(command.protocolVersion)
        case .reset:
            protocolVersion = 2
            subscribed = false
            channelSubscriptions = 0
            shardSubscriptions = 0
            monitoring = false
        case .monitor:
            monitoring = true
        case .slotMigration:
            requestsAreMigrationStream = true
            repliesArePipe = true
            pipeBucket = .migration
        default:
            break
        }
    }

    @inline(__always)
    private mutating func countOrdinary(
        _ command: InFlightCommand, error: ReplyError?, isNull: Bool, pushes: Int, ledger: LedgerShard
    ) {
        guard command.countable, command.hasSlot else { return }
        let slot = command.hashSlot
        if let error {
            switch rules.treatment(of: error) {
            case .executed:
                ledger.recordNode(slot: slot, commands: 1, bytesIn: command.countedBytesIn, bytesOut: command.replyBytes + pushes)
            case .rejectedCountingInput:
                ledger.recordNode(slot: slot, commands: 0, bytesIn: command.countedBytesIn, bytesOut: 0)
            case .notCounted:
                break
            }
            return
        }
        // NOTE: blocked.c replyToBlockedClientTimedOut resets the client without commandProcessed:
        // a blocking command that timed out is not counted at all.
        if command.isBlocking, isNull { return }
        ledger.recordNode(slot: slot, commands: 1, bytesIn: command.countedBytesIn, bytesOut: command.replyBytes + pushes)
    }

    private mutating func completeQueued(_ command: InFlightCommand, error: ReplyError?, ledger: LedgerShard) {
        guard command.countable, command.hasSlot else { return }
        if let error {
            if rules.treatment(of: error) != .notCounted {
                ledger.recordNode(slot: command.hashSlot, commands: 0, bytesIn: command.countedBytesIn, bytesOut: 0)
            }
            return
        }
        // Queued: the node counts the frame now, to the command's own slot; `+QUEUED` is never counted.
        ledger.recordNode(slot: command.hashSlot, commands: 0, bytesIn: command.countedBytesIn, bytesOut: 0)
        transactionSlot.queued(command.slot)
    }

    private mutating func completeExec(_ command: InFlightCommand, reply: ScannedReply?, ledger: LedgerShard) {
        let slotOfTransaction = transactionSlot.agreed
        transactionSlot = .none
        guard let slotOfTransaction, let reply else { return }
        let slot = HashSlot(rawValue: UInt16(slotOfTransaction)).unsafelyUnwrapped
        let bytesIn = command.countedBytesIn + NodeCountingRules.execMultiSurcharge
        if let error = reply.error {
            switch rules.treatment(of: error) {
            case .executed:
                ledger.recordNode(slot: slot, commands: 1, bytesIn: bytesIn, bytesOut: reply.wireBytes)
            case .rejectedCountingInput:
                ledger.recordNode(slot: slot, commands: 0, bytesIn: bytesIn, bytesOut: 0)
            case .notCounted:
                break
            }
            return
        }
        // NOTE: multi.c execCommand runs each queued command through call(), whose afterCommand adds
        // the client's running output counter (EXEC's reply so far) to the slot without resetting it;
        // the top-level call adds it once more. So bytes-out = Σ (end of each element) + whole reply.
        ledger.recordNode(
            slot: slot, commands: 1, bytesIn: bytesIn, bytesOut: reply.elementEndOffsetSum + reply.wireBytes)
    }
}
