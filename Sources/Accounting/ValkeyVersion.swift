/// A Valkey server version, as `INFO server` reports it in `valkey_version`.
public struct ValkeyVersion: Comparable, Hashable, Sendable, CustomStringConvertible, Codable {
    public var major: Int
    public var minor: Int
    public var patch: Int

    public init(major: Int, minor: Int, patch: Int) {
        self.major = major
        self.minor = minor
        self.patch = patch
    }

    /// Parses `8.1.8`, `9.1.2`, `8.0` (patch 0); nil for anything else.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (2...3).contains(parts.count),
            let major = Int(parts[0]), let minor = Int(parts[1]),
            major >= 0, minor >= 0
        else { return nil }
        let patch = parts.count == 3 ? Int(parts[2]) : 0
        guard let patch, patch >= 0 else { return nil }
        self.init(major: major, minor: minor, patch: patch)
    }

    /// Finds `valkey_version:` (or `redis_version:` for servers that only report that) in `INFO server`.
    public init?(infoServer: String) {
        var fallback: ValkeyVersion?
        for line in infoServer.split(whereSeparator: \.isNewline) {
            if line.hasPrefix("valkey_version:") {
                if let version = ValkeyVersion(line.dropFirst("valkey_version:".count)) {
                    self = version
                    return
                }
            } else if line.hasPrefix("redis_version:") {
                fallback = ValkeyVersion(line.dropFirst("redis_version:".count))
            }
        }
        guard let fallback else { return nil }
        self = fallback
    }

    public static func < (lhs: ValkeyVersion, rhs: ValkeyVersion) -> Bool {
        (lhs.major, lhs.minor, lhs.patch) < (rhs.major, rhs.minor, rhs.patch)
    }

    /// 8.0.0–8.0.2 and 8.1.0 abort on the first propagated write after a replica's promotion while
    /// slot stats are on and no replica is attached yet (Valkey issue #1912, fixed in 8.0.3 and 8.1.1
    /// by PR #1950): the `SELECT` that write emits is subtracted from a slot counter that the
    /// promotion zeroed. The fence guards these versions around every promotion.
    public var abortsOnFirstWriteAfterPromotion: Bool {
        guard major == 8 else { return false }
        return (minor == 0 && patch <= 2) || (minor == 1 && patch == 0)
    }

    public var description: String { "\(major).\(minor).\(patch)" }
}
