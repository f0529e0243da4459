import Testing
@testable import RESP

private func reply(_ text: String) -> ScannedReply? {
    frames(scanReplies(Array(text.utf8))).first
}

@Suite("ReplyScanner")
struct ReplyScannerTests {
    @Test func scalarTypes() throws {
        let ok = try #require(reply("+OK\r\n"))
        #expect(ok == ScannedReply(wireBytes: 5, type: .simpleString, simple: .ok))
        #expect(reply("+QUEUED\r\n")?.simple == .queued)
        #expect(reply("+RESET\r\n")?.simple == .reset)
        #expect(reply("+PONG\r\n")?.simple == .pong)
        #expect(reply("+OKAY\r\n")?.simple == .other)
        #expect(reply("+1339518083.107412 [0 127.0.0.1:60866] \"keys\" \"*\"\r\n")?.simple == .monitorLine)
        #expect(reply("+1339518083 x\r\n")?.simple == .other)
        #expect(reply(":1000\r\n") == ScannedReply(wireBytes: 7, type: .integer))
        #expect(reply("$5\r\nhello\r\n") == ScannedReply(wireBytes: 11, type: .bulkString))
        #expect(reply("$0\r\n\r\n")?.wireBytes == 6)
        #expect(reply("$-1\r\n") == ScannedReply(wireBytes: 5, type: .bulkString, isNull: true))
        #expect(reply("*-1\r\n") == ScannedReply(wireBytes: 5, type: .array, isNull: true))
        #expect(reply("_\r\n") == ScannedReply(wireBytes: 3, type: .null, isNull: true))
        #expect(reply("#t\r\n")?.type == .boolean)
        #expect(reply(",3.14\r\n")?.type == .double)
        #expect(reply(",-inf\r\n")?.type == .double)
        #expect(reply("(3492890328409238509324850943850943825024385\r\n")?.type == .bigNumber)
        #expect(reply("=15\r\ntxt:Some string\r\n") == ScannedReply(wireBytes: 22, type: .verbatimString))
        let blob = try #require(reply("!21\r\nSYNTAX invalid syntax\r\n"))
        #expect(blob.type == .blobError)
        #expect(blob.error == .other)
        #expect(reply("!10\r\nNOAUTH xyz\r\n")?.error == .noAuth)
    }

    @Test func errorsClassified() {
        let cases: [(String, ReplyError)] = [
            ("MOVED 3999 127.0.0.1:6381", .moved), ("ASK 3999 127.0.0.1:6381", .ask),
            ("TRYAGAIN Multiple keys request during rehashing of slot", .tryAgain),
            ("CROSSSLOT Keys in request don't hash to the same slot", .crossSlot),
            ("CLUSTERDOWN The cluster is down", .clusterDown),
            ("READONLY You can't write against a read only replica.", .readOnly),
            ("LOADING Valkey is loading the dataset in memory", .loading),
            ("OOM command not allowed when used memory > 'maxmemory'.", .outOfMemory),
            ("BUSY Valkey is busy running a script.", .busy), ("BUSYKEY Target key name already exists.", .other),
            ("NOSCRIPT No matching script.", .noScript), ("NOAUTH Authentication required.", .noAuth),
            ("NOPERM User default has no permissions", .noPermission),
            ("EXECABORT Transaction discarded because of previous errors.", .execAbort),
            ("WRONGTYPE Operation against a key holding the wrong kind of value", .wrongType),
            ("MASTERDOWN Link with MASTER is down", .masterDown), ("NOREPLICAS Not enough good replicas", .noReplicas),
            ("MISCONF Errors writing to the AOF file", .misconfigured),
            ("UNBLOCKED force unblock from blocking operation, instance state changed", .unblocked),
            ("ERR unknown command 'foo', with args beginning with: ", .unknownCommand),
            ("ERR unknown subcommand 'x'. Try OBJECT HELP.", .unknownSubcommand),
            ("ERR wrong number of arguments for 'get' command", .wrongArity),
            ("ERR Protocol error: invalid multibulk length", .protocol),
            ("ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", .notAllowedInContext),
            ("ERR syntax error", .other), ("ASKING", .other), ("MOVED", .moved),
        ]
        for (message, expected) in cases {
            let scanned = reply("-\(message)\r\n")
            #expect(scanned?.error == expected, "\(message)")
            #expect(scanned?.type == .simpleError)
        }
    }

    @Test func aggregates() throws {
        let exec = try #require(reply("*2\r\n+OK\r\n$1\r\nv\r\n"))
        #expect(exec.elementCount == 2)
        #expect(exec.elementEndOffsetSum == 25)
        #expect(exec.wireBytes == 16)
        let map = try #require(reply("%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n"))
        #expect(map.type == .map)
        #expect(map.elementCount == 4)
        #expect(reply("~2\r\n+a\r\n+b\r\n")?.type == .set)
        #expect(reply("*0\r\n") == ScannedReply(wireBytes: 4, type: .array))
        #expect(reply("%0\r\n")?.type == .map)
        let nested = try #require(reply("*2\r\n*2\r\n:1\r\n:2\r\n%1\r\n+k\r\n*1\r\n_\r\n"))
        #expect(nested.elementCount == 2)
        #expect(nested.elementEndOffsetSum == 16 + 31)
        #expect(nested.wireBytes == 31)
    }

    @Test func streamedValues() throws {
        let string = try #require(reply("$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n"))
        #expect(string.type == .bulkString)
        #expect(string.wireBytes == 36)
        let array = try #require(reply("*?\r\n:1\r\n:2\r\n:3\r\n.\r\n"))
        #expect(array.elementCount == 3)
        #expect(array.elementEndOffsetSum == 8 + 12 + 16)
        #expect(array.wireBytes == 19)
        let map = try #require(reply("%?\r\n+a\r\n:1\r\n+b\r\n:2\r\n.\r\n"))
        #expect(map.elementCount == 4)
        #expect(reply("~?\r\n*?\r\n.\r\n.\r\n")?.elementCount == 1)
        #expect(scanReplies(Array(".\r\n".utf8)) == [.malformed(.unexpectedEnd)])
        #expect(scanReplies(Array("*1\r\n.\r\n".utf8)) == [.malformed(.unexpectedEnd)])
    }

    @Test func attributes() throws {
        let text = "|1\r\n+key-popularity\r\n*2\r\n$1\r\na\r\n,0.1923\r\n*2\r\n:2039123\r\n:9543892\r\n"
        let scanned = try #require(reply(text))
        #expect(scanned.wireBytes == text.utf8.count)
        #expect(scanned.type == .array)
        #expect(scanned.elementCount == 2)
        // Offsets are from the value's start, after the attribute (63 - 50 = 13 bytes of header-less value).
        #expect(scanned.elementEndOffsetSum == 14 + 24)
        // An attribute inside an aggregate is not an element.
        let inner = try #require(reply("*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n"))
        #expect(inner.elementCount == 2)
        #expect(reply("|0\r\n+OK\r\n")?.simple == .ok)
    }

    @Test func pubSubFrames() throws {
        let message = try #require(reply("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n"))
        #expect(message.pubSub == .message)
        #expect(message.channelSlot == nil)  // only sharded frames name a slot
        let push = try #require(reply(">3\r\n$8\r\nsmessage\r\n$4\r\n{c}1\r\n$1\r\nx\r\n"))
        #expect(push.type == .push)
        #expect(push.pubSub == .smessage)
        #expect(push.channelSlot == slot("c"))
        #expect(reply(">4\r\n+PMESSAGE\r\n+p*\r\n+pc\r\n+m\r\n")?.pubSub == .pmessage)
        #expect(reply("*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")?.pubSub == .subscribe)
        #expect(reply("*3\r\n$10\r\nSSUBSCRIBE\r\n$3\r\n{c}\r\n:1\r\n")?.channelSlot == slot("c"))
        #expect(reply("*3\r\n$12\r\nsunsubscribe\r\n$1\r\nc\r\n:0\r\n")?.pubSub == .sunsubscribe)
        #expect(reply("*3\r\n$8\r\nPMESSAGE\r\n$1\r\np\r\n$1\r\nm\r\n")?.channelSlot == nil)
        #expect(reply("*2\r\n$7\r\nmessagE\r\n$1\r\nm\r\n")?.pubSub == .message)
        #expect(reply("*2\r\n$7\r\nmessag@\r\n$1\r\nm\r\n")?.pubSub == nil)
        #expect(reply("*2\r\n$10\r\nxsubscribe\r\n$1\r\nm\r\n")?.pubSub == nil)
        #expect(reply("*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n")?.channelSlot == nil)
        #expect(reply(">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n")?.pubSub == .invalidate)
        #expect(reply("*2\r\n$4\r\npong\r\n$0\r\n\r\n")?.pubSub == .pong)
        #expect(reply("*2\r\n$3\r\nget\r\n$1\r\nk\r\n")?.pubSub == nil)
        #expect(reply("~2\r\n$7\r\nmessage\r\n$1\r\nk\r\n")?.pubSub == nil)  // sets are not messages
        // A confirmation's third element counts the subscriptions left, on the fast path and (with a
        // null channel, or byte by byte) on the state machine alike; other frames carry no count.
        for text in ["*3\r\n$11\r\nunsubscribe\r\n$1\r\nc\r\n:12\r\n", ">3\r\n$11\r\nunsubscribe\r\n$1\r\nc\r\n:12\r\n"] {
            #expect(reply(text)?.subscriptionCount == 12)
            let bytes = Array(text.utf8)
            #expect(frames(scanReplies(bytes, chunks: Array(repeating: 1, count: bytes.count))).first?.subscriptionCount == 12)
        }
        #expect(reply("*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n")?.subscriptionCount == 0)
        #expect(reply("*3\r\n$10\r\nssubscribe\r\n$3\r\n{c}\r\n:3\r\n")?.subscriptionCount == 3)
        #expect(reply("*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n:3\r\n")?.subscriptionCount == nil)
        #expect(reply("*3\r\n$3\r\nget\r\n$1\r\nc\r\n:3\r\n")?.subscriptionCount == nil)
        #expect(reply("*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n$1\r\n3\r\n")?.subscriptionCount == nil)
    }

    @Test func malformedAndLimits() {
        #expect(scanReplies(Array("?\r\n".utf8)) == [.malformed(.invalidTypeByte(UInt8(ascii: "?")))])
        #expect(scanReplies(Array("+OK\rx".utf8)) == [.malformed(.missingCRLF)])
        #expect(scanReplies(Array("$1\r\nab\r\n".utf8)) == [.malformed(.missingCRLF)])
        #expect(scanReplies(Array("$x\r\n".utf8)) == [.malformed(.invalidLength)])
        #expect(scanReplies(Array("%-1\r\n".utf8)) == [.malformed(.invalidLength)])
        #expect(scanReplies(Array("$-2\r\n".utf8)) == [.malformed(.invalidLength)])
        var limits = RESPLimits.valkeyDefaults
        limits.maxBulkLength = 4
        #expect(scanReplies(Array("$5\r\nhello\r\n".utf8), limits: limits) == [.malformed(.bulkTooLarge)])
        limits.maxNestingDepth = 3
        #expect(scanReplies(Array("*1\r\n*1\r\n*1\r\n:1\r\n".utf8), limits: limits).count == 1)
        #expect(scanReplies(Array("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n".utf8), limits: limits) == [.malformed(.nestingTooDeep)])
        let deep = String(repeating: "*1\r\n", count: 129) + ":1\r\n"
        #expect(scanReplies(Array(deep.utf8)) == [.malformed(.nestingTooDeep)])
        let ok = String(repeating: "*1\r\n", count: 128) + ":1\r\n"
        #expect(frames(scanReplies(Array(ok.utf8))).count == 1)
    }

    @Test func clusterSlotStatsReply() throws {
        let resp3 = "*1\r\n*2\r\n:0\r\n%4\r\n$9\r\nkey-count\r\n:1\r\n$8\r\ncpu-usec\r\n:10\r\n$16\r\nnetwork-bytes-in\r\n:33\r\n$17\r\nnetwork-bytes-out\r\n:5\r\n"
        let scanned = try #require(reply(resp3))
        #expect(scanned.wireBytes == resp3.utf8.count)
        #expect(scanned.elementCount == 1)
        let decoded = try #require(try RESPValueDecoder.decode(ArraySlice(resp3.utf8)))
        #expect(decoded.consumed == resp3.utf8.count)
        #expect(decoded.0.array?.first?.array?[1].pairs?.count == 4)
    }
}

@Suite("ReplyScanner: plain lane")
struct PlainReplyLaneTests {
    /// The lane takes exactly the whole `+`, `:` and `$` frames, with the state machine's length and
    /// null flag; anything else, or a frame cut anywhere, it leaves without moving the offset.
    @Test func takesWholeSimpleFramesOnly() {
        let taken = ["+OK\r\n", ":-5\r\n", ":1234567890123\r\n", "$5\r\nhello\r\n", "$0\r\n\r\n", "$-1\r\n", "+\r\n",
                     "$12\r\nwith\r\nbreaks\r\n"]
        let left = ["-ERR x\r\n", "*1\r\n:1\r\n", ">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n", "_\r\n", "#t\r\n",
                    ",1.5\r\n", "|1\r\n+k\r\n+v\r\n+OK\r\n", "$?\r\n;1\r\na\r\n;0\r\n", "$05\r\nhello\r\n", "$5\r\nhelloXY",
                    "+OK\rX", "%1\r\n+a\r\n:1\r\n"]
        for text in taken {
            let frame = Array(text.utf8)
            let reference = frames(scanReplies(frame, chunks: Array(repeating: 1, count: frame.count))).first
            for cut in 0...frame.count {
                let stream = Array(frame[..<cut])
                stream.withUnsafeBytes { bytes in
                    var scanner = ReplyScanner()
                    var offset = 0
                    let plain = scanner.nextPlain(in: bytes, at: &offset)
                    if cut == frame.count {
                        #expect(plain == PlainReply(wireBytes: frame.count, isNull: text == "$-1\r\n"), "\(text.debugDescription)")
                        #expect(plain?.wireBytes == reference?.wireBytes && plain?.isNull == reference?.isNull)
                        #expect(offset == frame.count)
                    } else {
                        #expect(plain == nil, "\(text.debugDescription) cut at \(cut)")
                        #expect(offset == 0)
                    }
                }
            }
        }
        for text in left {
            Array(text.utf8).withUnsafeBytes { bytes in
                var scanner = ReplyScanner()
                var offset = 0
                #expect(scanner.nextPlain(in: bytes, at: &offset) == nil, "\(text.debugDescription)")
                #expect(offset == 0)
            }
        }
    }

    /// The message lane takes a run of whole classic messages of the first one's type, as many bytes
    /// as the state machine frames them in, and stops before anything else.
    @Test func messageRuns() {
        let message = "*3\r\n$7\r\nmessage\r\n$12\r\nbench:fanout\r\n$10\r\n0123456789\r\n"
        let short = "*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$0\r\n\r\n"
        let push = ">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"
        let other = "*3\r\n$7\r\nmessage\r\n$12\r\nbench:fanout\r\n$10\r\nabcdefghij\r\n"
        let cases: [(stream: String, taken: String?, pushes: Bool)] = [
            (message, message, false),
            (message + short + message, message + short + message, false),
            // Runs with the same header: taken by comparison, up to a change of length or channel.
            (message + message + message + short + short + message, message + message + message + short + short + message, false),
            (message + other, message + other, false),
            // The same header, then no terminator where the payload should end, or a cut frame.
            (message + String(message.dropLast(2)) + "XY", message, false),
            (message + message + String(message.dropLast(3)), message + message, false),
            (message + push, message, false),
            (push + push + message, push + push, true),
            (message + "+OK\r\n" + message, message, false),
            (message + String(message.dropLast()), message, false),
            (message + "*3\r\n$7\r\nMESSAGE\r\n$1\r\nc\r\n$1\r\nm\r\n", message, false),
            (String(message.dropLast()), nil, false),
            ("*3\r\n$8\r\nsmessage\r\n$1\r\nc\r\n$1\r\nm\r\n", nil, false),
            ("*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n", nil, false),
        ]
        for (stream, taken, pushes) in cases {
            let bytes = Array(stream.utf8)
            let referenceEnds = frames(scanReplies(bytes, chunks: Array(repeating: 1, count: bytes.count))).reduce(into: [0]) {
                $0.append($0.last! + $1.wireBytes)
            }
            bytes.withUnsafeBytes { buffer in
                var scanner = ReplyScanner()
                let messages = scanner.plainMessages(in: buffer, at: 0)
                if let taken {
                    #expect(messages == PlainMessages(wireBytes: taken.utf8.count, arePushes: pushes), "\(stream.debugDescription)")
                    #expect(referenceEnds.contains(taken.utf8.count), "\(stream.debugDescription)")
                } else {
                    #expect(messages == nil, "\(stream.debugDescription)")
                }
            }
        }
    }

    /// After a frame the state machine took part of, the lane waits for the next frame boundary.
    @Test func waitsForAFrameBoundary() {
        let stream = Array("*2\r\n:1\r\n:2\r\n+OK\r\n".utf8)
        stream.withUnsafeBytes { bytes in
            var scanner = ReplyScanner()
            var offset = 0
            #expect(scanner.next(in: UnsafeRawBufferPointer(rebasing: bytes[..<6]), at: &offset) == .incomplete)
            var rest = 0
            let tail = UnsafeRawBufferPointer(rebasing: bytes[6...])
            #expect(scanner.nextPlain(in: tail, at: &rest) == nil)
            #expect(rest == 0)
            guard case .complete(let array) = scanner.next(in: tail, at: &rest) else {
                Issue.record("the array did not complete")
                return
            }
            #expect(array.wireBytes == 12)
            #expect(scanner.nextPlain(in: tail, at: &rest) == PlainReply(wireBytes: 5, isNull: false))
        }
    }
}
