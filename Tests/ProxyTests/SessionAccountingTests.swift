import Accounting
import RESP
import Testing

@testable import Proxy

/// Drives a ``SessionCore`` — the scanners, their lanes and the accounting, exactly as a session
/// runs them — over byte strings, no sockets. `plainLanes: false` takes every frame the general way.
private final class Harness {
    var core: SessionCore
    let ledger = LedgerShard()

    init(major: Int = 9, plainLanes: Bool = true) {
        core = SessionCore(
            commands: .builtIn, rules: NodeCountingRules(version: ValkeyVersion(major: major, minor: 1, patch: 0)), ledger: ledger,
            usesPlainLanes: plainLanes)
    }

    /// The node's `master_repl_offset` the stream fence reads when a `PSYNC` waits for it.
    var streamFenceOffset: Int64?

    func send(_ text: String) {
        var outcome = Array(text.utf8).withUnsafeBytes { core.clientRead($0, commandsAwaitRoleCheck: false) }
        if outcome.events.contains(.awaitsStreamFence) {
            core.streamFenced(unchargedThrough: streamFenceOffset)
            outcome = core.releaseHeldCommand(commandsAwaitRoleCheck: false)?.outcome ?? outcome
        }
        if outcome.events.contains(.malformed) { Issue.record("malformed request in \(text.debugDescription): \(String(describing: core.violation))") }
    }

    func receive(_ text: String) {
        let events = Array(text.utf8).withUnsafeBytes { core.nodeRead($0) }
        if events.contains(.malformed) { Issue.record("malformed reply in \(text.debugDescription): \(String(describing: core.violation))") }
    }

    var inFlight: Int { core.inFlightCount }
    var requestsArePipe: Bool { core.requestsArePipe }
    var repliesArePipe: Bool { core.accounting.repliesArePipe }

    /// Every counter of the ledger that is not zero, by name ("wire 1234", "node 1234", "keyless").
    var countersInUse: [String: SlotCounters] {
        var counters: [String: SlotCounters] = [:]
        for raw in 0..<UInt16(HashSlot.count) {
            let slot = HashSlot(rawValue: raw)!
            if !ledger.wire(slot).isZero { counters["wire \(raw)"] = ledger.wire(slot) }
            if !ledger.node(slot).isZero { counters["node \(raw)"] = ledger.node(slot) }
        }
        for bucket in Bucket.allCases where !ledger.wire(bucket).isZero { counters["\(bucket)"] = ledger.wire(bucket) }
        return counters
    }

    func node(_ key: String) -> SlotCounters { ledger.node(HashSlot(key: key)) }
    func wire(_ key: String) -> SlotCounters { ledger.wire(HashSlot(key: key)) }
}

private func command(_ arguments: String...) -> String {
    String(decoding: RESPEncoder.command(arguments), as: UTF8.self)
}

@Suite("SessionAccounting (sans-IO)")
struct SessionAccountingTests {
    @Test("the plain lanes give the ledger the general path gives")
    func plainLanesAgreeWithTheGeneralPath() {
        // Requests and their replies, each pair in one chunk and all of them pipelined in another:
        // plain ones (hits, misses, a blocking timeout, keyless, cross-slot, unknown, wrong arity)
        // between ones the lanes leave to the general path (errors, a transaction, a push, RESP3).
        let exchanges: [(request: String, reply: String)] = [
            (command("SET", "key", "value"), "+OK\r\n"),
            (command("GET", "key"), "$5\r\nvalue\r\n"),
            (command("GET", "missing"), "$-1\r\n"),
            (command("INCR", "{n}counter"), ":1\r\n"),
            (command("MGET", "a", "b"), "*2\r\n$1\r\n1\r\n$-1\r\n"),
            (command("DEL", "a", "b"), "-CROSSSLOT Keys in request don't hash to the same slot\r\n"),
            (command("BLMOVE", "src", "dst", "LEFT", "RIGHT", "0.01"), "$-1\r\n"),
            (command("BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"), "$1\r\nx\r\n"),
            (command("PING"), "+PONG\r\n"),
            (command("NOSUCHCOMMAND", "key"), "-ERR unknown command 'NOSUCHCOMMAND'\r\n"),
            (command("GET", "key", "extra"), "-ERR wrong number of arguments for 'get' command\r\n"),
            (command("MULTI"), "+OK\r\n"),
            (command("SET", "key", "v2"), "+QUEUED\r\n"),
            (command("EXEC"), "*1\r\n+OK\r\n"),
            (command("HELLO", "3"), "%1\r\n$6\r\nserver\r\n$6\r\nvalkey\r\n"),
            (command("GET", "key"), ">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nkey\r\n$2\r\nv2\r\n"),
            (command("GET", "{n}counter"), "$1\r\n1\r\n"),
        ]
        expectLanesAgree(exchanges)
    }

    @Test("the message lane gives the ledger the general path gives")
    func messageLaneAgreesWithTheGeneralPath() {
        let message = "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n"
        let push = ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n"
        let exchanges: [(request: String, reply: String)] = [
            // Not subscribed: an array that reads like a message is the reply to LRANGE.
            (command("LRANGE", "list", "0", "-1"), message),
            (command("SUBSCRIBE", "ch", "other"), "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n" + message
                + "*3\r\n$9\r\nsubscribe\r\n$5\r\nother\r\n:2\r\n" + message + message),
            (command("PING"), message + "*2\r\n$4\r\npong\r\n$0\r\n\r\n" + message),
            // An open-ended UNSUBSCRIBE ends at the first frame that is not one of its confirmations.
            (command("UNSUBSCRIBE"), "*3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:1\r\n" + message
                + "*3\r\n$11\r\nunsubscribe\r\n$5\r\nother\r\n:0\r\n"),
            (command("GET", "key"), "$1\r\nv\r\n"),
            // RESP3: messages are pushes, between replies or with nothing in flight.
            (command("HELLO", "3"), "%1\r\n$6\r\nserver\r\n$6\r\nvalkey\r\n"),
            (command("SUBSCRIBE", "ch"), ">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n" + push),
            (command("GET", "key"), push + "$1\r\nv\r\n" + push),
            (command("SET", "key", "w"), "+OK\r\n" + push + push),
        ]
        expectLanesAgree(exchanges)
    }

    /// Runs `exchanges` (each request and its replies in one chunk, then all of them pipelined) with
    /// and without the lanes and expects the same ledger and nothing left in flight.
    private func expectLanesAgree(_ exchanges: [(request: String, reply: String)]) {
        for pipelined in [false, true] {
            let lanes = Harness()
            let general = Harness(plainLanes: false)
            for harness in [lanes, general] {
                if pipelined {
                    harness.send(exchanges.map(\.request).joined())
                    harness.receive(exchanges.map(\.reply).joined())
                } else {
                    for exchange in exchanges {
                        harness.send(exchange.request)
                        harness.receive(exchange.reply)
                    }
                }
            }
            #expect(lanes.countersInUse == general.countersInUse, "pipelined: \(pipelined)")
            #expect(lanes.ledger.snapshot().total(.node).commands > 2)
            #expect(lanes.inFlight == 0 && general.inFlight == 0)
        }
    }

    @Test("a keyed command and its reply count in both views")
    func keyedCommand() {
        let harness = Harness()
        harness.send(command("SET", "key", "value"))
        harness.receive("+OK\r\n")
        #expect(harness.node("key") == SlotCounters(commands: 1, bytesIn: 33, bytesOut: 5))
        #expect(harness.wire("key") == SlotCounters(commands: 1, bytesIn: 33, bytesOut: 5))
        #expect(harness.inFlight == 0)
    }

    @Test("keyless, unknown, wrong-arity and CROSSSLOT commands are not counted by the node")
    func notCounted() {
        let harness = Harness()
        harness.send(command("PING") + command("NOSUCH", "key") + command("GET") + command("MSET", "a", "1", "b", "2"))
        harness.receive("+PONG\r\n-ERR unknown command 'NOSUCH'\r\n-ERR wrong number of arguments for 'get' command\r\n-CROSSSLOT Keys in request don't hash to the same slot\r\n")
        #expect(harness.ledger.snapshot().total(.node) == .zero)
        #expect(harness.ledger.wire(.keyless).commands == 1)
        #expect(harness.ledger.wire(.rejected).commands == 3)
    }

    @Test("a redirect counts bytes in but not the error reply")
    func redirect() {
        let harness = Harness()
        harness.send(command("GET", "key"))
        harness.receive("-MOVED 12539 127.0.0.1:7001\r\n")
        #expect(harness.node("key") == SlotCounters(commands: 0, bytesIn: 22, bytesOut: 0))
        #expect(harness.ledger.wire(.rejected).bytesIn == 22)
    }

    @Test("MULTI/EXEC: queued commands at queue time, EXEC + 15, and EXEC's over-counted reply")
    func transaction() {
        let harness = Harness()
        harness.send(command("MULTI") + command("SET", "{t}a", "1") + command("GET", "{t}a") + command("EXEC"))
        harness.receive("+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n$1\r\n1\r\n")
        // SET {t}a 1 = 30, GET {t}a = 23, EXEC = 14 + 15; reply 16 bytes: 9 + 16 + 16.
        #expect(harness.node("{t}a") == SlotCounters(commands: 1, bytesIn: 30 + 23 + 14 + 15, bytesOut: 41))
    }

    @Test("a transaction spanning two slots: EXEC refused, queued commands still counted")
    func crossSlotTransaction() {
        let harness = Harness()
        harness.send(command("MULTI") + command("SET", "{a}x", "1") + command("SET", "{b}x", "1") + command("EXEC"))
        harness.receive("+OK\r\n+QUEUED\r\n+QUEUED\r\n-CROSSSLOT Keys in request don't hash to the same slot\r\n")
        #expect(harness.node("{a}x") == SlotCounters(commands: 0, bytesIn: 30, bytesOut: 0))
        #expect(harness.node("{b}x") == SlotCounters(commands: 0, bytesIn: 30, bytesOut: 0))
    }

    @Test("replies split at every byte give the same ledger")
    func splitReplies() {
        let requests = command("SET", "k", "v") + command("GET", "k") + command("LRANGE", "l", "0", "-1")
        let replies = "+OK\r\n$1\r\nv\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n"
        let whole = Harness()
        whole.send(requests)
        whole.receive(replies)
        for split in 1..<replies.utf8.count {
            let harness = Harness()
            harness.send(requests)
            let bytes = Array(replies.utf8)
            harness.receive(String(decoding: bytes[..<split], as: UTF8.self))
            harness.receive(String(decoding: bytes[split...], as: UTF8.self))
            #expect(harness.ledger.snapshot() == whole.ledger.snapshot(), "split at \(split)")
        }
    }

    @Test("CLIENT REPLY OFF: commands count bytes in with no reply, and nothing waits in flight")
    func clientReplyOff() {
        let harness = Harness()
        harness.send(command("CLIENT", "REPLY", "OFF") + command("SET", "key", "value"))
        #expect(harness.inFlight == 0)
        #expect(harness.node("key") == SlotCounters(commands: 1, bytesIn: 33, bytesOut: 0))
        harness.send(command("CLIENT", "REPLY", "ON"))
        #expect(harness.inFlight == 1)
        harness.receive("+OK\r\n")
        harness.send(command("CLIENT", "REPLY", "SKIP") + command("GET", "key") + command("GET", "key"))
        #expect(harness.inFlight == 1)
    }

    @Test("a RESP3 push between commands goes to the next keyed command; a keyless one drops it")
    func pushesCarriedOver() {
        let harness = Harness()
        harness.send(command("HELLO", "3"))
        harness.receive("%1\r\n$5\r\nproto\r\n:3\r\n")
        let push = ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"
        harness.receive(push)
        harness.send(command("GET", "key"))
        harness.receive("_\r\n")
        #expect(harness.node("key").bytesOut == UInt64(3 + push.utf8.count))
        harness.receive(push)
        harness.send(command("PING") + command("GET", "other"))
        harness.receive("+PONG\r\n_\r\n")
        #expect(harness.node("other").bytesOut == 3)
        #expect(harness.ledger.wire(.keyless).bytesOut > UInt64(2 * push.utf8.count))
    }

    @Test("a blocking command that timed out is not counted; one served is")
    func blocking() {
        let harness = Harness()
        harness.send(command("BLPOP", "queue", "1"))
        harness.receive("*-1\r\n")
        #expect(harness.node("queue") == .zero)
        #expect(harness.wire("queue").commands == 1)
        harness.send(command("BLPOP", "queue", "0"))
        harness.receive("*2\r\n$5\r\nqueue\r\n$1\r\nx\r\n")
        #expect(harness.node("queue").commands == 1)
    }

    @Test("RESP2 subscriptions: one reply frame per channel, messages are out of band")
    func subscriptions() {
        let harness = Harness()
        harness.send(command("SUBSCRIBE", "a", "b"))
        harness.receive("*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")
        #expect(harness.inFlight == 1)
        harness.receive("*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n")
        #expect(harness.inFlight == 0)
        harness.receive("*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n")
        harness.send(command("UNSUBSCRIBE"))
        harness.receive("*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n")
        harness.send(command("GET", "key"))
        harness.receive("$-1\r\n")
        #expect(harness.inFlight == 0)
        #expect(harness.node("key") == SlotCounters(commands: 1, bytesIn: 22, bytesOut: 5))
    }

    @Test("RESP2: the client leaves pub/sub mode when its last subscription of any kind ends")
    func leavingPubSubMode() {
        let message = "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nm\r\n"
        let harness = Harness()
        harness.send(command("SUBSCRIBE", "a", "b"))
        harness.receive("*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n")
        harness.send(command("SSUBSCRIBE", "{s}x"))
        harness.receive("*3\r\n$10\r\nssubscribe\r\n$4\r\n{s}x\r\n:1\r\n" + message)
        harness.send(command("UNSUBSCRIBE"))
        harness.receive(
            "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n" + message + "*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n")
        // A shard channel is left: still in pub/sub mode, so a message is out of band.
        harness.send(command("SUNSUBSCRIBE", "{s}x"))
        harness.receive(message + "*3\r\n$12\r\nsunsubscribe\r\n$4\r\n{s}x\r\n:0\r\n")
        #expect(harness.inFlight == 0)
        // Out of pub/sub mode, an array that reads like a message is the reply to LRANGE.
        harness.send(command("LRANGE", "list", "0", "-1"))
        harness.receive(message)
        #expect(harness.inFlight == 0)
        #expect(harness.node("list").commands == 1)
        #expect(harness.node("list").bytesOut == UInt64(message.utf8.count))
    }

    @Test("sharded pub/sub: SSUBSCRIBE counts to the channel's slot, and so does each smessage")
    func shardedPubSub() {
        let harness = Harness()
        harness.send(command("SSUBSCRIBE", "news"))
        let confirmation = "*3\r\n$10\r\nssubscribe\r\n$4\r\nnews\r\n:1\r\n"
        harness.receive(confirmation)
        let message = "*3\r\n$8\r\nsmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        harness.receive(message)
        let frame = command("SSUBSCRIBE", "news")
        #expect(harness.node("news") == SlotCounters(commands: 1, bytesIn: UInt64(frame.utf8.count), bytesOut: UInt64(confirmation.utf8.count + message.utf8.count)))
    }

    @Test("inline commands: the node counts a normalised length")
    func inline() {
        let harness = Harness()
        harness.send("GET  key\r\n")
        harness.receive("$-1\r\n")
        #expect(harness.node("key").bytesIn == 9)
        #expect(harness.wire("key").bytesIn == 10)
    }

    @Test("PSYNC turns the connection into a replication pipe once its reply is reached")
    func replication() {
        let harness = Harness()
        harness.send(command("REPLCONF", "listening-port", "7001") + command("PSYNC", "?", "-1"))
        #expect(harness.requestsArePipe)
        #expect(!harness.repliesArePipe)
        harness.receive("+OK\r\n")
        #expect(harness.repliesArePipe)
        // The handshake is recorded at once and leaves nothing in flight: a drain must not wait on it.
        #expect(harness.inFlight == 0)
        let replication = harness.ledger.wire(.replication)
        #expect(replication.commands == 1)
        #expect(replication.bytesIn == UInt64(command("PSYNC", "?", "-1").utf8.count))
    }

    @Test("a replica's link is charged per slot as the primary charges its stream, and its offset followed")
    func replicationStreamPerSlot() {
        let harness = Harness()
        harness.send(command("PSYNC", "?", "-1"))
        let mark = String(repeating: "m", count: 40)
        let set = command("SET", "k", "v")
        let transaction = command("MULTI") + command("SET", "{t}a", "1") + command("SET", "{t}b", "2") + command("EXEC")
        let keyless = command("SELECT", "0") + command("PING") + command("REPLCONF", "GETACK", "*") + command("FLUSHALL")
        let stream = "\n+FULLRESYNC \(String(repeating: "r", count: 40)) 100\r\n$EOF:\(mark)\r\nREDIS0011\(mark)" + set + transaction + keyless
        let bytes = Array(stream.utf8)
        // Every split point of the whole exchange.
        for cut in [1, 50, 100, bytes.count - 3] {
            let split = Harness()
            split.send(command("PSYNC", "?", "-1"))
            split.receive(String(decoding: bytes[..<cut], as: UTF8.self))
            split.receive(String(decoding: bytes[cut...], as: UTF8.self))
            #expect(split.node("k").bytesOut == UInt64(set.utf8.count), "cut at \(cut)")
            #expect(split.node("{t}a").bytesOut == UInt64(transaction.utf8.count), "cut at \(cut)")
        }
        harness.receive(stream)
        #expect(harness.node("k") == SlotCounters(commands: 0, bytesIn: 0, bytesOut: 27))
        #expect(harness.node("{t}a") == SlotCounters(commands: 0, bytesIn: 0, bytesOut: 89))
        #expect(harness.countersInUse.keys.sorted() == ["node 15891", "node 7629", "replication"])
        #expect(harness.ledger.wire(.replication).bytesOut == UInt64(bytes.count))
        let commandBytes = set.utf8.count + transaction.utf8.count + keyless.utf8.count
        #expect(harness.core.replicationLink?.forwardedOffset == 100 + Int64(commandBytes))
    }

    @Test("a full resync's stream is held by the node until its first bytes cross; a partial resync's never is")
    func nodeHoldsAFullResyncsStream() {
        let harness = Harness()
        harness.send(command("PSYNC", "?", "-1"))
        let mark = String(repeating: "m", count: 40)
        harness.receive("\n\n+FULLRESYNC \(String(repeating: "r", count: 40)) 100\r\n$EOF:\(mark)\r\nREDIS0011")
        #expect(harness.core.replicationLink?.nodeHoldsStream == true, "the snapshot is crossing")
        harness.receive(mark)
        #expect(harness.core.replicationLink?.nodeHoldsStream == true, "the snapshot is through, the first ACK not yet")
        // The first bytes of a command (a large one may stop there behind a slow replica) are enough.
        harness.receive(String(command("SELECT", "0").prefix(6)))
        #expect(harness.core.replicationLink?.nodeHoldsStream == false)

        let continued = Harness()
        continued.send(command("PSYNC", String(repeating: "r", count: 40), "5001"))
        continued.receive("+CONTINUE \(String(repeating: "r", count: 40))\r\n")
        #expect(continued.core.replicationLink?.nodeHoldsStream == false)
    }

    @Test("a partial resync continues from the offset PSYNC asked for")
    func replicationContinues() {
        let harness = Harness()
        harness.send(command("PSYNC", String(repeating: "r", count: 40), "5001"))
        harness.receive("+CONTINUE \(String(repeating: "r", count: 40))\r\n" + command("INCR", "n"))
        #expect(harness.core.replicationLink?.forwardedOffset == 5000 + Int64(command("INCR", "n").utf8.count))
        #expect(harness.node("n").bytesOut == UInt64(command("INCR", "n").utf8.count))
    }

    @Test("a PSYNC that may continue waits for the stream fence; the backlog resent up to the offset it read is not charged, the replica still counts it")
    func resentBacklogIsNotCharged() {
        let harness = Harness()
        let psync = command("PSYNC", String(repeating: "r", count: 40), "5001")
        let outcome = Array(psync.utf8).withUnsafeBytes { harness.core.clientRead($0, commandsAwaitRoleCheck: false) }
        #expect(outcome.forward == 0 && outcome.events.contains(.awaitsStreamFence))
        #expect(harness.core.unrecordedBytes.in == psync.utf8.count)
        #expect(Array(command("PSYNC", "?", "-1").utf8).withUnsafeBytes { Harness().core.clientRead($0, commandsAwaitRoleCheck: false) }.forward > 0)

        let resent = command("SET", "k", "v")
        harness.core.streamFenced(unchargedThrough: 5000 + Int64(resent.utf8.count))
        #expect(harness.core.releaseHeldCommand(commandsAwaitRoleCheck: false)?.outcome.forward == psync.utf8.count)
        harness.receive("+CONTINUE \(String(repeating: "r", count: 40))\r\n" + resent + command("INCR", "n"))
        #expect(harness.node("k").bytesOut == 0)
        #expect(harness.node("n").bytesOut == UInt64(command("INCR", "n").utf8.count))
        let view = harness.core.replicationLink?.replicaView.bytesIn ?? []
        #expect(view[Int(HashSlot(key: "k").rawValue)] == UInt64(resent.utf8.count))
    }

    @Test("an answered CLUSTER SYNCSLOTS ESTABLISH makes the connection a one-way slot migration stream")
    func slotMigrationStream() {
        let harness = Harness()
        let establish = command("CLUSTER", "SYNCSLOTS", "ESTABLISH", "SOURCE", "abc", "NAME", "job", "SLOTSRANGE", "100", "110")
        harness.send(command("AUTH", "secret") + establish)
        harness.receive("+OK\r\n")
        #expect(harness.inFlight == 1)
        harness.receive("+OK\r\n")
        #expect(harness.inFlight == 0)
        #expect(harness.ledger.wire(.migration) == SlotCounters(commands: 1, bytesIn: UInt64(establish.utf8.count), bytesOut: 5))

        // The snapshot and live writes, split anywhere: none is answered, none stays in flight.
        let key = "{100}k"
        let stream = command("CLUSTER", "SYNCSLOTS", "ACK") + command("SELECT", "0") + command("SET", key, "v")
            + command("SET", key, "w")
        let bytes = Array(stream.utf8)
        for cut in [7, 40] {
            harness.send(String(decoding: bytes[..<cut], as: UTF8.self))
            harness.send(String(decoding: bytes[cut...], as: UTF8.self))
        }
        #expect(harness.inFlight == 0)
        let sets = UInt64(2 * 2 * command("SET", key, "v").utf8.count)
        #expect(harness.node(key) == SlotCounters(commands: 4, bytesIn: sets, bytesOut: 0))
        #expect(harness.wire(key) == .zero)
        let migration = harness.ledger.wire(.migration)
        #expect(migration.commands == 1 + 2 * 4)
        #expect(migration.bytesIn == UInt64(establish.utf8.count + 2 * bytes.count))

        // The node's one-way messages to the source are opaque migration bytes out.
        let pause = command("CLUSTER", "SYNCSLOTS", "REQUEST-PAUSE")
        harness.receive(pause)
        #expect(harness.ledger.wire(.migration).bytesOut == UInt64(5 + pause.utf8.count))
        #expect(harness.ledger.wire(.keyless) == SlotCounters(commands: 1, bytesIn: UInt64(command("AUTH", "secret").utf8.count), bytesOut: 5))
    }

    @Test("a refused CLUSTER SYNCSLOTS leaves the connection an ordinary client")
    func refusedSlotMigration() {
        let harness = Harness()
        harness.send(command("CLUSTER", "SYNCSLOTS", "ESTABLISH"))
        harness.receive("-ERR wrong number of arguments\r\n")
        harness.send(command("GET", "k"))
        #expect(harness.inFlight == 1)
        harness.receive("$-1\r\n")
        #expect(harness.inFlight == 0)
        #expect(harness.node("k").bytesIn == UInt64(command("GET", "k").utf8.count))
    }

    @Test("version 8 does not count NOAUTH; version 9 counts its bytes in")
    func versionDifference() {
        for (major, expected) in [(8, UInt64(0)), (9, UInt64(22))] {
            let harness = Harness(major: major)
            harness.send(command("GET", "key"))
            harness.receive("-NOAUTH Authentication required.\r\n")
            #expect(harness.node("key").bytesIn == expected)
        }
    }
}
