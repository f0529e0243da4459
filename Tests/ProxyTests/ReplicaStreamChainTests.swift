import Accounting
import RESP
import Testing

@testable import Proxy

/// A replica's links through the primary's sidecar, joined into one chain of counts (no sockets).
struct ReplicaStreamChainTests {
    let replica = ReplicaStreamChains.Replica(host: "10.0.0.2", listeningPort: 6380)
    let slotA = HashSlot(key: "a")
    let slotB = HashSlot(key: "b")

    /// A view with `charges` of (slot, bytes, end offset), in stream order.
    func view(_ charges: [(HashSlot, Int, Int64)]) -> ReplicaView {
        var view = ReplicaView(countsWholeTransaction: true)
        for (slot, bytes, end) in charges { view.command(wireBytes: bytes, slot: slot, endOffset: end) }
        return view
    }

    func counts(_ chains: ReplicaStreamChains, upTo offset: Int64, open: ReplicaView? = nil) -> ReplicaStreamCounts {
        let position = chains.position(of: replica, upTo: offset)
        let link = position.openLink != nil ? open?.counts(upTo: offset) : position.closedCounts ?? [UInt64](repeating: 0, count: HashSlot.count)
        return ReplicaStreamCounts(
            sidecar: chains.sidecar, position: position, upTo: offset, counts: link.map { ReplicaStreamChains.sum(position.carried, $0) })
    }

    @Test func aResumedLinkCarriesWhatTheReplicaProcessedOfTheOneBefore() {
        let chains = ReplicaStreamChains()
        let before = counts(chains, upTo: 100)
        #expect(before.chain == nil && before.complete && before.slots.isEmpty)

        let first = chains.linkStarted(replica, resumesAfter: 100)
        let firstView = view([(slotA, 30, 130), (slotB, 20, 150), (slotA, 10, 160)])
        // The replica processed up to 150: the last charge (to 160) was lost with the link.
        chains.linkClosed(replica, link: first, view: firstView)
        let second = chains.linkStarted(replica, resumesAfter: 150)
        #expect(second == first + 1)
        let secondView = view([(slotA, 7, 157)])
        let now = counts(chains, upTo: 157, open: secondView)
        #expect(now.chain == first && now.complete)
        #expect(now.slots == [.init(slot: Int(slotA.rawValue), bytesIn: 37), .init(slot: Int(slotB.rawValue), bytesIn: 20)].sorted { $0.slot < $1.slot })
        #expect(before.continues(into: now), "a chain that began after the first read continues it")
    }

    @Test func aLinkThatCannotBeJoinedStartsANewChain() {
        let chains = ReplicaStreamChains()
        let first = chains.linkStarted(replica, resumesAfter: nil)
        let atFirst = counts(chains, upTo: 0, open: view([]))
        // A second link starts while the first is still open (they overlap): nothing to carry.
        let second = chains.linkStarted(replica, resumesAfter: 0)
        chains.linkClosed(replica, link: first, view: view([(slotA, 5, 5)]))
        let now = counts(chains, upTo: 0, open: view([]))
        #expect(now.chain == second && atFirst.chain == first)
        #expect(!atFirst.continues(into: now))
        // SYNC (no offset) after a closed link: a new chain too.
        chains.linkClosed(replica, link: second, view: view([]))
        let third = chains.linkStarted(replica, resumesAfter: nil)
        #expect(counts(chains, upTo: 0, open: view([])).chain == third)
    }

    @Test func replicasOnTheSamePortAreToldApartByHost() {
        let chains = ReplicaStreamChains()
        _ = chains.linkStarted(replica, resumesAfter: nil)
        _ = chains.linkStarted(.init(host: "10.0.0.3", listeningPort: 6380), resumesAfter: nil)
        #expect(chains.replicas(listeningPort: 6380, host: nil).count == 2)
        #expect(chains.replicas(listeningPort: 6380, host: "10.0.0.2") == [replica])
        #expect(chains.replicas(listeningPort: 6381, host: nil).isEmpty)
    }
}
