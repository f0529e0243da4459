#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The bearer token that mutating endpoints require. Its text never appears in a description, so a
/// token that reaches a log line by accident prints as `<redacted>`.
public struct AdminToken: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    private let bytes: [UInt8]

    public init?(_ text: some StringProtocol) {
        let trimmed = text.trimmingWhitespace()
        guard !trimmed.isEmpty else { return nil }
        bytes = Array(trimmed.utf8)
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }

    /// Compares in time that depends only on the lengths, never on where the first difference is.
    public func matches(_ candidate: some StringProtocol) -> Bool {
        Self.constantTimeEqual(bytes, Array(candidate.utf8))
    }

    static func constantTimeEqual(_ expected: [UInt8], _ candidate: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: expected.count ^ candidate.count)
        // Walk the expected token's length whatever the candidate's, so a short guess is not faster.
        for index in 0..<expected.count {
            let other = index < candidate.count ? candidate[index] : ~expected[index]
            difference |= expected[index] ^ other
        }
        return difference == 0 && expected.count == candidate.count
    }

    /// Reads the token from a file (first line, whitespace trimmed) or an environment variable.
    /// Returns nil when neither is configured.
    public static func load(file: String?, environmentVariable: String?, environment: [String: String]) throws(AdminStartupError)
        -> AdminToken?
    {
        if let file {
            guard let text = readFile(file) else {
                throw AdminStartupError("admin.token_file: cannot read '\(file)'")
            }
            guard let token = AdminToken(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "") else {
                throw AdminStartupError("admin.token_file: '\(file)' holds no token")
            }
            return token
        }
        if let environmentVariable {
            guard let value = environment[environmentVariable], let token = AdminToken(value) else {
                throw AdminStartupError("admin.token_env: the environment variable \(environmentVariable) is unset or empty")
            }
            return token
        }
        return nil
    }

    private static func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[..<count])
            if bytes.count > 1 << 16 { return nil }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The admin service will not start: the message says why.
public struct AdminStartupError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Whether a listen host only accepts connections from this machine.
public func isLoopbackHost(_ host: String) -> Bool {
    if host == "localhost" || host == "::1" || host == "[::1]" { return true }
    let parts = host.split(separator: ".", omittingEmptySubsequences: false)
    return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
}

extension StringProtocol {
    func trimmingWhitespace() -> Substring {
        let text = Substring(self)
        guard let first = text.firstIndex(where: { !$0.isWhitespace }),
            let last = text.lastIndex(where: { !$0.isWhitespace })
        else { return "" }
        return text[first...last]
    }
}
