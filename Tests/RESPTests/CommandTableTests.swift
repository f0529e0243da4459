import Foundation
import Testing
@testable import RESP

/// A `COMMAND` reply captured from a live cluster-mode node, byte for byte, by
/// scripts/capture-command-replies.
enum CapturedCommandReply: String, CaseIterable, Sendable {
    case valkey9 = "command-reply-valkey-9.1"
    case valkey8 = "command-reply-valkey-8.1"

    var bytes: [UInt8] {
        guard let url = Bundle.module.url(forResource: rawValue, withExtension: "resp", subdirectory: "Resources"),
            let data = try? Data(contentsOf: url)
        else { preconditionFailure("\(rawValue).resp is not among the test resources") }
        return Array(data)
    }

    var table: CommandTable {
        switch self {
        case .valkey9: Self.valkey9Table
        case .valkey8: Self.valkey8Table
        }
    }

    private static let valkey9Table = decode(.valkey9)
    private static let valkey8Table = decode(.valkey8)

    private static func decode(_ capture: CapturedCommandReply) -> CommandTable {
        let bytes = capture.bytes
        guard let (value, used) = try? RESPValueDecoder.decode(bytes[...]), used == bytes.count,
              let table = try? CommandTable(commandReply: value)
        else { preconditionFailure("\(capture.rawValue) does not decode") }
        return table
    }
}

@Suite("CommandTable")
struct CommandTableTests {
    /// Commands Valkey 9.0 and 9.1 added; the built-in table is 9.1's.
    static let addedAfter8 = [
        "clusterscan", "cluster|cancelslotmigrations", "cluster|flushslot", "cluster|getslotmigrations",
        "cluster|migrateslots", "cluster|syncslots", "delifeq", "hexpire", "hexpireat", "hexpiretime", "hgetdel",
        "hgetex", "hpersist", "hpexpire", "hpexpireat", "hpexpiretime", "hpttl", "hsetex", "httl", "msetex",
    ]

    @Test(arguments: CapturedCommandReply.allCases)
    func captureDecodes(_ capture: CapturedCommandReply) throws {
        let table = capture.table
        #expect(table.count == (capture == .valkey9 ? 399 : 379))
        #expect(table.info(table.lookup("get"))?.keyPlan == .range(first: 1, last: 1, step: 1))
        #expect(table.info(table.lookup("OBJECT|ENCODING"))?.keyPlan == .range(first: 2, last: 2, step: 1))
        #expect(table.info(table.lookup("object"))?.keyPlan == .subcommand)
        #expect(table.info(table.lookup("object"))?.subcommands.contains("object|encoding") == true)
        #expect(table.info(table.lookup("eval"))?.keyPlan == .keyCount(countIndex: 2, firstKey: 3, step: 1, storeIndex: 0))
        #expect(table.info(table.lookup("blpop"))?.blocking == .always)
        #expect(table.info(table.lookup("xread"))?.blocking == .withBlockOption)
        #expect(table.info(table.lookup("set"))?.isWrite == true)
        #expect(table.lookup("nope") == .unknown)
        for name in Self.addedAfter8 {
            #expect((table.lookup(name) != .unknown) == (capture == .valkey9), "\(name)")
        }
    }

    /// Every command of the built-in table has the same plan, arity and flags as a live 9.1 node's.
    @Test func builtInMatchesTheNode() {
        let node = CapturedCommandReply.valkey9.table
        let builtIn = CommandTable.builtIn
        #expect(builtIn.count == node.count)
        for name in builtIn.commandNames {
            let mine = builtIn.info(builtIn.lookup(name))
            let theirs = node.info(node.lookup(name))
            #expect(mine != nil && mine == theirs, "\(name): \(String(describing: mine)) vs \(String(describing: theirs))")
        }
    }

    /// Arities 9.x changed: each takes an optional argument more.
    static let arityChangedAfter8 = ["script|debug", "cluster|replicate"]

    /// An 8.1 node knows every command of the built-in table but those 9.x added, with the same plan,
    /// arity and flags but the arities 9.x changed.
    @Test func builtInMatchesAn8Node() {
        let node = CapturedCommandReply.valkey8.table
        let builtIn = CommandTable.builtIn
        #expect(builtIn.count == node.count + Self.addedAfter8.count)
        for name in builtIn.commandNames where !Self.addedAfter8.contains(name) {
            guard var mine = builtIn.info(builtIn.lookup(name)), let theirs = node.info(node.lookup(name)) else {
                Issue.record("\(name) is missing from a table")
                continue
            }
            if Self.arityChangedAfter8.contains(name) {
                #expect(mine.arity != theirs.arity, "\(name)")
                mine.arity = theirs.arity
            }
            mine.subcommands.removeAll { Self.addedAfter8.contains($0) }
            #expect(mine == theirs, "\(name): \(mine) vs \(theirs)")
        }
    }

    /// Scanning with either table gives the same result.
    @Test func scanningWithEitherTableAgrees() {
        let commands: [[String]] = [
            ["GET", "a"], ["MSET", "a", "1", "b", "2"], ["EVAL", "s", "1", "k"], ["OBJECT", "FREQ", "k"],
            ["XREAD", "BLOCK", "1", "STREAMS", "s", "0"], ["SORT", "a", "STORE", "b"], ["SPUBLISH", "c", "m"],
        ]
        for command in commands {
            let viaBuiltIn = scan(command, table: .builtIn)
            for capture in CapturedCommandReply.allCases {
                var viaNode = scan(command, table: capture.table)
                viaNode?.command = viaBuiltIn?.command ?? .unknown  // row numbers differ between tables
                #expect(viaBuiltIn == viaNode, "\(command) with \(capture.rawValue)")
            }
        }
    }

    @Test func resp3FlagsAsSets() throws {
        let entry = RESPValue.array([
            .bulkString(Array("get".utf8)), .integer(2), .set([.simpleString("readonly"), .simpleString("fast")]),
            .integer(1), .integer(1), .integer(1), .set([]), .set([]), .array([]), .array([]),
        ])
        let table = try CommandTable(commandReply: .array([entry, .null]))
        #expect(table.info(table.lookup("GET"))?.keyPlan == .range(first: 1, last: 1, step: 1))
        #expect(throws: CommandTable.ReplyError.self) { try CommandTable(commandReply: .integer(1)) }
        #expect(throws: CommandTable.ReplyError.self) { try CommandTable(commandReply: .array([.integer(1)])) }
    }

    @Test func builtInCoversTheFamilies() {
        for name in ["get", "lpush", "hset", "sadd", "zadd", "xadd", "setbit", "pfadd", "geoadd", "eval", "fcall",
                     "function|load", "multi", "exec", "subscribe", "psubscribe", "ssubscribe", "del", "exists", "expire",
                     "ttl", "type", "rename", "copy", "object|encoding", "dump", "restore", "scan", "ping", "echo",
                     "hello", "auth", "select", "client|reply", "config|resetstat", "info", "cluster|failover", "command",
                     "reset", "quit", "monitor", "sync", "psync", "replconf", "wait", "waitaof", "failover", "replicaof",
                     "slaveof", "role", "flushall", "dbsize", "hgetex", "delifeq"] {
            #expect(CommandTable.builtIn.lookup(name) != .unknown, "\(name)")
        }
    }

    /// Every name of both tables is found by each lookup path in any letter case, at its own row;
    /// one changed byte anywhere, or one byte more or less, is not found.
    @Test func everyNameIsFoundByEveryPathInAnyCase() {
        #expect(CommandTable.builtIn.commandNames.contains { $0.contains("|") })  // subcommands are covered
        for table in CapturedCommandReply.allCases.map(\.table) + [CommandTable.builtIn] { Self.checkEveryName(in: table) }
    }

    private static func checkEveryName(in table: CommandTable) {
        var generator = SystemRandomNumberGenerator()
        for (row, name) in table.commandNames.enumerated() {
            let mixed = String(name.map { Bool.random(using: &generator) ? Character($0.uppercased()) : $0 })
            #expect(table.lookup(mixed) == .known(row), "\(mixed)")
            let parts = mixed.split(separator: "|").map { Array($0.utf8) }
            var parent = CapturedBytes()
            parts[0].withUnsafeBytes { parent.append($0) }
            let top = parts[0].withUnsafeBytes { table.find($0) }
            #expect(top == table.find(parent))
            if parts.count == 1 {
                #expect(top == row, "\(mixed)")
            } else {
                var sub = CapturedBytes()
                parts[1].withUnsafeBytes { sub.append($0) }
                #expect(table.findSubcommand(parent: top, sub) == row, "\(mixed)")
            }
            // Inside a larger read, with bytes on both sides that the word loads see and mask off.
            let before = (0..<Int.random(in: 0...3, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let after = (0..<Int.random(in: 0...24, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let inside = (before + Array(mixed.utf8) + after).withUnsafeBytes {
                table.find(in: $0, at: before.count, length: mixed.utf8.count)
            }
            #expect(inside == row, "\(mixed) between \(before) and \(after)")
            let bytes = Array(name.utf8)
            for position in bytes.indices {
                var changed = bytes
                changed[position] = changed[position] == UInt8(ascii: "|") ? UInt8(ascii: "_") : changed[position] ^ 0x01
                #expect(changed.withUnsafeBytes { table.find($0) } != row, "\(changed)")
            }
            #expect((bytes + [UInt8(ascii: "x")]).withUnsafeBytes { table.find($0) } != row)
            #expect(bytes.dropLast().withUnsafeBytes { table.find($0) } != row)
        }
    }

    /// The word-wise lowercasing agrees with the bytewise rule for every byte at every position.
    @Test func wordLowercasingMatchesTheByteRule() {
        for byte in 0...255 {
            for position in 0..<8 {
                let word = UInt64(byte) << UInt64(8 * position) | 0x4142_5A5B_6061_7A7B & ~(0xFF << UInt64(8 * position))
                let lowered = NameKey.lowercased(word)
                for check in 0..<8 {
                    let original = UInt8(truncatingIfNeeded: word >> UInt64(8 * check))
                    #expect(UInt8(truncatingIfNeeded: lowered >> UInt64(8 * check)) == CommandTable.lowercased(original))
                }
            }
        }
    }
}
