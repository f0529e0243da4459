import Accounting
import AdminQuery
import Foundation
import Hummingbird

extension AdminService {
    /// `GET /v1/heatmap/data`: the node's slots as the heat map draws them (see ``HeatmapData``).
    func heatmapData() async throws -> HeatmapData {
        let snapshot = await backend.snapshot()
        let owners = await backend.slotOwners()
        // Key counts and CPU time are the node's own: read, not required.
        let stats = try? await backend.nodeSlotStats().parse()
        let epoch = await currentEpoch()
        let role = await nodeInfo().role
        let name = owners.map { "\($0.myself.address) (\(role == "master" ? "primary" : role == "slave" ? "replica" : role))" } ?? "this node"
        return HeatmapData(
            title: "slotwarden · \(name) · Valkey \(backend.nodeVersion)",
            generatedAt: Self.timestamp(Date()),
            source: "the ledger's node view since epoch \(epoch.id) opened at \(epoch.startedAt) (a slot whose owner changed since: since its cut)",
            ledger: snapshot, owners: owners, stats: stats)
    }

    /// `GET /v1/heatmap/rows`: the same, only the slots with figures (see ``HeatmapRows``).
    func heatmapRows() async throws -> HeatmapRows {
        HeatmapRows(try await heatmapData())
    }

    /// `GET /v1/heatmap`: the page, reading `heatmap/data` every `refresh_ms` (0: once).
    func heatmapPage(_ query: QueryReader) throws -> Response {
        let refresh = try query.int("refresh_ms", default: 2000, in: 0...3_600_000)
        let html = HeatmapPage.live(dataURL: "heatmap/data", refreshMilliseconds: refresh)
        return Response(
            status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }

    static func timestamp(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }
}
