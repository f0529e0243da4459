import Testing
@testable import RESP

@Suite("RequestScanner: keys")
struct RequestKeyTests {
    @Test func simpleRange() throws {
        let get = try #require(scan(["GET", "foo"]))
        #expect(get.keys == .slot(HashSlot(rawValue: 12182)!))
        #expect(get.keyCount == 1)
        #expect(get.arityIsValid)
        #expect(get.isWrite == false)
        #expect(CommandTable.builtIn.name(of: get.command) == "get")
        let set = try #require(scan(["set", "{u}a", "v"]))
        #expect(set.keys == .slot(slot("u")))
        #expect(set.isWrite)
        #expect(set.wireBytes == 30)
        #expect(set.countedBytes == 30)
        #expect(scan(["SET", "key", "value"])?.wireBytes == 33)  // Valkey's own test value
    }

    @Test func negativeLastAndStep() throws {
        let mget = try #require(scan(["MGET", "{t}a", "{t}b", "{t}c"]))
        #expect(mget.keys == .slot(slot("t")))
        #expect(mget.keyCount == 3)
        let mset = try #require(scan(["MSET", "{t}a", "1", "{t}b", "2"]))
        #expect(mset.keyCount == 2)
        #expect(mset.keys == .slot(slot("t")))
        // Values are not keys: a value in another slot does not make it cross-slot.
        #expect(scan(["MSET", "{t}a", "zzz", "{t}b", "qqq"])?.keys == .slot(slot("t")))
        let blpop = try #require(scan(["BLPOP", "{q}1", "{q}2", "0"]))
        #expect(blpop.keyCount == 2)
        #expect(blpop.isBlocking)
        let bitop = try #require(scan(["BITOP", "AND", "{b}d", "{b}s1", "{b}s2"]))
        #expect(bitop.keyCount == 3)
    }

    @Test func crossSlot() throws {
        let del = try #require(scan(["DEL", "a", "b"]))
        #expect(del.keys == .crossSlot(first: slot("a")))
        #expect(del.keyCount == 2)
        #expect(scan(["MSET", "a", "1", "b", "2"])?.keys == .crossSlot(first: slot("a")))
        #expect(scan(["RENAME", "{x}1", "{x}2"])?.keys == .slot(slot("x")))
    }

    @Test func unknownAndArity() throws {
        let unknown = try #require(scan(["FOO", "k"]))
        #expect(unknown.command == .unknown)
        #expect(unknown.keys == .none)
        #expect(unknown.arityIsValid == false)
        let badArity = try #require(scan(["GET", "a", "b"]))
        #expect(badArity.arityIsValid == false)
        #expect(scan(["GET"])?.keys == RESP.KeyOutcome.none)
        #expect(scan(["SET", "k"])?.arityIsValid == false)
        #expect(scan(["DEL", "a", "b", "c"])?.arityIsValid == true)
        #expect(scan(["PING"])?.keys == RESP.KeyOutcome.none)
        #expect(scan(["ping"])?.arityIsValid == true)
        // Names longer than any command are unknown, not truncated matches.
        #expect(scan([String(repeating: "g", count: 40)])?.command == .unknown)
    }

    @Test func scriptsAndFunctions() throws {
        let eval = try #require(scan(["EVAL", "return 1", "2", "{s}a", "{s}b", "arg"]))
        #expect(eval.keyCount == 2)
        #expect(eval.keys == .slot(slot("s")))
        #expect(eval.effect == .script(shebang: false))
        #expect(scan(["EVAL", "#!lua\nreturn 1", "0"])?.effect == .script(shebang: true))
        #expect(scan(["EVAL", "#!lua", "0"])?.keys == RESP.KeyOutcome.none)
        #expect(scan(["EVAL", "x", "3", "a", "b"])?.keys == RESP.KeyOutcome.none)  // numkeys > remaining
        #expect(scan(["EVAL", "x", "-1", "a"])?.keys == RESP.KeyOutcome.none)
        #expect(scan(["EVAL", "x", "1abc", "a"])?.keys == .slot(slot("a")))  // atoi
        #expect(scan(["EVALSHA", "abc", "1", "k"])?.effect == .script(shebang: nil))
        #expect(scan(["EVALSHA_RO", "abc", "1", "k"])?.keys == .slot(slot("k")))
        let fcall = try #require(scan(["FCALL", "f", "2", "a", "b"]))
        #expect(fcall.effect == .script(shebang: true))
        #expect(fcall.keys == .crossSlot(first: slot("a")))
        #expect(scan(["FCALL_RO", "f", "1", "k", "x"])?.keyCount == 1)
    }

    @Test func sortedSetAndSetNumkeys() throws {
        let store = try #require(scan(["ZUNIONSTORE", "dest", "2", "{z}a", "{z}b"]))
        #expect(store.keyCount == 3)
        // The destination is listed last by Valkey: the first key is the first source.
        #expect(store.keys == .crossSlot(first: slot("z")))
        #expect(scan(["ZINTERSTORE", "{z}d", "2", "{z}a", "{z}b", "WEIGHTS", "1", "2"])?.keys == .slot(slot("z")))
        // Invalid numkeys: no keys at all, not even the destination.
        #expect(scan(["ZDIFFSTORE", "d", "0", "a"])?.keyCount == 0)
        #expect(scan(["ZUNION", "2", "{z}a", "{z}b", "WITHSCORES"])?.keyCount == 2)
        #expect(scan(["ZINTERCARD", "2", "{z}a", "{z}b", "LIMIT", "1"])?.keyCount == 2)
        #expect(scan(["SINTERCARD", "1", "a", "LIMIT", "5"])?.keys == .slot(slot("a")))
        #expect(scan(["LMPOP", "2", "{l}a", "{l}b", "LEFT"])?.keyCount == 2)
        #expect(scan(["ZMPOP", "1", "z", "MIN"])?.keyCount == 1)
        let blmpop = try #require(scan(["BLMPOP", "0", "2", "{l}a", "{l}b", "LEFT"]))
        #expect(blmpop.keyCount == 2)
        #expect(blmpop.isBlocking)
        #expect(scan(["BZMPOP", "1.5", "1", "z", "MAX", "COUNT", "2"])?.keys == .slot(slot("z")))
    }

    @Test func xread() throws {
        let plain = try #require(scan(["XREAD", "COUNT", "2", "STREAMS", "{s}a", "{s}b", "0", "0"]))
        #expect(plain.keyCount == 2)
        #expect(plain.keys == .slot(slot("s")))
        #expect(plain.isBlocking == false)
        let blocking = try #require(scan(["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]))
        #expect(blocking.isBlocking)
        #expect(blocking.keys == .slot(slot("s")))
        let group = try #require(scan(["XREADGROUP", "GROUP", "g", "c", "NOACK", "BLOCK", "10", "STREAMS", "a", "b", ">", ">"]))
        #expect(group.keys == .crossSlot(first: slot("a")))
        #expect(group.isBlocking)
        #expect(scan(["XREAD", "STREAMS", "a", "b", "0"])?.keyCount == 0)  // odd
        #expect(scan(["XREAD", "FOO", "STREAMS", "a", "0"])?.keyCount == 0)  // syntax error stops the loop
        // "streams" as the BLOCK value is skipped, not taken as the keyword.
        #expect(scan(["XREAD", "BLOCK", "streams", "STREAMS", "k", "0"])?.keys == .slot(slot("k")))
    }

    @Test func migrate() throws {
        #expect(scan(["MIGRATE", "h", "1", "k", "0", "100"])?.keys == .slot(slot("k")))
        let keys = try #require(scan(["MIGRATE", "h", "1", "", "0", "100", "COPY", "AUTH", "keys", "KEYS", "{m}a", "{m}b"]))
        #expect(keys.keyCount == 2)
        #expect(keys.keys == .slot(slot("m")))
        #expect(scan(["MIGRATE", "h", "1", "k", "0", "100", "KEYS", "a"])?.keyCount == 0)
        #expect(scan(["MIGRATE", "h", "1", "", "0", "100", "AUTH2", "u", "KEYS", "KEYS", "a"])?.keys == .slot(slot("a")))
        #expect(scan(["MIGRATE", "h", "1", "k", "0", "100", "REPLACE"])?.keys == .slot(slot("k")))
    }

    @Test func sort() throws {
        #expect(scan(["SORT", "k"])?.keyCount == 1)
        let store = try #require(scan(["SORT", "{s}k", "BY", "store", "LIMIT", "0", "1", "STORE", "{s}d"]))
        #expect(store.keyCount == 2)
        #expect(store.keys == .slot(slot("s")))
        // The LAST store wins.
        #expect(scan(["SORT", "{s}k", "STORE", "x", "STORE", "{s}d"])?.keys == .slot(slot("s")))
        #expect(scan(["SORT", "a", "STORE", "b"])?.keys == .crossSlot(first: slot("a")))
        // STORE as the last argument has no target.
        #expect(scan(["SORT", "a", "GET", "#", "STORE"])?.keyCount == 1)
        #expect(scan(["SORT_RO", "a", "STORE", "b"])?.keyCount == 1)
    }

    @Test func georadius() throws {
        #expect(scan(["GEORADIUS", "g", "0", "0", "1", "km"])?.keyCount == 1)
        #expect(scan(["GEORADIUS", "{g}a", "0", "0", "1", "km", "STORE", "{g}b"])?.keyCount == 2)
        #expect(scan(["GEORADIUS", "a", "0", "0", "1", "km", "STOREDIST", "b"])?.keys == .crossSlot(first: slot("a")))
        #expect(scan(["GEORADIUSBYMEMBER", "{g}a", "m", "1", "km", "STORE", "{g}b"])?.keyCount == 2)
        // Index 4 is below the search start (5).
        #expect(scan(["GEORADIUSBYMEMBER", "a", "m", "1", "STORE", "b"])?.keyCount == 1)
        #expect(scan(["GEOSEARCHSTORE", "{g}d", "{g}s", "FROMMEMBER", "m", "BYRADIUS", "1", "km"])?.keyCount == 2)
    }

    @Test func subcommands() throws {
        let encoding = try #require(scan(["OBJECT", "ENCODING", "k"]))
        #expect(CommandTable.builtIn.name(of: encoding.command) == "object|encoding")
        #expect(encoding.keys == .slot(slot("k")))
        #expect(scan(["object", "help"])?.keys == RESP.KeyOutcome.none)
        #expect(scan(["OBJECT", "NOPE", "k"])?.command == .unknown)
        #expect(scan(["MEMORY", "USAGE", "k", "SAMPLES", "5"])?.keys == .slot(slot("k")))
        #expect(scan(["XINFO", "STREAM", "s", "FULL"])?.keys == .slot(slot("s")))
        #expect(scan(["XGROUP", "CREATE", "s", "g", "$"])?.keys == .slot(slot("s")))
        #expect(scan(["CLUSTER", "KEYSLOT", "k"])?.keys == RESP.KeyOutcome.none)
        #expect(scan(["OBJECT"])?.arityIsValid == false)
        #expect(scan(["OBJECT", "ENCODING"])?.arityIsValid == false)
    }

    @Test func shardedChannelsAreKeys() throws {
        #expect(scan(["SPUBLISH", "ch", "msg"])?.keys == .slot(slot("ch")))
        let subscribe = try #require(scan(["SSUBSCRIBE", "{c}1", "{c}2"]))
        #expect(subscribe.keys == .slot(slot("c")))
        #expect(subscribe.effect == .subscribe(.sharded, channels: 2))
        #expect(scan(["SUNSUBSCRIBE", "a", "b"])?.keys == .crossSlot(first: slot("a")))
        #expect(scan(["PUBLISH", "ch", "msg"])?.keys == RESP.KeyOutcome.none)
        #expect(scan(["SUBSCRIBE", "ch"])?.keys == RESP.KeyOutcome.none)
    }

    @Test func msetexHasNoKeysLikeValkey912() {
        // Valkey 9.1.2: MSETEX is movablekeys with no getkeys proc and range 0/0/0, so routing finds
        // no keys (measured: `MSETEX 2 a 1 b 2` succeeds across slots and counts nothing).
        #expect(scan(["MSETEX", "2", "a", "1", "b", "2"])?.keys == RESP.KeyOutcome.none)
    }
}

@Suite("RequestScanner: effects")
struct RequestEffectTests {
    @Test func effects() {
        #expect(scan(["HELLO", "3"])?.effect == .hello(protocolVersion: 3))
        #expect(scan(["HELLO"])?.effect == .hello(protocolVersion: nil))
        #expect(scan(["HELLO", "x"])?.effect == .hello(protocolVersion: nil))
        #expect(scan(["HELLO", "2", "AUTH", "u", "p"])?.effect == .hello(protocolVersion: 2))
        #expect(scan(["CLIENT", "REPLY", "OFF"])?.effect == .clientReply(.off))
        #expect(scan(["client", "reply", "skip"])?.effect == .clientReply(.skip))
        #expect(scan(["CLIENT", "REPLY", "On"])?.effect == .clientReply(.on))
        #expect(scan(["CLIENT", "REPLY", "maybe"])?.effect == .ordinary)
        #expect(scan(["SUBSCRIBE", "a", "b", "c"])?.effect == .subscribe(.classic, channels: 3))
        #expect(scan(["PSUBSCRIBE", "a*"])?.effect == .subscribe(.pattern, channels: 1))
        #expect(scan(["UNSUBSCRIBE"])?.effect == .unsubscribe(.classic, channels: 0))
        #expect(scan(["PUNSUBSCRIBE", "a*", "b*"])?.effect == .unsubscribe(.pattern, channels: 2))
        #expect(scan(["SUNSUBSCRIBE"])?.effect == .unsubscribe(.sharded, channels: 0))
        #expect(scan(["MULTI"])?.effect == .multi)
        #expect(scan(["EXEC"])?.effect == .exec)
        #expect(scan(["DISCARD"])?.effect == .discard)
        #expect(scan(["MULTI", "x"])?.effect == .ordinary)  // arity error: nothing happens
        #expect(scan(["RESET"])?.effect == .reset)
        #expect(scan(["QUIT"])?.effect == .quit)
        #expect(scan(["MONITOR"])?.effect == .monitor)
        #expect(scan(["SYNC"])?.effect == .replicationHandshake)
        #expect(scan(["PSYNC", "?", "-1"])?.effect == .replicationHandshake)
        #expect(scan(["CONFIG", "RESETSTAT"])?.effect == .resetStat)
        #expect(scan(["CONFIG", "GET", "x"])?.effect == .ordinary)
        #expect(scan(["CLUSTER", "FAILOVER"])?.effect == .roleChange)
        #expect(scan(["CLUSTER", "FAILOVER", "FORCE"])?.effect == .roleChange)
        #expect(scan(["CLUSTER", "RESET", "HARD"])?.effect == .roleChange)
        #expect(scan(["CLUSTER", "REPLICATE", "abc"])?.effect == .roleChange)
        #expect(scan(["FAILOVER"])?.effect == .roleChange)
        #expect(scan(["REPLICAOF", "NO", "ONE"])?.effect == .roleChange)
        #expect(scan(["SLAVEOF", "h", "1"])?.effect == .roleChange)
    }

    @Test func blocking() {
        for command in [["BRPOP", "a", "0"], ["BLMOVE", "a", "b", "LEFT", "RIGHT", "0"], ["BRPOPLPUSH", "a", "b", "0"],
                        ["BZPOPMIN", "z", "0"], ["BZPOPMAX", "z", "0"], ["WAIT", "1", "0"], ["WAITAOF", "1", "0", "0"]] {
            #expect(scan(command)?.isBlocking == true, "\(command)")
        }
        #expect(scan(["LPOP", "a"])?.isBlocking == false)
        #expect(scan(["WAIT", "1", "0"])?.keys == RESP.KeyOutcome.none)
    }
}

@Suite("RequestScanner: framing")
struct RequestFramingTests {
    @Test func inlineCountedBytes() throws {
        let single = try #require(scanInline("GET k\r\n"))
        #expect(single.format == .inline)
        #expect(single.wireBytes == 7)
        #expect(single.countedBytes == 7)
        #expect(single.keys == .slot(slot("k")))
        let doubleSpace = try #require(scanInline("GET  k\r\n"))
        #expect(doubleSpace.wireBytes == 8)
        #expect(doubleSpace.countedBytes == 7)
        let bareNewline = try #require(scanInline("GET k\n"))
        #expect(bareNewline.wireBytes == 6)
        #expect(bareNewline.countedBytes == 7)
        #expect(scanInline("SET key value\r\n")?.countedBytes == 15)
    }

    @Test func inlineQuoting() throws {
        let quoted = try #require(scanInline("SET \"a b\\x41\\n\" 'it\\'s'\r\n"))
        #expect(quoted.argumentCount == 3)
        #expect(quoted.keys == .slot(slot("a bA\n")))
        #expect(quoted.countedBytes == 3 + 5 + 4 + 2 + 2)
        #expect(scanInline("SET k \"v\"x\r\n") == nil)
        #expect(scanRequests(Array("SET k \"v\"x\r\n".utf8)) == [.malformed(.unbalancedQuotes)])
        #expect(scanRequests(Array("SET k \"v\r\n".utf8)) == [.malformed(.unbalancedQuotes)])
        #expect(scanRequests(Array("SET k 'v\r\n".utf8)) == [.malformed(.unbalancedQuotes)])
        #expect(scanInline("get fo\"o b\"\r\n")?.keys == .slot(slot("foo b")))
        // A closing quote must be followed by a blank: `fo"o b"ar` is rejected by sdssplitargs.
        #expect(scanRequests(Array("get fo\"o b\"ar\r\n".utf8)) == [.malformed(.unbalancedQuotes)])
        #expect(scanInline("  GET\tk  \r\n")?.countedBytes == 7)
        #expect(scanInline("GET \"\"\r\n")?.keys == .slot(slot("")))
    }

    @Test func emptyLinesAndEmptyMultibulkAreNotRequests() {
        let stream = Array("\r\n*0\r\n*-1\r\n   \n*1\r\n$4\r\nPING\r\n".utf8)
        let results = frames(scanRequests(stream))
        #expect(results.count == 1)
        #expect(results.first?.wireBytes == 14)
    }

    @Test func malformedMultibulk() {
        #expect(scanRequests(Array("*1x\r\n".utf8)) == [.malformed(.invalidMultibulkLength)])
        #expect(scanRequests(Array("*01\r\n".utf8)) == [.malformed(.invalidMultibulkLength)])
        #expect(scanRequests(Array("*+1\r\n".utf8)) == [.malformed(.invalidMultibulkLength)])
        #expect(scanRequests(Array("*2147483648\r\n".utf8)) == [.malformed(.invalidMultibulkLength)])
        #expect(scanRequests(Array("*1\r\n+PING\r\n".utf8)) == [.malformed(.expectedDollar(got: UInt8(ascii: "+")))])
        #expect(scanRequests(Array("*1\r\n$-1\r\n".utf8)) == [.malformed(.invalidBulkLength)])
        #expect(scanRequests(Array("*1\r\n$04\r\nPING\r\n".utf8)) == [.malformed(.invalidBulkLength)])
        var small = RESPLimits.valkeyDefaults
        small.maxBulkLength = 3
        #expect(scanRequests(Array("*1\r\n$4\r\nPING\r\n".utf8), limits: small) == [.malformed(.bulkTooLarge)])
        small.maxInlineLength = 8
        #expect(scanRequests(Array("GET abcdefgh\r\n".utf8), limits: small) == [.malformed(.inlineTooLong)])
        small.maxMultibulkLength = 2
        #expect(scanRequests(Array("*3\r\n".utf8), limits: small) == [.malformed(.invalidMultibulkLength)])
    }

    @Test func malformedIsSticky() {
        var scanner = RequestScanner(commands: .builtIn)
        let bad = Array("*x\r\n".utf8)
        let good = request("PING")
        bad.withUnsafeBytes { bytes in
            var offset = 0
            #expect(scanner.next(in: bytes, at: &offset) == .malformed(.invalidMultibulkLength))
            #expect(offset == 1)
        }
        good.withUnsafeBytes { bytes in
            var offset = 0
            #expect(scanner.next(in: bytes, at: &offset) == .malformed(.invalidMultibulkLength))
        }
    }

    @Test func offsetsInAPipeline() {
        let stream = request("SET", "a", "1") + request("GET", "a") + Array("PING\r\n".utf8)
        stream.withUnsafeBytes { bytes in
            var scanner = RequestScanner(commands: .builtIn)
            var offset = 0
            var ends: [Int] = []
            while case .complete = scanner.next(in: bytes, at: &offset) { ends.append(offset) }
            #expect(ends == [27, 27 + 20, 27 + 20 + 6])
            #expect(offset == stream.count)
        }
    }

    @Test func largeValueIsNotBuffered() throws {
        let value = String(repeating: "v", count: 1 << 20)
        let stream = RESPEncoder.command(["SET", "{big}k", value])
        let results = frames(scanRequests(stream, chunks: Array(repeating: 4096, count: 300)))
        let frame = try #require(results.first)
        #expect(frame.wireBytes == stream.count)
        #expect(frame.keys == .slot(slot("big")))
    }
}

@Suite("RequestScanner: plain lane")
struct PlainRequestLaneTests {
    /// Every command of the table, with 1 to 6 arguments drawn from keys with and without hash tags:
    /// whatever the lane takes, it classifies as the state machine does (fed byte by byte, so no
    /// fast path runs); whatever it leaves, it leaves without moving the offset.
    @Test func agreesWithTheStateMachine() {
        let table = CommandTable.builtIn
        // Keys and values of every header width the lane reads (one-word headers, 1- and 2-digit lengths).
        let arguments = ["k", "{t}a", "a{t}", "{}x", "", "x{y}z{w}", String(repeating: "long", count: 12), "0", "ninebytes"]
        var generator = SeededGenerator(seed: 11)
        var taken = Set<String>()
        var left = Set<String>()
        for name in table.names where !name.contains("|") {
            for count in 1...6 {
                let spelled = String(name.map { Bool.random(using: &generator) ? Character($0.uppercased()) : $0 })
                let args = [spelled] + (1..<count).map { _ in arguments.randomElement(using: &generator)! }
                let stream = RESPEncoder.command(args) + RESPEncoder.command(["PING"])
                let reference = frames(scanRequests(stream, chunks: Array(repeating: 1, count: stream.count)))
                stream.withUnsafeBytes { bytes in
                    var scanner = RequestScanner(commands: table)
                    var offset = 0
                    if let plain = scanner.nextPlain(in: bytes, at: &offset) {
                        taken.insert(name)
                        #expect(ScannedRequest(plain) == reference.first, "\(args)")
                        #expect(offset == stream.count - 14, "\(args)")
                    } else {
                        left.insert(name)
                        #expect(offset == 0, "\(args)")
                    }
                }
            }
        }
        #expect(taken.isSuperset(of: ["get", "set", "mget", "mset", "hset", "del", "blpop", "incr", "ping", "publish"]))
        #expect(left.isSuperset(of: ["multi", "exec", "eval", "subscribe", "client", "xread", "sort", "zunionstore", "hello"]))
        // Whether the lane takes a command depends on the command alone, never on its arguments.
        #expect(taken.isDisjoint(with: left))
    }

    /// A request the lane cannot take whole: cut anywhere, or with a length the fast paths leave to
    /// the state machine (also when both headers fit the one-word read).
    @Test func leavesPartialAndUnusualFramingUntouched() {
        let whole = RESPEncoder.command(["GET", "key"])
        var streams = (0..<whole.count).map { Array(whole[..<$0]) }
        streams.append(Array("*2\r\n$3\r\nGET\r\n$03\r\nkey\r\n".utf8))
        streams.append(Array("*2\r\n$3\r\nGET\r\n$+3\r\nkey\r\n".utf8))
        streams.append(Array("GET key\r\n".utf8))
        streams.append(Array("*2\r\n$3\r\nGET\r\n:3\r\nkey\r\n".utf8))
        // Both headers in the first word, but not a request the lane takes.
        streams.append(Array("*0\r\n$3\r\nGET\r\n".utf8))
        streams.append(Array("*2\r\n$x\r\nGET\r\n$3\r\nkey\r\n".utf8))
        streams.append(Array("*2\r\n$3\r\nGE".utf8))
        for stream in streams {
            stream.withUnsafeBytes { bytes in
                var scanner = RequestScanner(commands: .builtIn)
                var offset = 0
                #expect(scanner.nextPlain(in: bytes, at: &offset) == nil, "\(stream)")
                #expect(offset == 0)
            }
        }
    }
}
