import Accounting
import RESP
import Testing

/// `CLUSTER SLOT-STATS` replies the fuzz target (Fuzz/) found mishandled: the byte parser and the
/// value parser must refuse the same replies, and neither may trap or allocate what a count claims.
@Suite("NodeSlotStats parsing")
struct NodeSlotStatsParsingTests {
    private func parse(_ text: String) throws -> NodeSlotStats {
        try Array(text.utf8).withUnsafeBytes { try NodeSlotStats(replyBytes: $0) }
    }

    @Test("a negative field count is refused, not a trap")
    func negativeFieldCount() {
        #expect(throws: (any Error).self) { try parse("*1\r\n*2\r\n:0\r\n%-1\r\n") }
    }

    @Test("a null reply is refused by both parsers")
    func nullReply() {
        #expect(throws: (any Error).self) { try parse("*-1\r\n") }
        #expect(throws: (any Error).self) { try NodeSlotStats(reply: .null) }
    }

    @Test("a huge entry count is refused without reserving room for it")
    func hugeEntryCount() {
        #expect(throws: (any Error).self) { try parse("*999999999999\r\n") }
    }

    @Test("a negative slot is refused by the value parser too (it read as slot 0)")
    func negativeSlot() {
        #expect(throws: (any Error).self) { try NodeSlotStats(reply: .array([.array([.integer(-5), .map([])])])) }
        #expect(throws: (any Error).self) { try parse("*1\r\n*2\r\n:-5\r\n%0\r\n") }
    }
}
