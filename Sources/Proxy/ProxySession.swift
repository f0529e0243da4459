import Dispatch
import Ledger
import Logging
import RESP
import UV

/// One client connection and its own connection to the node (1:1), on the loop thread.
///
/// The hot path is the two read callbacks: read → scan → account → write, in that order, with the
/// bytes written on exactly as they were read. Backpressure: when one side's write queue passes its
/// high watermark the other side stops reading until the queue drains below the low watermark.
final class ProxySession: TCPStreamDelegate {
    private unowned(unsafe) let worker: ProxyWorker
    private let ledger: LedgerShard
    /// `ProxyConfiguration.passthrough`, read once.
    private let passthrough: Bool
    let client: TCPStream
    /// Names the connection in logs and epoch records.
    let id: UInt64
    private var node: TCPStream?
    private var connectTimer: LoopTimer?

    private var requestScanner: RequestScanner
    private var replyScanner: ReplyScanner
    private var accounting: SessionAccounting
    /// Bytes of the request (reply) being scanned that earlier reads already forwarded.
    private var partialRequestBytes = 0
    private var partialReplyBytes = 0

    /// Why the client is not being read right now; it is read only while this is empty.
    private struct ReadBlockers: OptionSet {
        let rawValue: UInt8
        /// The node connection is not up yet.
        static let connecting = ReadBlockers(rawValue: 1 << 0)
        /// The node's write queue passed its high watermark.
        static let backpressure = ReadBlockers(rawValue: 1 << 1)
        /// The worker paused client reads (a fence or a consistent cut).
        static let paused = ReadBlockers(rawValue: 1 << 2)
        /// The client finished sending.
        static let finished = ReadBlockers(rawValue: 1 << 3)
        /// A promotion guard runs on the node.
        static let guarded = ReadBlockers(rawValue: 1 << 4)
        /// A command waits for a role check (see `CommandAwaitingRoleCheck`).
        static let roleCheck = ReadBlockers(rawValue: 1 << 5)
    }

    /// A command that may propagate, read while the node was a replica of a version that aborts on
    /// its first write after a promotion, and everything read after it in the same chunk. It reaches
    /// the node once a `ROLE` requested after `since` came back (and nothing else blocks the client):
    /// if that `ROLE` shows a promotion, the guard runs first. Scanned up to `scanned`; not accounted
    /// yet, so a drain does not wait for it.
    private struct CommandAwaitingRoleCheck {
        var request: ScannedRequest
        var bytes: [UInt8]
        var scanned: Int
        /// `DispatchTime` uptime when it began to wait.
        var since: UInt64
    }
    private var commandAwaitingRoleCheck: CommandAwaitingRoleCheck?
    /// Set while the rest of a released chunk is scanned: its role check already passed.
    private var scanningAfterRoleCheck = false

    private var clientBlockers: ReadBlockers = [.connecting]
    private var clientReachedEOF = false
    private var nodeReachedEOF = false
    /// Each direction is finished once its source reached EOF and everything it sent was flushed to
    /// the other side and that side's write half shut down; the session closes when both are.
    private var requestsFinished = false
    private var repliesFinished = false
    /// The client is being told the node cannot be reached; close once that message is flushed.
    private var refusing = false
    private var closedStreams = 0
    private var closing = false

    /// Counted against `max_clients`; the worker releases that when the session closes.
    var wasAdmitted = false

    init(worker: ProxyWorker, client: TCPStream, id: UInt64) {
        self.id = id
        self.worker = worker
        self.ledger = worker.ledger
        self.passthrough = worker.configuration.passthrough
        self.client = client
        self.requestScanner = RequestScanner(commands: worker.node.commands)
        self.replyScanner = ReplyScanner()
        self.accounting = SessionAccounting(rules: NodeCountingRules(version: worker.node.version))
    }

    /// Connects to the node; the client is read only once that connection is up.
    func start() {
        client.delegate = self
        client.setNoDelay(worker.configuration.tcpNoDelay)
        client.highWatermark = worker.configuration.highWatermarkBytes
        client.lowWatermark = worker.configuration.lowWatermarkBytes
        let node = TCPStream.connect(on: worker.loop, to: worker.nodeAddress, delegate: self)
        node.highWatermark = worker.configuration.highWatermarkBytes
        node.lowWatermark = worker.configuration.lowWatermarkBytes
        self.node = node
        let timer = LoopTimer(on: worker.loop)
        timer.start(after: worker.configuration.nodeConnectTimeoutMilliseconds) { [unowned self] in
            self.refuseClient(becauseNodeIsUnreachable: "timed out after \(self.worker.configuration.nodeConnectTimeoutMilliseconds) ms")
        }
        connectTimer = timer
    }

    // MARK: TCPStreamDelegate

    func streamDidConnect(_ stream: TCPStream) {
        stopConnectTimer()
        stream.setNoDelay(worker.configuration.tcpNoDelay)
        stream.startReading()
        if worker.clientReadsPaused { clientBlockers.insert(.paused) }
        if worker.clientsHeld { clientBlockers.insert(.guarded) }
        unblockClient(.connecting)
    }

    func stream(_ stream: TCPStream, didFailToConnect error: UVError) {
        stopConnectTimer()
        refuseClient(becauseNodeIsUnreachable: error.description)
    }

    func stream(_ stream: TCPStream, didRead bytes: UnsafeRawBufferPointer) {
        if stream === client {
            clientDidRead(bytes)
        } else {
            nodeDidRead(bytes)
        }
    }

    func streamDidReachEOF(_ stream: TCPStream) {
        if stream === client {
            clientReachedEOF = true
            clientBlockers.insert(.finished)
            node?.shutdownWrite()
        } else {
            nodeReachedEOF = true
            client.shutdownWrite()
        }
    }

    func streamDidShutdownWrite(_ stream: TCPStream) {
        if stream === client {
            repliesFinished = true
        } else {
            requestsFinished = true
        }
        if refusing || (requestsFinished && repliesFinished) { closeBoth() }
    }

    func stream(_ stream: TCPStream, didFail error: UVError) {
        worker.logger.debug(
            "connection failed",
            metadata: ["side": "\(stream === client ? "client" : "node")", "error": "\(error)"])
        closeBoth()
    }

    func streamWritesDrained(_ stream: TCPStream) {
        if stream === client {
            if !nodeReachedEOF { node?.startReading() }
        } else {
            unblockClient(.backpressure)
        }
    }

    func streamDidClose(_ stream: TCPStream) {
        closedStreams += 1
        if closedStreams == (node == nil ? 1 : 2) {
            worker.sessionDidClose(self)
        }
    }

    // MARK: hot path

    private func clientDidRead(_ bytes: UnsafeRawBufferPointer) {
        guard let node else { return }
        var forward = bytes.count
        if passthrough {
            // Benchmarks only: no parsing, no accounting.
        } else if accounting.requestsArePipe {
            ledger.recordWire(bucket: .replication, commands: 0, bytesIn: bytes.count, bytesOut: 0)
        } else if accounting.requestsUnparsed {
            ledger.recordWire(bucket: .unparsed, commands: 0, bytesIn: bytes.count, bytesOut: 0)
        } else {
            forward = scanRequests(bytes)
        }
        if !node.write(UnsafeRawBufferPointer(rebasing: bytes[..<forward])) { blockClient(.backpressure) }
    }

    /// Scans and accounts every complete request in `bytes`; returns how many bytes may be forwarded
    /// now: all of them, unless a command must wait for a role check (then it and what follows wait).
    private func scanRequests(_ bytes: UnsafeRawBufferPointer) -> Int {
        var offset = 0
        while offset < bytes.count {
            // The plain lane (most requests): an ordinary command joins the in-flight FIFO. Writes go
            // the general way while they must wait for a role check.
            if accounting.takesPlainRequests, !worker.commandsAwaitRoleCheck || scanningAfterRoleCheck,
                let request = requestScanner.nextPlain(in: bytes, at: &offset)
            {
                accounting.plainRequestScanned(request)
                continue
            }
            if let forward = scanRequestGenerally(bytes, at: &offset) { return forward }
        }
        return bytes.count
    }

    /// Scans and accounts the request at `offset` (or what the chunk holds of it) the general way.
    /// Returns how many bytes of the chunk may be forwarded once scanning must stop, nil to go on.
    /// Out of line: its large frame would otherwise be set up for every plain request too.
    @inline(never)
    private func scanRequestGenerally(_ bytes: UnsafeRawBufferPointer, at offset: inout Int) -> Int? {
        let start = offset
        switch requestScanner.next(in: bytes, at: &offset) {
        case .complete(let request):
            partialRequestBytes = 0
            if worker.commandsAwaitRoleCheck && !scanningAfterRoleCheck && request.mayPropagate {
                awaitRoleCheck(request, UnsafeRawBufferPointer(rebasing: bytes[start...]), scanned: offset - start)
                return start
            }
            requestScanned(request)
            if accounting.requestsArePipe {
                ledger.recordWire(bucket: .replication, commands: 0, bytesIn: bytes.count - offset, bytesOut: 0)
                return bytes.count
            }
            return nil
        case .incomplete:
            partialRequestBytes += offset - start
            return bytes.count
        case .malformed(let violation):
            worker.logger.debug("unparsable client input", metadata: ["violation": "\(violation)"])
            accounting.requestsBecameUnparsed(pendingBytes: partialRequestBytes + bytes.count - start, ledger: ledger)
            partialRequestBytes = 0
            return bytes.count
        }
    }

    private func requestScanned(_ request: ScannedRequest) {
        accounting.requestScanned(request, ledger: ledger)
        switch request.effect {
        case .roleChange: worker.commandWillResetNode(.roleChange)
        case .resetStat: worker.commandWillResetNode(.nodeResetStat)
        default: break
        }
    }

    private func nodeDidRead(_ bytes: UnsafeRawBufferPointer) {
        if passthrough {
            // Benchmarks only: no parsing, no accounting.
        } else if accounting.repliesArePipe {
            ledger.recordWire(bucket: .replication, commands: 0, bytesIn: 0, bytesOut: bytes.count)
        } else if accounting.repliesUnparsed {
            ledger.recordWire(bucket: .unparsed, commands: 0, bytesIn: 0, bytesOut: bytes.count)
        } else {
            scanReplies(bytes)
        }
        if !client.write(bytes) { node?.stopReading() }
        if worker.draining && accounting.inFlightCount == 0 { worker.sessionMayHaveDrained() }
    }

    private func scanReplies(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            // The plain lane (most replies): a whole `+`, `:` or `$` frame answering an ordinary
            // command. (Never on a replication pipe: nothing is in flight there.)
            if accounting.takesPlainReplies, let reply = replyScanner.nextPlain(in: bytes, at: &offset) {
                accounting.plainReplyScanned(reply, ledger: ledger)
                continue
            }
            // The message lane (a pub/sub fan-out): classic messages that answer no command.
            if let messages = replyScanner.plainMessages(in: bytes, at: offset), accounting.takesMessages(arePushes: messages.arePushes) {
                offset &+= messages.wireBytes
                accounting.plainMessagesScanned(messages, ledger: ledger)
                continue
            }
            if !scanReplyGenerally(bytes, at: &offset) { return }
        }
    }

    /// Scans and accounts the reply frame at `offset` (or what the chunk holds of it) the general
    /// way; returns whether scanning goes on. Out of line, like `scanRequestGenerally`.
    @inline(never)
    private func scanReplyGenerally(_ bytes: UnsafeRawBufferPointer, at offset: inout Int) -> Bool {
        if accounting.repliesArePipe {
            ledger.recordWire(bucket: .replication, commands: 0, bytesIn: 0, bytesOut: bytes.count - offset)
            return false
        }
        let start = offset
        switch replyScanner.next(in: bytes, at: &offset) {
        case .complete(let reply):
            partialReplyBytes = 0
            accounting.replyScanned(reply, ledger: ledger)
            // A subscriber's messages are forwarded in small reads: they reach it sooner, and the
            // loop is not held by one connection's backlog.
            if let node, node.keepsReadsSmall != accounting.subscribed { node.keepsReadsSmall = accounting.subscribed }
            if let error = reply.error {
                switch error {
                case .moved, .readOnly, .loading, .clusterDown, .unblocked: worker.replySuggestsRoleChange()
                default: break
                }
            } else if reply.pubSub == .sunsubscribe && reply.type == .push {
                worker.replySuggestsRoleChange()
            }
            return true
        case .incomplete:
            partialReplyBytes += offset - start
            return false
        case .malformed(let violation):
            worker.logger.debug("unparsable node output", metadata: ["violation": "\(violation)"])
            accounting.repliesBecameUnparsed(pendingBytes: partialReplyBytes + bytes.count - start, ledger: ledger)
            partialReplyBytes = 0
            return false
        }
    }

    // MARK: pausing

    /// Commands forwarded and still waiting for their replies.
    var inFlightCount: Int { accounting.inFlightCount }

    /// Stops (or resumes) reading the client; node replies keep flowing either way. A replica's
    /// replication link is never paused: its acknowledgements must keep flowing for the primary.
    func setPaused(_ paused: Bool) {
        if paused {
            if !accounting.requestsArePipe { blockClient(.paused) }
        } else {
            unblockClient(.paused)
        }
    }

    /// Holds (or releases) the client while a promotion guard runs; like a pause, never a
    /// replication link.
    func setGuarded(_ guarded: Bool) {
        if guarded {
            if !accounting.requestsArePipe { blockClient(.guarded) }
        } else {
            unblockClient(.guarded)
        }
    }

    // MARK: role check

    var awaitsRoleCheck: Bool { clientBlockers.contains(.roleCheck) }

    private func awaitRoleCheck(_ request: ScannedRequest, _ bytes: UnsafeRawBufferPointer, scanned: Int) {
        commandAwaitingRoleCheck = CommandAwaitingRoleCheck(
            request: request, bytes: Array(bytes), scanned: scanned, since: DispatchTime.now().uptimeNanoseconds)
        blockClient(.roleCheck)
        worker.sessionAwaitsRoleCheck()
    }

    /// Ends the wait if the command began waiting before `time`; returns whether it did.
    func releaseRoleCheck(ifWaitingSince time: UInt64) -> Bool {
        guard let commandAwaitingRoleCheck, commandAwaitingRoleCheck.since < time else { return false }
        unblockClient(.roleCheck)
        return true
    }

    /// Forwards the command that waited for a role check and the rest of its chunk (scanned now,
    /// without another role check).
    private func forwardCommandAfterRoleCheck() {
        guard let waiting = commandAwaitingRoleCheck, let node else { return }
        commandAwaitingRoleCheck = nil
        requestScanned(waiting.request)
        waiting.bytes.withUnsafeBytes { bytes in
            scanningAfterRoleCheck = true
            defer { scanningAfterRoleCheck = false }
            let forward = waiting.scanned + scanRequests(UnsafeRawBufferPointer(rebasing: bytes[waiting.scanned...]))
            if !node.write(UnsafeRawBufferPointer(rebasing: bytes[..<forward])) { blockClient(.backpressure) }
        }
    }

    private func blockClient(_ reason: ReadBlockers) {
        clientBlockers.insert(reason)
        if client.isReading { client.stopReading() }
    }

    private func unblockClient(_ reason: ReadBlockers) {
        clientBlockers.remove(reason)
        guard clientBlockers.isEmpty, !closing, !refusing else { return }
        if commandAwaitingRoleCheck != nil {
            forwardCommandAfterRoleCheck()
            guard clientBlockers.isEmpty else { return }
        }
        if !client.isReading { client.startReading() }
    }

    // MARK: ending

    /// The node could not be reached: tell the client why, then close. Never leave it hanging.
    private func refuseClient(becauseNodeIsUnreachable reason: String) {
        guard !closing, !refusing else { return }
        worker.logger.warning(
            "node unreachable; closing client",
            metadata: ["node": "\(worker.nodeAddress)", "reason": "\(reason)"])
        refuse(with: "ERR slotwarden: cannot reach node \(worker.nodeAddress): \(reason)")
    }

    /// Answers the client with `-message` and closes once that is flushed, without touching the node.
    func refuse(with message: String) {
        refusing = true
        client.delegate = self
        Array("-\(message)\r\n".utf8).withUnsafeBytes { _ = client.write($0) }
        client.shutdownWrite()
        node?.close()
    }

    private func stopConnectTimer() {
        connectTimer?.close()
        connectTimer = nil
    }

    func closeBoth() {
        guard !closing else { return }
        closing = true
        stopConnectTimer()
        client.close()
        node?.close()
    }
}
