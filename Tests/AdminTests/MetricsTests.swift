import Foundation
import Admin
import Hummingbird
import Accounting
import Proxy
import Metrics
import Prometheus
import RESP
import Synchronization
import Testing
import TestSupport

@Suite struct MetricsTests {
    /// The value of one sample line (`name{labels} value`), nil when absent.
    func sample(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    @Test func metricsFollowTheFailoverFence() async throws {
        let backend = FakeBackend()
        var counters = FenceController.Counters()
        counters.fences = 2
        counters.drainTimeouts = 1
        counters.carriedOverCommands = 3
        counters.pauseMilliseconds = [40, 300]
        counters.drainMilliseconds = [0, 200]
        backend.update { $0.fence = FenceStatus(epochID: 3, counters: counters, replicaStreamFences: 5) }
        var later = counters
        later.fences = 3
        later.pauseMilliseconds.append(10)
        later.drainMilliseconds.append(0)
        let second = FenceStatus(epochID: 4, counters: later, replicaStreamFences: 6)
        let service = AdminService(backend: backend, configuration: AdminConfiguration(topSlots: 16))
        try await service.withRouter { client in
            let text = try await client.get("/metrics").text
            #expect(sample(text, "slotwarden_epoch") == 3)
            #expect(sample(text, "slotwarden_failover_fences_total") == 2)
            #expect(sample(text, "slotwarden_failover_fence_timeouts_total") == 1)
            #expect(sample(text, "slotwarden_carried_over_commands_total") == 3)
            #expect(sample(text, "slotwarden_fence_pause_seconds_count") == 2)
            #expect(sample(text, "slotwarden_replica_stream_fences_total") == 5)
            #expect(sample(text, "slotwarden_replica_streams_dropped") == 0)
            // A second scrape records only what is new.
            let dropped = LedgerShard()
            dropped.noteDroppedReplicaStream()
            backend.update {
                $0.fence = second
                $0.snapshot = dropped.snapshot()
            }
            let again = try await client.get("/metrics").text
            #expect(sample(again, "slotwarden_epoch") == 4)
            #expect(sample(again, "slotwarden_failover_fences_total") == 3)
            #expect(sample(again, "slotwarden_fence_pause_seconds_count") == 3)
            #expect(sample(again, "slotwarden_fence_drain_seconds_count") == 3)
            #expect(sample(again, "slotwarden_replica_stream_fences_total") == 6)
            #expect(sample(again, "slotwarden_replica_streams_dropped") == 1)
        }
    }

    @Test func metricsExposeTotalsBucketsConnectionsAndBuildInfo() async throws {
        let backend = FakeBackend()
        backend.update {
            $0.snapshot = Fixtures.ledger([7: (30, 5), 9: (11, 4)])
            $0.connections = ProxyServer.ConnectionCounts(active: 3, accepted: 10, rejected: 2)
        }
        let service = AdminService(backend: backend, configuration: AdminConfiguration(topSlots: 16))
        try await service.withRouter { client in
            let reply = try await client.get("/metrics")
            #expect(reply.status == .ok)
            #expect(reply.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let text = reply.text
            #expect(sample(text, "slotwarden_bytes_in_total") == 55)
            #expect(sample(text, "slotwarden_bytes_out_total") == 16)
            #expect(sample(text, "slotwarden_commands_total") == 3)
            #expect(sample(text, #"slotwarden_bucket_bytes_in_total{bucket="keyless"}"#) == 14)
            #expect(sample(text, #"slotwarden_bucket_commands_total{bucket="replication"}"#) == 0)
            #expect(sample(text, #"slotwarden_slot_bytes_in_total{slot="7"}"#) == 30)
            #expect(sample(text, "slotwarden_connections_active") == 3)
            #expect(sample(text, "slotwarden_connections_accepted_total") == 10)
            #expect(sample(text, "slotwarden_connections_rejected_total") == 2)
            #expect(sample(text, #"slotwarden_build_info{version="\#(slotwardenVersion)",node_version="9.1.2"}"#) == 1)
            #expect(sample(text, "slotwarden_fenced") == 0)
            #expect(sample(text, #"slotwarden_node_role{role="master"}"#) == 1)
            #expect(sample(text, #"slotwarden_node_role{role="slave"}"#) == 0)
            #expect(text.contains("# TYPE slotwarden_fence_pause_seconds histogram"))
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                #expect(line.hasPrefix("slotwarden_"), "\(line)")
            }

            // Counters advance by what the ledger gained since the last scrape.
            backend.update { $0.snapshot = Fixtures.ledger([7: (130, 5), 9: (11, 4)]) }
            let later = try await client.get("/metrics").text
            #expect(sample(later, "slotwarden_bytes_in_total") == 155)
            #expect(sample(later, #"slotwarden_slot_bytes_in_total{slot="7"}"#) == 130)
        }
    }

    @Test func perSlotSeriesOnlyForTheBusiestSlots() async throws {
        let backend = FakeBackend()
        var traffic: [Int: (Int, Int)] = [:]
        for slot in 0..<40 { traffic[slot * 100] = (slot + 1, 0) }
        backend.update { $0.snapshot = Fixtures.ledger(traffic) }
        traffic[0] = (1000, 0)
        let hotter = Fixtures.ledger(traffic)
        let service = AdminService(backend: backend, configuration: AdminConfiguration(topSlots: 16))
        try await service.withRouter { client in
            let text = try await client.get("/metrics").text
            let series = text.split(separator: "\n").filter { $0.hasPrefix("slotwarden_slot_bytes_in_total{") }
            #expect(series.count == 16)
            #expect(sample(text, #"slotwarden_slot_bytes_in_total{slot="3900"}"#) == 40)
            #expect(sample(text, #"slotwarden_slot_bytes_in_total{slot="2300"}"#) == nil)

            // A slot that falls out of the top loses its series.
            backend.update { $0.snapshot = hotter }
            let later = try await client.get("/metrics").text
            #expect(sample(later, #"slotwarden_slot_bytes_in_total{slot="0"}"#) == 1000)
            #expect(sample(later, #"slotwarden_slot_bytes_in_total{slot="2400"}"#) == nil)
            #expect(later.split(separator: "\n").filter { $0.hasPrefix("slotwarden_slot_bytes_in_total{") }.count == 16)
        }
    }

    @Test func reconciliationIsRecorded() async throws {
        let backend = FakeBackend()
        backend.update {
            $0.snapshot = Fixtures.ledger([7: (30, 5)])
            $0.stats = Fixtures.stats([7: (50, 5)])
        }
        let service = AdminService(backend: backend)
        service.setBaseline(Fixtures.stats([:]))
        _ = try await service.reconcile(mode: .live)
        let text = service.metrics.registry.emitToString()
        #expect(sample(text, "slotwarden_reconciliations_total") == 1)
        #expect(sample(text, "slotwarden_reconcile_differing_slots") == 1)
        #expect(sample(text, "slotwarden_reconcile_difference_bytes_in") == 20)
    }
}

@Suite struct SecurityTests {
    @Test func tokensCompareExactly() {
        let token = AdminToken("s3cret")!
        #expect(token.matches("s3cret"))
        for wrong in ["", "s3cre", "s3cret ", "s3creT", "s3cret0", "x"] { #expect(!token.matches(wrong), "\(wrong)") }
        #expect("\(token)" == "<redacted>")
        #expect(String(reflecting: token) == "<redacted>")
        #expect(AdminToken("  \n") == nil)
    }

    @Test func tokensLoadFromAFileOrTheEnvironment() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("slotwarden-token-\(UUID().uuidString)").path
        try "  from-file \nsecond line\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try AdminToken.load(file: path, environmentVariable: nil, environment: [:])?.matches("from-file") == true)
        #expect(try AdminToken.load(file: nil, environmentVariable: "TOKEN", environment: ["TOKEN": "env"])?.matches("env") == true)
        #expect(try AdminToken.load(file: nil, environmentVariable: nil, environment: [:]) == nil)
        #expect(throws: AdminStartupError.self) { try AdminToken.load(file: path + ".missing", environmentVariable: nil, environment: [:]) }
        #expect(throws: AdminStartupError.self) { try AdminToken.load(file: nil, environmentVariable: "TOKEN", environment: [:]) }
    }

    @Test func aNonLoopbackListenerNeedsAToken() throws {
        #expect(throws: Never.self) { try AdminConfiguration(listenHost: "127.0.0.1").validate() }
        #expect(throws: Never.self) { try AdminConfiguration(listenHost: "::1").validate() }
        #expect(throws: Never.self) { try AdminConfiguration(listenHost: "0.0.0.0", token: AdminToken("t")).validate() }
        let error = #expect(throws: AdminStartupError.self) { try AdminConfiguration(listenHost: "0.0.0.0").validate() }
        #expect(error?.description.contains("admin.token_file") == true)
    }

    @Test func slotSelections() throws {
        #expect(try SlotSelection(parsing: "0-16383") == .all)
        #expect(try SlotSelection(parsing: "5,1-3,2").slots == [1, 2, 3, 5])
        #expect(try SlotSelection(parsing: "16383").slots == [16383])
        for bad in ["", "-1", "1-", "a", "3-1", "0-16384", "1-2-3"] {
            #expect(throws: AdminParameterError.self, "\(bad)") { try SlotSelection(parsing: bad) }
        }
    }
}

@Suite struct SwiftMetricsTests {
    @Test func swiftMetricsInstrumentsLandInTheSameRegistryPrefixed() {
        let metrics = AdminMetrics(version: "test", nodeVersion: "9.1.2")
        let factory = metrics.swiftMetricsFactory()
        let handler = factory.makeCounter(label: "fence_reopened", dimensions: [("reason", "test")])
        handler.increment(by: 3)
        #expect(metrics.registry.emitToString().contains(#"slotwarden_fence_reopened{reason="test"} 3"#))
    }
}

/// The Grafana dashboard and the Prometheus rules in docs/ query only series that `/metrics` serves.
@Suite struct DashboardTests {
    @Test func everySeriesTheDocsQueryIsServed() async throws {
        let backend = FakeBackend()
        backend.update {
            $0.snapshot = Fixtures.ledger([7: (30, 5)])
            var counters = FenceController.Counters()
            counters.pauseMilliseconds = [40]
            counters.drainMilliseconds = [0]
            $0.fence = FenceStatus(epochID: 1, counters: counters)
        }
        let service = AdminService(backend: backend, configuration: AdminConfiguration(topSlots: 16))
        let exposition = Mutex("")
        try await service.withRouter { client in
            let text = try await client.get("/metrics").text
            exposition.withLock { $0 = text }
        }
        let served = Set(exposition.withLock { $0 }.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { String($0.prefix { $0 != "{" && $0 != " " }) })
        let docs = ValkeyBinaries.repositoryRoot.appendingPathComponent("docs")
        var queried = Set<String>()
        for file in ["grafana-dashboard.json", "prometheus.md"] {
            let text = try String(contentsOf: docs.appendingPathComponent(file), encoding: .utf8)
            let pattern = try Regex(#"[a-z_]*:?slotwarden_[a-z_]+"#)
            for match in text.matches(of: pattern) { queried.insert(String(text[match.range])) }
        }
        // Recording rules (cluster:slotwarden_…) are names the rules make, not series a sidecar serves.
        let raw = queried.filter { !$0.contains(":") }
        #expect(raw.count >= 10, "\(raw.sorted())")
        let missing = raw.filter { !served.contains($0) }
        #expect(missing.isEmpty, "queried but not served: \(missing.sorted()); served: \(served.sorted())")
    }
}
