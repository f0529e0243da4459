import Accounting
import RESP

/// `CLUSTER SLOT-STATS` replies. The parser that reads the bytes (with its fallback) and the one
/// that reads a decoded value agree: both refuse a reply, or both give the same rows. Every row is
/// a slot in range, reported once per entry as the reply names it, and a parse round-trips
/// through the reply the node would send for those rows.
enum SlotStatsTarget {
    static func run(_ input: [UInt8]) {
        let fromBytes = input.withUnsafeBytes { try? NodeSlotStats(replyBytes: $0) }
        guard let (value, _) = try? RESPValueDecoder.decode(input[...]) else { return }
        let fromValue = try? NodeSlotStats(reply: value)
        require(fromBytes == fromValue, "the byte parser reads \(String(describing: fromBytes)), the value parser \(String(describing: fromValue))")
        guard let stats = fromValue, case .array(let entries) = value else { return }
        require(stats.rows.count == entries.count, "\(entries.count) entries give \(stats.rows.count) rows")
        for (row, entry) in zip(stats.rows, entries) {
            require(entry.array?.first == .integer(Int64(row.slot.rawValue)), "entry \(entry) is read as slot \(row.slot)")
        }
        let again = reply(for: stats).withUnsafeBytes { try? NodeSlotStats(replyBytes: $0) }
        require(again == stats, "\(stats) reads back as \(String(describing: again))")
    }

    /// The RESP3 reply that reports `stats`.
    static func reply(for stats: NodeSlotStats) -> [UInt8] {
        var text = "*\(stats.rows.count)\r\n"
        for row in stats.rows {
            let fields = [("key-count", row.keyCount), ("cpu-usec", row.cpuMicroseconds), ("network-bytes-out", row.networkBytesOut)]
                + (stats.networkStatsEnabled ? [("network-bytes-in", row.networkBytesIn)] : [])
            text += "*2\r\n:\(row.slot.rawValue)\r\n%\(fields.count)\r\n"
            for (name, number) in fields { text += "$\(name.utf8.count)\r\n\(name)\r\n:\(min(number, UInt64(Int64.max)))\r\n" }
        }
        return Array(text.utf8)
    }
}

/// `COMMAND` replies. Reading one either refuses it or builds a table in which every command it
/// names is found, by lookup and by the request scanner, under its lowercase name; a request for a
/// plain command is classified the same by the plain lane and the general path.
enum CommandReplyTarget {
    static func run(_ input: [UInt8]) {
        guard let (value, _) = try? RESPValueDecoder.decode(input[...]), let table = try? CommandTable(commandReply: value) else {
            return
        }
        for name in table.commandNames {
            let identity = table.lookup(name)
            require(table.name(of: identity) == name, "\(name) is found as \(identity)")
            // (A command Valkey has as a container is classified by its subcommand, whatever the reply says.)
            let builtIn = CommandTable.builtIn.info(CommandTable.builtIn.lookup(name))
            // (The scanner looks up names of up to 32 bytes, the prefix it captures: longer ones are unknown.)
            guard let info = table.info(identity), !name.isEmpty, name.utf8.count <= 32, !name.contains("|"), info.keyPlan != .subcommand,
                builtIn?.subcommands.isEmpty ?? true, abs(info.arity) <= 64
            else {
                continue
            }
            let count = max(abs(info.arity), 1)
            let request = RESPEncoder.command([Array(name.utf8)] + Array(repeating: Array("{k}x".utf8), count: count - 1))
            var whole = RequestScanner(commands: table)
            var byteByByte = RequestScanner(commands: table)
            var offset = 0
            let scanned = request.withUnsafeBytes { whole.next(in: $0, at: &offset) }
            var last = ScanResult<ScannedRequest>.incomplete
            for byte in request { last = [byte].withUnsafeBytes { bytes in var at = 0; return byteByByte.next(in: bytes, at: &at) } }
            guard case .complete(let request) = scanned else {
                require(false, "a request for \(name) scans as \(scanned)")
                continue
            }
            require(request.command == identity, "a request for \(name) is \(request.command), not \(identity)")
            require(last == scanned, "byte by byte, a request for \(name) scans as \(last), whole as \(scanned)")
        }
    }
}
