import Accounting
import RESP
import Testing

@testable import Proxy

/// The wire view adds up to every byte read (with `SessionCore.unrecordedBytes`): cases the session
/// fuzz target (Fuzz/) found where bytes went nowhere.
@Suite("Session byte totals")
struct SessionByteTotalsTests {
    private final class Session {
        let ledger = LedgerShard()
        var core: SessionCore
        var bytesIn = 0
        var bytesOut = 0

        init(plainLanes: Bool = true) {
            core = SessionCore(
                commands: .builtIn, rules: NodeCountingRules(version: ValkeyVersion(major: 9, minor: 1, patch: 0)), ledger: ledger,
                usesPlainLanes: plainLanes)
        }

        func send(_ text: String) {
            bytesIn += text.utf8.count
            _ = Array(text.utf8).withUnsafeBytes { core.clientRead($0, commandsAwaitRoleCheck: false) }
        }

        func receive(_ text: String) {
            bytesOut += text.utf8.count
            _ = Array(text.utf8).withUnsafeBytes { core.nodeRead($0) }
        }

        /// Recorded (wire view) and not yet recorded bytes, in and out.
        var accounted: (in: Int, out: Int) {
            let total = ledger.snapshot().total(.wire)  // slots and buckets
            return (Int(total.bytesIn) + core.unrecordedBytes.in, Int(total.bytesOut) + core.unrecordedBytes.out)
        }
    }

    private func command(_ arguments: String...) -> String { String(decoding: RESPEncoder.command(arguments), as: UTF8.self) }

    @Test("an empty line and *0 are keyless bytes, the same with or without the plain lanes")
    func skippedBytesAreKeyless() {
        let sessions = [Session(), Session(plainLanes: false)]
        for session in sessions {
            session.send("\r\n*0\r\n")
            session.send(command("GET", "k"))
            session.receive("$-1\r\n")
            #expect(session.accounted == (session.bytesIn, session.bytesOut))
            #expect(session.ledger.wire(.keyless).bytesIn == 6)
        }
        #expect(sessions[0].ledger.wire(HashSlot(key: "k")) == sessions[1].ledger.wire(HashSlot(key: "k")))
    }

    @Test("a malformed reply takes the partial request and the replies already read to unparsed")
    func malformedReplyKeepsEveryByte() {
        let session = Session()
        session.send(command("SUBSCRIBE", "a", "b"))
        session.receive("*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")
        session.send("*2\r\n$3\r\nGET")
        session.receive("?bad\r\n")
        #expect(session.accounted == (session.bytesIn, session.bytesOut))
        #expect(session.core.unrecordedBytes == (0, 0))
        #expect(Int(session.ledger.wire(.unparsed).bytesOut) == session.bytesOut)
    }

    @Test("once a slot migration link is established, a plain reply or a push in the same read is the pipe's, not a command's")
    func migrationPipeTakesTheRestOfTheRead() {
        let sessions = [Session(), Session(plainLanes: false)]
        for session in sessions {
            session.send(command("CLUSTER", "SYNCSLOTS", "ESTABLISH", "SOURCE", "x", "NAME", "y", "SLOTSRANGE", "0", "100"))
            session.send(command("GET", "k"))
            session.receive("+OK\r\n$1\r\nv\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n")
            #expect(session.accounted == (session.bytesIn, session.bytesOut))
            #expect(session.ledger.wire(.migration).bytesOut == UInt64(session.bytesOut))
            #expect(session.ledger.wire(.keyless) == SlotCounters())
        }
        for bucket in Bucket.allCases { #expect(sessions[0].ledger.wire(bucket) == sessions[1].ledger.wire(bucket), "\(bucket)") }
        #expect(sessions[0].ledger.wire(HashSlot(key: "k")) == sessions[1].ledger.wire(HashSlot(key: "k")))
    }
}
