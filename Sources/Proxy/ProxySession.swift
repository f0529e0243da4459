import Accounting
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
    let client: TCPStream
    /// Names the connection in logs and epoch records.
    let id: UInt64
    private var node: TCPStream?
    private var connectTimer: LoopTimer?

    /// The scanners, the accounting and a command waiting for a role check: all decisions about
    /// the bytes; this class only reads, writes and blocks.
    private(set) var core: SessionCore

    private var clientBlockers: ReadBlockers = [.connecting]
    /// For a replica's link: its replica and its sequence number in the replica's chain.
    private(set) var chainedLink: (replica: ReplicaStreamChains.Replica, link: UInt64)?
    private var clientReachedEOF = false
    private var nodeReachedEOF = false
    /// The client's connection failed (reset), or a replica left its link: what was forwarded still
    /// has its replies (the stream) read from the node and counted, as the node counts them, but
    /// nothing is written back.
    private var clientGone = false
    /// The `PSYNC` the stream fence released has not been answered yet: the fence waits for that.
    private var awaitsStreamAnswer = false
    /// The replica left: the node side ends once the stream reached this offset (see `streamFenced(at:)`).
    private var endsNodeSideAt: Int64?
    /// Set while the stream fence is awaited; goes on without it when it fires.
    private var streamFenceTimer: LoopTimer?
    /// Each direction is finished once its source reached EOF and everything it sent was flushed to
    /// the other side and that side's write half shut down; the session closes when both are.
    private var requestsFinished = false
    private var repliesFinished = false
    /// The client is being told the node cannot be reached; close once that message is flushed.
    private var refusing = false
    private var closedStreams = 0
    private var closing = false
    /// The process is stopping: read up to the next command boundary, let every command be answered,
    /// then close (see `closeAtCommandBoundary`).
    private var stopping = false
    /// Every reply was written and the write half shut down: what the client still sends is dropped
    /// while it reads the last replies, until it closes or the linger time passes.
    private var lingerTimer: LoopTimer?
    private var lingerMilliseconds: UInt64 = 0

    /// Counted against `max_clients`; the worker releases that when the session closes.
    var wasAdmitted = false

    init(worker: ProxyWorker, client: TCPStream, id: UInt64) {
        self.id = id
        self.worker = worker
        self.client = client
        self.core = SessionCore(
            commands: worker.node.commands, rules: NodeCountingRules(version: worker.node.version), ledger: worker.ledger,
            passthrough: worker.configuration.passthrough, readsReplicationStreams: worker.configuration.readsReplicationStreams)
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

    func setWatermarks(high: Int, low: Int) {
        for stream in [client, node].compactMap(\.self) {
            stream.highWatermark = high
            stream.lowWatermark = low
        }
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
        if stream === client, lingerTimer != nil {
            closeBoth()
        } else if stream === client, core.replicationLink != nil {
            replicaLeftLink()
        } else if stream === client {
            clientReachedEOF = true
            clientBlockers.insert(.finished)
            node?.shutdownWrite()
        } else if clientGone {
            closeBoth()
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
        if stream === client, clientGone { return }
        if stream === client, core.replicationLink != nil, !closing {
            replicaLeftLink()
            return
        }
        if stream === client, let node, !closing, !refusing, !nodeReachedEOF, !clientBlockers.contains(.connecting),
            core.replicationLink == nil, core.replicaListeningPort == nil
        {
            // A client that vanished (reset) mid-pipeline: the node executes and counts what was
            // forwarded, so its replies are still read and counted until the node closes after EOF.
            // A replica's connection still in its handshake closes at once (its next one must not
            // find it open); one that carries the stream ends through `replicaLeftLink`.
            clientGone = true
            if !clientReachedEOF { streamDidReachEOF(client) }
            node.startReading()
            return
        }
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
            endChainedLink()
            worker.sessionDidClose(self)
        }
    }

    // MARK: hot path

    private func clientDidRead(_ bytes: UnsafeRawBufferPointer) {
        guard let node, lingerTimer == nil else { return }
        let outcome = core.clientRead(bytes, commandsAwaitRoleCheck: worker.commandsAwaitRoleCheck)
        act(on: outcome.events, fromClient: true)
        if !node.write(UnsafeRawBufferPointer(rebasing: bytes[..<outcome.forward])) { blockClient(.backpressure) }
        if stopping { stopAtCommandBoundary() }
    }

    /// What a scanned chunk of requests asks for besides forwarding: each is rare, so out of line.
    private func act(on events: SessionCore.Events, fromClient: Bool) {
        if !events.isEmpty { actRarely(on: events, fromClient: fromClient) }
    }

    @inline(never)
    private func actRarely(on events: SessionCore.Events, fromClient: Bool) {
        if events.contains(.malformed) {
            worker.logger.debug(
                fromClient ? "unparsable client input" : "unparsable node output",
                metadata: ["violation": "\(core.violation.map { "\($0)" } ?? "-")"])
        }
        // Before the bytes are forwarded: nothing else may cross until the fence acts.
        if events.contains(.resetsNode) { worker.commandWillResetNode(core.resetReason) }
        if events.contains(.awaitsRoleCheck) {
            blockClient(.roleCheck)
            worker.sessionAwaitsRoleCheck()
        }
        if events.contains(.suggestsRoleChange) { worker.replySuggestsRoleChange() }
        if events.contains(.awaitsStreamFence) {
            blockClient(.streamFence)
            awaitStreamFence(replicaLeft: false)
        }
        if events.contains(.replicationLinkStarted) { replicaLinkStarted() }
        // The node's first bytes after the released PSYNC are its answer: the replica is attached.
        if !fromClient, awaitsStreamAnswer {
            awaitsStreamAnswer = false
            worker.streamFenceFinished(id)
        }
        // A subscriber's messages are forwarded in small reads: they reach it sooner, and the loop
        // is not held by one connection's backlog.
        if events.contains(.mayHaveChangedSubscription), let node, node.keepsReadsSmall != core.subscribed {
            node.keepsReadsSmall = core.subscribed
        }
    }

    private func nodeDidRead(_ bytes: UnsafeRawBufferPointer) {
        act(on: core.nodeRead(bytes), fromClient: false)
        if clientGone {
            if endsNodeSideAt != nil { endNodeSideIfStreamed() }
        } else if !client.write(bytes) {
            node?.stopReading()
        }
        if core.inFlightCount == 0 {
            if worker.draining { worker.sessionMayHaveDrained() }
            if stopping { closeIfAnswered() }
        }
    }

    // MARK: pausing

    /// Commands forwarded and still waiting for their replies.
    var inFlightCount: Int { core.inFlightCount }
    /// Joins this link to its replica's chain, when the replica said which port it listens on.
    private func replicaLinkStarted() {
        let start = core.replicationLinkStart
        guard let port = start.listeningPort, let host = client.peerAddress?.ip else { return }
        let replica = ReplicaStreamChains.Replica(host: host, listeningPort: port)
        chainedLink = (replica, worker.replicaStreams.linkStarted(replica, resumesAfter: start.resumesAfter))
    }

    /// The replica at the end of this link went away. Its chain ends here; the node goes on feeding
    /// and charging the link until it notices, so the link's end is fenced (``ReplicaStreamFence``),
    /// unless the node still held the stream back: it drops that unwritten, so nothing is left to
    /// cross and no one is paused for it.
    private func replicaLeftLink() {
        guard !clientGone else { return }
        guard !nodeReachedEOF else { return closeBoth() }
        if core.replicationLink?.nodeHoldsStream == true {
            core.ledger.noteDroppedReplicaStream()
            endChainedLink()
            return closeBoth()
        }
        clientGone = true
        blockClient(.finished)
        node?.startReading()
        endChainedLink()
        awaitStreamFence(replicaLeft: true)
    }

    /// Hands the link's view to its replica's chain, once: the replica's next link resumes from it.
    private func endChainedLink() {
        guard let chainedLink, let view = core.replicationLink?.replicaView else { return }
        worker.replicaStreams.linkClosed(chainedLink.replica, link: chainedLink.link, view: view)
        self.chainedLink = nil
    }

    /// Asks for the stream fence, and goes on without it if it has not acted within the pause bound
    /// (its tasks could not run): the link is then charged as it crosses.
    private func awaitStreamFence(replicaLeft: Bool) {
        let timer = LoopTimer(on: worker.loop)
        timer.start(after: worker.configuration.maxPauseMilliseconds) { [unowned self] in
            self.worker.logger.warning("the stream fence did not act in time; the replica's link is charged as it crosses")
            _ = self.streamFenced(at: nil)
        }
        streamFenceTimer = timer
        worker.replicaStreamNeedsFence(self, replicaLeft: replicaLeft)
    }

    /// The stream fence holds every writer, and read the node's `master_repl_offset` as `offset`
    /// (nil: it could not). A held `PSYNC` goes on, and the backlog it resends up to `offset` is not
    /// charged; a link whose replica left is read (and charged) up to `offset`, then its node side
    /// ends.
    /// Returns false when nothing waited for it (the fence came too late).
    func streamFenced(at offset: Int64?) -> Bool {
        guard let timer = streamFenceTimer else { return false }
        timer.close()
        streamFenceTimer = nil
        if clientGone {
            endsNodeSideAt = offset ?? Int64.min
            endNodeSideIfStreamed()
        } else if clientBlockers.contains(.streamFence) {
            core.streamFenced(unchargedThrough: offset)
            awaitsStreamAnswer = true
            // The fence's own pause holds every client, this one too: the PSYNC is what it waits for
            // (and, like a replication link, it is no writer).
            clientBlockers.subtract([.paused, .guarded])
            unblockClient(.streamFence)
        }
        return true
    }

    /// Ends the node side of a link whose replica left once the stream reached `endsNodeSideAt`, or
    /// at once when `now` (the stream fence ran out of time).
    func endNodeSideIfStreamed(now: Bool = false) {
        guard let endsNodeSideAt, now || (core.replicationLink?.forwardedOffset ?? Int64.max) >= endsNodeSideAt else { return }
        self.endsNodeSideAt = nil
        node?.shutdownWrite()
    }

    /// Stops (or resumes) reading the client; node replies keep flowing either way. A replica's
    /// replication link is never paused: its acknowledgements must keep flowing for the primary.
    func setPaused(_ paused: Bool) { setHeld(paused, by: .paused) }

    /// Holds (or releases) the client while a promotion guard runs; like a pause, never a
    /// replication link.
    func setGuarded(_ guarded: Bool) { setHeld(guarded, by: .guarded) }

    private func setHeld(_ held: Bool, by blocker: ReadBlockers) {
        if !held {
            unblockClient(blocker)
        } else if !core.requestsArePipe {
            blockClient(blocker)
        }
    }

    // MARK: role check

    var awaitsRoleCheck: Bool { clientBlockers.contains(.roleCheck) }

    /// Ends the wait if the command began waiting before `time`; returns whether it did.
    func releaseRoleCheck(ifWaitingSince time: UInt64) -> Bool {
        guard core.commandWaits(since: time) else { return false }
        unblockClient(.roleCheck)
        return true
    }

    /// Forwards the command held back (for a role check or the stream fence) and the rest of its chunk.
    private func forwardHeldCommand() {
        guard let node, let (bytes, outcome) = core.releaseHeldCommand(commandsAwaitRoleCheck: worker.commandsAwaitRoleCheck)
        else { return }
        act(on: outcome.events, fromClient: true)
        let written = bytes.withUnsafeBytes { node.write(UnsafeRawBufferPointer(rebasing: $0[..<outcome.forward])) }
        if !written { blockClient(.backpressure) }
    }

    private func blockClient(_ reason: ReadBlockers) {
        clientBlockers.insert(reason)
        if client.isReading { client.stopReading() }
    }

    private func unblockClient(_ reason: ReadBlockers) {
        clientBlockers.remove(reason)
        guard clientBlockers.isEmpty, !closing, !refusing else { return }
        if core.holdsCommand {
            forwardHeldCommand()
            guard clientBlockers.isEmpty else { return }
        }
        if stopping {
            stopAtCommandBoundary()
            guard clientBlockers.isEmpty else { return }
        }
        if !client.isReading { client.startReading() }
    }

    // MARK: stopping

    /// A replica's replication link: it has no command boundaries, and closes after the clients.
    var isReplicationLink: Bool { core.requestsArePipe }

    /// The process is stopping: from the next command boundary on, the client is no longer read; once
    /// every command it sent is answered and the replies are flushed, the write half is shut down, so
    /// that the client reads every reply and then the end of the stream, and the connection closes
    /// when the client closes its side or after `lingerMilliseconds`.
    func closeAtCommandBoundary(lingerMilliseconds: UInt64) {
        guard !closing, !refusing, !stopping else { return }
        stopping = true
        self.lingerMilliseconds = lingerMilliseconds
        stopAtCommandBoundary()
    }

    private func stopAtCommandBoundary() {
        guard core.isAtCommandBoundary, !clientBlockers.contains(.stopping) else { return }
        blockClient(.stopping)
        closeIfAnswered()
    }

    private func closeIfAnswered() {
        guard clientBlockers.contains(.stopping), core.inFlightCount == 0, lingerTimer == nil, !closing else { return }
        stopConnectTimer()
        node?.close()
        client.shutdownWrite()
        let timer = LoopTimer(on: worker.loop)
        timer.start(after: lingerMilliseconds) { [unowned self] in self.closeBoth() }
        lingerTimer = timer
        if !client.isReading { client.startReading() }
    }

    // MARK: ending

    /// The node could not be reached: tell the client why, then close. Never leave it hanging.
    private func refuseClient(becauseNodeIsUnreachable reason: String) {
        guard !closing, !refusing, lingerTimer == nil else { return }
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
        lingerTimer?.close()
        lingerTimer = nil
        streamFenceTimer?.close()
        streamFenceTimer = nil
        client.close()
        node?.close()
    }
}
