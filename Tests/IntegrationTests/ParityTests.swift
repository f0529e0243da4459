import Foundation
import Accounting
import Proxy
import RESP
import Testing
import TestSupport

/// The ledger's `node` view must equal the node's own `CLUSTER SLOT-STATS` network-bytes-in and
/// network-bytes-out for every slot, exactly, after each command group, on Valkey 8.1 and 9.1.
@Suite("Parity with CLUSTER SLOT-STATS", .enabled(if: ValkeyBinaries.available, ValkeyBinaries.missingReason))
struct ParityTests {
    /// Runs every group through one slotwarden, comparing all 16384 slots after each.
    @Test("every command group matches the node", arguments: [8, 9])
    func corpus(major: Int) async throws {
        let fixture = try ProxiedValkey(major: major)
        defer { fixture.stop() }
        let context = try ParityContext(fixture: fixture)
        var report: [String] = []
        for group in ParityCorpus.groups {
            try group.run(context)
            let snapshot = await fixture.server.snapshot()
            let parity = ParityReport(snapshot: snapshot, stats: try fixture.nodeStats(), explainedOut: context.explainedOut)
            #expect(parity.differences.isEmpty, "Valkey \(fixture.facts.version), group \(group.name):\n\(parity)")
            report.append("\(group.name): \(parity.differences.isEmpty ? "match" : "DIFFER") (\(context.commandsSent) commands so far)")
        }
        print("parity on Valkey \(fixture.facts.version):\n  " + report.joined(separator: "\n  "))
        #expect(context.commandsSent >= 60)
    }
}

/// What a command group can use: a client through slotwarden, more clients on demand, and a place to
/// note bytes the node counts that never cross the wire.
final class ParityContext {
    let fixture: ProxiedValkey
    let client: NodeClient
    private(set) var commandsSent = 0
    private(set) var explainedOut: [HashSlot: Int] = [:]

    init(fixture: ProxiedValkey) throws {
        self.fixture = fixture
        client = try fixture.client()
    }

    /// Sends one command through slotwarden and returns its reply.
    @discardableResult
    func call(_ arguments: String..., on other: NodeClient? = nil) throws -> RESPValue {
        commandsSent += 1
        return try (other ?? client).call(arguments)
    }

    /// Sends raw bytes through slotwarden and reads `replies` frames back.
    func raw(_ text: String, replies: Int, on other: NodeClient? = nil) throws {
        let connection = other ?? client
        try connection.send(Array(text.utf8))
        for _ in 0..<replies { _ = try connection.readFrame() }
        commandsSent += replies
    }

    func newClient() throws -> NodeClient { try fixture.client() }

    /// A script's inner `server.call` replies are counted by the node but never reach the wire.
    func explain(innerReplyBytes: Int, forKey key: String) {
        explainedOut[HashSlot(key: key), default: 0] += innerReplyBytes
    }
}

struct ParityGroup: Sendable {
    var name: String
    var run: @Sendable (ParityContext) throws -> Void
}

enum ParityCorpus {
    static let groups: [ParityGroup] = [
        ParityGroup(name: "strings") { c in
            try c.call("SET", "str:a", "hello")
            try c.call("GET", "str:a")
            try c.call("SETNX", "str:b", "1")
            try c.call("SETEX", "str:c", "100", "v")
            try c.call("PSETEX", "str:d", "100000", "v")
            try c.call("GETSET", "str:a", "world")
            try c.call("GETEX", "str:a", "EX", "100")
            try c.call("GETDEL", "str:d")
            try c.call("MSET", "{str}x", "1", "{str}y", "2")
            try c.call("MGET", "{str}x", "{str}y")
            try c.call("MSETNX", "{str}z", "1", "{str}w", "2")
            try c.call("APPEND", "str:a", "!!")
            try c.call("STRLEN", "str:a")
            try c.call("INCR", "str:n")
            try c.call("INCRBY", "str:n", "10")
            try c.call("INCRBYFLOAT", "str:f", "1.5")
            try c.call("DECR", "str:n")
            try c.call("DECRBY", "str:n", "3")
            try c.call("SETRANGE", "str:a", "1", "EL")
            try c.call("GETRANGE", "str:a", "0", "3")
            try c.call("LCS", "{str}x", "{str}y")
            try c.call("SET", "str:e", "v", "EX", "100", "GET")
        },
        ParityGroup(name: "lists") { c in
            try c.call("LPUSH", "list:a", "1", "2", "3")
            try c.call("RPUSH", "list:a", "4")
            try c.call("LPOP", "list:a")
            try c.call("RPOP", "list:a")
            try c.call("LRANGE", "list:a", "0", "-1")
            try c.call("LLEN", "list:a")
            try c.call("LINDEX", "list:a", "0")
            try c.call("LSET", "list:a", "0", "x")
            try c.call("LINSERT", "list:a", "BEFORE", "x", "w")
            try c.call("LREM", "list:a", "1", "w")
            try c.call("LPOS", "list:a", "x")
            try c.call("LTRIM", "list:a", "0", "10")
            try c.call("LMOVE", "{list}a", "{list}b", "LEFT", "RIGHT")
            try c.call("RPUSH", "{list}a", "p", "q")
            try c.call("RPOPLPUSH", "{list}a", "{list}b")
            try c.call("LMPOP", "2", "{list}a", "{list}b", "LEFT")
        },
        ParityGroup(name: "hashes") { c in
            try c.call("HSET", "hash:a", "f1", "v1", "f2", "v2")
            try c.call("HGET", "hash:a", "f1")
            try c.call("HMGET", "hash:a", "f1", "f2", "nope")
            try c.call("HGETALL", "hash:a")
            try c.call("HINCRBY", "hash:a", "n", "5")
            try c.call("HKEYS", "hash:a")
            try c.call("HVALS", "hash:a")
            try c.call("HLEN", "hash:a")
            try c.call("HEXISTS", "hash:a", "f1")
            try c.call("HSCAN", "hash:a", "0")
            try c.call("HDEL", "hash:a", "f2")
        },
        ParityGroup(name: "sets") { c in
            try c.call("SADD", "{set}a", "1", "2", "3")
            try c.call("SADD", "{set}b", "2", "3", "4")
            try c.call("SMEMBERS", "{set}a")
            try c.call("SISMEMBER", "{set}a", "1")
            try c.call("SCARD", "{set}a")
            try c.call("SINTER", "{set}a", "{set}b")
            try c.call("SUNIONSTORE", "{set}c", "{set}a", "{set}b")
            try c.call("SINTERCARD", "2", "{set}a", "{set}b")
            try c.call("SRANDMEMBER", "{set}a")
            try c.call("SREM", "{set}a", "1")
            try c.call("SPOP", "{set}c")
        },
        ParityGroup(name: "sorted sets") { c in
            try c.call("ZADD", "{z}a", "1", "one", "2", "two", "3", "three")
            try c.call("ZADD", "{z}b", "1", "one", "5", "five")
            try c.call("ZRANGE", "{z}a", "0", "-1", "WITHSCORES")
            try c.call("ZSCORE", "{z}a", "two")
            try c.call("ZINCRBY", "{z}a", "2", "one")
            try c.call("ZRANK", "{z}a", "one")
            try c.call("ZCARD", "{z}a")
            try c.call("ZRANGEBYSCORE", "{z}a", "-inf", "+inf")
            try c.call("ZUNIONSTORE", "{z}c", "2", "{z}a", "{z}b")
            try c.call("ZINTER", "2", "{z}a", "{z}b", "WITHSCORES")
            try c.call("ZMPOP", "2", "{z}a", "{z}b", "MIN")
            try c.call("ZREM", "{z}a", "two")
        },
        ParityGroup(name: "streams") { c in
            try c.call("XADD", "stream:a", "*", "f", "v")
            try c.call("XADD", "stream:a", "*", "g", "w")
            try c.call("XLEN", "stream:a")
            try c.call("XRANGE", "stream:a", "-", "+")
            try c.call("XREAD", "COUNT", "10", "STREAMS", "stream:a", "0")
            try c.call("XGROUP", "CREATE", "stream:a", "workers", "0")
            try c.call("XREADGROUP", "GROUP", "workers", "alice", "COUNT", "1", "STREAMS", "stream:a", ">")
            try c.call("XINFO", "STREAM", "stream:a")
            try c.call("XTRIM", "stream:a", "MAXLEN", "10")
        },
        ParityGroup(name: "bitmaps and HyperLogLog") { c in
            try c.call("SETBIT", "{bits}a", "7", "1")
            try c.call("GETBIT", "{bits}a", "7")
            try c.call("BITCOUNT", "{bits}a")
            try c.call("BITPOS", "{bits}a", "1")
            try c.call("BITOP", "OR", "{bits}b", "{bits}a")
            try c.call("BITFIELD", "{bits}a", "INCRBY", "u8", "0", "1")
            try c.call("PFADD", "{hll}a", "x", "y", "z")
            try c.call("PFADD", "{hll}b", "z", "w")
            try c.call("PFCOUNT", "{hll}a")
            try c.call("PFMERGE", "{hll}c", "{hll}a", "{hll}b")
        },
        ParityGroup(name: "geo") { c in
            try c.call("GEOADD", "{geo}a", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania")
            try c.call("GEODIST", "{geo}a", "Palermo", "Catania", "km")
            try c.call("GEOPOS", "{geo}a", "Palermo")
            try c.call("GEOSEARCH", "{geo}a", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC")
            try c.call("GEORADIUS", "{geo}a", "15", "37", "200", "km", "STORE", "{geo}b")
        },
        ParityGroup(name: "keyspace") { c in
            try c.call("EXISTS", "str:a")
            try c.call("TYPE", "list:a")
            try c.call("EXPIRE", "str:a", "1000")
            try c.call("TTL", "str:a")
            try c.call("COPY", "{str}x", "{str}copy")
            try c.call("RENAME", "{str}copy", "{str}renamed")
            try c.call("OBJECT", "ENCODING", "str:a")
            try c.call("TOUCH", "str:a")
            try c.call("RPUSH", "{sort}a", "3", "1", "2")
            try c.call("SORT", "{sort}a", "STORE", "{sort}b")
            try c.call("SORT_RO", "{sort}a")
            try c.call("UNLINK", "{str}renamed")
            try c.call("DEL", "str:b")
        },
        ParityGroup(name: "errors") { c in
            try c.call("SET", "err:a", "string")
            try c.call("LPUSH", "err:a", "x")  // WRONGTYPE: executed, counted both ways
            try c.call("GET")  // wrong arity: not counted
            try c.call("GET", "err:a", "extra")  // wrong arity
            try c.call("NOSUCHCOMMAND", "err:a")  // unknown: not counted
            try c.call("MSET", "err:a", "1", "err:b", "2")  // CROSSSLOT: not counted
            try c.call("INCR", "err:a")  // ERR not an integer: executed
            try c.call("OBJECT", "NOSUCH", "err:a")  // unknown subcommand
        },
        ParityGroup(name: "inline commands") { c in
            try c.raw("SET inline:a v\r\n", replies: 1)
            try c.raw("GET  inline:a\r\n", replies: 1)  // two spaces: the node counts 7+... normalised
            try c.raw("GET inline:a\n", replies: 1)  // bare LF
            try c.raw("SET inline:b \"quoted value\"\r\n", replies: 1)
            try c.raw("PING\r\n", replies: 1)
        },
        ParityGroup(name: "transactions") { c in
            try c.call("MULTI")
            try c.call("SET", "{tx}a", "1")
            try c.call("GET", "{tx}a")
            try c.call("EXEC")
            try c.call("MULTI")
            try c.call("SET", "{tx}b", "1")
            try c.call("INCR", "{tx}b")
            try c.call("GET", "{tx}b")
            try c.call("DEL", "{tx}a")
            try c.call("EXEC")
            try c.call("MULTI")
            try c.call("SET", "{tx}c", "1")
            try c.call("DISCARD")
            try c.call("MULTI")
            try c.call("MSET", "txa", "1", "txb", "2")  // CROSSSLOT at queue time: EXECABORT
            try c.call("EXEC")
            try c.call("MULTI")
            try c.call("SET", "{tx}d", "1")
            try c.call("SET", "{other}d", "1")  // two slots: EXEC answers CROSSSLOT
            try c.call("EXEC")
            try c.call("WATCH", "{tx}e")
            try c.call("MULTI")
            try c.call("PING")
            try c.call("SET", "{tx}e", "1")
            try c.call("EXEC")
        },
        ParityGroup(name: "deep pipeline") { c in
            var pipeline = ""
            for index in 0..<500 {
                pipeline += index % 2 == 0 ? "*3\r\n$3\r\nSET\r\n$\(5 + String(index).count)\r\npipe:\(index)\r\n$1\r\nv\r\n"
                    : "*2\r\n$3\r\nGET\r\n$\(5 + String(index - 1).count)\r\npipe:\(index - 1)\r\n"
            }
            try c.raw(pipeline, replies: 500)
        },
        ParityGroup(name: "scripts and functions") { c in
            // Without a shebang the node moves EVAL's own bytes to no slot once the script called the
            // server; the inner call's reply (+OK, 5 bytes) is counted to the key's slot.
            try c.call("EVAL", "return redis.call('SET', KEYS[1], ARGV[1])", "1", "script:a", "v")
            c.explain(innerReplyBytes: 5, forKey: "script:a")
            try c.call("EVAL", "#!lua\nreturn redis.call('SET', KEYS[1], ARGV[1])", "1", "script:b", "v")
            c.explain(innerReplyBytes: 5, forKey: "script:b")
            try c.call(
                "FUNCTION", "LOAD", "REPLACE",
                "#!lua name=paritylib\nserver.register_function('setget', function(keys, args) server.call('SET', keys[1], args[1]) return server.call('GET', keys[1]) end)\nserver.register_function{function_name='getro', callback=function(keys) return server.call('GET', keys[1]) end, flags={'no-writes'}}"
            )
            try c.call("FCALL", "setget", "1", "script:d", "value")
            c.explain(innerReplyBytes: 5 + 11, forKey: "script:d")
            try c.call("FCALL_RO", "getro", "1", "script:d")
            c.explain(innerReplyBytes: 11, forKey: "script:d")
        },
        ParityGroup(name: "blocking commands") { c in
            // Timed out: not counted at all.
            try c.call("BLPOP", "block:a", "0.05")
            // Unblocked by a key pushed from another client: both frames and both replies counted.
            let waiter = try c.newClient()
            try waiter.send(RESPEncoder.command(["BLPOP", "block:b", "0"]))
            let pusher = try c.newClient()
            #expect(try waitForBlockedClients(on: c.fixture.direct(), count: 1))
            try c.call("LPUSH", "block:b", "value", on: pusher)
            _ = try waiter.readValue()
            try c.call("RPUSH", "block:c", "ready")
            try c.call("BRPOP", "block:c", "1")  // served at once
            try c.call("BZPOPMIN", "block:z", "0.05")  // times out
            try c.call("XREAD", "BLOCK", "50", "STREAMS", "block:s", "$")  // times out
        },
        ParityGroup(name: "pub/sub") { c in
            let subscriber = try c.newClient()
            try subscriber.send(RESPEncoder.command(["SSUBSCRIBE", "shard:news"]))
            _ = try subscriber.readFrame()
            try c.call("SPUBLISH", "shard:news", "hello")
            _ = try subscriber.readFrame()  // smessage, counted to the channel's slot
            try subscriber.send(RESPEncoder.command(["SUNSUBSCRIBE", "shard:news"]))
            _ = try subscriber.readFrame()
            let classic = try c.newClient()
            try classic.send(RESPEncoder.command(["SUBSCRIBE", "news", "sport"]))
            _ = try classic.readFrame()
            _ = try classic.readFrame()
            try c.call("PUBLISH", "news", "hi")
            _ = try classic.readFrame()
            try classic.send(RESPEncoder.command(["UNSUBSCRIBE"]))
            _ = try classic.readFrame()
            _ = try classic.readFrame()
            try c.call("GET", "after:pubsub", on: classic)
            // Out of pub/sub mode again, an array reply that reads like a message answers its command.
            try c.call("RPUSH", "pubsub:list", "message", "news", "not a message")
            try c.call("LRANGE", "pubsub:list", "0", "-1", on: classic)
            try c.call("GET", "after:lrange", on: classic)
        },
        ParityGroup(name: "RESP3") { c in
            let resp3 = try c.newClient()
            try c.call("HELLO", "3", on: resp3)
            try c.call("SET", "r3:a", "v", on: resp3)
            try c.call("HSET", "r3:h", "f", "v", on: resp3)
            try c.call("HGETALL", "r3:h", on: resp3)  // a map reply
            try c.call("ZADD", "r3:z", "1.5", "m", on: resp3)
            try c.call("ZSCORE", "r3:z", "m", on: resp3)  // a double reply
            // A tracking invalidation push arrives between commands: the node adds it to the next
            // keyed command's bytes-out.
            try c.call("CLIENT", "TRACKING", "ON", on: resp3)
            try c.call("GET", "r3:a", on: resp3)
            try c.call("SET", "r3:a", "changed")
            _ = try resp3.readFrame()  // the invalidate push
            try c.call("GET", "r3:a", on: resp3)
            try c.call("SSUBSCRIBE", "r3:chan", on: resp3)
            try c.call("SPUBLISH", "r3:chan", "m")
            _ = try resp3.readFrame()
        },
    ]

}
