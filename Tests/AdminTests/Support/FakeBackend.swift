import Admin
import Foundation
import Hummingbird
import HummingbirdTesting
import Accounting
import Proxy
import Logging
import NIOEmbedded
import RESP
import Synchronization
import Testing

/// An ``AdminBackend`` whose ledger, node stats and role the test sets; it records fence calls.
final class FakeBackend: AdminBackend {
    struct State {
        var snapshot = LedgerSnapshot()
        var stats = NodeSlotStats(rows: [], networkStatsEnabled: true)
        /// nil: the node does not answer.
        var role: String? = "master"
        var inFlight = 0
        var connections = ProxyServer.ConnectionCounts(active: 0, accepted: 0, rejected: 0)
        var gate = ClientGate(maxPauseMilliseconds: 60_000)
        var calls: [String] = []
        /// CLUSTER SLOT-STATS does not answer until the clients are resumed (a slow node).
        var statsWaitForResume = false
        var replicas = 0
        var epochs: EpochList?
        var fence: FenceStatus?
        var cuts: SlotCutHistory?
        /// The node's INFO replication (a replica's), read with its counters.
        var replication: ReplicationInfo?
        /// What the primary's sidecar answers now, and the baseline of the period.
        var streamRead = FenceController.ReplicaStreamRead.notReplica
        var streamBaseline: ReplicaStreamBaseline?
        /// What `ledgerCutsSettled` answers, one entry per call (the last one stays), each with the
        /// ledger as that count leaves it (nil: as it is). Empty: there is no fence.
        var cutCounts: [(count: LedgerCutCount, ledger: LedgerSnapshot?)] = []
        /// What this sidecar serves at /v1/replication/stream.
        var servedStream = ReplicaStreamCounts(sidecar: "fake", chain: 1, nextLink: 2, upToOffset: 0, complete: true, slots: [])
    }

    /// Opened by the first resume.
    let resumed = Gate()

    let state = Mutex(State())
    let nodeVersion = ValkeyVersion(major: 9, minor: 1, patch: 2)
    let clusterEnabled = true

    func update(_ body: (inout State) -> Void) { state.withLock { body(&$0) } }
    var calls: [String] { state.withLock { $0.calls } }
    var paused: Bool { state.withLock { $0.gate.clientReadsPaused } }

    func snapshot() async -> LedgerSnapshot { state.withLock { $0.snapshot } }

    func epochs() async -> EpochList? { state.withLock { $0.epochs } }

    func fenceStatus() async -> FenceStatus? { state.withLock { $0.fence } }

    func slotCuts() async -> SlotCutHistory? { state.withLock { $0.cuts } }

    func ledgerCutsSettled(within timeout: Duration) async -> LedgerCutCount? {
        state.withLock { state in
            guard let next = state.cutCounts.first else { return nil }
            if state.cutCounts.count > 1 { state.cutCounts.removeFirst() }
            if let ledger = next.ledger { state.snapshot = ledger }
            return next.count
        }
    }

    func closeEpoch(resetNodeStats: Bool) async -> EpochRecord? {
        state.withLock { state in
            guard var list = state.epochs else { return nil }
            var closed = list.open
            closed.close(by: .manual, at: closed.startedAt + 1, role: closed.roleAtStart, ledger: LedgerSnapshot(), nodeStats: nil)
            list.closed.append(closed)
            list.open = EpochRecord(id: closed.id + 1, openedBy: .manual, startedAt: closed.startedAt + 1, roleAtStart: closed.roleAtStart)
            state.epochs = list
            state.calls.append(resetNodeStats ? "closeEpoch(reset)" : "closeEpoch")
            return closed
        }
    }
    func connectionCounts() async -> ProxyServer.ConnectionCounts { state.withLock { $0.connections } }
    func inFlightCount() async -> Int { state.withLock { $0.inFlight } }

    /// Pauses through the data plane's own ``ClientGate``; "pause" and "resume" are recorded when
    /// client reads actually stop and start again.
    func pauseClientReads(by holder: ClientGate.PauseHolder) async {
        state.withLock { state in
            if state.gate.pause(by: holder, now: 0).contains(.stopReadingClients) { state.calls.append("pause") }
        }
    }

    func resumeClientReads(by holder: ClientGate.PauseHolder) async {
        state.withLock { state in
            if state.gate.resume(by: holder, now: 0).contains(.startReadingClients) { state.calls.append("resume") }
        }
        resumed.open()
    }

    func clientReadState() async -> ProxyServer.ClientReadState {
        state.withLock { ProxyServer.ClientReadState(paused: $0.gate.clientReadsPaused, operatorPaused: $0.gate.isPausedByOperator) }
    }

    func drain(timeoutMilliseconds: Int) async -> ProxyServer.DrainOutcome {
        state.withLock {
            $0.calls.append("drain")
            return ProxyServer.DrainOutcome(drained: $0.inFlight == 0, inFlight: $0.inFlight, elapsedMilliseconds: 0)
        }
    }

    struct Unreachable: Error, CustomStringConvertible {
        var description: String { "cannot connect to 127.0.0.1:1: ECONNREFUSED" }
    }

    func nodeSlotStats() async throws -> RawSlotStats {
        if state.withLock({ $0.statsWaitForResume }) { await resumed.wait() }
        return try state.withLock {
            guard $0.role != nil else { throw Unreachable() }
            $0.calls.append("slot-stats")
            return .parsed($0.stats)
        }
    }

    func nodeSlotStatsAndOwners() async throws -> (stats: RawSlotStats, owners: SlotOwners?, replication: ReplicationInfo?) {
        (try await nodeSlotStats(), nil, state.withLock { $0.replication })
    }

    func readReplicaStream(_ replication: ReplicationInfo) async -> FenceController.ReplicaStreamRead {
        state.withLock { $0.streamRead }
    }

    func replicaStreamBaseline() async -> ReplicaStreamBaseline? { state.withLock { $0.streamBaseline } }

    func replicaStream(listeningPort: Int, host: String?, upTo offset: Int64) async throws -> ReplicaStreamCounts {
        state.withLock {
            $0.calls.append("stream(\(listeningPort), \(host ?? "-"), \(offset))")
            var counts = $0.servedStream
            counts.upToOffset = offset
            return counts
        }
    }

    func nodeReplicas() async throws -> Int {
        try state.withLock {
            guard $0.role != nil else { throw Unreachable() }
            return $0.replicas
        }
    }

    func nodeRole() async throws -> String {
        try state.withLock {
            guard let role = $0.role else { throw Unreachable() }
            return role
        }
    }
}

/// A one-shot gate: `wait()` returns once `open()` was called.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        waiters.forEach { $0.resume() }
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state in
                if !state.open { state.waiters.append(continuation) }
                return state.open
            }
            if ready { continuation.resume() }
        }
    }
}

/// Ledgers and node stats built by hand.
enum Fixtures {
    static func slot(_ number: Int) -> HashSlot { HashSlot(rawValue: UInt16(number))! }

    /// Records `[slot: (bytesIn, bytesOut)]` into both views, plus one keyless command.
    static func ledger(_ traffic: [Int: (Int, Int)], scripts: [Int] = []) -> LedgerSnapshot {
        let shard = LedgerShard()
        for (number, bytes) in traffic {
            shard.recordWire(slot: slot(number), commands: 1, bytesIn: bytes.0, bytesOut: bytes.1)
            shard.recordNode(slot: slot(number), commands: 1, bytesIn: bytes.0, bytesOut: bytes.1)
        }
        for number in scripts { shard.markScript(slot: slot(number)) }
        shard.recordWire(bucket: .keyless, commands: 1, bytesIn: 14, bytesOut: 7)
        return shard.snapshot()
    }

    /// A node whose shard owns `owned` (every slot unless told), with `rows` as `[slot: (bytesIn, bytesOut)]`.
    static func stats(_ rows: [Int: (UInt64, UInt64)], enabled: Bool = true, owned: Range<Int> = 0..<HashSlot.count) -> NodeSlotStats {
        NodeSlotStats(
            rows: owned.map { index in
                let bytes = rows[index] ?? (0, 0)
                return NodeSlotStat(slot: slot(index), networkBytesIn: enabled ? bytes.0 : 0, networkBytesOut: enabled ? bytes.1 : 0)
            },
            networkStatsEnabled: enabled)
    }
}

/// A response's status, headers and body, with the body decoded as JSON when it is JSON.
struct Reply: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var text: String

    var json: JSONValue {
        get throws { try JSONValue.parse(text) }
    }
}

extension AdminService {
    /// Runs `body` against the router, without sockets. The router test framework never touches the
    /// application's event loops, so it gets an embedded one: no thread is started, and nothing is
    /// left running when the test process exits.
    func withRouter(_ body: @Sendable (RouterClient) async throws -> Void) async throws {
        let app = makeApplication(eventLoopGroup: EmbeddedEventLoop(), logger: Logger(label: "admin.test"))
        try await app.test(.router) { client in try await body(RouterClient(client: client)) }
    }
}

struct RouterClient: Sendable {
    let client: any TestClientProtocol

    func get(_ uri: String, headers: HTTPFields = [:]) async throws -> Reply {
        try await execute(uri, .get, headers)
    }

    func post(_ uri: String, headers: HTTPFields = [:]) async throws -> Reply {
        try await execute(uri, .post, headers)
    }

    func execute(_ uri: String, _ method: HTTPRequest.Method, _ headers: HTTPFields) async throws -> Reply {
        try await client.execute(uri: uri, method: method, headers: headers) { response in
            Reply(status: response.status, headers: response.headers, text: String(buffer: response.body))
        }
    }
}
