/// Where the keys of a command are, mirroring `db.c:getKeysFromCommand`: a native `getkeys_proc`
/// when the command has one, the legacy first/last/step range otherwise.
///
/// Positions are argv indices (argv[0] is the command name). Keys are reported in Valkey's order,
/// which matters only for `KeyOutcome.crossSlot(first:)`.
public enum KeyPlan: Equatable, Sendable {
    /// No keys (keyless command, or a range of 0/0/0).
    case none
    /// `getKeysUsingLegacyRangeSpec`: keys at first, first+step, ... up to last; a negative `last`
    /// counts from argc (-1 = last argument). When `last` reaches past argc there are no keys.
    case range(first: Int, last: Int, step: Int)
    /// `genericGetKeys(storeIndex, countIndex, firstKey, step)`: `numkeys = atoi(argv[countIndex])`,
    /// keys at firstKey, firstKey+step, ...; `numkeys < 1` or more keys than arguments → no keys at all.
    /// `storeIndex` (0 = none) is a destination key appended after the others (ZUNIONSTORE & co).
    case keyCount(countIndex: Int, firstKey: Int, step: Int, storeIndex: Int)
    /// `sortGetKeys`: argv[1], plus the argument after the last `STORE` (skipping `LIMIT a b`, `GET x`, `BY x`).
    case sort
    /// `sortROGetKeys`: argv[1] only.
    case sortReadOnly
    /// `georadiusGetKeys`: argv[1], plus the argument after the last `STORE`/`STOREDIST` at index >= 5.
    case georadius
    /// `xreadGetKeys`: options from argv[1] up to `STREAMS`; the first half of what follows.
    case xread
    /// `migrateGetKeys`: argv[3], or everything after `KEYS` when argv[3] is empty.
    case migrate
    /// A container command (OBJECT, CLIENT, XINFO ...): the plan of the subcommand named by argv[1].
    case subcommand

    /// `getKeysUsingLegacyRangeSpec` for a request of `argumentCount` arguments: the positions of
    /// `.range(first, last, step)` with a negative `last` resolved, or nil when it names no key (a
    /// position at or past argc means no keys at all).
    static func legacyRange(first: Int, last: Int, step: Int, argumentCount: Int) -> (first: Int, last: Int, step: Int)? {
        let absoluteLast = last < 0 ? argumentCount + last : last
        guard first > 0, absoluteLast < argumentCount else { return nil }
        return (first, absoluteLast, max(step, 1))
    }

    /// The native plan Valkey's `db.c` uses for `name` (lowercase), or nil when the command has no
    /// native key procedure (or only one that reports key flags, like SET and BITFIELD).
    static func native(for name: String) -> KeyPlan? {
        switch name {
        case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro", "blmpop", "bzmpop":
            return .keyCount(countIndex: 2, firstKey: 3, step: 1, storeIndex: 0)
        case "zunionstore", "zinterstore", "zdiffstore":
            return .keyCount(countIndex: 2, firstKey: 3, step: 1, storeIndex: 1)
        case "zunion", "zinter", "zdiff", "zintercard", "sintercard", "lmpop", "zmpop":
            return .keyCount(countIndex: 1, firstKey: 2, step: 1, storeIndex: 0)
        case "sort": return .sort
        case "sort_ro": return .sortReadOnly
        case "georadius", "georadiusbymember": return .georadius
        case "xread", "xreadgroup": return .xread
        case "migrate": return .migrate
        default: return nil
        }
    }
}
