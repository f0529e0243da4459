import Benchmark
import Accounting
import Proxy
import RESP

// The hot paths of a proxied request, each on its own: the lanes that frame most traffic, the command
// lookup the request lane makes, the streaming key hash of the general paths, and the accounting of
// a request and its reply.
// Every benchmark checks that its input took the path it is named for, so a change that sends it
// elsewhere fails here instead of measuring the other path. An iteration is one batch (16 requests,
// 20 replies, 32 messages, 5 names, 3 keys, or one round trip); 1,000 of them make a sample.
//
// `swift package benchmark thresholds check --path Benchmarks/Thresholds` fails when any of them
// allocates: the files there hold a p90 of 0 mallocs per sample, and the tolerance below allows none
// above it. Instructions are not measured by default: reading the CPU's counters costs the benchmark
// package 16 mallocs inside every sample, which would hide a lane's own. Where the kernel gives
// counters (not in every VM), `swift package benchmark --metric instructions` counts them per lane.

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.mallocCountTotal, .wallClock],
        scalingFactor: .kilo,
        maxDuration: .seconds(1),
        maxIterations: 1_000,
        thresholds: [.mallocCountTotal: BenchmarkThresholds(absolute: [.p90: 0])]
    )

    Benchmark("RequestScanner.plainLane") { benchmark in
        var scanner = RequestScanner(commands: .builtIn)
        let batch = Traffic.requests
        batch.withUnsafeBytes { bytes in
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                var offset = 0
                while let request = scanner.nextPlain(in: bytes, at: &offset) { blackHole(request) }
                precondition(offset == bytes.count, "a request left the plain lane at byte \(offset)")
            }
            benchmark.stopMeasurement()
        }
    }

    Benchmark("ReplyScanner.plainLane") { benchmark in
        var scanner = ReplyScanner()
        let batch = Traffic.replies
        batch.withUnsafeBytes { bytes in
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                var offset = 0
                while let reply = scanner.nextPlain(in: bytes, at: &offset) { blackHole(reply) }
                precondition(offset == bytes.count, "a reply left the plain lane at byte \(offset)")
            }
            benchmark.stopMeasurement()
        }
    }

    Benchmark("ReplyScanner.messageLane") { benchmark in
        var scanner = ReplyScanner()
        let batch = Traffic.messages
        batch.withUnsafeBytes { bytes in
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                let run = scanner.plainMessages(in: bytes, at: 0)
                precondition(run?.wireBytes == bytes.count, "the message lane framed \(String(describing: run))")
                blackHole(run)
            }
            benchmark.stopMeasurement()
        }
    }

    Benchmark("CommandTable.find") { benchmark in
        let table = CommandTable.builtIn
        // As a read holds them: each name followed by the rest of its request, which a lookup may read.
        let names = ["GET", "set", "HSET", "zrangebyscore", "CLIENT"]
        let (buffer, spans) = Traffic.concatenated(names.map { "\($0)\r\n$16\r\nkey:000000000001\r\n" }, keeping: names)
        buffer.withUnsafeBytes { bytes in
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                for span in spans {
                    let row = table.find(in: bytes, at: span.start, length: span.length)
                    precondition(row >= 0, "a command of the table was not found")
                    blackHole(row)
                }
            }
            benchmark.stopMeasurement()
        }
    }

    Benchmark("KeyHasher.slot") { benchmark in
        let keys = ["key:000000000001", "{user1000}.following", "session:7f3a9c2e5b814d06a1e2"]
        let (buffer, spans) = Traffic.concatenated(keys, keeping: keys)
        buffer.withUnsafeBytes { bytes in
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                for span in spans {
                    var hasher = KeyHasher()
                    hasher.update(UnsafeRawBufferPointer(rebasing: bytes[span.start..<span.start + span.length]))
                    blackHole(hasher.slot)
                }
            }
            benchmark.stopMeasurement()
        }
    }

    Benchmark("SessionCore.roundTrip") { benchmark in
        let session = Session()
        let request = Array("*2\r\n$3\r\nGET\r\n$16\r\nkey:000000000001\r\n".utf8)
        let reply = Array("$3\r\nxxx\r\n".utf8)
        request.withUnsafeBytes { request in
            reply.withUnsafeBytes { reply in
                // The in-flight FIFO allocates its ring on the first request of a connection, not after.
                session.roundTrip(request, reply)
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations { session.roundTrip(request, reply) }
                benchmark.stopMeasurement()
            }
        }
        blackHole(session.ledger.node(HashSlot(key: "key:000000000001")))
    }
}

/// The byte streams of the benchmarks, as a client and a node send them.
enum Traffic {
    /// `pieces` back to back in one buffer, and where the first `kept[i].utf8.count` bytes of each
    /// piece are: one buffer, so that an iteration reads its inputs without retaining an array each.
    static func concatenated(_ pieces: [String], keeping kept: [String]) -> ([UInt8], [(start: Int, length: Int)]) {
        var buffer: [UInt8] = []
        var spans: [(start: Int, length: Int)] = []
        for (piece, prefix) in zip(pieces, kept) {
            spans.append((buffer.count, prefix.utf8.count))
            buffer += piece.utf8
        }
        return (buffer, spans)
    }

    /// A pipelined batch of 16 requests, GET and SET alternating, 16-byte keys and 3-byte values.
    static let requests: [UInt8] = Array(
        (0..<8).map { key in
            "*2\r\n$3\r\nGET\r\n$16\r\nkey:00000000000\(key)\r\n*3\r\n$3\r\nSET\r\n$16\r\nkey:00000000000\(key)\r\n$3\r\nxxx\r\n"
        }.joined().utf8)

    /// Their replies and a few more plain frames: status, integer, bulk string, null, empty bulk.
    static let replies: [UInt8] = Array(
        (String(repeating: "$3\r\nxxx\r\n+OK\r\n", count: 8) + ":1\r\n$-1\r\n$0\r\n\r\n:1048576\r\n").utf8)

    /// What a subscriber reads in one go during a fan-out: 32 `message` frames on one channel with
    /// 64-byte payloads.
    static let messages: [UInt8] = Array(
        String(repeating: "*3\r\n$7\r\nmessage\r\n$12\r\nbench:fanout\r\n$64\r\n\(String(repeating: "m", count: 64))\r\n", count: 32)
            .utf8)
}

/// One client connection's core, driven as a session drives it: a GET through the request side
/// and its reply through the reply side, each of which must take its plain lane and raise no event.
final class Session {
    let ledger = LedgerShard()
    var core: SessionCore

    init() {
        core = SessionCore(
            commands: .builtIn, rules: NodeCountingRules(version: ValkeyVersion(major: 9, minor: 1, patch: 0)), ledger: ledger)
    }

    @inline(never)
    func roundTrip(_ request: UnsafeRawBufferPointer, _ reply: UnsafeRawBufferPointer) {
        let read = core.clientRead(request, commandsAwaitRoleCheck: false)
        precondition(read.forward == request.count && read.events.isEmpty, "the request raised \(read.events)")
        precondition(core.inFlightCount == 1, "the request did not join the FIFO")
        let events = core.nodeRead(reply)
        precondition(events.isEmpty && core.inFlightCount == 0, "the reply raised \(events)")
    }
}
