/// Key positions and the few flags the proxy needs, for every command of the node.
///
/// Immutable after init and `Sendable`: one table is shared by every connection. Two sources:
/// `CommandTable.builtIn` (hand-maintained, Valkey 8.1 and 9.1) and `init(commandReply:)` (the
/// node's own `COMMAND` reply, preferred at runtime).
///
/// Lookup layout (no allocation on the hot path):
/// ```
///   entries   [Entry]      trivially copyable rows; subcommands are rows named "parent|sub"
///   namePool  [UInt8]      lowercase names back to back; Entry.nameStart/nameLength point here
///   slots     [IndexSlot]  open addressing (linear probing) on the name's NameKey: its first 16
///                          lowercase bytes as two words, and its length; entry -1 = empty;
///                          capacity a power of two >= 2 x entries
/// ```
/// A lookup lowercases eight bytes at a time, hashes two words and compares two words: every
/// request looks its command up. Only names longer than 16 bytes compare their rest bytewise.
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
        case evalBody, evalSHA, function, resetStat, roleChange, slotOwnership, slotMigrationHandshake, replicaConfiguration

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
            case "cluster|setslot", "cluster|migrateslots", "cluster|addslots", "cluster|addslotsrange", "cluster|delslots",
                "cluster|delslotsrange", "cluster|flushslots":
                self = .slotOwnership
            case "cluster|syncslots": self = .slotMigrationHandshake
            case "replconf": self = .replicaConfiguration
            default: self = .none
            }
        }
    }

    /// One command or subcommand; trivially copyable so reading it costs no retain.
    struct Entry: Sendable {
        var nameStart: Int32
        var nameLength: Int32
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
    private var slots: [IndexSlot] = []
    private var mask = 0

    /// One bucket of the index: the key of an entry's name, and the entry (-1: empty bucket).
    struct IndexSlot: Sendable {
        var key: NameKey
        var entry: Int32

        static let empty = IndexSlot(key: NameKey(low: 0, high: 0, length: 0), entry: -1)
    }

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
                nameStart: Int32(namePool.count), nameLength: Int32(bytes.count), arity: Int32(clamping: definition.arity),
                plan: plan, flags: flags, special: Special(name: name)))
            names.append(name)
            namePool.append(contentsOf: bytes)
            rebuildIfNeeded()
        }
        rebuildIndex()
    }

    private mutating func rebuildIfNeeded() {
        if entries.count * 2 > slots.count { rebuildIndex() } else { insert(entries.count - 1) }
    }

    private mutating func rebuildIndex() {
        var capacity = 16
        while capacity < entries.count * 2 { capacity <<= 1 }
        slots = Array(repeating: .empty, count: capacity)
        mask = capacity - 1
        for index in entries.indices { insert(index) }
    }

    private mutating func insert(_ index: Int) {
        let entry = entries[index]
        let key = namePool.withUnsafeBytes { NameKey($0, at: Int(entry.nameStart), length: Int(entry.nameLength)) }
        var bucket = key.bucket(mask: mask)
        while slots[bucket].entry >= 0 { bucket = (bucket + 1) & mask }
        slots[bucket] = IndexSlot(key: key, entry: Int32(index))
    }

    // MARK: hot-path lookup

    /// Finds the command named by `name` (case-insensitive); -1 when unknown. Allocation-free.
    func find(_ name: CapturedBytes) -> Int {
        guard name.isComplete else { return -1 }
        return name.withCapturedBytes { find($0) }
    }

    /// `find(_:)` for a name still in the read buffer (the same answer for the same bytes: names
    /// longer than `CapturedBytes.capacity` are unknown there too).
    func find(_ name: UnsafeRawBufferPointer) -> Int {
        find(in: name, at: 0, length: name.count)
    }

    /// `find(_:)` for the `length` bytes at `start` in `buffer`. The bytes after the name may be read
    /// (and ignored): a name inside a larger read is taken a word at a time. Returns the command's row,
    /// the index that `CommandIdentity.known` carries, or -1. Public so that the micro-benchmarks,
    /// which build in release without `@testable`, measure the lookup that every request makes.
    @inline(__always)
    public func find(in buffer: UnsafeRawBufferPointer, at start: Int, length: Int) -> Int {
        guard length <= CapturedBytes.capacity else { return -1 }
        return probe(buffer, at: start, length: length)
    }

    /// The entry named by the `length` bytes at `start` in `buffer` (any length), or -1.
    @inline(__always)
    private func probe(_ buffer: UnsafeRawBufferPointer, at start: Int, length: Int) -> Int {
        guard length > 0, mask > 0 else { return -1 }
        let key = NameKey(buffer, at: start, length: length)
        var bucket = key.bucket(mask: mask)
        while true {
            let slot = slots[bucket]
            if slot.entry < 0 { return -1 }
            if slot.key == key, length <= NameKey.keptBytes || restMatches(buffer, at: start, length: length, entry: Int(slot.entry)) {
                return Int(slot.entry)
            }
            bucket = (bucket + 1) & mask
        }
    }

    /// Whether the name's bytes after the first `NameKey.keptBytes` equal its entry's (lowercase).
    private func restMatches(_ buffer: UnsafeRawBufferPointer, at start: Int, length: Int, entry: Int) -> Bool {
        let poolStart = Int(entries[entry].nameStart)
        for index in NameKey.keptBytes..<length
        where namePool[poolStart + index] != CommandTable.lowercased(buffer[start + index]) {
            return false
        }
        return true
    }

    /// ASCII lowercase of one byte; the one rule every case-insensitive comparison here uses
    /// (`NameKey.lowercased` applies it eight bytes at a time, and a test holds them equal).
    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 { byte &- 65 < 26 ? byte | 0x20 : byte }

    /// Finds the subcommand `sub` of the container at `parent` (row "parent|sub"); -1 when unknown.
    func findSubcommand(parent: Int, _ sub: CapturedBytes) -> Int {
        guard sub.isComplete, sub.length > 0, parent >= 0, parent < entries.count else { return -1 }
        let parentEntry = entries[parent]
        let parentName = namePool[Int(parentEntry.nameStart)..<Int(parentEntry.nameStart + parentEntry.nameLength)]
        let length = parentName.count + 1 + sub.length
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: length) { buffer in
            var index = 0
            for byte in parentName {
                buffer[index] = byte
                index += 1
            }
            buffer[index] = UInt8(ascii: "|")
            index += 1
            sub.withCapturedBytes { bytes in
                for byte in bytes {
                    buffer[index] = byte
                    index += 1
                }
            }
            return probe(UnsafeRawBufferPointer(buffer), at: 0, length: length)
        }
    }

    // MARK: public queries

    /// Looks a command up by name; `"object|encoding"` names a subcommand. Case-insensitive.
    public func lookup(_ name: String) -> CommandIdentity {
        guard !slots.isEmpty else { return .unknown }
        let bytes = Array(name.lowercased().utf8)
        let key = bytes.withUnsafeBytes { NameKey($0, at: 0, length: $0.count) }
        var bucket = key.bucket(mask: mask)
        while true {
            let candidate = Int(slots[bucket].entry)
            if candidate < 0 { return .unknown }
            if slots[bucket].key == key, names[candidate].utf8.elementsEqual(bytes) { return .known(candidate) }
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

/// What the command index compares: the first `keptBytes` bytes of a name, ASCII-lowercased and
/// zero-padded, as two little-endian words, and the name's full length.
struct NameKey: Equatable, Sendable {
    static let keptBytes = 16

    var low: UInt64
    var high: UInt64
    var length: Int

    init(low: UInt64, high: UInt64, length: Int) {
        self.low = low
        self.high = high
        self.length = length
    }

    /// The key of the `length` bytes at `start` in `buffer`, read a word at a time where the buffer
    /// holds a word there (the bytes past the name are masked off), else byte by byte.
    @inline(__always)
    init(_ buffer: UnsafeRawBufferPointer, at start: Int, length: Int) {
        let readable = buffer.count &- start
        var low: UInt64 = 0
        var high: UInt64 = 0
        if length >= 8 {
            low = buffer.loadUnaligned(fromByteOffset: start, as: UInt64.self)
            if length >= 16 {
                high = buffer.loadUnaligned(fromByteOffset: start &+ 8, as: UInt64.self)
            } else if readable >= 16 {
                high = buffer.loadUnaligned(fromByteOffset: start &+ 8, as: UInt64.self) & Self.firstBytes(length &- 8)
            } else {
                // The name's last eight bytes, shifted so that those after the first eight land at the bottom.
                high = buffer.loadUnaligned(fromByteOffset: start &+ length &- 8, as: UInt64.self) >> UInt64(8 * (16 - length))
            }
            high = Self.lowercased(high)
        } else if readable >= 8 {
            low = buffer.loadUnaligned(fromByteOffset: start, as: UInt64.self) & Self.firstBytes(length)
        } else {
            for index in 0..<length { low |= UInt64(buffer[start &+ index]) &<< UInt64(8 * index) }
        }
        self.init(low: Self.lowercased(low), high: high, length: length)
    }

    /// A mask of the first `count` (0–7) bytes of a little-endian word.
    @inline(__always)
    private static func firstBytes(_ count: Int) -> UInt64 { (1 &<< UInt64(8 * count)) &- 1 }

    /// Sets bit 5 of every byte from `A` to `Z`, eight bytes at once: a byte's high bit, after the
    /// two additions on its low seven bits, says whether it is at least `A` and whether it is
    /// above `Z`; bytes with the high bit set (not ASCII) stay as they are.
    @inline(__always)
    static func lowercased(_ word: UInt64) -> UInt64 {
        let lowSeven = word & 0x7F7F_7F7F_7F7F_7F7F
        let atLeastA = lowSeven &+ 0x3F3F_3F3F_3F3F_3F3F
        let aboveZ = lowSeven &+ 0x2525_2525_2525_2525
        let upper = atLeastA & ~aboveZ & ~word & 0x8080_8080_8080_8080
        return word | (upper &>> 2)
    }

    /// The bucket of the two words (the length is compared, not hashed: names that share their
    /// first 16 bytes are rare).
    @inline(__always)
    func bucket(mask: Int) -> Int {
        let mixed = (low &* 0x9E37_79B9_7F4A_7C15) ^ (high &* 0xC2B2_AE3D_27D4_EB4F)
        return Int(truncatingIfNeeded: mixed &>> 32) & mask
    }
}
