import RESP
import Testing

@Suite("ReplicationStreamScanner: the primary's side of a replication link")
struct ReplicationStreamScannerTests {
    let mark = String(repeating: "0123456789", count: 4)

    /// What a diskless full sync sends: the answer, keep-alives, the snapshot between marks (with
    /// near-misses of the mark inside), then commands.
    var disklessSync: [UInt8] {
        let payload = "REDIS0011" + String(mark.prefix(39)) + "x" + String(mark.prefix(5)) + "\u{0}\u{1}"
        return Array("\n+FULLRESYNC \(String(repeating: "a", count: 40)) 100\r\n\n\n$EOF:\(mark)\r\n\(payload)\(mark)".utf8)
            + request("SET", "k", "v") + request("MULTI") + request("SET", "{t}a", "1") + request("EXEC") + request("PING")
    }

    struct Summary: Equatable {
        var resync: [ReplicationStreamScanner.Item] = []
        var snapshotBytes = 0
        var commands: [[String]] = []
        var slots: [KeyOutcome] = []
        var commandBytes = 0
    }

    func summarize(_ results: [ScanResult<ReplicationStreamScanner.Item>]) -> Summary {
        var summary = Summary()
        for item in frames(results) {
            switch item {
            case .fullResync, .partialResync: summary.resync.append(item)
            case .snapshot(let bytes): summary.snapshotBytes += bytes
            case .command(let request):
                summary.commands.append([CommandTable.builtIn.name(of: request.command) ?? "?"])
                summary.slots.append(request.keys)
                summary.commandBytes += request.wireBytes
            }
        }
        return summary
    }

    @Test("a diskless full sync: the offset, the whole snapshot, then every command with its slot")
    func diskless() {
        let stream = self.disklessSync
        let summary = summarize(scanReplicationStream(stream))
        #expect(summary.resync == [.fullResync(offset: 100)])
        #expect(summary.commands == [["set"], ["multi"], ["set"], ["exec"], ["ping"]])
        #expect(summary.slots[0] == .slot(HashSlot(key: "k")))
        #expect(summary.slots[2] == .slot(HashSlot(key: "{t}a")))
        #expect(summary.slots[1] == .none)
        let answer = "+FULLRESYNC ".utf8.count + 40 + " 100\r\n".utf8.count
        // Three keep-alives, the header, the payload (with its near-misses of the mark), the mark.
        #expect(summary.snapshotBytes == 3 + "$EOF:\(mark)\r\n".utf8.count + "REDIS0011".utf8.count + 39 + 1 + 5 + 2 + 40)
        #expect(answer + summary.snapshotBytes + summary.commandBytes == stream.count)
    }

    @Test("every split of the input gives the same items")
    func everySplit() {
        let stream = self.disklessSync
        let whole = summarize(scanReplicationStream(stream))
        for split in 1..<stream.count {
            #expect(summarize(scanReplicationStream(stream, chunks: [split])) == whole, "split at \(split)")
        }
        // And byte by byte.
        #expect(summarize(scanReplicationStream(stream, chunks: Array(repeating: 1, count: stream.count))) == whole)
    }

    @Test("a disk-based snapshot is a bulk without a trailing CRLF")
    func diskBased() {
        let stream = Array("+FULLRESYNC \(String(repeating: "b", count: 40)) 7\r\n$5\r\nabcde".utf8) + request("DEL", "x")
        let summary = summarize(scanReplicationStream(stream, chunks: [3, 50, 2]))
        #expect(summary.resync == [.fullResync(offset: 7)])
        #expect(summary.snapshotBytes == "$5\r\nabcde".utf8.count)
        #expect(summary.commands == [["del"]])
    }

    @Test("a partial resync goes straight to commands")
    func partial() {
        let stream = Array("+CONTINUE \(String(repeating: "c", count: 40))\r\n".utf8) + request("INCR", "n")
        let summary = summarize(scanReplicationStream(stream))
        #expect(summary.resync == [.partialResync])
        #expect(summary.commands == [["incr"]])
    }

    @Test("an error answer or a bad snapshot header is malformed, and stays so")
    func malformed() {
        #expect(scanReplicationStream(Array("-NOMASTERLINK Can't SYNC\r\n".utf8)).last == .malformed(.unexpectedReplicationPreamble))
        let badHeader = Array("+FULLRESYNC \(String(repeating: "d", count: 40)) 1\r\n#5\r\n".utf8)
        #expect(scanReplicationStream(badHeader).last == .malformed(.unexpectedReplicationPreamble))
        let shortMark = Array("+FULLRESYNC \(String(repeating: "d", count: 40)) 1\r\n$EOF:abc\r\n".utf8)
        #expect(scanReplicationStream(shortMark).last == .malformed(.unexpectedReplicationPreamble))
    }
}
