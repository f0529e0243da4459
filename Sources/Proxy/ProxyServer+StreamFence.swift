/// A fence around one change of a replica's link, so that the primary's sidecar charges its stream
/// exactly as the node does (docs/accounting.md §10). The node charges a replica for the stream when
/// it feeds it, and only while the replica is attached; the sidecar charges a link for what crosses
/// it. The two part at the link's ends:
///
/// - **A `PSYNC` that may continue** (`+CONTINUE`): the node resends its backlog from the replica's
///   offset without charging it again (it charged it when it fed it, to the replicas attached then).
///   The `PSYNC` is held until every writer is paused and drained and the node's `master_repl_offset`
///   is read; what the link then carries up to that offset is the resent backlog, not charged. The
///   writers resume once the node answered, so no write falls between.
/// - **The replica went away**: the node goes on feeding (and charging) the link until it notices.
///   Once every writer is paused and drained and `master_repl_offset` is read, the sidecar reads
///   (and charges) the link up to that offset, then ends its side; nothing is fed meanwhile that the
///   node would charge and never write. (Not for a replica lost during its full resync: the node
///   held that stream back and drops it unwritten, so the link closes at once; see
///   `ReplicationLink.nodeHoldsStream`.)
///
/// The pause is bounded by `maxPauseMilliseconds`, like any other; when it runs out first, the link
/// is charged as it crosses, as without the fence.
struct ReplicaStreamFence: Sendable {
    let worker: ProxyWorker
    let session: UInt64
    /// Which of the two: a held `PSYNC`, or a link whose replica left.
    let replicaLeft: Bool
}

extension ProxyServer {
    /// How long the stream fence waits for commands in flight: a blocked command (`BLPOP 0`) never
    /// ends, and feeds nothing while the writers are paused.
    static let streamFenceDrainMilliseconds = 500

    /// How many stream fences have begun: each pauses every client for a moment.
    public var replicaStreamFences: Int { streamFenceCount.load(ordering: .relaxed) }

    func fenceReplicaStream(_ fence: ReplicaStreamFence) async {
        streamFenceCount.add(1, ordering: .relaxed)
        let bound = Int(configuration.maxPauseMilliseconds)
        await pauseClientReads()
        let drained = await drain(timeoutMilliseconds: min(bound, Self.streamFenceDrainMilliseconds))
        var offset: Int64?
        if let read = events.readsReplicationOffset {
            do {
                offset = try await read()
            } catch {
                logger.warning("stream fence: master_repl_offset could not be read; the link is charged as it crosses", metadata: ["error": "\(error)"])
            }
        }
        let finished = await fence.worker.carryOutStreamFence(session: fence.session, at: offset, timeoutMilliseconds: bound)
        let pause = await resumeClientReads()
        logger.debug(
            "replica stream fenced",
            metadata: [
                "connection": "\(fence.session)", "case": "\(fence.replicaLeft ? "replica_left" : "psync")",
                "offset": "\(offset.map { "\($0)" } ?? "-")", "drained": "\(drained.drained)", "finished": "\(finished)",
                "pause_ms": "\(pause.milliseconds)", "pause_expired": "\(pause.expired)",
            ])
    }
}
