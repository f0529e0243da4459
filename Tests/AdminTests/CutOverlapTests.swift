import Admin
import Accounting
import Proxy
import Testing

/// A fenced reconciliation reads the node, then the ledger, then the baseline. A cut of the ledger
/// between those reads (the fence cutting for an owner change the node already shows) makes them
/// belong to different periods, so the reading is taken again.
@Suite struct CutOverlapTests {
    /// Slot 7 has traffic on both sides. Slot 5 changed owner: the node reset it, and the ledger as it
    /// was before its cut still holds what the node zeroed.
    let node = Fixtures.stats([7: (30, 4)])
    let beforeTheCut = Fixtures.ledger([7: (30, 4), 5: (120, 5)])
    let afterTheCut = Fixtures.ledger([7: (30, 4)])

    func reconcile(_ counts: [(count: LedgerCutCount, ledger: LedgerSnapshot?)]) async throws -> (ReconcileReport, pauses: Int) {
        let backend = FakeBackend()
        backend.update {
            $0.stats = node
            $0.snapshot = beforeTheCut
            $0.cutCounts = counts
        }
        let service = AdminService(backend: backend, configuration: AdminConfiguration())
        service.setBaseline(Fixtures.stats([:]))
        let report = try await service.reconcile(mode: .fenced)
        return (report, backend.calls.filter { $0 == "pause" }.count)
    }

    @Test func aReadingThatACutOverlappedIsTakenAgain() async throws {
        let (report, pauses) = try await reconcile([
            (LedgerCutCount(started: 3, finished: 3), nil),
            // Asked after the first reading: the fence cut meanwhile.
            (LedgerCutCount(started: 4, finished: 4), afterTheCut),
        ])
        #expect(pauses == 2)
        #expect(report.verdict == .match, "\(report.slots)")
        #expect(report.summary.slotsCompared == 1)
    }

    @Test func aReadingBegunWhileACutWasUnderWayIsTakenAgain() async throws {
        // The wait for the cut to finish ran out; the counts agree, but the cut was under way all along.
        let (report, pauses) = try await reconcile([
            (LedgerCutCount(started: 4, finished: 3), nil),
            (LedgerCutCount(started: 4, finished: 3), nil),
            (LedgerCutCount(started: 4, finished: 4), afterTheCut),
        ])
        #expect(pauses == 2)
        #expect(report.verdict == .match, "\(report.slots)")
    }

    @Test func theThirdReadingIsReportedAsItStands() async throws {
        let (report, pauses) = try await reconcile((0..<8).map { (LedgerCutCount(started: UInt64($0), finished: UInt64($0)), nil) })
        #expect(pauses == 3)
        #expect(report.verdict == .difference)
        #expect(report.slots.first { $0.slot == 5 }?.status == .ledgerHigher)
    }

    @Test func withoutAFenceOneReadingIsEnough() async throws {
        let (report, pauses) = try await reconcile([])
        #expect(pauses == 1)
        #expect(report.verdict == .difference)
    }
}
