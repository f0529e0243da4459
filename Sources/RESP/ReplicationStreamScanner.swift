/// Reads what a primary sends down a replica's connection after `SYNC`/`PSYNC`: the answer line,
/// the snapshot, then the stream of propagated commands, which it hands out one by one, classified
/// like client requests (so each has its slot). Sans-IO and resumable at any byte.
///
/// ```
///   ( \n )*  +FULLRESYNC <replid> <offset>\r\n   ( \n )*   snapshot   commands…
///   +CONTINUE [<replid>]\r\n                                              commands…
///   snapshot:  $<length>\r\n <length bytes>                     (disk-based, no trailing CRLF)
///              $EOF:<40-byte mark>\r\n <bytes…> <the same mark>  (diskless)
/// ```
/// `\n` are keep-alives: a diskless sync sends one a second while it waits to start (before the
/// answer), a disk-based one while the snapshot is being written (before the snapshot).
/// The replication offset counts the command stream only: `offset` (from `+FULLRESYNC`, or the
/// replica's own offset for `+CONTINUE`, which the caller supplies) plus every command byte since.
public struct ReplicationStreamScanner {
    public enum Item: Equatable, Sendable {
        /// `+FULLRESYNC`: the stream's commands start at this replication offset.
        case fullResync(offset: Int64)
        /// `+CONTINUE`: the stream goes on from the replica's own offset.
        case partialResync
        /// Snapshot bytes, or keep-alive newlines before it: not commands.
        case snapshot(bytes: Int)
        /// One propagated command.
        case command(ScannedRequest)
    }

    private enum Phase {
        case answer
        case snapshotHeader
        case snapshot(remaining: Int)
        case snapshotUntilMark
        case commands
        case failed(ProtocolViolation)
    }

    private static let markLength = 40
    private static let lineLimit = 512

    private var phase = Phase.answer
    private var line: [UInt8] = []
    private var commands: RequestScanner
    /// The `$EOF:` mark, its KMP failure table, and how much of it the last bytes matched.
    private var mark: [UInt8] = []
    private var markFailure: [Int] = []
    private var markMatched = 0

    public init(commands table: CommandTable) {
        commands = RequestScanner(commands: table)
        line.reserveCapacity(Self.lineLimit)
    }

    /// Whether the snapshot is behind and the scanner hands out commands.
    public var streamsCommands: Bool {
        if case .commands = phase { true } else { false }
    }

    /// The plain lane of the command stream (most propagated commands: a whole ordinary command, see
    /// `RequestScanner.nextPlain`), nil with nothing changed otherwise: then `next(in:at:)` takes it.
    @inline(__always)
    public mutating func nextPlainCommand(in bytes: UnsafeRawBufferPointer, at offset: inout Int) -> PlainRequest? {
        guard case .commands = phase else { return nil }
        return commands.nextPlain(in: bytes, at: &offset)
    }

    /// Scans from `offset`; `.complete` moves `offset` past the item; `.incomplete` consumed
    /// everything (the next chunk goes on at offset 0); `.malformed` stays.
    public mutating func next(in bytes: UnsafeRawBufferPointer, at offset: inout Int) -> ScanResult<Item> {
        switch phase {
        case .failed(let violation): return .malformed(violation)
        case .commands:
            switch commands.next(in: bytes, at: &offset) {
            case .complete(let request): return .complete(.command(request))
            case .incomplete: return .incomplete
            case .malformed(let violation): return fail(violation)
            }
        case .answer where line.isEmpty && offset < bytes.count && bytes[offset] == UInt8(ascii: "\n"):
            offset += 1
            return .complete(.snapshot(bytes: 1))
        case .answer:
            guard let text = readLine(bytes, at: &offset) else { return lineOverflow ? fail(.unexpectedReplicationPreamble) : .incomplete }
            if text.starts(with: Array("+FULLRESYNC ".utf8)) {
                let fields = text.split(separator: UInt8(ascii: " "))
                guard fields.count == 3, let offset = Int64(String(decoding: fields[2], as: UTF8.self)) else {
                    return fail(.unexpectedReplicationPreamble)
                }
                phase = .snapshotHeader
                return .complete(.fullResync(offset: offset))
            }
            guard text.starts(with: Array("+CONTINUE".utf8)) else { return fail(.unexpectedReplicationPreamble) }
            phase = .commands
            return .complete(.partialResync)
        case .snapshotHeader:
            // Keep-alive newlines may come first, one at a time.
            if line.isEmpty, offset < bytes.count, bytes[offset] == UInt8(ascii: "\n") {
                offset += 1
                return .complete(.snapshot(bytes: 1))
            }
            let start = offset
            let pending = line.count
            guard let text = readLine(bytes, at: &offset) else {
                return lineOverflow ? fail(.unexpectedReplicationPreamble) : .incomplete
            }
            let headerBytes = pending + offset - start
            guard text.first == UInt8(ascii: "$") else { return fail(.unexpectedReplicationPreamble) }
            let body = text.dropFirst()
            if body.starts(with: Array("EOF:".utf8)) {
                guard body.count == 4 + Self.markLength else { return fail(.unexpectedReplicationPreamble) }
                mark = Array(body.dropFirst(4))
                markFailure = Self.failureTable(mark)
                markMatched = 0
                phase = .snapshotUntilMark
            } else {
                guard let length = Int(String(decoding: body, as: UTF8.self)), length >= 0 else {
                    return fail(.unexpectedReplicationPreamble)
                }
                phase = length == 0 ? .commands : .snapshot(remaining: length)
            }
            return .complete(.snapshot(bytes: headerBytes))
        case .snapshot where offset == bytes.count, .snapshotUntilMark where offset == bytes.count:
            return .incomplete
        case .snapshot(let remaining):
            let taken = min(remaining, bytes.count - offset)
            offset += taken
            phase = remaining == taken ? .commands : .snapshot(remaining: remaining - taken)
            return .complete(.snapshot(bytes: taken))
        case .snapshotUntilMark:
            let start = offset
            while offset < bytes.count {
                let byte = bytes[offset]
                offset += 1
                while markMatched > 0 && mark[markMatched] != byte { markMatched = markFailure[markMatched - 1] }
                if mark[markMatched] == byte { markMatched += 1 }
                if markMatched == Self.markLength {
                    phase = .commands
                    break
                }
            }
            return .complete(.snapshot(bytes: offset - start))
        }
    }

    private var lineOverflow: Bool { line.count >= Self.lineLimit }

    /// Collects a `\r\n`-terminated line across chunks; returns it without the terminator once whole.
    private mutating func readLine(_ bytes: UnsafeRawBufferPointer, at offset: inout Int) -> [UInt8]? {
        while offset < bytes.count {
            let byte = bytes[offset]
            offset += 1
            if byte == UInt8(ascii: "\n") {
                defer { line.removeAll(keepingCapacity: true) }
                return line.last == UInt8(ascii: "\r") ? Array(line.dropLast()) : line
            }
            if lineOverflow { return nil }
            line.append(byte)
        }
        return nil
    }

    private mutating func fail(_ violation: ProtocolViolation) -> ScanResult<Item> {
        phase = .failed(violation)
        return .malformed(violation)
    }

    /// Knuth–Morris–Pratt: for each prefix of `pattern`, the length of its longest proper border.
    private static func failureTable(_ pattern: [UInt8]) -> [Int] {
        var table = [Int](repeating: 0, count: pattern.count)
        var border = 0
        for index in 1..<pattern.count {
            while border > 0 && pattern[index] != pattern[border] { border = table[border - 1] }
            if pattern[index] == pattern[border] { border += 1 }
            table[index] = border
        }
        return table
    }
}
