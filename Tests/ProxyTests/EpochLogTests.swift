import Foundation
import Proxy
import Testing

@Suite("epoch log")
struct EpochLogTests {
    func log(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("epochs-\(UUID().uuidString).jsonl").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("the last id is read from the end, past a line cut short and across reads of 64 KiB")
    func lastID() throws {
        #expect(EpochLog.lastEpochID(path: "/nonexistent/epochs.jsonl") == nil)
        #expect(EpochLog.lastEpochID(path: try log("")) == nil)
        #expect(EpochLog.lastEpochID(path: try log("{\"id\":1}\n{\"id\":2}\n")) == 2)
        #expect(EpochLog.lastEpochID(path: try log("{\"id\":1}\n{\"id\":2}\n{\"id\":3,\"closingSl")) == 2, "a crash mid-append")
        let wide = "{\"id\":7,\"pad\":\"" + String(repeating: "x", count: 200_000) + "\"}\n"
        #expect(EpochLog.lastEpochID(path: try log("{\"id\":6}\n" + wide)) == 7)
        #expect(EpochLog.lastEpochID(path: try log(wide + "{\"id\":8,\"pad\":\"" + String(repeating: "y", count: 70_000))) == 7)
    }
}
