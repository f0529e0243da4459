import Testing
@testable import RESP

/// Feeding a stream whole, split in two at every position, byte by byte, or in seeded random
/// chunks must give the same sequence of results.
@Suite("Chunking independence")
struct ChunkingPropertyTests {
    static let requestStream: [UInt8] = {
        var stream: [UInt8] = []
        stream += RESPEncoder.command(["SET", "{a}k", "value"])
        stream += RESPEncoder.command(["MSET", "a", "1", "b", "2"])
        stream += Array("*0\r\n".utf8)
        stream += RESPEncoder.command(["EVAL", "#!lua\nreturn 1", "1", "k"])
        stream += Array("GET  \"q k\"\r\n".utf8)
        stream += RESPEncoder.command(["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"])
        stream += Array("\r\nPING\n".utf8)
        stream += RESPEncoder.command(["ZUNIONSTORE", "{z}d", "2", "{z}a", "{z}b"])
        stream += RESPEncoder.command(["CLIENT", "REPLY", "SKIP"])
        stream += RESPEncoder.command(["SORT", "a", "LIMIT", "0", "1", "STORE", "b"])
        stream += RESPEncoder.command(["OBJECT", "ENCODING", String(repeating: "x", count: 100)])
        stream += RESPEncoder.command(["SET", "empty", ""])
        // More arguments than the fast path records places for.
        stream += RESPEncoder.command(["MSET"] + (0..<20).flatMap { ["{m}k\($0)", "v\($0)"] })
        stream += Array("*1\r\n$3\r\nGE".utf8) + Array("T\r\n".utf8)
        return stream
    }()

    static let replyStream: [UInt8] = Array((
        "+OK\r\n-MOVED 1 h:1\r\n:1\r\n$5\r\nhello\r\n$-1\r\n*2\r\n+OK\r\n$1\r\nv\r\n_\r\n#t\r\n,1.5\r\n(123\r\n"
            + "!5\r\nOOM x\r\n=8\r\ntxt:abcd\r\n%1\r\n+a\r\n:1\r\n~1\r\n+x\r\n>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n"
            + "$?\r\n;2\r\nab\r\n;0\r\n*?\r\n:1\r\n*?\r\n.\r\n.\r\n|1\r\n+k\r\n+v\r\n*1\r\n:1\r\n"
            + "*3\r\n$9\r\nsubscribe\r\n$4\r\n{c}x\r\n:1\r\n+1339518083.107412 [0 127.0.0.1:60866] \"keys\"\r\n"
            // An attribute before a simple value belongs to its frame; an empty bulk; a negative
            // integer; an error longer than the captured prefix.
            + "|1\r\n+k\r\n+v\r\n+OK\r\n$0\r\n\r\n:-5\r\n-ERR a message longer than thirty-two bytes, MOVED\r\n"
            // Flat aggregates (a sharded message, one with a null, a nested one).
            + ">3\r\n$8\r\nsmessage\r\n$4\r\n{c}x\r\n$2\r\nhi\r\n*2\r\n$1\r\na\r\n$-1\r\n*2\r\n*1\r\n:1\r\n:2\r\n"
            // Classic messages as Valkey writes them (two-digit lengths, an empty payload), and
            // spelled otherwise: upper case, a simple-string name.
            + "*3\r\n$7\r\nmessage\r\n$12\r\nbench:fanout\r\n$64\r\n" + String(repeating: "m", count: 64) + "\r\n"
            + "*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$0\r\n\r\n*3\r\n$7\r\nMESSAGE\r\n$1\r\nc\r\n$1\r\nm\r\n"
            + "*3\r\n+message\r\n$1\r\nc\r\n$1\r\nm\r\n"
    ).utf8)

    @Test func requestsSplitAnywhere() {
        let whole = expectSameResultsForEveryChunking(ChunkingPropertyTests.requestStream, seed: 2024) {
            scanRequests($0, chunks: $1)
        }
        #expect(whole.count == 13)
    }

    @Test func repliesSplitAnywhere() {
        let whole = expectSameResultsForEveryChunking(ChunkingPropertyTests.replyStream, seed: 42) {
            scanReplies($0, chunks: $1)
        }
        #expect(whole.count == 31)
    }

    /// Scans `stream` whole, split in two at every byte, byte by byte and in 200 seeded random
    /// chunkings, expects identical results each time, and returns the whole-stream results.
    private func expectSameResultsForEveryChunking<Result: Equatable>(
        _ stream: [UInt8], seed: UInt64, scan: ([UInt8], [Int]?) -> [Result]
    ) -> [Result] {
        let whole = scan(stream, nil)
        for split in 0...stream.count {
            #expect(scan(stream, [split]) == whole, "split at \(split)")
        }
        #expect(scan(stream, Array(repeating: 1, count: stream.count)) == whole)
        var generator = SeededGenerator(seed: seed)
        for _ in 0..<200 {
            let chunks = (0..<stream.count).map { _ in Int.random(in: 1...17, using: &generator) }
            #expect(scan(stream, chunks) == whole)
        }
        return whole
    }

    @Test func malformedStreamsFailAtTheSameByteWhateverTheChunking() {
        let stream = RESPEncoder.command(["GET", "a"]) + Array("*1\r\n!3\r\n".utf8)
        let whole = scanRequests(stream)
        for split in 0...stream.count {
            #expect(scanRequests(stream, chunks: [split]) == whole)
        }
        #expect(whole.last == .malformed(.expectedDollar(got: UInt8(ascii: "!"))))
    }

    /// Lengths the node refuses (string2ll: no sign, no leading zero) fail at the same byte whether
    /// the request arrives whole or split.
    @Test(arguments: ["*2\r\n$03\r\nGET\r\n$1\r\nk\r\n", "*02\r\n$3\r\nGET\r\n$1\r\nk\r\n", "*1\r\n$+4\r\nPING\r\n"])
    func refusedLengthsFailWhateverTheChunking(_ text: String) {
        expectSameFailureForEverySplit(RESPEncoder.command(["GET", "a"]) + Array(text.utf8)) { scanRequests($0, chunks: $1) }
    }

    /// Replies the node would never send fail at the same byte whether they arrive whole or split.
    @Test(arguments: ["$03\r\nabc\r\n", "$3\r\nabcX\n", "+OK\rX", "$-2\r\n", "*2\r\n$1\r\na\r\n$1\r\nbX\n", "*01\r\n:1\r\n"])
    func malformedRepliesFailWhateverTheChunking(_ text: String) {
        expectSameFailureForEverySplit(Array("+OK\r\n\(text)".utf8)) { scanReplies($0, chunks: $1) }
    }

    /// Expects `stream` to end in a failure, and the same results when it is split at any byte.
    private func expectSameFailureForEverySplit<Value: Equatable>(
        _ stream: [UInt8], scan: ([UInt8], [Int]?) -> [ScanResult<Value>]
    ) {
        let whole = scan(stream, nil)
        guard case .malformed = whole.last else {
            Issue.record("\(String(decoding: stream, as: UTF8.self).debugDescription) was accepted: \(whole)")
            return
        }
        for split in 0...stream.count {
            #expect(scan(stream, [split]) == whole, "split at \(split)")
        }
    }

    /// Every command of the table, with 0 to 6 arguments drawn from keys, hash tags, numbers and
    /// keywords: scanned whole (the fast paths) and byte by byte (the state machine and the full
    /// classifier), the results are the same.
    @Test func fastPathsClassifyEveryCommandLikeTheStateMachine() {
        let table = CommandTable.builtIn
        let pool = ["k", "{t}a", "{t}b", "x", "1", "0", "2", "-1", "STORE", "LIMIT", "GET", "BLOCK", "STREAMS", "KEYS", "", "abcdefgh"]
        var generator = SeededGenerator(seed: 7)
        var stream: [UInt8] = []
        var requests = 0
        for name in table.names where !name.contains("|") {
            for extra in 0...6 {
                let spelled = Bool.random(using: &generator) ? name.uppercased() : name
                let arguments = (0..<extra).map { _ in pool.randomElement(using: &generator)! }
                stream += RESPEncoder.command([spelled] + arguments)
                requests += 1
            }
        }
        let whole = scanRequests(stream, table: table)
        let byteByByte = scanRequests(stream, chunks: Array(repeating: 1, count: stream.count), table: table)
        #expect(whole.count == requests)
        #expect(byteByByte.count == requests)
        let differing = zip(whole, byteByByte).enumerated().filter { $0.element.0 != $0.element.1 }
        #expect(differing.isEmpty, "\(differing.count) of \(requests) differ; first: \(differing.first.map { "\($0)" } ?? "-")")
    }
}
