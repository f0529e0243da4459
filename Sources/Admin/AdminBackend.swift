import Accounting
import Proxy
import RESP

/// What the admin API needs from the data plane and from the node. The admin service talks to the
/// data plane only through this facade; ``ProxyBackend`` is the real one, tests supply their own.
public protocol AdminBackend: Sendable {
    /// The node's version, read at start-up.
    var nodeVersion: ValkeyVersion { get }
    var clusterEnabled: Bool { get }
    /// One consistent cut of the ledger (taken on the loop).
    func snapshot() async -> LedgerSnapshot
    func connectionCounts() async -> ProxyServer.ConnectionCounts
    /// Commands forwarded and not answered yet, over all connections.
    func inFlightCount() async -> Int
    /// Pauses (resumes) client reads for `holder`; pauses nest (``ClientGate``).
    func pauseClientReads(by holder: ClientGate.PauseHolder) async
    func resumeClientReads(by holder: ClientGate.PauseHolder) async
    func clientReadState() async -> ProxyServer.ClientReadState
    func drain(timeoutMilliseconds: Int) async -> ProxyServer.DrainOutcome
    /// `CLUSTER SLOT-STATS SLOTSRANGE 0 16383`, read straight from the node. Only the read happens
    /// here (it may run while clients are paused); ``RawSlotStats/parse()`` does the rest later.
    func nodeSlotStats() async throws -> RawSlotStats
    /// The first element of the node's `ROLE` reply (`master`, `slave`).
    func nodeRole() async throws -> String
    /// `connected_slaves` of the node's `INFO replication`: replicas the node streams writes to.
    func nodeReplicas() async throws -> Int
    /// The node's counters when the current epoch opened, when a failover fence keeps epochs: the
    /// reconciliation's baseline then moves with every reset instead of staying at start-up.
    func epochBaseline() async -> NodeSlotStats?
    /// The open epoch and the closed ones kept in memory, oldest first; nil without a fence.
    func epochs() async -> EpochList?
    /// The failover fence's epoch and counters, for `/metrics`; nil without a fence.
    func fenceStatus() async -> FenceStatus?
    /// Closes the open epoch at a fenced cut and opens the next, zeroing the node's counters at that
    /// cut when asked; returns the closed one (nil without a fence).
    func closeEpoch(resetNodeStats: Bool) async -> EpochRecord?
    /// `nodeSlotStats()` with the node's view of the slot owners and its replication offset, read in
    /// one `MULTI` (nil owners and replication when the backend cannot read them).
    func nodeSlotStatsAndOwners() async throws -> (stats: RawSlotStats, owners: SlotOwners?, replication: ReplicationInfo?)
    /// The replica links through the sidecar once they forwarded the stream up to `primaryOffset`, or
    /// when `timeoutMilliseconds` passed.
    func replicationLinks(reaching primaryOffset: Int64, timeoutMilliseconds: Int) async -> [ProxyServer.ReplicationLinkStatus]
    /// Cuts the slots whose owner in `owners` differs from the view the open period belongs to, under
    /// the fence, and returns whether there were any (then the caller reads again).
    func cutSlots(ifOwnersDifferFrom owners: SlotOwners) async -> Bool
    /// The slot cuts kept in memory; nil without a fence.
    func slotCuts() async -> SlotCutHistory?
    /// How many cuts of the ledger began and finished, once none is under way or `timeout` passed;
    /// nil without a fence.
    func ledgerCutsSettled(within timeout: Duration) async -> LedgerCutCount?
    /// For each replica link through the sidecar: what its replica counts as bytes in, per slot, up to
    /// the stream offset `offset` (everything forwarded when nil).
    func replicaViews(upTo offset: Int64?) async -> [ProxyServer.ReplicaViewReport]
    /// What the replica that announced `listeningPort` (from `host`, when given) counted of the stream
    /// forwarded to it through this sidecar, up to `offset` (see ``ReplicaStreamCounts``).
    func replicaStream(listeningPort: Int, host: String?, upTo offset: Int64) async throws -> ReplicaStreamCounts
    /// On a replica: its stream counts when the period began, once the asks of earlier cuts are
    /// answered; nil on a primary or without a fence.
    func replicaStreamBaseline() async -> ReplicaStreamBaseline?
    /// On a replica: asks its primary's sidecar for the stream counts up to the offset in `replication`.
    func readReplicaStream(_ replication: ReplicationInfo) async -> FenceController.ReplicaStreamRead
    /// The node's view of the slot owners that the open period belongs to; nil without a fence.
    func slotOwners() async -> SlotOwners?
}

/// What `/metrics` shows of the failover fence.
public struct FenceStatus: Sendable {
    public var epochID: UInt64
    public var counters: FenceController.Counters
    /// Stream fences begun around a replica's link (``ProxyServer/replicaStreamFences``).
    public var replicaStreamFences: Int

    public init(epochID: UInt64, counters: FenceController.Counters, replicaStreamFences: Int = 0) {
        self.epochID = epochID
        self.counters = counters
        self.replicaStreamFences = replicaStreamFences
    }
}

/// `GET /v1/epochs`.
public struct EpochList: Sendable, Encodable {
    public var open: EpochRecord
    public var closed: [EpochRecord]

    public init(open: EpochRecord, closed: [EpochRecord]) {
        self.open = open
        self.closed = closed
    }
}

extension AdminBackend {
    public func epochBaseline() async -> NodeSlotStats? { nil }
    public func epochs() async -> EpochList? { nil }
    public func fenceStatus() async -> FenceStatus? { nil }
    public func closeEpoch(resetNodeStats: Bool) async -> EpochRecord? { nil }
    public func nodeSlotStatsAndOwners() async throws -> (stats: RawSlotStats, owners: SlotOwners?, replication: ReplicationInfo?) {
        (try await nodeSlotStats(), nil, nil)
    }
    public func replicaStream(listeningPort: Int, host: String?, upTo offset: Int64) async throws -> ReplicaStreamCounts {
        ReplicaStreamCounts(sidecar: "", chain: nil, nextLink: 1, upToOffset: offset, complete: true, slots: [])
    }
    public func replicaStreamBaseline() async -> ReplicaStreamBaseline? { nil }
    public func slotOwners() async -> SlotOwners? { nil }
    public func readReplicaStream(_ replication: ReplicationInfo) async -> FenceController.ReplicaStreamRead { .notReplica }
    public func replicationLinks(reaching primaryOffset: Int64, timeoutMilliseconds: Int) async -> [ProxyServer.ReplicationLinkStatus] { [] }
    public func cutSlots(ifOwnersDifferFrom owners: SlotOwners) async -> Bool { false }
    public func slotCuts() async -> SlotCutHistory? { nil }
    public func ledgerCutsSettled(within timeout: Duration) async -> LedgerCutCount? { nil }
    public func replicaViews(upTo offset: Int64?) async -> [ProxyServer.ReplicaViewReport] { [] }
}

/// The real backend: a running ``ProxyServer`` and its node.
public struct ProxyBackend: AdminBackend {
    public let server: ProxyServer
    /// The admin API's own connection to the node (not the fence's: an admin read never delays a
    /// role poll).
    public let node: NodeControl
    /// The fence of the sidecar, when there is one: it owns the epochs.
    public let fence: FenceController?

    public init(
        server: ProxyServer, fence: FenceController? = nil, credentials: NodeCredentials? = nil, nodeTimeoutMilliseconds: Int = 1000
    ) {
        self.server = server
        self.fence = fence
        self.node = NodeControl(
            host: server.configuration.nodeHost, port: server.configuration.nodePort, credentials: credentials,
            timeoutMilliseconds: nodeTimeoutMilliseconds, purpose: "admin")
    }

    /// The backend of a whole sidecar: its data plane, its fence, and the node's credentials.
    public init(sidecar: Sidecar) {
        self.init(server: sidecar.server, fence: sidecar.fence, credentials: sidecar.credentials)
    }

    public func epochBaseline() async -> NodeSlotStats? { await fence?.nodeStatsAtOpen }

    public func epochs() async -> EpochList? {
        guard let fence else { return nil }
        return EpochList(open: await fence.openEpoch, closed: await fence.closedEpochs)
    }

    public func fenceStatus() async -> FenceStatus? {
        guard let fence else { return nil }
        return FenceStatus(epochID: await fence.openEpoch.id, counters: await fence.counters, replicaStreamFences: server.replicaStreamFences)
    }

    public func closeEpoch(resetNodeStats: Bool) async -> EpochRecord? {
        guard let fence else { return nil }
        return await fence.closeEpoch(.manual, resetNodeStats: resetNodeStats)
    }

    public var nodeVersion: ValkeyVersion { server.node.version }
    public var clusterEnabled: Bool { server.node.clusterEnabled }
    public func snapshot() async -> LedgerSnapshot { await server.snapshot() }

    public func connectionCounts() async -> ProxyServer.ConnectionCounts { await server.connectionCounts() }

    public func inFlightCount() async -> Int { await server.inFlightCount() }
    public func pauseClientReads(by holder: ClientGate.PauseHolder) async { await server.pauseClientReads(by: holder) }
    public func resumeClientReads(by holder: ClientGate.PauseHolder) async { await server.resumeClientReads(by: holder) }
    public func clientReadState() async -> ProxyServer.ClientReadState { await server.clientReadState() }

    public func drain(timeoutMilliseconds: Int) async -> ProxyServer.DrainOutcome {
        await server.drain(timeoutMilliseconds: timeoutMilliseconds)
    }

    public func nodeSlotStats() async throws -> RawSlotStats { try await node.slotStatsReply() }

    public func nodeSlotStatsAndOwners() async throws -> (stats: RawSlotStats, owners: SlotOwners?, replication: ReplicationInfo?) {
        let read = try await node.readAtCut()
        return (read.stats, read.owners, read.replication)
    }

    public func replicaStream(listeningPort: Int, host: String?, upTo offset: Int64) async throws -> ReplicaStreamCounts {
        try await server.replicaStream(listeningPort: listeningPort, host: host, upTo: offset)
    }

    public func replicaStreamBaseline() async -> ReplicaStreamBaseline? { await fence?.replicaStreamBaseline() }

    public func slotOwners() async -> SlotOwners? { await fence?.slotOwners }

    public func readReplicaStream(_ replication: ReplicationInfo) async -> FenceController.ReplicaStreamRead {
        guard let fence else { return .notReplica }
        return await fence.readReplicaStream(replication)
    }

    public func replicationLinks(reaching primaryOffset: Int64, timeoutMilliseconds: Int) async -> [ProxyServer.ReplicationLinkStatus] {
        await server.replicationLinks(reaching: primaryOffset, timeoutMilliseconds: timeoutMilliseconds)
    }

    public func cutSlots(ifOwnersDifferFrom owners: SlotOwners) async -> Bool {
        await fence?.cutSlots(ifOwnersDifferFrom: owners) ?? false
    }

    public func slotCuts() async -> SlotCutHistory? { await fence?.slotCuts }

    public func ledgerCutsSettled(within timeout: Duration) async -> LedgerCutCount? {
        await fence?.ledgerCutsSettled(within: timeout)
    }

    public func replicaViews(upTo offset: Int64?) async -> [ProxyServer.ReplicaViewReport] {
        await server.replicaViews(upTo: offset)
    }
    public func nodeRole() async throws -> String { try await node.role() }
    public func nodeReplicas() async throws -> Int { try await node.replication().connectedReplicas }
}
