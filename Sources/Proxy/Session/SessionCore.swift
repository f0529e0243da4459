import Dispatch
import Accounting
import RESP

/// Everything a connection decides about its bytes, without I/O: both scanners, the accounting, and
/// the command held back (for a role check or the stream fence). ``ProxySession`` reads, hands each chunk here, and
/// writes what this says may go on; the tests drive the same core over byte strings. Public for the
/// micro-benchmarks, which build in release without `@testable`.
///
/// The lane order is the hot path's: a request (reply) goes through its plain lane first and only
/// then the general way; replies also try the message lane for a pub/sub fan-out.
public struct SessionCore: ~Copyable {
    private var requestScanner: RequestScanner
    private let commands: CommandTable
    /// For a replica's link (after `SYNC`/`PSYNC`): the stream the node sends down it, charged per slot.
    private(set) var replicationLink: ReplicationLink?
    /// `PSYNC`'s offset argument less one, when the link may continue a stream (`+CONTINUE`).
    private var psyncContinueAfter: Int64?
    /// The node's `master_repl_offset` while the stream fence held every writer, before this link's
    /// `PSYNC` went on: a `+CONTINUE` resends the backlog up to there, which the node does not charge
    /// again (docs/accounting.md §10).
    private var streamUnchargedThrough: Int64?
    /// The port a replica announced with `REPLCONF listening-port`: with its address, what names the
    /// replica at the other end of this link (its node's `INFO replication` lists it so).
    private(set) var replicaListeningPort: Int?
    private let readsReplicationStreams: Bool
    private var replyScanner: ReplyScanner
    private(set) var accounting: SessionAccounting
    let ledger: LedgerShard
    /// `ProxyConfiguration.passthrough` (benchmarks only): no parsing, no accounting.
    private let passthrough: Bool
    /// Off only in tests that compare the lanes with the general path.
    private let usesPlainLanes: Bool
    /// Bytes of the request (reply) being scanned that earlier reads already forwarded.
    private var partialRequestBytes = 0
    private var partialReplyBytes = 0

    /// A command held back, and everything read after it in the same chunk; scanned up to `scanned`,
    /// not accounted yet, so a drain does not wait for it. Either a command that may propagate, read
    /// while the node was a replica of a version that aborts on its first write after a promotion: it
    /// reaches the node once a `ROLE` requested after `since` came back (and nothing else blocks the
    /// client); if that `ROLE` shows a promotion, the guard runs first. Or a replica's `PSYNC` that may
    /// continue its stream: it waits for the stream fence (`streamFenced(unchargedThrough:)`).
    private struct HeldCommand {
        var request: ScannedRequest
        var bytes: [UInt8]
        var scanned: Int
        /// `DispatchTime` uptime when it began to wait.
        var since: UInt64
    }
    private var heldCommand: HeldCommand?
    /// Set while the rest of a released chunk is scanned: its role check (stream fence) already passed.
    private var scanningReleasedChunk = false

    public init(
        commands: CommandTable, rules: NodeCountingRules, ledger: LedgerShard, passthrough: Bool = false, usesPlainLanes: Bool = true,
        readsReplicationStreams: Bool = true
    ) {
        self.readsReplicationStreams = readsReplicationStreams
        requestScanner = RequestScanner(commands: commands)
        self.commands = commands
        replyScanner = ReplyScanner()
        accounting = SessionAccounting(rules: rules)
        self.ledger = ledger
        self.passthrough = passthrough
        self.usesPlainLanes = usesPlainLanes
    }

    /// What the session must do besides forwarding, after a chunk was scanned. Each is rare; the
    /// session tests the whole set once per read, and finds the details on the core.
    public struct Events: OptionSet, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// A command in the chunk resets the node's counters (`resetReason`): pause the clients
        /// before forwarding.
        public static let resetsNode = Events(rawValue: 1 << 0)
        /// A command now waits for a role check: stop reading the client and ask for `ROLE`.
        public static let awaitsRoleCheck = Events(rawValue: 1 << 1)
        /// The input stopped being RESP (`violation`).
        public static let malformed = Events(rawValue: 1 << 2)
        /// A reply hinted at a change of role or slot owners (`-MOVED`, `-ASK`, `-READONLY`, …), or a
        /// command that changes slot owners passed: poll the node now.
        public static let suggestsRoleChange = Events(rawValue: 1 << 3)
        /// A reply taken the general way may have changed whether the client is `subscribed`.
        public static let mayHaveChangedSubscription = Events(rawValue: 1 << 4)
        /// A replica's link began carrying the stream (`replicationLinkStart`).
        public static let replicationLinkStarted = Events(rawValue: 1 << 5)
        /// A replica's `PSYNC` that may continue its stream is held: fence the stream, then call
        /// `streamFenced(unchargedThrough:)`.
        public static let awaitsStreamFence = Events(rawValue: 1 << 6)
    }

    /// What the session must do after a chunk of client bytes was scanned.
    public struct RequestsRead {
        /// Bytes of the chunk to forward now; the rest is held back (see `HeldCommand`).
        public var forward: Int
        public var events: Events = []
    }

    /// The reason of the last `.resetsNode`.
    private(set) var resetReason = EpochReason.roleChange
    /// What the scanner found, after `.malformed`.
    private(set) var violation: ProtocolViolation?

    public var inFlightCount: Int { accounting.inFlightCount }

    /// Bytes read and not in the ledger yet: the requests in flight and the reply bytes they already
    /// got (each command is recorded when it completes), a command held back with the
    /// rest of its chunk, and the part of a request (reply) still being scanned. With the wire view's
    /// totals these add up to every byte read; the session fuzz target (Fuzz/) checks that they do.
    public var unrecordedBytes: (in: Int, out: Int) {
        var pending = (in: partialRequestBytes, out: partialReplyBytes)
        for command in accounting.inFlight.elements {
            pending.in += command.wireBytesIn
            pending.out += command.replyBytes
        }
        if let waiting = heldCommand { pending.in += waiting.request.wireBytes - waiting.scanned + waiting.bytes.count }
        return pending
    }
    var requestsArePipe: Bool { accounting.requestsArePipe }
    var subscribed: Bool { accounting.subscribed }
    var holdsCommand: Bool { heldCommand != nil }
    /// Nothing half-read, waiting or half-done: no partial request, no command held back,
    /// no open transaction. A connection closed here loses nothing it sent.
    var isAtCommandBoundary: Bool { partialRequestBytes == 0 && heldCommand == nil && !accounting.inTransaction }

    // MARK: requests

    /// Scans and accounts `bytes` from the client. `commandsAwaitRoleCheck`: a command that may
    /// propagate must wait for a role check (the worker's gate says so). Inlined into the session's
    /// read callback, as the scanning was before the core stood alone.
    @inline(__always)
    public mutating func clientRead(_ bytes: UnsafeRawBufferPointer, commandsAwaitRoleCheck: Bool) -> RequestsRead {
        var outcome = RequestsRead(forward: bytes.count)
        if passthrough {
            return outcome
        } else if accounting.requestsArePipe {
            ledger.recordWire(bucket: .replication, commands: 0, bytesIn: bytes.count, bytesOut: 0)
        } else if accounting.requestsUnparsed {
            ledger.recordWire(bucket: .unparsed, commands: 0, bytesIn: bytes.count, bytesOut: 0)
        } else if accounting.requestsAreMigrationStream {
            scanMigrationStream(bytes, into: &outcome)
        } else {
            scanRequests(bytes, commandsAwaitRoleCheck: commandsAwaitRoleCheck, into: &outcome)
        }
        return outcome
    }

    /// A slot migration stream: every request is accounted as it completes and none waits for a reply.
    @inline(never)
    private mutating func scanMigrationStream(_ bytes: UnsafeRawBufferPointer, into outcome: inout RequestsRead) {
        var offset = 0
        while offset < bytes.count {
            let start = offset
            switch requestScanner.next(in: bytes, at: &offset) {
            case .complete(var request):
                request.wireBytes = partialRequestBytes + offset - start  // with what the scanner skipped before it
                partialRequestBytes = 0
                accounting.migrationRequestScanned(request, ledger: ledger)
            case .incomplete:
                partialRequestBytes += offset - start
            case .malformed(let violation):
                self.violation = violation
                outcome.events.insert(.malformed)
                accounting.requestsBecameUnparsed(pendingBytes: partialRequestBytes + bytes.count - start, ledger: ledger)
                partialRequestBytes = 0
                return
            }
        }
    }

    /// Scans and accounts every complete request in `bytes`; sets how many bytes may be forwarded
    /// now: all of them, unless a command must wait for a role check (then it and what follows wait).
    private mutating func scanRequests(_ bytes: UnsafeRawBufferPointer, commandsAwaitRoleCheck: Bool, into outcome: inout RequestsRead) {
        let plainAllowed = usesPlainLanes && (!commandsAwaitRoleCheck || scanningReleasedChunk)
        var offset = 0
        while offset < bytes.count {
            // The plain lane (most requests): an ordinary command joins the in-flight FIFO. Writes go
            // the general way while they must wait for a role check.
            if plainAllowed, accounting.takesPlainRequests, let request = requestScanner.nextPlain(in: bytes, at: &offset) {
                accounting.plainRequestScanned(request)
                continue
            }
            if scanRequestGenerally(bytes, at: &offset, commandsAwaitRoleCheck: commandsAwaitRoleCheck, into: &outcome) { return }
        }
    }

    /// Scans and accounts the request at `offset` (or what the chunk holds of it) the general way.
    /// Returns whether scanning of the chunk stops. Out of line: its large frame would otherwise be
    /// set up for every plain request too.
    @inline(never)
    private mutating func scanRequestGenerally(
        _ bytes: UnsafeRawBufferPointer, at offset: inout Int, commandsAwaitRoleCheck: Bool, into outcome: inout RequestsRead
    ) -> Bool {
        let start = offset
        switch requestScanner.next(in: bytes, at: &offset) {
        case .complete(let request):
            let whole = partialRequestBytes == 0
            recordSkipped(partialRequestBytes + offset - start - request.wireBytes)
            partialRequestBytes = 0
            if whole {
                switch request.effect {
                case .replicationHandshake:
                    psyncContinueAfter = Self.psyncOffset(UnsafeRawBufferPointer(rebasing: bytes[start..<offset])).map { $0 - 1 }
                    if (psyncContinueAfter ?? -1) >= 0 && readsReplicationStreams && !scanningReleasedChunk {
                        hold(request, bytes, from: start, scanned: offset - start, into: &outcome)
                        outcome.events.insert(.awaitsStreamFence)
                        return true
                    }
                case .replicaConfiguration:
                    if let port = Self.listeningPort(UnsafeRawBufferPointer(rebasing: bytes[start..<offset])) { replicaListeningPort = port }
                default: break
                }
            }
            if commandsAwaitRoleCheck && !scanningReleasedChunk && request.mayPropagate {
                hold(request, bytes, from: start, scanned: offset - start, into: &outcome)
                outcome.events.insert(.awaitsRoleCheck)
                return true
            }
            requestScanned(request, into: &outcome)
            if accounting.requestsArePipe {
                ledger.recordWire(bucket: .replication, commands: 0, bytesIn: bytes.count - offset, bytesOut: 0)
                return true
            }
            return false
        case .incomplete:
            partialRequestBytes += offset - start
            if requestScanner.isBetweenRequests {
                recordSkipped(partialRequestBytes)
                partialRequestBytes = 0
            }
            return true
        case .malformed(let violation):
            self.violation = violation
            outcome.events.insert(.malformed)
            accounting.requestsBecameUnparsed(pendingBytes: partialRequestBytes + bytes.count - start, ledger: ledger)
            partialRequestBytes = 0
            return true
        }
    }

    /// Holds `request` (at `start`) and the rest of the chunk back; only what came before goes on.
    private mutating func hold(_ request: ScannedRequest, _ bytes: UnsafeRawBufferPointer, from start: Int, scanned: Int, into outcome: inout RequestsRead) {
        heldCommand = HeldCommand(
            request: request, bytes: Array(UnsafeRawBufferPointer(rebasing: bytes[start...])), scanned: scanned,
            since: DispatchTime.now().uptimeNanoseconds)
        outcome.forward = start
    }

    /// The stream fence holds every writer and read the node's `master_repl_offset` (nil: it could
    /// not): the held `PSYNC` may go on (`releaseHeldCommand`), and a `+CONTINUE` does not charge the
    /// backlog it resends up to that offset.
    public mutating func streamFenced(unchargedThrough offset: Int64?) {
        streamUnchargedThrough = offset
    }

    /// Bytes the scanner read past without a request (empty lines, `*0`): no command's, so keyless on
    /// the wire (the node counts them nowhere), when the scanner has left them behind.
    private func recordSkipped(_ bytes: Int) {
        if bytes > 0 { ledger.recordWire(bucket: .keyless, commands: 0, bytesIn: bytes, bytesOut: 0) }
    }

    private mutating func requestScanned(_ request: ScannedRequest, into outcome: inout RequestsRead) {
        accounting.requestScanned(request, ledger: ledger)
        switch request.effect {
        case .roleChange:
            resetReason = .roleChange
            outcome.events.insert(.resetsNode)
        case .resetStat:
            resetReason = .nodeResetStat
            outcome.events.insert(.resetsNode)
        case .slotOwnership:
            outcome.events.insert(.suggestsRoleChange)
        default: break
        }
    }

    // MARK: held commands

    /// Whether the waiting command began to wait before `time` (`DispatchTime` uptime).
    func commandWaits(since time: UInt64) -> Bool {
        guard let heldCommand else { return false }
        return heldCommand.since < time
    }

    /// The held command may go: accounts it and scans the rest of its chunk (without holding
    /// anything again). Returns the chunk, of which `forward` bytes go on now, and what
    /// else to do; nil when no command waits.
    public mutating func releaseHeldCommand(commandsAwaitRoleCheck: Bool) -> (bytes: [UInt8], outcome: RequestsRead)? {
        guard let waiting = heldCommand else { return nil }
        heldCommand = nil
        var first = RequestsRead(forward: waiting.bytes.count)
        requestScanned(waiting.request, into: &first)
        scanningReleasedChunk = true
        defer { scanningReleasedChunk = false }
        var outcome = waiting.bytes.withUnsafeBytes { bytes in
            clientRead(UnsafeRawBufferPointer(rebasing: bytes[waiting.scanned...]), commandsAwaitRoleCheck: commandsAwaitRoleCheck)
        }
        outcome.forward += waiting.scanned
        outcome.events.formUnion(first.events)
        return (waiting.bytes, outcome)
    }

    /// The offset argument of `PSYNC <replid> <offset>` (nil for `SYNC` or anything else).
    private static func psyncOffset(_ request: UnsafeRawBufferPointer) -> Int64? {
        guard let arguments = arguments(of: request), arguments.count == 3, arguments[0].lowercased() == "psync" else { return nil }
        return Int64(arguments[2])
    }

    /// The port of `REPLCONF listening-port <port>` (nil for any other `REPLCONF`).
    private static func listeningPort(_ request: UnsafeRawBufferPointer) -> Int? {
        guard let arguments = arguments(of: request), arguments.count == 3, arguments[1].lowercased() == "listening-port" else {
            return nil
        }
        return Int(arguments[2])
    }

    private static func arguments(of request: UnsafeRawBufferPointer) -> [String]? {
        guard let (value, _) = try? RESPValueDecoder.decode(Array(request)[...]), let items = value.array else { return nil }
        let strings = items.compactMap(\.string)
        return strings.count == items.count ? strings : nil
    }

    // MARK: replies

    /// Charges the stream the node sends down a replica's link (see ``ReplicationLink``).
    @inline(never)
    private mutating func followReplicationLink(_ bytes: UnsafeRawBufferPointer, into outcome: inout Events) {
        if replicationLink == nil {
            replicationLink = ReplicationLink(
                commands: commands, continueAfter: psyncContinueAfter, unchargedThrough: streamUnchargedThrough,
                replicaCountsWholeTransaction: accounting.rules.version.major >= 9)
            outcome.insert(.replicationLinkStarted)
        }
        _ = replicationLink?.streamRead(bytes, ledger: ledger)
    }

    /// For a link that began: the replica's announced port and the offset its `PSYNC` said it had
    /// processed (nil for `SYNC` or `PSYNC ? -1`).
    var replicationLinkStart: (listeningPort: Int?, resumesAfter: Int64?) { (replicaListeningPort, psyncContinueAfter) }

    /// Scans and accounts `bytes` from the node. Inlined like `clientRead`.
    @inline(__always)
    public mutating func nodeRead(_ bytes: UnsafeRawBufferPointer) -> Events {
        var outcome = Events()
        if passthrough {
            return outcome
        } else if accounting.repliesArePipe {
            ledger.recordWire(bucket: accounting.pipeBucket, commands: 0, bytesIn: 0, bytesOut: bytes.count)
            if accounting.pipeBucket == .replication && readsReplicationStreams { followReplicationLink(bytes, into: &outcome) }
        } else if accounting.repliesUnparsed {
            ledger.recordWire(bucket: .unparsed, commands: 0, bytesIn: 0, bytesOut: bytes.count)
        } else {
            scanReplies(bytes, into: &outcome)
        }
        return outcome
    }

    private mutating func scanReplies(_ bytes: UnsafeRawBufferPointer, into outcome: inout Events) {
        var offset = 0
        while offset < bytes.count {
            // The plain lane (most replies): a whole `+`, `:` or `$` frame answering an ordinary
            // command. (Never on a replication pipe: nothing is in flight there.)
            if usesPlainLanes, accounting.takesPlainReplies, let reply = replyScanner.nextPlain(in: bytes, at: &offset) {
                accounting.plainReplyScanned(reply, ledger: ledger)
                continue
            }
            // The message lane (a pub/sub fan-out): classic messages that answer no command.
            if usesPlainLanes, let messages = replyScanner.plainMessages(in: bytes, at: offset),
                accounting.takesMessages(arePushes: messages.arePushes)
            {
                offset &+= messages.wireBytes
                accounting.plainMessagesScanned(messages, ledger: ledger)
                continue
            }
            if !scanReplyGenerally(bytes, at: &offset, into: &outcome) { return }
        }
    }

    /// Scans and accounts the reply frame at `offset` (or what the chunk holds of it) the general
    /// way; returns whether scanning goes on. Out of line, like `scanRequestGenerally`.
    @inline(never)
    private mutating func scanReplyGenerally(_ bytes: UnsafeRawBufferPointer, at offset: inout Int, into outcome: inout Events) -> Bool {
        if accounting.repliesArePipe {
            ledger.recordWire(bucket: accounting.pipeBucket, commands: 0, bytesIn: 0, bytesOut: bytes.count - offset)
            if accounting.pipeBucket == .replication && readsReplicationStreams {
                followReplicationLink(UnsafeRawBufferPointer(rebasing: bytes[offset...]), into: &outcome)
            }
            return false
        }
        let start = offset
        switch replyScanner.next(in: bytes, at: &offset) {
        case .complete(let reply):
            partialReplyBytes = 0
            accounting.replyScanned(reply, ledger: ledger)
            outcome.insert(.mayHaveChangedSubscription)
            if let error = reply.error {
                switch error {
                case .moved, .ask, .readOnly, .loading, .clusterDown, .unblocked: outcome.insert(.suggestsRoleChange)
                default: break
                }
            } else if reply.pubSub == .sunsubscribe && reply.type == .push {
                outcome.insert(.suggestsRoleChange)
            }
            return true
        case .incomplete:
            partialReplyBytes += offset - start
            return false
        case .malformed(let violation):
            self.violation = violation
            outcome.insert(.malformed)
            accounting.repliesBecameUnparsed(pendingBytes: partialReplyBytes + bytes.count - start, ledger: ledger)
            // The rest of the request being read is unparsed too, like every client byte from now on.
            ledger.recordWire(bucket: .unparsed, commands: 0, bytesIn: partialRequestBytes, bytesOut: 0)
            partialReplyBytes = 0
            partialRequestBytes = 0
            return false
        }
    }
}
