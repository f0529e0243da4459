import Foundation
import Subprocess
import SystemPackage
import Testing

/// Runs the built `slotwarden` executable, as an operator would.
public enum SlotwardenBinary {
    /// The test bundle sits next to the products of the same build.
    public static var path: String? {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("slotwarden").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    public struct Outcome: Sendable {
        public var status: Int32
        public var output: String
        public var error: String
    }

    /// Output beyond this fails the run: no command here prints more than a reconciliation.
    static let outputLimit = 16 << 20

    /// Runs `slotwarden arguments…` to its end and returns its exit status (128 + the signal if a
    /// signal ended it) and what it printed.
    public static func run(_ arguments: [String]) async throws -> Outcome {
        try await runExecutable(try #require(path, "the slotwarden executable was not built"), arguments)
    }

    /// Runs any `executable` the same way (`valkey-cli`, say, to compare with).
    public static func runExecutable(_ executable: String, _ arguments: [String]) async throws -> Outcome {
        let result = try await Subprocess.run(
            .path(FilePath(executable)), arguments: Arguments(arguments),
            output: .string(limit: outputLimit), error: .string(limit: outputLimit))
        let status: Int32
        switch result.terminationStatus {
        case .exited(let code): status = code
        case .signaled(let signal): status = 128 + signal
        }
        return Outcome(status: status, output: result.standardOutput, error: result.standardError)
    }
}
