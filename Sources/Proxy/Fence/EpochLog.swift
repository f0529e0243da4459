import Accounting
import Foundation
import Logging

/// The epoch log: closed epochs appended as JSON lines (`fence.epoch_log`), so that they survive a
/// restart, and so that a restarted slotwarden goes on numbering its epochs after the last one. A
/// failed append is logged, never thrown: the fence goes on.
public struct EpochLog {
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

    /// The id of the last epoch in the log at `path`: nil when there is no log or no record in it. Reads
    /// from the end (a record holds up to one row per slot, and the log only grows); a last line cut
    /// short by a crash is skipped.
    public static func lastEpochID(path: String) -> UInt64? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        struct Identified: Decodable { var id: UInt64 }
        let newline = UInt8(ascii: "\n")
        guard var start = try? handle.seekToEnd() else { return nil }
        var tail = Data()
        while start > 0 {
            let from = start - min(start, 1 << 16)
            guard (try? handle.seek(toOffset: from)) != nil, let chunk = try? handle.read(upToCount: Int(start - from)) else { return nil }
            tail = chunk + tail
            start = from
            // Every line but the first of `tail` is whole (or the first is, once the file's start is read).
            let lines = tail.split(separator: newline)
            for line in lines.dropFirst(start > 0 ? 1 : 0).reversed() {
                if let record = try? JSONDecoder().decode(Identified.self, from: line) { return record.id }
            }
        }
        return nil
    }
}
