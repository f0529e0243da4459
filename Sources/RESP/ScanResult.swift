/// Outcome of one `next(in:at:)` call of a scanner.
public enum ScanResult<Frame> {
    /// A whole frame ended; `offset` points just past its last byte.
    case complete(Frame)
    /// Every byte was consumed (`offset == bytes.count`); call again with the next chunk at offset 0.
    case incomplete
    /// The stream broke the protocol at `offset`; the scanner stays failed.
    case malformed(ProtocolViolation)
}

extension ScanResult: Equatable where Frame: Equatable {}
extension ScanResult: Sendable where Frame: Sendable {}

/// Why a stream is not valid RESP (or exceeds `RESPLimits`).
public enum ProtocolViolation: Error, Equatable, Sendable {
    /// `*N` header that is not a canonical integer, or N above `maxMultibulkLength`.
    case invalidMultibulkLength
    /// `$N` header of a request that is not a canonical non-negative integer.
    case invalidBulkLength
    /// A request argument did not start with `$`.
    case expectedDollar(got: UInt8)
    /// A bulk, verbatim or blob-error length above `maxBulkLength`.
    case bulkTooLarge
    /// An inline request line longer than `maxInlineLength`.
    case inlineTooLong
    /// An inline line that Valkey's `sdssplitargs` rejects.
    case unbalancedQuotes
    /// Reply aggregates nested deeper than `maxNestingDepth`.
    case nestingTooDeep
    /// A reply value started with a byte that is no RESP2/RESP3 type.
    case invalidTypeByte(UInt8)
    /// A reply length header that is not a valid length for its type.
    case invalidLength
    /// A reply line or payload not followed by `\r\n`.
    case missingCRLF
    /// `.` (end of a streamed aggregate) outside of one, or a streamed-string chunk not starting with `;`.
    case unexpectedEnd
    /// A replication link's answer to `PSYNC` was not `+FULLRESYNC`/`+CONTINUE`, or its snapshot
    /// header was not `$<length>` or `$EOF:<40-byte mark>`.
    case unexpectedReplicationPreamble
}
