import Accounting
import Foundation
import RESP
import Synchronization

/// Each replica's links through this sidecar, joined into chains (see ``ReplicaStreamCounts``): when a
/// replica reconnects and asks `PSYNC` to resume after offset `n`, what it counted of its previous
/// link is that link's view up to `n`, carried into the new one. Shared by every worker (a replica's
/// next link may land on another loop); touched only when a link starts or ends and when an admin
/// request asks, never per command.
final class ReplicaStreamChains: Sendable {
    /// A replica as its primary knows it: the link's peer address and the port it announced.
    struct Replica: Hashable, Sendable {
        var host: String
        var listeningPort: Int
    }

    private struct Chain {
        /// The sequence number of the chain's first link.
        var first: UInt64
        /// What the replica counted of the chain's closed links, up to where each next one resumed.
        var carried: [UInt64]?
        /// The newest link, while it is open.
        var open: UInt64?
        /// The newest link once it closed, until the next one resumes from it.
        var closed: (link: UInt64, view: ReplicaView)?
    }

    /// A random name of this process, so that a replica's sidecar notices when it restarted.
    let sidecar = String(UInt64.random(in: 1...UInt64.max), radix: 16)
    private let state = Mutex<(nextLink: UInt64, chains: [Replica: Chain])>((1, [:]))

    /// A link of `replica` starts; `resumesAfter` is the offset its `PSYNC` said the replica processed
    /// (nil for `SYNC` or `PSYNC ? -1`). Returns the link's sequence number.
    func linkStarted(_ replica: Replica, resumesAfter: Int64?) -> UInt64 {
        state.withLock { state in
            let link = state.nextLink
            state.nextLink += 1
            if var chain = state.chains[replica], chain.open == nil, let closed = chain.closed, let resumesAfter,
                let counts = closed.view.counts(upTo: resumesAfter)
            {
                chain.carried = Self.sum(chain.carried, counts)
                chain.closed = nil
                chain.open = link
                state.chains[replica] = chain
            } else {
                state.chains[replica] = Chain(first: link, carried: nil, open: link, closed: nil)
            }
            return link
        }
    }

    /// The link `link` of `replica` closed with `view`: kept until the replica's next link resumes.
    func linkClosed(_ replica: Replica, link: UInt64, view: ReplicaView) {
        state.withLock { state in
            guard var chain = state.chains[replica], chain.open == link else { return }
            chain.open = nil
            chain.closed = (link, view)
            state.chains[replica] = chain
        }
    }

    /// Where `replica`'s chain stands: its first link, what its closed links carried, and its open
    /// link (whose view the caller reads on its worker) or else its last closed one, read up to `offset`.
    struct Position {
        var chain: UInt64?
        var nextLink: UInt64
        var carried: [UInt64]?
        var openLink: UInt64?
        /// The last closed link's counts up to the offset (nil when its history no longer reaches).
        var closedCounts: [UInt64]??
    }

    func position(of replica: Replica, upTo offset: Int64) -> Position {
        state.withLock { state in
            guard let chain = state.chains[replica] else { return Position(chain: nil, nextLink: state.nextLink) }
            return Position(
                chain: chain.first, nextLink: state.nextLink, carried: chain.carried, openLink: chain.open,
                closedCounts: chain.closed.map { $0.view.counts(upTo: offset) })
        }
    }

    /// The replicas with a chain that announced `listeningPort`, from `host` when given.
    func replicas(listeningPort: Int, host: String?) -> [Replica] {
        state.withLock { state in
            state.chains.keys.filter { $0.listeningPort == listeningPort && (host == nil || $0.host == host) }
        }
    }

    static func sum(_ carried: [UInt64]?, _ counts: [UInt64]) -> [UInt64] {
        guard let carried else { return counts }
        return zip(carried, counts).map { $0 &+ $1 }
    }
}

extension ReplicaStreamCounts {
    init(sidecar: String, position: ReplicaStreamChains.Position, upTo offset: Int64, counts: [UInt64]?) {
        self.init(
            sidecar: sidecar, chain: position.chain, nextLink: position.nextLink, upToOffset: offset, complete: counts != nil || position.chain == nil,
            slots: (counts ?? []).enumerated().compactMap { $0.element == 0 ? nil : Slot(slot: $0.offset, bytesIn: $0.element) })
    }
}
