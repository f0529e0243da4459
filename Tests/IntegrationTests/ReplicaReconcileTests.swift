import Admin
import Accounting
import LocalCluster
import Proxy
import RESP
import Testing
import TestSupport

@Suite("Reconciliation with a replica attached", .serialized, .enabled(if: ValkeyBinaries.available, ValkeyBinaries.missingReason))
struct ReplicaReconcileTests {
    /// A primary streams every write to its replicas and counts that stream as bytes out of the slot;
    /// the stream does not cross the primary's sidecar as client traffic, so the reconciliation must
    /// name replication as the reason, never report it as unexplained drift.
    @Test("bytes-out differences on a primary with a replica are explained by replication", arguments: [8, 9])
    func replicationExplainsBytesOut(major: Int) async throws {
        let cluster = try LocalCluster(major: major)
        defer { cluster.stop() }
        let roles = try #require(try cluster.currentRoles())
        let primary = roles.primary
        let admin = AdminService(backend: ProxyBackend(sidecar: primary.sidecar))

        let client = try primary.viaSidecar()
        for index in 0..<30 { #expect(try client.call("SET", "replicated:\(index)", "value") == .simpleString("OK")) }
        #expect(try client.call("WAIT", "1", "2000") == .integer(1))

        let report = try await admin.reconcile(mode: .live)
        let differing = report.slots.filter { $0.status != .match }
        #expect(differing.count == 30, "\(report.summary)")
        #expect(differing.allSatisfy { $0.difference.bytesIn == 0 && $0.difference.bytesOut > 0 })
        #expect(differing.allSatisfy { $0.reasons == [.replication] }, "\(differing.map(\.reasons))")
        #expect(report.summary.unexplained == 0)
        #expect(report.summary.bytesInDifference == 0)
    }
}
