import RESP

/// Runs a request scanner over `stream` split into `chunks` (sizes), collecting every result.
func scanRequests(
    _ stream: [UInt8], chunks: [Int]? = nil, table: CommandTable = .builtIn, limits: RESPLimits = .valkeyDefaults
) -> [ScanResult<ScannedRequest>] {
    var scanner = RequestScanner(commands: table, limits: limits)
    return runChunks(stream, chunks: chunks) { bytes, offset in scanner.next(in: bytes, at: &offset) }
}

func scanReplies(_ stream: [UInt8], chunks: [Int]? = nil, limits: RESPLimits = .valkeyDefaults) -> [ScanResult<ScannedReply>] {
    var scanner = ReplyScanner(limits: limits)
    return runChunks(stream, chunks: chunks) { bytes, offset in scanner.next(in: bytes, at: &offset) }
}

/// Feeds the chunks one after the other; stops at the first malformed result.
private func runChunks<Frame>(
    _ stream: [UInt8], chunks: [Int]?, _ next: (UnsafeRawBufferPointer, inout Int) -> ScanResult<Frame>
) -> [ScanResult<Frame>] {
    var results: [ScanResult<Frame>] = []
    var sizes = chunks ?? [stream.count]
    let total = sizes.reduce(0, +)
    if total < stream.count { sizes.append(stream.count - total) }
    var start = 0
    for size in sizes where start < stream.count {
        let chunk = Array(stream[start..<min(start + size, stream.count)])
        start += chunk.count
        let stop = chunk.withUnsafeBytes { bytes -> Bool in
            var offset = 0
            while true {
                let result = next(bytes, &offset)
                switch result {
                case .complete:
                    results.append(result)
                case .incomplete:
                    precondition(offset == bytes.count)
                    return false
                case .malformed:
                    results.append(result)
                    return true
                }
            }
        }
        if stop { break }
    }
    return results
}

/// Every complete frame, or nil if any result was not complete.
func frames<Frame>(_ results: [ScanResult<Frame>]) -> [Frame] {
    results.compactMap { if case .complete(let frame) = $0 { frame } else { nil } }
}

/// A multibulk request.
func request(_ args: String...) -> [UInt8] { RESPEncoder.command(args) }

/// Scans one multibulk request built from `args` and returns its frame.
func scan(_ args: [String], table: CommandTable = .builtIn) -> ScannedRequest? {
    frames(scanRequests(RESPEncoder.command(args), table: table)).first
}

func scanInline(_ line: String) -> ScannedRequest? {
    frames(scanRequests(Array(line.utf8))).first
}

func slot(_ key: String) -> HashSlot { HashSlot(key: key) }

/// A small deterministic generator (SplitMix64) for seeded chunkings.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}

/// Runs a replication stream scanner over `stream` split into `chunks` (sizes), collecting every result.
func scanReplicationStream(_ stream: [UInt8], chunks: [Int]? = nil) -> [ScanResult<ReplicationStreamScanner.Item>] {
    var scanner = ReplicationStreamScanner(commands: .builtIn)
    return runChunks(stream, chunks: chunks) { bytes, offset in scanner.next(in: bytes, at: &offset) }
}
