/// Bounds the scanners enforce; exceeding one makes the stream `.malformed`.
public struct RESPLimits: Sendable, Equatable {
    /// Largest bulk string (`$`), verbatim string (`=`) or blob error (`!`). Valkey's
    /// `proto-max-bulk-len` default is 512 MiB.
    public var maxBulkLength: Int
    /// Largest multibulk count. Valkey rejects `*N` with N > INT_MAX (`networking.c`).
    public var maxMultibulkLength: Int
    /// Longest inline request line, terminator excluded. Valkey's `PROTO_INLINE_MAX_SIZE` (64 KiB).
    public var maxInlineLength: Int
    /// Deepest aggregate nesting accepted in replies. 128 is far above anything Valkey emits on its
    /// own (COMMAND and CLUSTER SHARDS nest 4 to 6 levels); only a script or module returning a
    /// pathologically nested table goes deeper, and then the connection's accounting degrades to
    /// "unparsed" instead of the scanner growing memory. It also sizes the scanner's inline stack
    /// (values above `ReplyScanner.stackCapacity` are clamped to it).
    public var maxNestingDepth: Int

    public init(maxBulkLength: Int, maxMultibulkLength: Int, maxInlineLength: Int, maxNestingDepth: Int) {
        self.maxBulkLength = maxBulkLength
        self.maxMultibulkLength = maxMultibulkLength
        self.maxInlineLength = maxInlineLength
        self.maxNestingDepth = maxNestingDepth
    }

    public static let valkeyDefaults = RESPLimits(
        maxBulkLength: 512 * 1024 * 1024,
        maxMultibulkLength: Int(Int32.max),
        maxInlineLength: 64 * 1024,
        maxNestingDepth: 128
    )
}
