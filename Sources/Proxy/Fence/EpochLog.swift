import Accounting
import Foundation
import Logging

/// The epoch log: closed epochs appended as JSON lines (`fence.epoch_log`), so that they survive a
/// restart. A failed append is logged, never thrown: the fence goes on.
struct EpochLog {
    let path: String
    let logger: Logger

    func append(_ epoch: EpochRecord) {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            var line = try encoder.encode(epoch)
            line.append(UInt8(ascii: "\n"))
            if !FileManager.default.fileExists(atPath: path) {
                _ = FileManager.default.createFile(atPath: path, contents: nil)
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: line)
        } catch {
            logger.error("cannot append to the epoch log", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }
}
