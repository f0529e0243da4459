import Accounting
import RESP

/// The replica side of the stream accounting: the stream counts a replica's reconciliation starts
/// from, taken from the primary's sidecar at every cut (docs/accounting.md §10).
extension FenceController {
    /// What one ask of the primary's sidecar gave.
    public enum ReplicaStreamRead: Sendable {
        /// The node is a primary (or its role is not known): it receives no stream.
        case notReplica
        case counts(primary: String, ReplicaStreamCounts)
        case failed(primary: String?, gap: ReplicaStreamGap, detail: String)
    }

    /// Asks the primary's sidecar what the node counted of the stream up to the offset it had
    /// processed when `replication` was read.
    public func readReplicaStream(_ replication: ReplicationInfo) async -> ReplicaStreamRead {
        await Self.readReplicaStream(replication, from: streamSource, listeningPort: listeningPort)
    }

    /// The port the node announces to its primary (`REPLCONF listening-port`): its own port.
    private var listeningPort: Int { server.configuration.nodePort }

    static func readReplicaStream(
        _ replication: ReplicationInfo, from streamSource: (any ReplicaStreamSource)?, listeningPort: Int
    ) async -> ReplicaStreamRead {
        guard replication.isReplica else { return .notReplica }
        guard let primary = replication.primaryAddress, let offset = replication.processedOffset else {
            return .failed(primary: replication.primaryAddress, gap: .noBaseline, detail: "INFO replication names no primary or offset")
        }
        guard let streamSource else {
            return .failed(primary: primary, gap: .peerUnreachable, detail: "no peer admin rule is configured (peers: in the configuration)")
        }
        do {
            let counts = try await streamSource.replicaStream(
                primary: primary, replicaListeningPort: listeningPort, upTo: offset)
            return .counts(primary: primary, counts)
        } catch {
            return .failed(primary: primary, gap: .peerUnreachable, detail: "\(error)")
        }
    }

    /// The replica's stream baseline as the last cut left it, once the asks made for earlier cuts
    /// have been answered; nil on a primary.
    public func replicaStreamBaseline() async -> ReplicaStreamBaseline? {
        adoptStartupRead()
        await streamFetches?.value
        return streamBaseline
    }

    /// A new epoch opened with the node read as `replication`: its stream baseline is taken afresh.
    func newStreamBaseline(_ replication: ReplicationInfo?) {
        guard let replication else {
            streamBaseline = nil
            return
        }
        enqueueStreamFetch { await $0.takeStreamBaseline(replication, slots: nil) }
    }

    /// A slot cut: `slots` start from the counts at the offset read with the cut.
    func rebaseStream(_ slots: [HashSlot], _ replication: ReplicationInfo) {
        enqueueStreamFetch { await $0.takeStreamBaseline(replication, slots: slots) }
    }

    private func enqueueStreamFetch(_ fetch: @escaping @Sendable (FenceController) async -> Void) {
        adoptStartupRead()
        let previous = streamFetches
        streamFetches = Task {
            await previous?.value
            await fetch(self)
        }
    }

    /// Puts the start-up ask first in line.
    private func adoptStartupRead() {
        guard let startup = startupStreamRead else { return }
        startupStreamRead = nil
        let previous = streamFetches
        streamFetches = Task {
            await previous?.value
            self.apply(await startup.value, slots: nil)
        }
    }

    /// Asks at once (the primary's sidecar remembers only its latest charges) and applies the answer:
    /// to every slot (`slots` nil) or to the slots just cut.
    func takeStreamBaseline(_ replication: ReplicationInfo, slots: [HashSlot]?) async {
        apply(await readReplicaStream(replication), slots: slots)
    }

    private func apply(_ read: ReplicaStreamRead, slots: [HashSlot]?) {
        guard let slots else {
            switch read {
            case .notReplica: streamBaseline = nil
            case .counts(let primary, let counts): streamBaseline = ReplicaStreamBaseline(primary: primary, counts: counts)
            case .failed(let primary, let gap, _): streamBaseline = ReplicaStreamBaseline(primary: primary ?? "", gap: gap)
            }
            return
        }
        switch read {
        case .notReplica: break
        case .counts(let primary, let counts): streamBaseline?.rebasing(slots, on: .success(counts), primary: primary)
        case .failed(let primary, let gap, _): streamBaseline?.rebasing(slots, on: .failure(gap), primary: primary ?? "")
        }
    }
}
