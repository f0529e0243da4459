/// What the admin side reads of a replica's link, on the loop.
extension ProxySession {
    /// For a replica's link: what the replica will count of the stream forwarded to it, per slot, up
    /// to `offset` (everything forwarded when nil).
    func replicaView(upTo offset: Int64?) -> ProxyServer.ReplicaViewReport? {
        core.replicationLink.map {
            ProxyServer.ReplicaViewReport(
                connection: id, link: $0, replicaHost: client.peerAddress?.ip, replicaListeningPort: core.replicaListeningPort, upTo: offset)
        }
    }

    /// The link's counts up to `offset` if it is the chained link `link` (`.some(nil)`: its history no
    /// longer reaches back to `offset`).
    func replicaLinkCounts(_ link: UInt64, upTo offset: Int64) -> [UInt64]?? {
        guard chainedLink?.link == link, let view = core.replicationLink?.replicaView else { return nil }
        return .some(view.counts(upTo: offset))
    }

    /// For a replica's link: how far the stream was forwarded down it (nil offset until known).
    var replicationLink: ProxyServer.ReplicationLinkStatus? {
        core.replicationLink.map { ProxyServer.ReplicationLinkStatus(connection: id, forwardedOffset: $0.forwardedOffset) }
    }
}
