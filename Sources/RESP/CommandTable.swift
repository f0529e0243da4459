/// Key positions and the few flags the proxy needs, for every command of the node.
///
/// Immutable after init and `Sendable`: one table is shared by every connection. Two sources:
/// `CommandTable.builtIn` (hand-maintained, Valkey 8.1 and 9.1) and `init(commandReply:)` (the
/// node's own `COMMAND` reply, preferred at runtime).
///
/// Lookup layout (no allocation on the hot path):
/// ```
///   entries   [Entry]   trivially copyable rows; subcommands are rows named "parent|sub"
///   namePool  [UInt8]   lowercase names back to back; Entry.nameStart/nameLength point here
///   buckets   [Int32]   open addressing (linear probing) on FNV-1a of the lowercase name;
///                       -1 = empty; capacity a power of two >= 2 x entries
/// ```
public struct CommandTable: Sendable {
    struct Flags: OptionSet, Sendable {
        let rawValue: UInt8
        static let write = Flags(rawValue: 1)
        /// Always may block (BLPOP ...; WAIT, WAITAOF).
        static let blocking = Flags(rawValue: 2)
        /// May block only when a `BLOCK` option is present (XREAD, XREADGROUP).
        static let blockingWithToken = Flags(rawValue: 4)
        static let container = Flags(rawValue: 8)
    }

    /// What a command does to the connection's protocol state (beyond its keys).
    enum Special: UInt8, Sendable {
        case none, multi, exec, discard
        case subscribe, psubscribe, ssubscribe, unsubscribe, punsubscribe, sunsubscribe
        case hello, reset, quit, monitor, clientReply, replicationHandshake
        case evalBody, evalSHA, function, resetStat, roleChange

        init(name: String) {
            switch name {
            case "multi": self = .multi
            case "exec": self = .exec
            case "discard": self = .discard
            case "subscribe": self = .subscribe
            case "psubscribe": self = .psubscribe
            case "ssubscribe": self = .ssubscribe
            case "unsubscribe": self = .unsubscribe
            case "punsubscribe": self = .punsubscribe
            case "sunsubscribe": self = .sunsubscribe
            case "hello": self = .hello
            case "reset": self = .reset
            case "quit": self = .quit
            case "monitor": self = .monitor
            case "client|reply": self = .clientReply
            case "sync", "psync": self = .replicationHandshake
            case "eval", "eval_ro": self = .evalBody
            case "evalsha", "evalsha_ro": self = .evalSHA
            case "fcall", "fcall_ro": self = .function
            case "config|resetstat": self = .resetStat
            case "cluster|failover", "cluster|reset", "cluster|replicate", "failover", "replicaof", "slaveof":
                self = .roleChange
            default: self = .none
            }
        }
    }

    /// One command or subcommand; trivially copyable so reading it costs no retain.
    struct Entry: Sendable {
        var nameStart: Int32
        var nameLength: Int32
        var hash: UInt32
        var arity: Int32
        var plan: KeyPlan
        var flags: Flags
        var special: Special

        /// Valkey's arity rule: positive, exactly that many arguments; negative, at least |arity|
        /// (the command name included).
        @inline(__always)
        func accepts(argumentCount: Int) -> Bool {
            arity >= 0 ? argumentCount == Int(arity) : argumentCount >= -Int(arity)
        }
    }

    /// A command as described to the table's initialisers.
    struct Definition: Sendable {
        var name: String
        var arity: Int
        var isWrite: Bool
        var isBlocking: Bool
        var first: Int
        var last: Int
        var step: Int
        var isMovable: Bool
        var isContainer: Bool
    }

    private(set) var entries: [Entry] = []
    private(set) var names: [String] = []
    private var namePool: [UInt8] = []
    private var buckets: [Int32] = []
    private var mask = 0

    /// Commands Valkey marks blocking, by name (COMMAND's `blocking` flag is honoured too).
    private static let blockingNames: Set<String> = [
        "blpop", "brpop", "blmove", "brpoplpush", "blmpop", "bzpopmin", "bzpopmax", "bzmpop", "wait", "waitaof",
    ]

    init(definitions: [Definition]) {
        for definition in definitions {
            let name = definition.name.lowercased()
            if lookup(name) != .unknown { continue }  // first definition wins
            var flags: Flags = []
            if definition.isWrite { flags.insert(.write) }
            if name == "xread" || name == "xreadgroup" {
                flags.insert(.blockingWithToken)
            } else if definition.isBlocking || CommandTable.blockingNames.contains(name) {
                flags.insert(.blocking)
            }
            let plan: KeyPlan
            if definition.isContainer {
                flags.insert(.container)
                plan = .subcommand
            } else if let native = KeyPlan.native(for: name) {
                plan = native
            } else if definition.first > 0 {
                // Also for a `movablekeys` command without a native procedure: Valkey itself then
                // falls back to the legacy range (MSETEX on 9.1.2: range 0/0/0, so no keys).
                plan = .range(first: definition.first, last: definition.last, step: max(definition.step, 1))
            } else {
                plan = .none
            }
            let bytes = Array(name.utf8)
            entries.append(Entry(
                nameStart: Int32(namePool.count), nameLength: Int32(bytes.count),
                hash: CommandTable.hash(bytes), arity: Int32(clamping: definition.arity),
                plan: plan, flags: flags, special: Special(name: name)))
            names.append(name)
            namePool.append(contentsOf: bytes)
            rebuildIfNeeded()
        }
        rebuildIndex()
    }

    private mutating func rebuildIfNeeded() {
        if entries.count * 2 > buckets.count { rebuildIndex() } else { insert(entries.count - 1) }
    }

    private mutating func rebuildIndex() {
        var capacity = 16
        while capacity < entries.count * 2 { capacity <<= 1 }
        buckets = Array(repeating: -1, count: capacity)
        mask = capacity - 1
        for index in entries.indices { insert(index) }
    }

    private mutating func insert(_ index: Int) {
        var bucket = Int(entries[index].hash) & mask
        while buckets[bucket] >= 0 { bucket = (bucket + 1) & mask }
        buckets[bucket] = Int32(index)
    }

    // MARK: hashing (FNV-1a over lowercase bytes)

    static let hashSeed: UInt32 = 2_166_136_261

    @inline(__always)
    static func hashStep(_ hash: UInt32, _ byte: UInt8) -> UInt32 {
        (hash ^ UInt32(byte)) &* 16_777_619
    }

    static func hash(_ bytes: [UInt8]) -> UInt32 {
        var value = hashSeed
        for byte in bytes { value = hashStep(value, byte) }
        return value
    }

    // MARK: hot-path lookup

    /// Finds the command named by `name` (case-insensitive); -1 when unknown. Allocation-free.
    func find(_ name: CapturedBytes) -> Int {
        guard name.isComplete, name.length > 0, mask > 0 else { return -1 }
        var hash = CommandTable.hashSeed
        for index in 0..<name.length { hash = CommandTable.hashStep(hash, name.lowercased(index)) }
        var bucket = Int(hash) & mask
        while true {
            let candidate = Int(buckets[bucket])
            if candidate < 0 { return -1 }
            let entry = entries[candidate]
            if entry.hash == hash, Int(entry.nameLength) == name.length,
               poolMatches(name, at: Int(entry.nameStart)) {
                return candidate
            }
            bucket = (bucket + 1) & mask
        }
    }

    /// `find(_:)` for a name still in the read buffer (the same answer for the same bytes: names
    /// longer than `CapturedBytes.capacity` are unknown there too).
    func find(_ name: UnsafeRawBufferPointer) -> Int {
        guard name.count > 0, name.count <= CapturedBytes.capacity, mask > 0 else { return -1 }
        var hash = CommandTable.hashSeed
        for byte in name { hash = CommandTable.hashStep(hash, CommandTable.lowercased(byte)) }
        var bucket = Int(hash) & mask
        while true {
            let candidate = Int(buckets[bucket])
            if candidate < 0 { return -1 }
            let entry = entries[candidate]
            if entry.hash == hash, Int(entry.nameLength) == name.count {
                let start = Int(entry.nameStart)
                var same = true
                for index in 0..<name.count where namePool[start + index] != CommandTable.lowercased(name[index]) {
                    same = false
                    break
                }
                if same { return candidate }
            }
            bucket = (bucket + 1) & mask
        }
    }

    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 { byte &- 65 < 26 ? byte | 0x20 : byte }

    /// Finds the subcommand `sub` of the container at `parent` (row "parent|sub"); -1 when unknown.
    func findSubcommand(parent: Int, _ sub: CapturedBytes) -> Int {
        guard sub.isComplete, sub.length > 0, parent >= 0, parent < entries.count else { return -1 }
        let parentEntry = entries[parent]
        let parentStart = Int(parentEntry.nameStart)
        let parentLength = Int(parentEntry.nameLength)
        var hash = CommandTable.hashSeed
        for index in 0..<parentLength { hash = CommandTable.hashStep(hash, namePool[parentStart + index]) }
        hash = CommandTable.hashStep(hash, UInt8(ascii: "|"))
        for index in 0..<sub.length { hash = CommandTable.hashStep(hash, sub.lowercased(index)) }
        let total = parentLength + 1 + sub.length
        var bucket = Int(hash) & mask
        while true {
            let candidate = Int(buckets[bucket])
            if candidate < 0 { return -1 }
            let entry = entries[candidate]
            if entry.hash == hash, Int(entry.nameLength) == total {
                let start = Int(entry.nameStart)
                var equal = namePool[start + parentLength] == UInt8(ascii: "|")
                var index = 0
                while equal, index < parentLength {
                    equal = namePool[start + index] == namePool[parentStart + index]
                    index += 1
                }
                if equal, poolMatches(sub, at: start + parentLength + 1) { return candidate }
            }
            bucket = (bucket + 1) & mask
        }
    }

    @inline(__always)
    private func poolMatches(_ name: CapturedBytes, at start: Int) -> Bool {
        for index in 0..<name.length where namePool[start + index] != name.lowercased(index) { return false }
        return true
    }

    // MARK: public queries

    /// Looks a command up by name; `"object|encoding"` names a subcommand. Case-insensitive.
    public func lookup(_ name: String) -> CommandIdentity {
        guard !buckets.isEmpty else { return .unknown }
        let bytes = Array(name.lowercased().utf8)
        let hash = CommandTable.hash(bytes)
        var bucket = Int(hash) & mask
        while true {
            let candidate = Int(buckets[bucket])
            if candidate < 0 { return .unknown }
            if entries[candidate].hash == hash, names[candidate].utf8.elementsEqual(bytes) { return .known(candidate) }
            bucket = (bucket + 1) & mask
        }
    }

    /// Lowercase name of a command ("object|encoding" for a subcommand); nil for `.unknown`.
    public func name(of command: CommandIdentity) -> String? {
        guard case .known(let index) = command, names.indices.contains(index) else { return nil }
        return names[index]
    }

    /// Everything the table knows about one command.
    public func info(_ command: CommandIdentity) -> CommandInfo? {
        guard case .known(let index) = command, entries.indices.contains(index) else { return nil }
        let entry = entries[index]
        let prefix = names[index] + "|"
        let subcommands = entry.flags.contains(.container) ? names.filter { $0.hasPrefix(prefix) }.sorted() : []
        return CommandInfo(
            name: names[index], arity: Int(entry.arity), keyPlan: entry.plan,
            isWrite: entry.flags.contains(.write),
            blocking: entry.flags.contains(.blocking) ? .always
                : entry.flags.contains(.blockingWithToken) ? .withBlockOption : .never,
            subcommands: subcommands)
    }

    /// Every command and subcommand name, in table order.
    public var commandNames: [String] { names }

    /// Number of commands and subcommands.
    public var count: Int { entries.count }
}

/// A command known to a `CommandTable` (its row), or `.unknown`.
public enum CommandIdentity: Hashable, Sendable {
    case known(Int)
    case unknown
}

/// Public description of one table row.
public struct CommandInfo: Equatable, Sendable {
    public enum Blocking: Equatable, Sendable { case never, always, withBlockOption }
    public var name: String
    /// Valkey's arity: positive = exactly, negative = at least |arity| arguments (name included).
    public var arity: Int
    public var keyPlan: KeyPlan
    public var isWrite: Bool
    public var blocking: Blocking
    /// Full names ("object|encoding") of the subcommands of a container command, sorted.
    public var subcommands: [String]
}
