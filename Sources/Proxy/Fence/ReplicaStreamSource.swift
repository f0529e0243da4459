import Accounting

/// How a replica's sidecar learns what its node counted of the replication stream: it asks the
/// sidecar of the primary its node follows, which forwarded that stream (see ``ReplicaStreamCounts``).
/// The executable asks over HTTP, at an admin address derived from the primary's announced one by
/// the configured peer rule; an in-process cluster asks the other sidecar directly.
public protocol ReplicaStreamSource: Sendable {
    /// The counts of the replica that announced `replicaListeningPort`, up to stream offset `offset`,
    /// from the sidecar of `primary` (the `host:port` the replica's node follows). Throws when that
    /// sidecar cannot be asked; the error's description goes into the reconciliation report.
    func replicaStream(primary: String, replicaListeningPort: Int, upTo offset: Int64) async throws -> ReplicaStreamCounts
}
