#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The fuzz targets of one libFuzzer binary; `SLOTWARDEN_FUZZ_TARGET` names the one a run drives.
/// Each checks invariants on what it parses, not only that nothing crashes: a broken invariant
/// stops the run through `require`, and libFuzzer keeps the input.
enum FuzzTarget: String, CaseIterable, Sendable {
    case request, inline, reply, session, slotStats = "slot-stats", commandReply = "command-reply", config, adminQuery = "admin-query"

    func run(_ input: [UInt8]) {
        switch self {
        case .request: RequestTarget.run(input, inlineOnly: false)
        case .inline: RequestTarget.run(input, inlineOnly: true)
        case .reply: ReplyTarget.run(input)
        case .session: SessionTarget.run(input)
        case .slotStats: SlotStatsTarget.run(input)
        case .commandReply: CommandReplyTarget.run(input)
        case .config: ConfigTarget.run(input)
        case .adminQuery: AdminQueryTarget.run(input)
        }
    }

    static let selected: FuzzTarget = {
        let name = getenv("SLOTWARDEN_FUZZ_TARGET").map { String(cString: $0) } ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
            let message = "SlotwardenFuzz: set SLOTWARDEN_FUZZ_TARGET to one of: \(names)\n"
            _ = message.withCString { write(2, $0, strlen($0)) }
            exit(2)
        }
        return target
    }()
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    FuzzTarget.selected.run(input)
    return 0
}

/// Stops the run when an invariant does not hold: libFuzzer reports the trap and saves the input.
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String, line: UInt = #line) {
    if !condition() { fatalError("invariant broken: \(message())", line: line) }
}

/// Draws choices from the front of a fuzz input; past its end every draw is 0.
struct Draws {
    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { position >= bytes.count }

    mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    /// A number in `0..<bound`.
    mutating func below(_ bound: Int) -> Int { Int(byte()) % bound }

    /// Up to `count` bytes.
    mutating func take(_ count: Int) -> ArraySlice<UInt8> {
        let end = min(bytes.count, position + count)
        defer { position = end }
        return bytes[position..<end]
    }
}

/// SplitMix64: reproducible chunk sizes from a seed taken from the input.
struct SplitMix {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E9B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The ways a stream of `count` bytes is cut into reads: whole, byte by byte, split in two at every
/// position (short streams) or at a few seeded ones, and in seeded chunks of 1 to 17 bytes.
func chunkings(of stream: [UInt8]) -> [[Int]] {
    let count = stream.count
    var ways: [[Int]] = [[count], Array(repeating: 1, count: count)]
    var random = SplitMix(state: stream.reduce(UInt64(count)) { $0 &* 31 &+ UInt64($1) })
    if count <= 48 {
        for split in 1..<max(count, 1) { ways.append([split, count - split]) }
    } else {
        for _ in 0..<4 {
            let split = Int(random.next() % UInt64(count))
            ways.append([split, count - split])
        }
    }
    for _ in 0..<2 {
        var chunks: [Int] = []
        var left = count
        while left > 0 {
            let size = min(left, 1 + Int(random.next() % 17))
            chunks.append(size)
            left -= size
        }
        ways.append(chunks)
    }
    return ways
}
