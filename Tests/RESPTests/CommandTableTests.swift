import Testing
@testable import RESP

@Suite("CommandTable")
struct CommandTableTests {
    static let fromNode: CommandTable = {
        let bytes = CommandReplyFixture.bytes
        guard let (value, used) = try? RESPValueDecoder.decode(bytes[...]), used == bytes.count,
              let table = try? CommandTable(commandReply: value)
        else { preconditionFailure("fixture does not decode") }
        return table
    }()

    @Test func fixtureDecodes() throws {
        let table = CommandTableTests.fromNode
        #expect(table.count == 399)
        #expect(table.info(table.lookup("get"))?.keyPlan == .range(first: 1, last: 1, step: 1))
        #expect(table.info(table.lookup("OBJECT|ENCODING"))?.keyPlan == .range(first: 2, last: 2, step: 1))
        #expect(table.info(table.lookup("object"))?.keyPlan == .subcommand)
        #expect(table.info(table.lookup("object"))?.subcommands.contains("object|encoding") == true)
        #expect(table.info(table.lookup("eval"))?.keyPlan == .keyCount(countIndex: 2, firstKey: 3, step: 1, storeIndex: 0))
        #expect(table.info(table.lookup("blpop"))?.blocking == .always)
        #expect(table.info(table.lookup("xread"))?.blocking == .withBlockOption)
        #expect(table.info(table.lookup("set"))?.isWrite == true)
        #expect(table.lookup("nope") == .unknown)
    }

    /// Every command of the built-in table has the same plan, arity and flags as the live node's.
    @Test func builtInMatchesTheNode() {
        let node = CommandTableTests.fromNode
        let builtIn = CommandTable.builtIn
        #expect(builtIn.count == node.count)
        for name in builtIn.commandNames {
            let mine = builtIn.info(builtIn.lookup(name))
            let theirs = node.info(node.lookup(name))
            #expect(mine != nil && mine == theirs, "\(name): \(String(describing: mine)) vs \(String(describing: theirs))")
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
            var viaNode = scan(command, table: CommandTableTests.fromNode)
            viaNode?.command = viaBuiltIn?.command ?? .unknown  // row numbers differ between tables
            #expect(viaBuiltIn == viaNode, "\(command)")
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
}
