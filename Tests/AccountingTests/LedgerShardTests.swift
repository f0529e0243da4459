import Accounting
import RESP
import Testing

@Suite("LedgerShard")
struct LedgerShardTests {
    @Test("records into slots and buckets, snapshots and resets")
    func recordSnapshotReset() {
        let shard = LedgerShard()
        let slot = HashSlot(key: "foo")
        shard.recordWire(slot: slot, commands: 1, bytesIn: 33, bytesOut: 5)
        shard.recordWire(slot: slot, commands: 1, bytesIn: 22, bytesOut: 11)
        shard.recordNode(slot: slot, commands: 1, bytesIn: 33, bytesOut: 5)
        shard.recordWire(bucket: .keyless, commands: 1, bytesIn: 14, bytesOut: 7)
        shard.markScript(slot: slot)

        let snapshot = shard.snapshot()
        #expect(snapshot[.wire, slot] == SlotCounters(commands: 2, bytesIn: 55, bytesOut: 16))
        #expect(snapshot[.node, slot] == SlotCounters(commands: 1, bytesIn: 33, bytesOut: 5))
        #expect(snapshot[.keyless] == SlotCounters(commands: 1, bytesIn: 14, bytesOut: 7))
        #expect(snapshot.total(.wire) == SlotCounters(commands: 3, bytesIn: 69, bytesOut: 23))
        #expect(snapshot.total(.node) == SlotCounters(commands: 1, bytesIn: 33, bytesOut: 5))
        #expect(snapshot.scriptRan(in: slot))
        #expect(!snapshot.scriptRan(in: HashSlot(key: "bar")))
        #expect(snapshot.activeSlots == [slot])

        shard.reset()
        let empty = shard.snapshot()
        #expect(empty == LedgerSnapshot())
        #expect(empty.activeSlots.isEmpty)
        // The earlier snapshot is a copy, untouched by the reset.
        #expect(snapshot[.wire, slot].commands == 2)
    }

    @Test("a cut zeroes only its slots (both views, the script mark) and returns what they held")
    func cut() {
        let shard = LedgerShard()
        let cutSlot = HashSlot(key: "foo")
        let kept = HashSlot(key: "bar")
        shard.recordWire(slot: cutSlot, commands: 2, bytesIn: 40, bytesOut: 8)
        shard.recordNode(slot: cutSlot, commands: 1, bytesIn: 20, bytesOut: 4)
        shard.markScript(slot: cutSlot)
        shard.recordNode(slot: kept, commands: 1, bytesIn: 7, bytesOut: 3)
        shard.recordWire(bucket: .keyless, commands: 1, bytesIn: 14, bytesOut: 7)

        let closed = shard.cut([cutSlot, HashSlot(rawValue: 9)!])
        #expect(closed.map(\.wire) == [SlotCounters(commands: 2, bytesIn: 40, bytesOut: 8), .zero])
        #expect(closed.map(\.node) == [SlotCounters(commands: 1, bytesIn: 20, bytesOut: 4), .zero])
        let after = shard.snapshot()
        #expect(after[.wire, cutSlot] == .zero)
        #expect(after[.node, cutSlot] == .zero)
        #expect(!after.scriptRan(in: cutSlot))
        #expect(after[.node, kept] == SlotCounters(commands: 1, bytesIn: 7, bytesOut: 3))
        #expect(after[.keyless] == SlotCounters(commands: 1, bytesIn: 14, bytesOut: 7))
    }

    @Test("a baseline rebased on some slots takes their rows from the current counters")
    func rebasing() {
        func slot(_ n: UInt16) -> HashSlot { HashSlot(rawValue: n)! }
        let baseline = NodeSlotStats(
            rows: [NodeSlotStat(slot: slot(1), networkBytesIn: 100), NodeSlotStat(slot: slot(2), networkBytesIn: 200)],
            networkStatsEnabled: true)
        let current = NodeSlotStats(
            rows: [NodeSlotStat(slot: slot(1), networkBytesIn: 150), NodeSlotStat(slot: slot(3), networkBytesIn: 7)],
            networkStatsEnabled: true)
        let rebased = baseline.rebasing([slot(2), slot(3)], on: current)
        #expect(rebased.rows.map(\.slot.rawValue) == [1, 3])
        #expect(rebased.rows.map(\.networkBytesIn) == [100, 7])
    }

    @Test("snapshots of several shards merge by addition")
    func merge() {
        let first = LedgerShard()
        let second = LedgerShard()
        let slot = HashSlot(rawValue: 16383)!
        first.recordNode(slot: slot, commands: 1, bytesIn: 10, bytesOut: 1)
        second.recordNode(slot: slot, commands: 2, bytesIn: 20, bytesOut: 2)
        second.recordWire(bucket: .unparsed, commands: 0, bytesIn: 3, bytesOut: 0)
        second.markScript(slot: slot)
        var merged = first.snapshot()
        merged.merge(second.snapshot())
        #expect(merged[.node, slot] == SlotCounters(commands: 3, bytesIn: 30, bytesOut: 3))
        #expect(merged[.unparsed].bytesIn == 3)
        #expect(merged.scriptRan(in: slot))
    }
}

@Suite("ValkeyVersion")
struct ValkeyVersionTests {
    @Test("parses versions and INFO server")
    func parsing() {
        #expect(ValkeyVersion("8.1.8") == ValkeyVersion(major: 8, minor: 1, patch: 8))
        #expect(ValkeyVersion("9.1") == ValkeyVersion(major: 9, minor: 1, patch: 0))
        #expect(ValkeyVersion("9") == nil)
        #expect(ValkeyVersion("x.1.2") == nil)
        #expect(ValkeyVersion("8.1.-1") == nil)
        let info = "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:9.1.2\r\nredis_mode:cluster\r\n"
        #expect(ValkeyVersion(infoServer: info) == ValkeyVersion(major: 9, minor: 1, patch: 2))
        #expect(ValkeyVersion(infoServer: "redis_version:7.2.4\r\n") == ValkeyVersion(major: 7, minor: 2, patch: 4))
        #expect(ValkeyVersion(infoServer: "# Server\r\n") == nil)
        #expect(ValkeyVersion(major: 8, minor: 1, patch: 0) < ValkeyVersion(major: 8, minor: 1, patch: 1))
    }

    @Test("exactly 8.0.0–8.0.2 and 8.1.0 abort on the first write after a promotion (Valkey #1912)")
    func promotionAbort() {
        let affected = ["8.0.0", "8.0.1", "8.0.2", "8.1.0"]
        let fixed = ["7.2.4", "8.0.3", "8.0.6", "8.1.1", "8.1.8", "8.2.0", "9.0.0", "9.1.2"]
        for text in affected { #expect(ValkeyVersion(text)?.abortsOnFirstWriteAfterPromotion == true, "\(text)") }
        for text in fixed { #expect(ValkeyVersion(text)?.abortsOnFirstWriteAfterPromotion == false, "\(text)") }
    }
}

@Suite("NodeCountingRules")
struct NodeCountingRulesTests {
    let valkey8 = NodeCountingRules(version: ValkeyVersion(major: 8, minor: 1, patch: 8))
    let valkey9 = NodeCountingRules(version: ValkeyVersion(major: 9, minor: 1, patch: 2))

    @Test("errors refused before a slot is known are not counted")
    func notCounted() {
        for error: ReplyError in [.crossSlot, .unknownCommand, .unknownSubcommand, .wrongArity, .unblocked] {
            #expect(valkey8.treatment(of: error) == .notCounted)
            #expect(valkey9.treatment(of: error) == .notCounted)
        }
    }

    @Test("redirects and state errors count bytes in only")
    func rejectedCountingInput() {
        for error: ReplyError in [.moved, .ask, .tryAgain, .readOnly, .loading, .outOfMemory, .masterDown] {
            #expect(valkey8.treatment(of: error) == .rejectedCountingInput)
            #expect(valkey9.treatment(of: error) == .rejectedCountingInput)
        }
    }

    @Test("CLUSTERDOWN, NOAUTH and NOPERM: counted on 9.x, not on 8.x")
    func versionDifference() {
        for error: ReplyError in [.clusterDown, .noAuth, .noPermission] {
            #expect(valkey8.treatment(of: error) == .notCounted)
            #expect(valkey9.treatment(of: error) == .rejectedCountingInput)
        }
    }

    @Test("errors raised while running count both ways")
    func executed() {
        for error: ReplyError in [.wrongType, .other, .noScript, .execAbort] {
            #expect(valkey9.treatment(of: error) == .executed)
        }
        #expect(!NodeCountingRules.isRejection(.wrongType))
        #expect(NodeCountingRules.isRejection(.moved))
    }
}

@Suite("NodeSlotStats")
struct NodeSlotStatsTests {
    static let resp2 = "*2\r\n*2\r\n:0\r\n*8\r\n$9\r\nkey-count\r\n:3\r\n$8\r\ncpu-usec\r\n:12\r\n$16\r\nnetwork-bytes-in\r\n:40\r\n"
        + "$17\r\nnetwork-bytes-out\r\n:9\r\n*2\r\n:16383\r\n*8\r\n$9\r\nkey-count\r\n:0\r\n$8\r\ncpu-usec\r\n:0\r\n"
        + "$16\r\nnetwork-bytes-in\r\n:0\r\n$17\r\nnetwork-bytes-out\r\n:0\r\n"
    static let resp3 = "*1\r\n*2\r\n:7\r\n%2\r\n+key-count\r\n:1\r\n$16\r\nnetwork-bytes-in\r\n:5\r\n"
    static let statsOff = "*1\r\n*2\r\n:7\r\n*2\r\n$9\r\nkey-count\r\n:1\r\n"

    private static func viaValue(_ text: String) throws -> NodeSlotStats {
        let (value, _) = try #require(try RESPValueDecoder.decode(Array(text.utf8)[...]))
        return try NodeSlotStats(reply: value)
    }

    private static func viaBytes(_ text: String) throws -> NodeSlotStats {
        try Array(text.utf8).withUnsafeBytes { try NodeSlotStats(replyBytes: $0) }
    }

    /// The last one has a field whose value is not an integer: the byte parser hands it over.
    @Test("the byte parser reads RESP2 and RESP3 replies as the value parser does", arguments: [
        resp2, resp3, statsOff, "*0\r\n", "*1\r\n*2\r\n:7\r\n%2\r\n$4\r\nnote\r\n$2\r\nhi\r\n$9\r\nkey-count\r\n:4\r\n",
    ])
    func sameAsValueParser(_ text: String) throws {
        #expect(try Self.viaBytes(text) == Self.viaValue(text))
    }

    @Test func fields() throws {
        let stats = try Self.viaBytes(Self.resp2)
        #expect(stats.networkStatsEnabled)
        #expect(stats.rows.first == NodeSlotStat(slot: HashSlot(rawValue: 0)!, keyCount: 3, cpuMicroseconds: 12, networkBytesIn: 40, networkBytesOut: 9))
        #expect(try !Self.viaBytes(Self.statsOff).networkStatsEnabled)
    }

    /// An error reply, a slot out of range, a reply cut short. (A field array of odd length is not
    /// among them: the value parser reads the pairs it has, and the byte parser defers to it.)
    @Test("malformed replies are errors, not guesses", arguments: [
        "-ERR This instance has cluster support disabled\r\n", "*1\r\n*2\r\n:16384\r\n*0\r\n",
        "*1\r\n*2\r\n:1\r\n*2\r\n$9\r\nkey-count\r\n:1",
    ])
    func malformed(_ text: String) {
        #expect(throws: (any Error).self) { try Self.viaBytes(text) }
    }
}
