import Accounting
import RESP

extension ProxyServer {
    /// A replica's link through this sidecar, as the primary's stream crosses it.
    public struct ReplicationLinkStatus: Sendable, Equatable, Codable {
        public var connection: UInt64
        /// The primary's replication offset up to which the stream was forwarded (nil until the link
        /// said where its stream starts).
        public var forwardedOffset: Int64?

        /// Bytes the node has put into its stream (and charged) that have not crossed this link yet.
        public func pendingBytes(primaryOffset: Int64) -> Int64? {
            forwardedOffset.map { max(0, primaryOffset - $0) }
        }
    }

    /// What the replica at the end of a link will count as bytes in, per slot, for the stream
    /// forwarded to it (see `ReplicaView`).
    public struct ReplicaViewReport: Sendable, Equatable, Codable {
        public typealias Slot = ReplicaStreamCounts.Slot

        public var connection: UInt64
        /// The replica as its primary's `INFO replication` names it: the link's peer address and the
        /// port it announced (`REPLCONF listening-port`).
        public var replicaHost: String?
        public var replicaListeningPort: Int?
        public var forwardedOffset: Int64?
        /// The stream offset the counts stop at (nil: everything forwarded).
        public var upToOffset: Int64?
        /// False when the link no longer remembers the charges beyond `upToOffset` (`slots` is empty then).
        public var complete: Bool
        /// Slots with bytes, ascending.
        public var slots: [Slot]
    }


    /// Every replica link's view, up to the stream offset `offset` when given.
    public func replicaViews(upTo offset: Int64? = nil) async -> [ReplicaViewReport] {
        await eachWorker { await $0.replicaViews(upTo: offset) }.flatMap { $0 }.sorted { $0.connection < $1.connection }
    }

    /// What a replica counted of the stream forwarded to it through this sidecar, over all its links
    /// (see ``ReplicaStreamCounts``), up to the stream offset `offset`. The replica is the one that
    /// announced `listeningPort` (`REPLCONF listening-port`: its node's port), from `host` when given.
    /// Fails when several replicas match.
    public func replicaStream(listeningPort: Int, host: String?, upTo offset: Int64) async throws(AmbiguousReplica)
        -> ReplicaStreamCounts
    {
        let matching = replicaStreams.replicas(listeningPort: listeningPort, host: host)
        guard matching.count <= 1 else { throw AmbiguousReplica(hosts: matching.map(\.host).sorted()) }
        guard let replica = matching.first else {
            let none = replicaStreams.position(of: .init(host: "", listeningPort: listeningPort), upTo: offset)
            return ReplicaStreamCounts(sidecar: replicaStreams.sidecar, position: none, upTo: offset, counts: [])
        }
        // The open link may close (and hand its view to the chain) between the two reads: then read again.
        for _ in 0..<3 {
            let position = replicaStreams.position(of: replica, upTo: offset)
            var linkCounts: [UInt64]?
            if let open = position.openLink {
                guard let counts = await linkCountsOnAnyWorker(open, upTo: offset) else { continue }
                linkCounts = counts
            } else {
                linkCounts = position.closedCounts ?? [UInt64](repeating: 0, count: HashSlot.count)
            }
            let total = linkCounts.map { ReplicaStreamChains.sum(position.carried, $0) }
            return ReplicaStreamCounts(sidecar: replicaStreams.sidecar, position: position, upTo: offset, counts: total)
        }
        let position = replicaStreams.position(of: replica, upTo: offset)
        return ReplicaStreamCounts(sidecar: replicaStreams.sidecar, position: position, upTo: offset, counts: nil)
    }

    /// Several replicas announced the port asked for; the host tells them apart.
    public struct AmbiguousReplica: Error, Sendable {
        public var hosts: [String]
    }

    private func linkCountsOnAnyWorker(_ link: UInt64, upTo offset: Int64) async -> [UInt64]?? {
        for counts in await eachWorker({ await $0.replicaLinkCounts(link, upTo: offset) }) {
            if let counts { return counts }
        }
        return nil
    }

    /// Every replica link through the sidecar, by connection id.
    public func replicationLinks() async -> [ReplicationLinkStatus] {
        await eachWorker { await $0.replicationLinks() }.flatMap { $0 }.sorted { $0.connection < $1.connection }
    }

    /// Waits until every replica link has forwarded the stream up to `primaryOffset` (what the node
    /// charged by the time it was read), or `timeoutMilliseconds` pass; returns the links as they
    /// stand then. The node charges a replica for its stream when it writes it into its buffer,
    /// the ledger when it crosses the link: under a fence nothing new is written (clients are paused),
    /// so the links catch up within the time a write takes. Polls every millisecond: it runs only
    /// inside a fence, and a link's progress is not an event the loop reports.
    public func replicationLinks(reaching primaryOffset: Int64, timeoutMilliseconds: Int) async -> [ReplicationLinkStatus] {
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(max(0, timeoutMilliseconds))
        while true {
            let links = await replicationLinks()
            // A link whose offset is not known yet (its snapshot or its answer to PSYNC still on the
            // way) cannot catch up within a fence: it is reported behind, not waited for.
            let behind = links.contains { ($0.pendingBytes(primaryOffset: primaryOffset) ?? 0) > 0 }
            if !behind || clock.now >= deadline { return links }
            try? await Task.sleep(for: .milliseconds(1))
        }
    }
}

extension ProxyServer.ReplicaViewReport {
    /// `link`'s view up to `offset` (everything forwarded when nil).
    init(connection: UInt64, link: ReplicationLink, replicaHost: String?, replicaListeningPort: Int?, upTo offset: Int64?) {
        let counts = offset.map { link.replicaView.counts(upTo: $0) } ?? link.replicaView.bytesIn
        self.init(
            connection: connection, replicaHost: replicaHost, replicaListeningPort: replicaListeningPort,
            forwardedOffset: link.forwardedOffset, upToOffset: offset, complete: counts != nil,
            slots: (counts ?? []).enumerated().compactMap { $0.element == 0 ? nil : .init(slot: $0.offset, bytesIn: $0.element) })
    }
}
