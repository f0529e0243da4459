/// Classifies one request argument by argument, as the bytes stream past: which command, which
/// keys (hashed on the fly), which protocol effect. Shared by the multibulk and inline paths.
///
/// Per request it keeps only fixed-size state: the first 32 bytes of the current argument when
/// that argument matters (name, subcommand, numkeys, keyword, HELLO version, CLIENT REPLY mode,
/// script body prefix), one streaming `KeyHasher`, the first key's slot, and one "deferred" key.
///
/// Key bookkeeping mirrors the order of Valkey's key procedures:
/// ```
///   definite keys   argv[rangeFirst ... rangeLast] by rangeStep, known as soon as the argument
///                   that decides them has ended (argc is known from the header up front)
///   deferred key    one argument whose key-ness is only settled later: ZUNIONSTORE's destination
///                   (valid numkeys), SORT/GEORADIUS's STORE target (the LAST one wins), MIGRATE's
///                   argv[3] (no KEYS option). It is hashed when it passes and, if still valid at
///                   the end, counted after the definite keys (Valkey lists it last).
/// ```
/// Every decision taken at the end of argument i only affects arguments > i.
struct RequestClassifier {
    private enum HashTarget: UInt8 { case none, definite, deferred }

    private let table: CommandTable

    private var argc = 0
    private var index = 0
    private var argumentLength = 0
    /// The (sub)command as far as it is known: its row in the table and the row itself.
    private var command: (index: Int, entry: CommandTable.Entry)?

    private var capture = CapturedBytes()
    private var capturing = false
    private var target = HashTarget.none
    private var hasher = KeyHasher()

    private var rangeFirst = 0
    /// No definite keys: an empty range (last < first), which the per-argument test needs no
    /// other check for.
    private var rangeLast = -1
    private var rangeStep = 1
    private var keys = KeySlots()

    private var deferredIndex: Int?
    private var deferredSlot: HashSlot?
    private var deferredActive = false

    /// The argument that holds numkeys, if the plan has one.
    private var countIndex: Int?
    /// The next argument the keyword loop examines, if any.
    private var tokenIndex: Int?
    private var argument3Empty = false

    private var helloVersion: Int?
    private var replyMode: ClientReplyMode?
    private var shebang = false
    private var blockOption = false

    init(table: CommandTable) {
        self.table = table
    }

    /// Starts a request of `argumentCount` arguments.
    mutating func begin(argumentCount: Int) {
        argc = argumentCount
        index = 0
        command = nil
        rangeFirst = 0
        rangeLast = -1
        rangeStep = 1
        keys = KeySlots()
        deferredIndex = nil
        deferredSlot = nil
        deferredActive = false
        countIndex = nil
        tokenIndex = nil
        argument3Empty = false
        helloVersion = nil
        replyMode = nil
        shebang = false
        blockOption = false
    }

    /// Starts argument `index` (arguments arrive in order).
    @inline(__always)
    mutating func beginArgument() {
        argumentLength = 0
        capturing = Self.needsCapture(index: index, tokenIndex: tokenIndex, countIndex: countIndex, entry: command?.entry)
        if capturing { capture.reset() }
        if index >= rangeFirst, index <= rangeLast, (index - rangeFirst) % rangeStep == 0 {
            target = .definite
            hasher = KeyHasher()
        } else if index == deferredIndex {
            target = .deferred
            hasher = KeyHasher()
        } else {
            target = .none
        }
    }

    /// Static, as `effect` below: called from mutating methods on the hot path, an instance method
    /// would make the compiler copy the whole classifier (276 bytes) for each call.
    private static func needsCapture(index: Int, tokenIndex: Int?, countIndex: Int?, entry: CommandTable.Entry?) -> Bool {
        if index == 0 || index == tokenIndex || index == countIndex { return true }
        guard let entry else { return false }
        switch index {
        case 1:
            return entry.flags.contains(.container) || entry.special == .hello || entry.special == .evalBody
        case 2:
            return entry.special == .clientReply
        default:
            return false
        }
    }

    /// Feeds the next bytes of the current argument.
    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        argumentLength &+= bytes.count
        if capturing { capture.append(bytes) }
        if target != .none { hasher.update(bytes) }
    }

    /// Ends the current argument and takes every decision it allows.
    mutating func endArgument() {
        switch target {
        case .none: break
        case .definite: keys.add(hasher.slot)
        case .deferred: deferredSlot = hasher.slot
        }
        let current = index
        index += 1
        if current == 0 {
            let row = table.find(capture)
            if row >= 0 {
                let found = table.entries[row]
                command = (row, found)
                activate(found.plan)
            }
            return
        }
        guard let (row, entry) = command else { return }
        if current == 1 {
            if entry.flags.contains(.container) {
                let subRow = table.findSubcommand(parent: row, capture)
                if subRow >= 0 {
                    let sub = table.entries[subRow]
                    command = (subRow, sub)
                    activate(sub.plan)
                } else {
                    command = nil
                }
                return
            }
            if entry.special == .hello { helloVersion = capture.strictInteger() }
            if entry.special == .evalBody { shebang = capture.hasPrefix("#!") }
        } else if current == 2, entry.special == .clientReply {
            replyMode = capture.equals("on") ? .on : capture.equals("off") ? .off : capture.equals("skip") ? .skip : nil
        }
        if current == 3, case .migrate = entry.plan { argument3Empty = argumentLength == 0 }
        if current == countIndex { applyKeyCount(entry.plan) }
        if current == tokenIndex { applyToken(at: current, plan: entry.plan) }
    }

    private mutating func setRange(first: Int, last: Int, step: Int) {
        rangeFirst = first
        rangeLast = last
        rangeStep = max(step, 1)
    }

    /// Arms the key plan once the (sub)command is known, at the end of argv[0] or argv[1].
    private mutating func activate(_ plan: KeyPlan) {
        switch plan {
        case .none, .subcommand:
            break
        case .range(let first, let last, let step):
            if let range = KeyPlan.legacyRange(first: first, last: last, step: step, argumentCount: argc) {
                setRange(first: range.first, last: range.last, step: range.step)
            }
        case .keyCount(let count, _, _, let store):
            countIndex = count
            if store > 0 { deferredIndex = store }
        case .sort:
            if argc > 1 { setRange(first: 1, last: 1, step: 1) }
            tokenIndex = 2
        case .sortReadOnly:
            if argc > 1 { setRange(first: 1, last: 1, step: 1) }
        case .georadius:
            if argc > 1 { setRange(first: 1, last: 1, step: 1) }
            tokenIndex = 5
        case .xread:
            tokenIndex = 1
        case .migrate:
            deferredIndex = 3
            deferredActive = argc > 3
            tokenIndex = argc > 6 ? 6 : nil
        }
    }

    /// `genericGetKeys`: numkeys must be >= 1 and fit in the remaining arguments, else no keys.
    private mutating func applyKeyCount(_ plan: KeyPlan) {
        guard case .keyCount(_, let firstKey, let step, let store) = plan else { return }
        let count = capture.atoi()
        let fits = (argc - firstKey) / max(step, 1)
        guard count >= 1, count <= fits else {
            deferredActive = false
            return
        }
        setRange(first: firstKey, last: firstKey + (count - 1) * step, step: step)
        deferredActive = store > 0
    }

    /// One step of the keyword loops of `sortGetKeys`, `georadiusGetKeys`, `xreadGetKeys` and
    /// `migrateGetKeys`; sets the next argument to examine (`tokenIndex`).
    private mutating func applyToken(at position: Int, plan: KeyPlan) {
        tokenIndex = nil
        switch plan {
        case .sort:
            if capture.equals("limit") {
                tokenIndex = position + 3
            } else if capture.equals("get") || capture.equals("by") {
                tokenIndex = position + 2
            } else {
                if capture.equals("store"), position + 1 < argc {
                    // The store target is examined as a keyword too (Valkey does not skip it).
                    deferredIndex = position + 1
                    deferredActive = true
                }
                tokenIndex = position + 1
            }
        case .georadius:
            if capture.equals("store") || capture.equals("storedist"), position + 1 < argc {
                deferredIndex = position + 1
                deferredActive = true
                tokenIndex = position + 2
            } else {
                tokenIndex = position + 1
            }
        case .xread:
            if capture.equals("block") {
                blockOption = true
                tokenIndex = position + 2
            } else if capture.equals("count") {
                tokenIndex = position + 2
            } else if capture.equals("group") {
                tokenIndex = position + 3
            } else if capture.equals("noack") {
                tokenIndex = position + 1
            } else if capture.equals("streams") {
                let remaining = argc - position - 1
                if remaining > 0, remaining % 2 == 0 {
                    setRange(first: position + 1, last: position + remaining / 2, step: 1)
                }
            }
        case .migrate:
            if capture.equals("keys") {
                deferredActive = false
                if argument3Empty { setRange(first: position + 1, last: argc - 1, step: 1) }
            } else if capture.equals("auth") {
                tokenIndex = position + 2
            } else if capture.equals("auth2") {
                tokenIndex = position + 3
            } else {
                tokenIndex = position + 1
            }
        default:
            break
        }
    }

    /// Builds the result once every argument has ended.
    mutating func finish(format: RequestFormat, wireBytes: Int, countedBytes: Int) -> ScannedRequest {
        guard let (row, entry) = command else {
            return ScannedRequest(
                format: format, wireBytes: wireBytes, countedBytes: countedBytes, argumentCount: argc,
                command: .unknown, arityIsValid: false, keys: .none, keyCount: 0, effect: .ordinary,
                isBlocking: false, isWrite: false)
        }
        if deferredActive, let deferredSlot { keys.add(deferredSlot) }
        let arityIsValid = entry.accepts(argumentCount: argc)
        return ScannedRequest(
            format: format, wireBytes: wireBytes, countedBytes: countedBytes, argumentCount: argc,
            command: .known(row), arityIsValid: arityIsValid, keys: keys.outcome, keyCount: keys.count,
            effect: arityIsValid
                ? Self.effect(of: entry, argc: argc, helloVersion: helloVersion, replyMode: replyMode, shebang: shebang) : .ordinary,
            isBlocking: entry.flags.contains(.blocking) || (entry.flags.contains(.blockingWithToken) && blockOption),
            isWrite: entry.flags.contains(.write))
    }

    private static func effect(
        of entry: CommandTable.Entry, argc: Int, helloVersion: Int?, replyMode: ClientReplyMode?, shebang: Bool
    ) -> CommandEffect {
        let channels = argc - 1
        switch entry.special {
        case .none: return .ordinary
        case .multi: return .multi
        case .exec: return .exec
        case .discard: return .discard
        case .subscribe: return .subscribe(.classic, channels: channels)
        case .psubscribe: return .subscribe(.pattern, channels: channels)
        case .ssubscribe: return .subscribe(.sharded, channels: channels)
        case .unsubscribe: return .unsubscribe(.classic, channels: channels)
        case .punsubscribe: return .unsubscribe(.pattern, channels: channels)
        case .sunsubscribe: return .unsubscribe(.sharded, channels: channels)
        case .hello: return .hello(protocolVersion: helloVersion)
        case .reset: return .reset
        case .quit: return .quit
        case .monitor: return .monitor
        case .clientReply: return replyMode.map { .clientReply($0) } ?? .ordinary
        case .replicationHandshake: return .replicationHandshake
        case .evalBody: return .script(shebang: shebang)
        case .evalSHA: return .script(shebang: nil)
        case .function: return .script(shebang: true)
        case .resetStat: return .resetStat
        case .roleChange: return .roleChange
        case .slotOwnership: return .slotOwnership
        case .slotMigrationHandshake: return .slotMigrationHandshake
        case .replicaConfiguration: return .replicaConfiguration
        }
    }
}
