import Accounting
import Proxy
import RESP

/// The sans-IO session, on a conversation the input writes: client reads and node reads of
/// requests and replies (the states that change how replies map to requests: transactions,
/// pub/sub in RESP2 and RESP3, MONITOR, CLIENT REPLY, HELLO, RESET, replication, slot migration),
/// cut anywhere, and raw bytes. Two sessions take the same reads, one with the plain lanes and one
/// without. Checks: the wire view plus the bytes not recorded yet adds up to every byte read, on
/// each side, after malformed input too; once a side is malformed, each later read on it goes to
/// `unparsed` whole, and the session goes on taking reads; both sessions end with the same ledger.
enum SessionTarget {
    static let requests: [[UInt8]] = [
        ["GET", "{a}k"], ["SET", "{a}k", "v"], ["MGET", "a", "b"], ["PING"], ["MULTI"], ["EXEC"], ["DISCARD"],
        ["SUBSCRIBE", "c1", "c2"], ["SSUBSCRIBE", "{a}c"], ["UNSUBSCRIBE"], ["PUNSUBSCRIBE"], ["HELLO", "3"], ["HELLO", "2"],
        ["CLIENT", "REPLY", "OFF"], ["CLIENT", "REPLY", "ON"], ["CLIENT", "REPLY", "SKIP"], ["MONITOR"], ["RESET"],
        ["BLPOP", "{a}k", "0"], ["EVAL", "#!lua\nreturn 1", "1", "{a}k"], ["PSYNC", "?", "-1"],
        ["CLUSTER", "SYNCSLOTS", "ESTABLISH", "SOURCE", "x", "NAME", "y", "SLOTSRANGE", "0", "100"],
        ["REPLCONF", "listening-port", "6380"], ["CONFIG", "RESETSTAT"], ["QUIT"], ["INCR", "{b}n"],
    ].map { RESPEncoder.command($0.map { Array($0.utf8) }) } + [
        "GET {a}k\r\n", "*0\r\n", "\r\n", "SET \"{a}k\" 'v'\n",
    ].map { Array($0.utf8) }

    static let replies: [[UInt8]] = [
        "+OK\r\n", "+QUEUED\r\n", ":1\r\n", "$-1\r\n", "$1\r\nv\r\n", "-ERR x\r\n", "-MOVED 1 127.0.0.1:7001\r\n",
        "-CROSSSLOT x\r\n", "*2\r\n$1\r\na\r\n$-1\r\n", "*3\r\n$9\r\nsubscribe\r\n$2\r\nc1\r\n:1\r\n",
        "*3\r\n$10\r\nssubscribe\r\n$4\r\n{a}c\r\n:1\r\n", "*3\r\n$11\r\nunsubscribe\r\n$2\r\nc1\r\n:0\r\n",
        ">3\r\n$7\r\nmessage\r\n$2\r\nc1\r\n$1\r\nm\r\n", "*3\r\n$7\r\nmessage\r\n$2\r\nc1\r\n$1\r\nm\r\n",
        ">3\r\n$8\r\nsmessage\r\n$4\r\n{a}c\r\n$1\r\nm\r\n", "%1\r\n+a\r\n:1\r\n", "_\r\n", "*-1\r\n",
        "+1339518083.107412 [0 127.0.0.1:60866] \"keys\"\r\n", "+FULLRESYNC 8371b4fb1155b71f4a04d3e1bc3e18c4a990aeeb 0\r\n",
        "$5\r\nREDIS\r\n", "*1\r\n+OK\r\n", "-EXECABORT x\r\n", "-UNBLOCKED x\r\n", ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n",
    ].map { Array($0.utf8) }

    /// One ledger per session, kept across runs (each is 786 KiB) and reset before each.
    nonisolated(unsafe) static let ledgers = (LedgerShard(), LedgerShard())

    static func run(_ input: [UInt8]) {
        var draws = Draws(input)
        let rules = NodeCountingRules(version: ValkeyVersion(major: draws.byte() & 1 == 0 ? 8 : 9, minor: 1, patch: 0))
        ledgers.0.reset()
        ledgers.1.reset()
        var lanes = Side(core: SessionCore(commands: .builtIn, rules: rules, ledger: ledgers.0), ledger: ledgers.0)
        var general = Side(core: SessionCore(commands: .builtIn, rules: rules, ledger: ledgers.1, usesPlainLanes: false), ledger: ledgers.1)
        var reads = 0
        while !draws.isAtEnd, reads < 64 {
            let operation = draws.byte()
            let fromClient = operation & 0x80 == 0
            let templates = fromClient ? requests : replies
            let choice = Int(operation & 0x7F)
            var chunks: [[UInt8]]
            if choice < templates.count {
                chunks = [templates[choice]]
            } else if choice < 2 * templates.count {
                // A template cut in two reads.
                let bytes = templates[choice - templates.count]
                let cut = draws.below(bytes.count + 1)
                chunks = [Array(bytes[..<cut]), Array(bytes[cut...])]
            } else {
                chunks = [Array(draws.take(draws.below(24)))]
            }
            for chunk in chunks where !chunk.isEmpty {
                lanes.read(chunk, fromClient: fromClient)
                general.read(chunk, fromClient: fromClient)
                reads += 1
            }
        }
        lanes.checkTotals()
        general.checkTotals()
        for raw in 0..<UInt16(HashSlot.count) {
            let slot = HashSlot(rawValue: raw)!
            require(ledgers.0.wire(slot) == ledgers.1.wire(slot) && ledgers.0.node(slot) == ledgers.1.node(slot),
                    "slot \(raw): the lanes record wire \(ledgers.0.wire(slot)) node \(ledgers.0.node(slot)), the general path "
                        + "wire \(ledgers.1.wire(slot)) node \(ledgers.1.node(slot))")
        }
        for bucket in Bucket.allCases {
            require(ledgers.0.wire(bucket) == ledgers.1.wire(bucket),
                    "\(bucket): the lanes record \(ledgers.0.wire(bucket)), the general path \(ledgers.1.wire(bucket))")
        }
    }

    /// One session and what it was given.
    struct Side: ~Copyable {
        var core: SessionCore
        let ledger: LedgerShard
        var bytesIn = 0
        var bytesOut = 0
        var requestsUnparsed = false
        var repliesUnparsed = false

        mutating func read(_ chunk: [UInt8], fromClient: Bool) {
            let unparsedBefore = ledger.wire(.unparsed)
            let malformed: Bool
            if fromClient {
                bytesIn += chunk.count
                var outcome = chunk.withUnsafeBytes { core.clientRead($0, commandsAwaitRoleCheck: false) }
                if outcome.events.contains(.awaitsStreamFence) {
                    // A PSYNC that may continue waits for the stream fence; the session releases it then.
                    core.streamFenced(unchargedThrough: nil)
                    if let released = core.releaseHeldCommand(commandsAwaitRoleCheck: false) {
                        outcome.forward += released.outcome.forward
                        outcome.events.formUnion(released.outcome.events)
                    }
                }
                require(outcome.forward == chunk.count, "a read of \(chunk.count) bytes forwards \(outcome.forward)")
                malformed = outcome.events.contains(.malformed)
                if requestsUnparsed {
                    require(!malformed && ledger.wire(.unparsed).bytesIn - unparsedBefore.bytesIn == UInt64(chunk.count),
                            "a client read after malformed input is not unparsed whole")
                }
                if malformed { requestsUnparsed = true }
            } else {
                bytesOut += chunk.count
                let events = chunk.withUnsafeBytes { core.nodeRead($0) }
                malformed = events.contains(.malformed)
                if repliesUnparsed {
                    require(!malformed && ledger.wire(.unparsed).bytesOut - unparsedBefore.bytesOut == UInt64(chunk.count),
                            "a node read after a malformed reply is not unparsed whole")
                }
                if malformed { repliesUnparsed = true }
            }
            if malformed { checkTotals() }
        }

        /// The wire view and the bytes not recorded yet add up to every byte read.
        func checkTotals() {
            var total = SlotCounters()
            for raw in 0..<UInt16(HashSlot.count) { total += ledger.wire(HashSlot(rawValue: raw)!) }
            for bucket in Bucket.allCases { total += ledger.wire(bucket) }
            let pending = core.unrecordedBytes
            require(Int(total.bytesIn) + pending.in == bytesIn,
                    "bytes in: \(total.bytesIn) recorded + \(pending.in) pending, \(bytesIn) read")
            require(Int(total.bytesOut) + pending.out == bytesOut,
                    "bytes out: \(total.bytesOut) recorded + \(pending.out) pending, \(bytesOut) read")
        }
    }
}
