import Accounting
import RESP
import Testing

/// The replica side: a baseline taken at a cut, rebased at slot cuts, and the delta to a later read.
struct ReplicaStreamBaselineTests {
    func counts(chain: UInt64?, nextLink: UInt64 = 5, sidecar: String = "s1", _ slots: [Int: UInt64], complete: Bool = true)
        -> ReplicaStreamCounts
    {
        ReplicaStreamCounts(
            sidecar: sidecar, chain: chain, nextLink: nextLink, upToOffset: 0, complete: complete,
            slots: slots.sorted { $0.key < $1.key }.map { .init(slot: $0.key, bytesIn: $0.value) })
    }

    @Test func theDeltaIsWhatTheReplicaCountedSinceTheBaselinePerSlot() throws {
        var baseline = ReplicaStreamBaseline(primary: "p:7000", counts: counts(chain: 1, [10: 100, 20: 50]))
        let now = counts(chain: 1, [10: 130, 20: 50, 30: 9])
        var delta = try baseline.delta(to: now, primary: "p:7000").get()
        #expect(delta[10] == 30 && delta[20] == 0 && delta[30] == 9 && delta.reduce(0, +) == 39)

        // Slot 20 was cut when the stream had brought it to 70: it counts from there.
        baseline.rebasing([HashSlot(rawValue: 20)!], on: .success(counts(chain: 1, [10: 120, 20: 70])), primary: "p:7000")
        delta = try baseline.delta(to: counts(chain: 1, [10: 130, 20: 75]), primary: "p:7000").get()
        #expect(delta[10] == 30 && delta[20] == 5)
    }

    @Test func aChainThatBeganAfterABaselineWithoutALinkHoldsOnlyNewBytes() throws {
        let baseline = ReplicaStreamBaseline(primary: "p:7000", counts: counts(chain: nil, nextLink: 4, [:]))
        #expect(try baseline.delta(to: counts(chain: 4, [10: 8]), primary: "p:7000").get()[10] == 8)
        // A chain that began before the baseline's read was not the one it saw: not exact.
        #expect(baseline.delta(to: counts(chain: 3, [10: 8]), primary: "p:7000") == .failure(.chainChanged))
    }

    @Test func whatCannotBeToldExactlyIsNamed() {
        let baseline = ReplicaStreamBaseline(primary: "p:7000", counts: counts(chain: 1, [10: 1]))
        #expect(baseline.delta(to: counts(chain: 2, [10: 5]), primary: "p:7000") == .failure(.chainChanged))
        #expect(baseline.delta(to: counts(chain: 1, sidecar: "restarted", [10: 5]), primary: "p:7000") == .failure(.chainChanged))
        #expect(baseline.delta(to: counts(chain: 1, [10: 5]), primary: "q:7000") == .failure(.chainChanged))
        #expect(baseline.delta(to: counts(chain: 1, [:], complete: false), primary: "p:7000") == .failure(.historyTooShort))
        #expect(ReplicaStreamBaseline(primary: "p:7000", gap: .peerUnreachable).delta(to: counts(chain: 1, [:]), primary: "p:7000")
            == .failure(.peerUnreachable))
        var lost = baseline
        lost.rebasing([HashSlot(rawValue: 10)!], on: .failure(.peerUnreachable), primary: "p:7000")
        #expect(lost.gap == .peerUnreachable)
    }
}
