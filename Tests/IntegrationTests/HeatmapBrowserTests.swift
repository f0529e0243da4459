import Accounting
import Admin
import Fleet
import Foundation
import LocalCluster
import Proxy
import RESP
import Subprocess
import SystemPackage
import Testing
import TestSupport

/// The heat map in a real browser: headless Chromium (Debian's `chromium`, which the test command
/// installs) loads the page a live sidecar serves, runs its script, and the DOM it leaves is checked.
@Suite(
    "The heat map in a browser", .serialized, .enabled(if: ValkeyBinaries.available, ValkeyBinaries.missingReason),
    .enabled(if: Chromium.path != nil, "no chromium: scripts/test installs Debian's chromium package"))
struct HeatmapBrowserTests {
    @Test("a sidecar's heat map renders 16384 cells, details the hottest slot with the ledger's numbers, and follows more traffic")
    func liveHeatmap() async throws {
        let cluster = try LocalCluster(major: 9)
        defer { cluster.stop() }
        let primary = try #require(try cluster.currentRoles()).primary
        let server = try await AdminServer.start(
            AdminService(backend: ProxyBackend(sidecar: primary.sidecar), configuration: AdminConfiguration(listenPort: 0)))
        let client = try primary.viaSidecar()
        for index in 0..<100 { _ = try client.call("SET", "cold:\(index)", "v") }
        for _ in 0..<300 { _ = try client.call("APPEND", "hot", "0123456789") }
        let hot = Int(HashSlot(key: "hot").rawValue)
        let url = "http://127.0.0.1:\(server.port)/v1/heatmap?refresh_ms=1000"

        let first = try await Chromium.dumpDOM(url)
        #expect(first.occurrences(of: "class=\"cell\"") == 16384)
        #expect(first.attribute("data-refreshes", of: "body").flatMap { Int($0) }.map { $0 >= 2 } == true, "the page reloads its data")
        try await expectDetail(in: first, slot: hot, equalTo: primary)

        for _ in 0..<200 { _ = try client.call("APPEND", "hot", "0123456789") }
        let second = try await Chromium.dumpDOM(url)
        try await expectDetail(in: second, slot: hot, equalTo: primary)
        #expect(second.attribute("data-commands", of: "div id=\"detail\"") == "500")

        let picture = FileManager.default.temporaryDirectory.appendingPathComponent("heatmap-\(UInt32.random(in: 0...UInt32.max)).png").path
        defer { try? FileManager.default.removeItem(atPath: picture) }
        try await Chromium.screenshot(url, to: picture)
        #expect(((try? FileManager.default.attributesOfItem(atPath: picture)[.size] as? Int) ?? 0) > 10_000)
        await server.stop()
    }

    /// The detail panel shows `slot` with the figures of `member`'s ledger (node view) right now.
    private func expectDetail(in dom: String, slot: Int, equalTo member: LocalCluster.Member) async throws {
        let detail = "div id=\"detail\""
        #expect(dom.attribute("data-slot", of: detail) == "\(slot)", "the hottest slot is detailed")
        let counters = await member.server.snapshot()[.node, try #require(HashSlot(rawValue: UInt16(slot)))]
        #expect(dom.attribute("data-commands", of: detail) == "\(counters.commands)")
        #expect(dom.attribute("data-bytes-in", of: detail) == "\(counters.bytesIn)")
        #expect(dom.attribute("data-bytes-out", of: detail) == "\(counters.bytesOut)")
        #expect(dom.attribute("data-keys", of: detail) == "1", "the node's key count")
    }

    @Test("the fleet's heat map file works offline: 16384 cells, owners as regions, the cluster's hottest slot")
    func fleetHeatmapFile() async throws {
        let owners = [HeatmapData.Owner(id: "a", address: "10.0.0.1:7000"), HeatmapData.Owner(id: "b", address: "10.0.0.2:7000")]
        var commands = Array(repeating: UInt64(0), count: HashSlot.count)
        commands[12_000] = 42
        let data = HeatmapData(
            title: "offline", generatedAt: "2026-12-07T00:00:00Z", source: "a test", owners: owners,
            owner: (0..<HashSlot.count).map { $0 < 8192 ? 0 : 1 }, commands: commands, bytesIn: commands.map { $0 * 10 },
            bytesOut: commands.map { $0 * 3 }, keys: nil, cpuUsec: nil)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-\(UInt32.random(in: 0...UInt32.max)).html").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try HeatmapPage.embedding(data).write(toFile: path, atomically: true, encoding: .utf8)
        let dom = try await Chromium.dumpDOM("file://\(path)")
        #expect(dom.occurrences(of: "class=\"cell\"") == 16384)
        let detail = "div id=\"detail\""
        #expect(dom.attribute("data-slot", of: detail) == "12000")
        #expect(dom.attribute("data-bytes-in", of: detail) == "420")
        #expect(dom.contains("10.0.0.2:7000") && dom.contains("8,192 slots"), "the legend lists both owners")
    }
}

/// Debian's headless Chromium, run once per check with its own profile.
enum Chromium {
    static var path: String? {
        if let configured = ProcessInfo.processInfo.environment["SLOTWARDEN_CHROMIUM"] { return configured }
        return ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The DOM after the page's script ran for `virtualMilliseconds` of virtual time (its timers run
    /// as fast as its fetches allow).
    static func dumpDOM(_ url: String, virtualMilliseconds: Int = 4000) async throws -> String {
        try await run(["--virtual-time-budget=\(virtualMilliseconds)", "--dump-dom", url])
    }

    static func screenshot(_ url: String, to file: String, width: Int = 1100, height: Int = 760) async throws {
        _ = try await run(["--virtual-time-budget=2000", "--window-size=\(width),\(height)", "--screenshot=\(file)", url])
    }

    private static func run(_ arguments: [String]) async throws -> String {
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: profile) }
        let result = try await Subprocess.run(
            .path(FilePath(try #require(path))),
            arguments: Arguments(
                ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--user-data-dir=\(profile.path)"]
                    + arguments),
            output: .string(limit: 16 << 20), error: .discarded)
        #expect(result.terminationStatus == .exited(0))
        return result.standardOutput
    }
}

extension String {
    func occurrences(of needle: String) -> Int { components(separatedBy: needle).count - 1 }

    /// The value of `name="…"` in the first tag that starts with `<tag`.
    func attribute(_ name: String, of tag: String) -> String? {
        guard let start = range(of: "<\(tag)") else { return nil }
        guard let end = self[start.upperBound...].firstIndex(of: ">") else { return nil }
        let element = self[start.upperBound..<end]
        guard let attribute = element.range(of: " \(name)=\"") else { return nil }
        return String(element[attribute.upperBound...].prefix { $0 != "\"" })
    }
}
