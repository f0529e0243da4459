import Hummingbird
import AdminQuery
import Accounting
import RESP

extension AdminService {
    func nodeInfo() async -> NodeInfo {
        let role = (try? await backend.nodeRole()) ?? "unknown"
        return NodeInfo(version: backend.nodeVersion.description, role: role, clusterEnabled: backend.clusterEnabled)
    }

    func ledger(_ query: QueryReader) async throws -> LedgerResponse {
        let selection = try query.slots("slots")
        let view = try query.optionalChoice("view", as: LedgerView.self)
        let nonzero = try query.bool("nonzero", default: true)
        let node = await nodeInfo()
        let snapshot = await backend.snapshot()
        let views = view.map { [$0] } ?? LedgerView.allCases
        var slots: [LedgerSlot] = []
        for index in selection.slots {
            let slot = HashSlot(rawValue: UInt16(index))!
            let wire = snapshot[.wire, slot]
            let nodeView = snapshot[.node, slot]
            if nonzero && views.allSatisfy({ snapshot[$0, slot].isZero }) { continue }
            slots.append(
                LedgerSlot(
                    slot: index, wire: views.contains(.wire) ? wire : nil, node: views.contains(.node) ? nodeView : nil,
                    scriptRan: snapshot.scriptRan(in: slot)))
        }
        var buckets: [String: SlotCounters] = [:]
        for bucket in Bucket.allCases { buckets[bucket.description] = snapshot[bucket] }
        return LedgerResponse(
            epoch: await currentEpoch(), node: node, views: views.map(\.rawValue), slotRange: selection.description, nonzero: nonzero,
            slots: slots, buckets: buckets, totals: LedgerTotals(wire: snapshot.total(.wire), node: snapshot.total(.node)))
    }

    func top(_ query: QueryReader) async throws -> TopResponse {
        let order = try query.choice("by", default: TopOrder.bytesIn)
        let view = try query.choice("view", default: LedgerView.wire)
        let limit = try query.int("limit", default: 10, in: 1...1000)
        let snapshot = await backend.snapshot()
        let ranked = snapshot.activeSlots
            .map { (slot: Int($0.rawValue), counters: snapshot[view, $0]) }
            .filter { order.value($0.counters) > 0 }
            .sorted { (order.value($0.counters), $1.slot) > (order.value($1.counters), $0.slot) }
            .prefix(limit)
            .map { TopSlot(slot: $0.slot, commands: $0.counters.commands, bytesIn: $0.counters.bytesIn, bytesOut: $0.counters.bytesOut) }
        return TopResponse(epoch: await currentEpoch(), view: view.rawValue, by: order.rawValue, limit: limit, slots: Array(ranked))
    }
}
