/// Building a `CommandTable` from the node's `COMMAND` (or `COMMAND INFO`) reply.
///
/// Each entry (docs/accounting.md §8, `server.c:addReplyCommandInfo`) is an array:
/// ```
///   [0] name   [1] arity   [2] flags (set or array)   [3] first   [4] last   [5] step
///   [6] ACL categories   [7] tips   [8] key specs   [9] subcommands (same shape, "parent|sub")
/// ```
/// Only name, arity, flags (`write`, `blocking`), first/last/step and subcommands are used. Key
/// positions of `movablekeys` commands come from `KeyPlan.native(for:)`, like Valkey's getkeys procs.
extension CommandTable {
    /// Why a `COMMAND` reply could not be read.
    public enum ReplyError: Error, Equatable, Sendable {
        case notAnArray
        case malformedEntry(index: Int)
    }

    /// Reads the node's `COMMAND` reply (RESP2 or RESP3). Null entries (unknown names in a
    /// `COMMAND INFO` reply) are skipped.
    public init(commandReply: RESPValue) throws {
        guard let entries = commandReply.array else { throw ReplyError.notAnArray }
        var definitions: [Definition] = []
        for (index, entry) in entries.enumerated() {
            if entry.isNull { continue }
            guard try CommandTable.collect(entry, into: &definitions) else {
                throw ReplyError.malformedEntry(index: index)
            }
        }
        self.init(definitions: definitions)
    }

    private static func collect(_ entry: RESPValue, into definitions: inout [Definition]) throws -> Bool {
        guard let fields = entry.array, fields.count >= 6,
              let name = fields[0].string, let arity = fields[1].int,
              let flagValues = fields[2].array,
              let first = fields[3].int, let last = fields[4].int, let step = fields[5].int
        else { return false }
        let flags = Set(flagValues.compactMap { $0.string?.lowercased() })
        let subcommands = fields.count >= 10 ? (fields[9].array ?? []) : []
        definitions.append(Definition(
            name: name, arity: arity, isWrite: flags.contains("write"), isBlocking: flags.contains("blocking"),
            first: first, last: last, step: step, isMovable: flags.contains("movablekeys"),
            isContainer: !subcommands.isEmpty))
        for subcommand in subcommands {
            guard try collect(subcommand, into: &definitions) else { return false }
        }
        return true
    }
}
