import Admin
import Foundation
import Hummingbird
import HummingbirdTesting
import Accounting
import RESP
import Proxy
import Testing

/// Every endpoint and error through the router, without sockets; every JSON body is checked
/// against docs/openapi.yaml.
@Suite struct RouterTests {
    let schema: OpenAPISchema
    init() throws { schema = try OpenAPISchema.load() }

    func service(
        _ backend: FakeBackend, token: String? = nil, baseline: NodeSlotStats? = Fixtures.stats([:])
    ) -> AdminService {
        let service = AdminService(
            backend: backend, configuration: AdminConfiguration(token: token.flatMap { AdminToken($0) }, topSlots: 4))
        if let baseline { service.setBaseline(baseline) }
        return service
    }

    /// Checks the body against the schema documented for this path, method and status.
    func conforms(_ reply: Reply, _ method: String, _ path: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let problems = try schema.problems(path: path, method: method, status: Int(reply.status.code), body: reply.text)
        #expect(problems.isEmpty, "\(method) \(path) \(reply.status.code): \(problems)\n\(reply.text)", sourceLocation: sourceLocation)
    }

    // MARK: ledger

    @Test func ledgerListsNonzeroSlotsInBothViewsWithBucketsAndTotals() async throws {
        let backend = FakeBackend()
        backend.update { $0.snapshot = Fixtures.ledger([7: (30, 5), 12000: (40, 9)], scripts: [7]) }
        try await service(backend).withRouter { client in
            let reply = try await client.get("/v1/ledger")
            #expect(reply.status == .ok)
            try conforms(reply, "GET", "/v1/ledger")
            let json = try reply.json
            #expect(json["slots"]?.array?.count == 2)
            #expect(json["slots"]?[0]?["slot"]?.int == 7)
            #expect(json["slots"]?[0]?["script_ran"]?.bool == true)
            #expect(json["slots"]?[1]?["wire"]?["bytes_in"]?.int == 40)
            #expect(json["slots"]?[1]?["node"]?["bytes_out"]?.int == 9)
            #expect(json["buckets"]?["keyless"]?["bytes_in"]?.int == 14)
            #expect(json["totals"]?["wire"]?["bytes_in"]?.int == 84)
            #expect(json["totals"]?["node"]?["bytes_in"]?.int == 70)
            #expect(json["node"]?["version"]?.string == "9.1.2")
            #expect(json["node"]?["role"]?.string == "master")
            #expect(json["epoch"]?["id"]?.int == 1)
            #expect(json["slot_range"]?.string == "0-16383")
        }
    }

    @Test func ledgerFiltersBySlotsAndView() async throws {
        let backend = FakeBackend()
        backend.update { $0.snapshot = Fixtures.ledger([7: (30, 5), 12000: (40, 9)]) }
        try await service(backend).withRouter { client in
            let node = try await client.get("/v1/ledger?slots=0-100,16383&view=node")
            try conforms(node, "GET", "/v1/ledger")
            let json = try node.json
            #expect(json["views"] == .array([.string("node")]))
            #expect(json["slots"]?.array?.count == 1)
            #expect(json["slots"]?[0]?["wire"] == nil)
            #expect(json["slots"]?[0]?["node"]?["bytes_in"]?.int == 30)

            let all = try await client.get("/v1/ledger?slots=0-3&nonzero=false")
            try conforms(all, "GET", "/v1/ledger")
            #expect(try all.json["slots"]?.array?.map { $0["slot"]?.int } == [0, 1, 2, 3])
        }
    }

    @Test(arguments: [
        ("slots=abc", "slots"), ("slots=5-2", "slots"), ("slots=16384", "slots"), ("slots=1,,2", "slots"),
        ("view=both", "view"), ("nonzero=maybe", "nonzero"),
    ])
    func ledgerRefusesBadParameters(query: String, parameter: String) async throws {
        try await service(FakeBackend()).withRouter { client in
            let reply = try await client.get("/v1/ledger?\(query)")
            #expect(reply.status == .badRequest)
            try conforms(reply, "GET", "/v1/ledger")
            #expect(try reply.json["error"]?["parameter"]?.string == parameter)
            #expect(try reply.json["error"]?["code"]?.string == "invalid_parameter")
        }
    }

    // MARK: top

    @Test func topOrdersByTheChosenCounterAndLimits() async throws {
        let backend = FakeBackend()
        backend.update { $0.snapshot = Fixtures.ledger([1: (10, 300), 2: (50, 20), 3: (30, 100)]) }
        try await service(backend).withRouter { client in
            let byIn = try await client.get("/v1/ledger/top")
            try conforms(byIn, "GET", "/v1/ledger/top")
            #expect(try byIn.json["slots"]?.array?.map { $0["slot"]?.int } == [2, 3, 1])

            let byOut = try await client.get("/v1/ledger/top?by=bytes_out&limit=2&view=node")
            try conforms(byOut, "GET", "/v1/ledger/top")
            let json = try byOut.json
            #expect(json["slots"]?.array?.map { $0["slot"]?.int } == [1, 3])
            #expect(json["by"]?.string == "bytes_out")
            #expect(json["limit"]?.int == 2)
        }
    }

    @Test(arguments: [("limit=0", "limit"), ("limit=1001", "limit"), ("limit=ten", "limit"), ("by=keys", "by"), ("view=x", "view")])
    func topRefusesBadParameters(query: String, parameter: String) async throws {
        try await service(FakeBackend()).withRouter { client in
            let reply = try await client.get("/v1/ledger/top?\(query)")
            #expect(reply.status == .badRequest)
            try conforms(reply, "GET", "/v1/ledger/top")
            #expect(try reply.json["error"]?["parameter"]?.string == parameter)
        }
    }

    // MARK: reconcile

    @Test func liveReconcileMatchesWhenTheNodeDeltaEqualsTheLedger() async throws {
        let backend = FakeBackend()
        backend.update {
            $0.snapshot = Fixtures.ledger([7: (30, 5), 9: (11, 4)])
            $0.stats = Fixtures.stats([7: (130, 105), 9: (11, 4)])
            $0.inFlight = 2
        }
        try await service(backend, baseline: Fixtures.stats([7: (100, 100)])).withRouter { client in
            let reply = try await client.get("/v1/reconcile?mode=live")
            #expect(reply.status == .ok)
            try conforms(reply, "GET", "/v1/reconcile")
            let json = try reply.json
            #expect(json["verdict"]?.string == "match")
            #expect(json["summary"]?["slots_compared"]?.int == 2)
            #expect(json["summary"]?["match"]?.int == 2)
            #expect(json["live_window"]?["in_flight_commands"]?.int == 2)
            #expect(json["fence"] == nil)
            #expect(json["slots"]?[0]?["node"]?["bytes_in"]?.int == 30)
        }
        #expect(!backend.calls.contains("pause"))
    }

    @Test func slotsOutsideTheNodesShardAreListedApartAndNotCompared() async throws {
        let backend = FakeBackend()
        backend.update {
            // Slot 7 is the node's; slot 9 belongs to another shard: the ledger counted a command the
            // node refused with -MOVED, which the node never reports.
            $0.snapshot = Fixtures.ledger([7: (30, 5), 9: (20, 0)])
            $0.stats = Fixtures.stats([7: (30, 5)], owned: 0..<8)
        }
        try await service(backend, baseline: Fixtures.stats([:], owned: 0..<8)).withRouter { client in
            let reply = try await client.get("/v1/reconcile")
            try conforms(reply, "GET", "/v1/reconcile")
            let json = try reply.json
            #expect(json["verdict"]?.string == "match")
            #expect(json["summary"]?["slots_compared"]?.int == 1)
            #expect(json["not_reported"]?[0]?["slot"]?.int == 9)
            #expect(json["not_reported"]?[0]?["ledger"]?["bytes_in"]?.int == 20)
            #expect(json["slot_cuts"]?.int == 0)
        }
    }

    @Test func reconcileNamesBypassScriptAndResetReasons() async throws {
        let backend = FakeBackend()
        backend.update {
            $0.snapshot = Fixtures.ledger([1: (10, 10), 2: (10, 10), 3: (10, 10), 4: (10, 10)], scripts: [2])
            // slot 1: 25 bytes in bypassed the sidecar; slot 2: a script's inner replies;
            // slot 3: the node was reset below its baseline; slot 4: unexplained ledger surplus out.
            $0.stats = Fixtures.stats([1: (35, 10), 2: (10, 16), 3: (4, 4), 4: (10, 8)])
        }
        try await service(backend, baseline: Fixtures.stats([3: (50, 50)])).withRouter { client in
            let reply = try await client.get("/v1/reconcile")
            try conforms(reply, "GET", "/v1/reconcile")
            let json = try reply.json
            let slots = try #require(json["slots"]?.array)
            #expect(slots[0]["status"]?.string == "node_higher")
            #expect(slots[0]["difference"]?["bytes_in"]?.int == 25)
            #expect(slots[0]["reasons"] == .array([.string("bypassed_sidecar")]))
            #expect(slots[1]["status"]?.string == "node_higher")
            #expect(slots[1]["difference"]?["bytes_out"]?.int == 6)
            #expect(slots[1]["reasons"] == .array([.string("script")]))
            #expect(slots[2]["status"]?.string == "ledger_higher")
            #expect(slots[2]["reasons"] == .array([.string("node_reset")]))
            #expect(slots[3]["status"]?.string == "ledger_higher")
            #expect(slots[3]["reasons"] == .array([]))
            #expect(json["node_reset_detected"]?.bool == true)
            #expect(json["summary"]?["node_higher"]?.int == 2)
            #expect(json["summary"]?["ledger_higher"]?.int == 2)
            #expect(json["summary"]?["explained"]?.int == 3)
            #expect(json["summary"]?["unexplained"]?.int == 1)
            #expect(json["verdict"]?.string == "difference")
        }
    }

    @Test func replicasExplainANodeThatCountedMoreBytesOut() async throws {
        let backend = FakeBackend()
        backend.update {
            $0.snapshot = Fixtures.ledger([4: (30, 5), 5: (30, 5)])
            // slot 4: a 30-byte write streamed to one replica; slot 5: the ledger counted more out.
            $0.stats = Fixtures.stats([4: (30, 35), 5: (30, 2)])
            $0.replicas = 1
        }
        try await service(backend).withRouter { client in
            let reply = try await client.get("/v1/reconcile")
            try conforms(reply, "GET", "/v1/reconcile")
            let json = try reply.json
            #expect(json["replicas"]?.int == 1)
            #expect(json["slots"]?[0]?["status"]?.string == "node_higher")
            #expect(json["slots"]?[0]?["difference"]?["bytes_out"]?.int == 30)
            #expect(json["slots"]?[0]?["reasons"] == .array([.string("replication")]))
            #expect(json["slots"]?[1]?["status"]?.string == "ledger_higher")
            #expect(json["slots"]?[1]?["reasons"] == .array([]))
            #expect(json["summary"]?["explained"]?.int == 1)
            #expect(json["summary"]?["unexplained"]?.int == 1)
        }
    }

    @Test func aReplicasReconciliationAddsTheStreamItsPrimarysSidecarCounted() async throws {
        let backend = FakeBackend()
        let stream = { (slots: [Int: UInt64]) in
            ReplicaStreamCounts(
                sidecar: "p", chain: 1, nextLink: 2, upToOffset: 0, complete: true,
                slots: slots.sorted { $0.key < $1.key }.map { .init(slot: $0.key, bytesIn: $0.value) })
        }
        backend.update {
            $0.snapshot = Fixtures.ledger([4: (10, 5)])
            // Slot 4: its reads (10 in) and 40 bytes of stream; slot 6: stream only.
            $0.stats = Fixtures.stats([4: (50, 5), 6: (25, 0)])
            $0.replication = ReplicationInfo(
                infoReplication: "role:slave\r\nmaster_host:10.0.0.1\r\nmaster_port:7000\r\nmaster_link_status:up\r\nslave_repl_offset:500\r\n")
            $0.streamBaseline = ReplicaStreamBaseline(primary: "10.0.0.1:7000", counts: stream([4: 100]))
            $0.streamRead = .counts(primary: "10.0.0.1:7000", stream([4: 140, 6: 25]))
        }
        try await service(backend).withRouter { client in
            let reply = try await client.get("/v1/reconcile?mode=fenced")
            try conforms(reply, "GET", "/v1/reconcile")
            let json = try reply.json
            #expect(json["verdict"]?.string == "match")
            #expect(json["slots"]?[0]?["replication_in"]?.int == 40 && json["slots"]?[1]?["replication_in"]?.int == 25)
            #expect(json["replication"]?["stream"]?["bytes_in"]?.int == 65)
            #expect(json["replication"]?["stream"]?["processed_offset"]?.int == 500)
            #expect(json["replication"]?["stream"]?["primary"]?.string == "10.0.0.1:7000")
        }

        // The primary's sidecar cannot be asked: the stream's bytes are named, not guessed.
        backend.update { $0.streamRead = .failed(primary: "10.0.0.1:7000", gap: .peerUnreachable, detail: "connection refused") }
        try await service(backend).withRouter { client in
            let reply = try await client.get("/v1/reconcile?mode=fenced")
            try conforms(reply, "GET", "/v1/reconcile")
            let json = try reply.json
            #expect(json["verdict"]?.string == "difference")
            #expect(json["replication"]?["stream"]?["gap"]?.string == "peer_unreachable")
            #expect(json["replication"]?["stream"]?["detail"]?.string == "connection refused")
            #expect(json["slots"]?[0]?["reasons"] == .array([.string("replication")]))
            #expect(json["summary"]?["unexplained"]?.int == 0)
        }
    }

    @Test func streamCountsAreServedForOneReplicaUpToAnOffset() async throws {
        let backend = FakeBackend()
        try await service(backend).withRouter { client in
            let reply = try await client.get("/v1/replication/stream?replica_port=6380&offset=77&replica_host=10.0.0.2")
            try conforms(reply, "GET", "/v1/replication/stream")
            #expect(try reply.json["up_to_offset"]?.int == 77)
            for (query, parameter) in [("offset=1", "replica_port"), ("replica_port=6380", "offset"), ("replica_port=99999&offset=1", "replica_port")] {
                let bad = try await client.get("/v1/replication/stream?\(query)")
                #expect(bad.status == .badRequest, "\(query)")
                try conforms(bad, "GET", "/v1/replication/stream")
                #expect(try bad.json["error"]?["parameter"]?.string == parameter, "\(query)")
            }
        }
        #expect(backend.calls.contains("stream(6380, 10.0.0.2, 77)"))
    }

    @Test func heatmapDataHasEverySlotAndThePageIsSelfContained() async throws {
        let backend = FakeBackend()
        backend.update {
            $0.snapshot = Fixtures.ledger([7: (30, 5)])
            $0.stats = Fixtures.stats([7: (30, 5)])
        }
        try await service(backend).withRouter { client in
            let data = try await client.get("/v1/heatmap/data")
            try conforms(data, "GET", "/v1/heatmap/data")
            let json = try data.json
            #expect(json["bytes_in"]?[7]?.int == 30 && json["bytes_out"]?[7]?.int == 5 && json["commands"]?[7]?.int == 1)
            #expect(json["owner"]?.array?.allSatisfy { $0.int == -1 } == true, "no fence: no owners known")
            #expect(json["keys"]?.array?.count == 16384)

            let rows = try await client.get("/v1/heatmap/rows")
            try conforms(rows, "GET", "/v1/heatmap/rows")
            #expect(try rows.json["rows"]?.array?.count == 1 && rows.json["rows"]?[0]?["slot"]?.int == 7)

            let page = try await client.get("/v1/heatmap?refresh_ms=500")
            #expect(page.status == .ok && page.headers[.contentType] == "text/html; charset=utf-8")
            #expect(page.text.contains("const REFRESH_MS = 500;") && page.text.contains("const DATA_URL = \"heatmap/data\";"))
            #expect(!page.text.contains("src=") && !page.text.contains("http://") && !page.text.contains("https://"))
            let bad = try await client.get("/v1/heatmap?refresh_ms=soon")
            #expect(bad.status == .badRequest)
            try conforms(bad, "GET", "/v1/heatmap")
        }
    }

    @Test func reconcileWithStatsDisabledIsUnavailable() async throws {
        let backend = FakeBackend()
        backend.update {
            $0.snapshot = Fixtures.ledger([5: (10, 10)])
            $0.stats = Fixtures.stats([:], enabled: false)
        }
        try await service(backend, baseline: Fixtures.stats([:], enabled: false)).withRouter { client in
            let reply = try await client.get("/v1/reconcile")
            try conforms(reply, "GET", "/v1/reconcile")
            let json = try reply.json
            #expect(json["verdict"]?.string == "unavailable")
            #expect(json["network_stats_enabled"]?.bool == false)
            #expect(json["slots"]?[0]?["reasons"] == .array([.string("stats_disabled")]))
        }
    }

    @Test func fencedReconcilePausesDrainsReadsAndResumes() async throws {
        let backend = FakeBackend()
        backend.update {
            $0.snapshot = Fixtures.ledger([7: (30, 5)])
            $0.stats = Fixtures.stats([7: (30, 5)])
        }
        // A budget no scheduler delay can exhaust: this test is about the order of the steps.
        let service = AdminService(backend: backend, configuration: AdminConfiguration(maxPauseMilliseconds: 60_000))
        service.setBaseline(Fixtures.stats([:]))
        try await service.withRouter { client in
            let reply = try await client.get("/v1/reconcile?mode=fenced")
            try conforms(reply, "GET", "/v1/reconcile")
            let json = try reply.json
            #expect(json["mode"]?.string == "fenced")
            #expect(json["verdict"]?.string == "match")
            #expect(json["fence"]?["drained"]?.bool == true)
            #expect(json["fence"]?["max_pause_milliseconds"]?.int == 60_000)
            #expect(json["fence"]?["max_pause_exceeded"]?.bool == false)
            #expect(json["live_window"] == nil)
        }
        #expect(backend.calls == ["pause", "drain", "slot-stats", "resume"])
        #expect(!backend.paused)
    }

    @Test func fencedReconcileReportsADrainThatTimedOut() async throws {
        let backend = FakeBackend()
        backend.update { $0.inFlight = 3 }
        try await service(backend).withRouter { client in
            let json = try await client.get("/v1/reconcile?mode=fenced").json
            #expect(json["fence"]?["drained"]?.bool == false)
            #expect(json["fence"]?["in_flight"]?.int == 3)
            let metrics = try await client.get("/metrics").text
            #expect(metrics.contains("slotwarden_fence_timeouts_total 1"))
            #expect(metrics.contains("slotwarden_fences_total 1"))
        }
        #expect(!backend.paused)
    }

    @Test func aNodeReadOutlastingMaxPauseResumesTheClientsFirst() async throws {
        let backend = FakeBackend()
        backend.update {
            $0.snapshot = Fixtures.ledger([7: (30, 5)])
            $0.stats = Fixtures.stats([7: (30, 5)])
            $0.statsWaitForResume = true
        }
        let service = AdminService(backend: backend, configuration: AdminConfiguration(maxPauseMilliseconds: 20))
        service.setBaseline(Fixtures.stats([:]))
        try await service.withRouter { client in
            let reply = try await client.get("/v1/reconcile?mode=fenced")
            try conforms(reply, "GET", "/v1/reconcile")
            let json = try reply.json
            #expect(json["fence"]?["max_pause_exceeded"]?.bool == true)
            #expect(try #require(json["fence"]?["paused_milliseconds"]?.int) >= 20)
        }
        // The read finished only after the clients were resumed.
        #expect(backend.calls == ["pause", "drain", "resume", "slot-stats"])
    }

    @Test func reconcileErrors() async throws {
        let backend = FakeBackend()
        try await service(backend).withRouter { client in
            let badMode = try await client.get("/v1/reconcile?mode=quick")
            #expect(badMode.status == .badRequest)
            try conforms(badMode, "GET", "/v1/reconcile")
            #expect(try badMode.json["error"]?["parameter"]?.string == "mode")

            backend.update { $0.role = nil }
            for mode in ["live", "fenced"] {
                let unreachable = try await client.get("/v1/reconcile?mode=\(mode)")
                #expect(unreachable.status == .serviceUnavailable)
                try conforms(unreachable, "GET", "/v1/reconcile")
                #expect(try unreachable.json["error"]?["code"]?.string == "node_unreachable")
            }
        }
        #expect(!backend.paused, "a failed fenced read still resumes the clients")
        try await service(FakeBackend(), baseline: nil).withRouter { client in
            let noBaseline = try await client.get("/v1/reconcile")
            #expect(noBaseline.status == .serviceUnavailable)
            try conforms(noBaseline, "GET", "/v1/reconcile")
            #expect(try noBaseline.json["error"]?["code"]?.string == "no_baseline")
        }
    }

    // MARK: health

    @Test func livezAnswers() async throws {
        try await service(FakeBackend()).withRouter { client in
            let reply = try await client.get("/livez")
            #expect(reply.status == .ok)
            try conforms(reply, "GET", "/livez")
            #expect(try reply.json["status"]?.string == "alive")
        }
    }

    @Test func readyzFollowsTheNodeAndTheFence() async throws {
        let backend = FakeBackend()
        try await service(backend, token: "s3cret").withRouter { client in
            let ready = try await client.get("/readyz")
            #expect(ready.status == .ok)
            try conforms(ready, "GET", "/readyz")
            #expect(try ready.json["checks"] == nil)

            let verbose = try await client.get("/readyz?verbose")
            try conforms(verbose, "GET", "/readyz")
            #expect(try verbose.json["checks"]?.array?.map { $0["name"]?.string } == ["node_reachable", "role_known", "not_fenced"])

            _ = try await client.post("/v1/fence/pause", headers: [.authorization: "Bearer s3cret"])
            let fenced = try await client.get("/readyz?verbose")
            #expect(fenced.status == .serviceUnavailable)
            try conforms(fenced, "GET", "/readyz")
            #expect(try fenced.json["checks"]?[2]?["ok"]?.bool == false)
            _ = try await client.post("/v1/fence/resume", headers: [.authorization: "Bearer s3cret"])

            backend.update { $0.role = nil }
            let unreachable = try await client.get("/readyz?verbose")
            #expect(unreachable.status == .serviceUnavailable)
            try conforms(unreachable, "GET", "/readyz")
            #expect(try unreachable.json["status"]?.string == "not_ready")
            #expect(try unreachable.json["checks"]?[0]?["ok"]?.bool == false)

            backend.update { $0.role = "handshake" }
            #expect(try await client.get("/readyz").status == .serviceUnavailable)
        }
    }

    // MARK: fence and auth

    // MARK: slot cuts

    @Test func cutsListTheLatestAfterAnIdUpToALimit() async throws {
        let backend = FakeBackend()
        var history = SlotCutHistory(capacity: 10)
        let change = SlotOwnerChange(
            slot: Fixtures.slot(42), previousOwner: ClusterNodeName(id: "a", address: "127.0.0.1:1"),
            newOwner: ClusterNodeName(id: "b", address: "127.0.0.1:2"), wasReported: true, isReported: false)
        for id in 1...3 {
            history.append(
                SlotCut(
                    id: UInt64(id), epoch: 1, at: 1000, trigger: .hint, fenced: true,
                    slots: [SlotCutRow(change: change, wire: SlotCounters(commands: 1, bytesIn: 20, bytesOut: 5), node: .zero, nodeAtCut: nil)]))
        }
        let filled = history
        try await service(backend).withRouter { client in
            let missing = try await client.get("/v1/cuts")
            #expect(missing.status == .serviceUnavailable)
            try conforms(missing, "GET", "/v1/cuts")
            backend.update { $0.cuts = filled }
            let reply = try await client.get("/v1/cuts?after=1&limit=1")
            #expect(reply.status == .ok)
            try conforms(reply, "GET", "/v1/cuts")
            let json = try reply.json
            #expect(json["total"]?.int == 3)
            #expect(json["slots_cut"]?.int == 3)
            #expect(json["cuts"]?[0]?["id"]?.int == 2)
            #expect(json["cuts"]?[1] == nil)
            #expect(json["cuts"]?[0]?["slots"]?[0]?["previous_owner"]?["id"]?.string == "a")
            #expect(json["cuts"]?[0]?["slots"]?[0]?["node_bytes_in_at_cut"] == nil)
            let bad = try await client.get("/v1/cuts?limit=0")
            #expect(bad.status == .badRequest)
            #expect(try bad.json["error"]?["parameter"]?.string == "limit")
        }
    }

    // MARK: epochs

    @Test func epochsListTheOpenEpochAndTheClosedOnes() async throws {
        let backend = FakeBackend()
        var first = EpochRecord(id: 1, openedBy: .startup, startedAt: 1000, roleAtStart: NodeRole(kind: .primary))
        first.close(by: .roleChange, at: 1010, role: NodeRole(kind: .replica), ledger: Fixtures.ledger([7: (33, 5)]), nodeStats: Fixtures.stats([7: (33, 5)]))
        let open = EpochRecord(id: 2, openedBy: .roleChange, startedAt: 1010, roleAtStart: NodeRole(kind: .replica))
        backend.update { $0.epochs = EpochList(open: open, closed: [first]) }
        try await service(backend, token: "s3cret").withRouter { client in
            let list = try await client.get("/v1/epochs")
            #expect(list.status == .ok)
            try conforms(list, "GET", "/v1/epochs")
            #expect(try list.json["open"]?["id"]?.int == 2)
            // The ledger and reconciliation speak of the fence's open epoch.
            let ledger = try await client.get("/v1/ledger")
            #expect(try ledger.json["epoch"]?["id"]?.int == 2)

            let one = try await client.get("/v1/epochs/1")
            #expect(one.status == .ok)
            try conforms(one, "GET", "/v1/epochs/{id}")
            #expect(try one.json["closed_by"]?.string == "role_change")
            #expect(try one.json["closing_slots"]?[0]?["node_bytes_in"]?.int == 33)

            let missing = try await client.get("/v1/epochs/9")
            #expect(missing.status == .notFound)
            try conforms(missing, "GET", "/v1/epochs/{id}")
            let bad = try await client.get("/v1/epochs/one")
            #expect(bad.status == .badRequest)
            #expect(try bad.json["error"]?["parameter"]?.string == "id")

            #expect(try await client.post("/v1/epochs").status == .unauthorized)
            let closed = try await client.post("/v1/epochs", headers: [.authorization: "Bearer s3cret"])
            #expect(closed.status == .ok)
            try conforms(closed, "POST", "/v1/epochs")
            #expect(try closed.json["id"]?.int == 2)
            #expect(try closed.json["closed_by"]?.string == "manual")
            #expect(backend.calls.contains("closeEpoch"))
            let reset = try await client.post("/v1/epochs?reset_node_stats=true", headers: [.authorization: "Bearer s3cret"])
            #expect(reset.status == .ok)
            #expect(try reset.json["id"]?.int == 3)
            #expect(backend.calls.contains("closeEpoch(reset)"))
            let badFlag = try await client.post("/v1/epochs?reset_node_stats=perhaps", headers: [.authorization: "Bearer s3cret"])
            #expect(badFlag.status == .badRequest)
            try conforms(badFlag, "POST", "/v1/epochs")
        }
    }

    @Test func epochsWithoutAFenceAreUnavailable() async throws {
        try await service(FakeBackend()).withRouter { client in
            let reply = try await client.get("/v1/epochs")
            #expect(reply.status == .serviceUnavailable)
            try conforms(reply, "GET", "/v1/epochs")
        }
    }

    @Test func fenceEndpointsNeedTheBearerToken() async throws {
        let backend = FakeBackend()
        try await service(backend, token: "s3cret").withRouter { client in
            for path in ["/v1/fence/pause", "/v1/fence/resume"] {
                let missing = try await client.post(path)
                #expect(missing.status == .unauthorized)
                #expect(missing.headers[.wwwAuthenticate] == "Bearer")
                try conforms(missing, "POST", path)

                let basic = try await client.post(path, headers: [.authorization: "Basic czNjcmV0"])
                #expect(basic.status == .unauthorized)

                for wrong in ["Bearer s3cre", "Bearer s3cret2", "Bearer S3CRET", "Bearer x"] {
                    let reply = try await client.post(path, headers: [.authorization: wrong])
                    #expect(reply.status == .forbidden, "\(wrong)")
                    try conforms(reply, "POST", path)
                    #expect(!reply.text.contains("s3cret"))
                }
            }
            #expect(backend.calls.isEmpty)

            let paused = try await client.post("/v1/fence/pause", headers: [.authorization: "bearer s3cret"])
            #expect(paused.status == .ok)
            try conforms(paused, "POST", "/v1/fence/pause")
            #expect(try paused.json["paused"]?.bool == true)
            #expect(try paused.json["operator_paused"]?.bool == true)
            #expect(backend.paused)

            // A fenced reconciliation while the operator holds the fence leaves it held.
            _ = try await client.get("/v1/reconcile?mode=fenced")
            #expect(backend.paused)

            let resumed = try await client.post("/v1/fence/resume", headers: [.authorization: "Bearer s3cret"])
            try conforms(resumed, "POST", "/v1/fence/resume")
            #expect(try resumed.json["paused"]?.bool == false)
            #expect(!backend.paused)
        }
        #expect(backend.calls.filter { $0 == "pause" || $0 == "resume" } == ["pause", "resume"])
    }

    @Test func fenceEndpointsAreDisabledWithoutAConfiguredToken() async throws {
        let backend = FakeBackend()
        try await service(backend).withRouter { client in
            let reply = try await client.post("/v1/fence/pause", headers: [.authorization: "Bearer anything"])
            #expect(reply.status == .forbidden)
            try conforms(reply, "POST", "/v1/fence/pause")
            #expect(try reply.json["error"]?["code"]?.string == "no_token_configured")
        }
        #expect(!backend.paused)
    }

    // MARK: the document

    @Test func everyDocumentedOperationIsRouted() async throws {
        #expect(
            schema.operations == [
                "GET /livez", "GET /metrics", "GET /readyz", "GET /v1/cuts", "GET /v1/epochs", "GET /v1/epochs/{id}", "GET /v1/heatmap",
                "GET /v1/heatmap/data", "GET /v1/heatmap/rows", "GET /v1/ledger", "GET /v1/ledger/top", "GET /v1/reconcile", "GET /v1/replication/links",
                "GET /v1/replication/stream", "POST /v1/epochs", "POST /v1/fence/pause", "POST /v1/fence/resume",
            ])
        try await service(FakeBackend(), token: "t").withRouter { client in
            for operation in schema.operations {
                let parts = operation.split(separator: " ")
                let reply = try await client.execute(String(parts[1]), parts[0] == "GET" ? .get : .post, [.authorization: "Bearer t"])
                #expect(reply.status != .notFound, "\(operation)")
            }
        }
    }
}
