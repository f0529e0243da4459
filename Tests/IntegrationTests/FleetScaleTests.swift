import Admin
import Fleet
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import RESP
import Synchronization
import Testing

/// `slotwarden fleet` against many sidecars: admin APIs simulated by this process (canned answers on
/// one listening port each), a cluster map of that many nodes. A small fleet always runs; 1,000
/// sidecars run for `scripts/bench-fleet` (`SLOTWARDEN_BENCH_FLEET=1`), which prints the figures.
@Suite("The fleet at scale", .serialized)
struct FleetScaleTests {
    @Test("100 simulated sidecars: one verdict, every answer merged, a bounded number asked at once")
    func smallFleet() async throws {
        let outcome = try await Self.measure(sidecars: 100, maxConcurrent: 16)
        #expect(outcome.verdict == .match && outcome.heatmapMerged == 100 && outcome.topSlots == 10)
        #expect(outcome.mostAtOnce <= 16 && outcome.mostAtOnce > 1, "\(outcome.mostAtOnce)")
    }

    @Test(
        "1,000 simulated sidecars: wall time and memory of reconcile, top and heatmap",
        .enabled(if: ProcessInfo.processInfo.environment["SLOTWARDEN_BENCH_FLEET"] != nil, "scripts/bench-fleet runs it"))
    func thousandSidecars() async throws {
        for concurrency in [16, 64, 256] {
            let outcome = try await Self.measure(sidecars: 1000, maxConcurrent: concurrency)
            #expect(outcome.verdict == .match && outcome.heatmapMerged == 1000)
            print(
                String(
                    format: "fleet-scale sidecars=1000 max_concurrent=%d reconcile_ms=%.0f top_ms=%.0f heatmap_ms=%.0f rss_peak_mb=%.0f most_at_once=%d",
                    concurrency, outcome.reconcileMilliseconds, outcome.topMilliseconds, outcome.heatmapMilliseconds,
                    outcome.peakResidentMegabytes, outcome.mostAtOnce))
        }
    }

    struct Outcome {
        var verdict: FleetReconciliation.Verdict
        var heatmapMerged: Int
        var topSlots: Int
        var reconcileMilliseconds: Double
        var topMilliseconds: Double
        var heatmapMilliseconds: Double
        var peakResidentMegabytes: Double
        var mostAtOnce: Int
    }

    static func measure(sidecars: Int, maxConcurrent: Int) async throws -> Outcome {
        let served = try await SimulatedSidecars.start(count: sidecars)
        defer { served.stop() }
        // Shards of a primary and a replica, the slots split evenly over the primaries.
        let primaries = sidecars / 2
        let shards = (0..<primaries).map { index in
            let first = index * HashSlot.count / primaries
            let last = (index + 1) * HashSlot.count / primaries - 1
            return ClusterMap.Shard(
                slots: [first...last],
                nodes: [
                    ClusterMap.Node(id: "p\(index)", host: "10.1.0.\(index)", port: 7000, isPrimary: true, health: "online", replicationOffset: 0),
                    ClusterMap.Node(id: "r\(index)", host: "10.2.0.\(index)", port: 7000, isPrimary: false, health: "online", replicationOffset: 0),
                ])
        }
        let map = ClusterMap(shards: shards)
        var admin: [String: String] = [:]
        for (index, node) in map.nodes.enumerated() { admin[node.address] = "127.0.0.1:\(served.ports[index])" }
        let fixed = admin
        let fleet = Fleet(map: map, timeoutMilliseconds: 30_000, maxConcurrent: maxConcurrent) { fixed[$0] }
        let clock = ContinuousClock()

        var start = clock.now
        let reports = await fleet.ask(map.nodes, "/v1/reconcile?mode=fenced", as: ReconcileReport.self)
        let reconciliation = FleetReconciliation(map: map, answers: reports)
        let reconcile = start.duration(to: clock.now)

        start = clock.now
        let tops = await fleet.ask(map.nodes, "/v1/ledger/top?view=node&by=bytes_in&limit=100", as: TopResponse.self)
        let top = FleetTop(
            by: "bytes_in", map: map, perNode: tops.compactMap { answer in answer.value.map { (answer.node, $0.slots.map { ($0.slot, $0.bytesIn) }) } },
            unreachable: [], limit: 10)
        let topTime = start.duration(to: clock.now)

        start = clock.now
        let (heatmap, _) = await fleet.heatmap()
        _ = heatmap.data(title: "scale", generatedAt: "now")
        let heatmapTime = start.duration(to: clock.now)

        func milliseconds(_ duration: Duration) -> Double { Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15 }
        return Outcome(
            verdict: reconciliation.verdict, heatmapMerged: heatmap.merged, topSlots: top.slots.count,
            reconcileMilliseconds: milliseconds(reconcile), topMilliseconds: milliseconds(topTime), heatmapMilliseconds: milliseconds(heatmapTime),
            peakResidentMegabytes: Self.peakResidentMegabytes(), mostAtOnce: served.mostAtOnce)
    }

    /// `VmHWM` of /proc/self/status: the process's peak resident set.
    static func peakResidentMegabytes() -> Double {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }
}

/// Admin APIs of many sidecars in this process: one listening port each, canned answers (a matching
/// reconciliation, a top, heat map rows), each after 2 ms, as from a sidecar across a network.
/// Counts how many requests it holds at once.
final class SimulatedSidecars: Sendable {
    let ports: [Int]
    private let group: MultiThreadedEventLoopGroup
    private let channels: [any Channel]
    private let load: Load

    final class Load: Sendable {
        private let state = Mutex((now: 0, most: 0))
        func begin() { state.withLock { $0.now += 1; $0.most = max($0.most, $0.now) } }
        func end() { state.withLock { $0.now -= 1 } }
        var most: Int { state.withLock { $0.most } }
    }

    var mostAtOnce: Int { load.most }

    private init(ports: [Int], group: MultiThreadedEventLoopGroup, channels: [any Channel], load: Load) {
        self.ports = ports
        self.group = group
        self.channels = channels
        self.load = load
    }

    static func start(count: Int) async throws -> SimulatedSidecars {
        let bodies = try Self.bodies()
        let load = Load()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var channels: [any Channel] = []
        for _ in 0..<count {
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.pipeline.configureHTTPServerPipeline().flatMap {
                        channel.pipeline.addHandler(CannedAnswers(bodies: bodies, load: load))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            channels.append(channel)
        }
        return SimulatedSidecars(ports: channels.map { $0.localAddress?.port ?? 0 }, group: group, channels: channels, load: load)
    }

    func stop() {
        for channel in channels { try? channel.close().wait() }
        try? group.syncShutdownGracefully()
    }

    static func bodies() throws -> [String: ByteBuffer] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let reconcile = """
            {"mode":"fenced","epoch":{"id":3,"started_at":"2026-12-07T00:00:00Z"},"node":{"version":"9.1.2","role":"master","cluster_enabled":true},
            "network_stats_enabled":true,"node_reset_detected":false,"replicas":1,
            "replication":{"replicas_on_node":1,"links_through_sidecar":1,"behind":[]},
            "slots":[\((0..<32).map { #"{"slot":\#($0),"status":"match","ledger":{"bytes_in":100,"bytes_out":50},"node":{"bytes_in":100,"bytes_out":50},"difference":{"bytes_in":0,"bytes_out":0},"reasons":[]}"# }.joined(separator: ","))],
            "not_reported":[],"slot_cuts":0,
            "summary":{"slots_compared":32,"match":32,"node_higher":0,"ledger_higher":0,"explained":0,"unexplained":0,"bytes_in_difference":0,"bytes_out_difference":0},
            "verdict":"match"}
            """
        let top = """
            {"epoch":{"id":3,"started_at":"t"},"view":"node","by":"bytes_in","limit":100,
            "slots":[\((0..<100).map { #"{"slot":\#($0 * 97),"commands":\#(1000 - $0),"bytes_in":\#(50_000 - $0),"bytes_out":\#(20_000 - $0)}"# }.joined(separator: ","))]}
            """
        // A node of a 500-shard cluster has figures for its shard's 33 slots and a few it refused.
        var busy = Array(repeating: UInt64(0), count: HashSlot.count)
        for slot in 0..<40 { busy[slot * 409] = UInt64(1000 + slot) }
        let heatmap = HeatmapData(
            title: "simulated", generatedAt: "2026-12-07T00:00:00Z", source: "canned", owners: [], owner: Array(repeating: -1, count: HashSlot.count),
            commands: busy, bytesIn: busy, bytesOut: busy, keys: busy, cpuUsec: busy)
        return [
            "/v1/reconcile": ByteBuffer(string: reconcile), "/v1/ledger/top": ByteBuffer(string: top),
            "/v1/heatmap/rows": ByteBuffer(bytes: try encoder.encode(HeatmapRows(heatmap))),
        ]
    }
}

private final class CannedAnswers: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let bodies: [String: ByteBuffer]
    let load: SimulatedSidecars.Load

    init(bodies: [String: ByteBuffer], load: SimulatedSidecars.Load) {
        self.bodies = bodies
        self.load = load
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        load.begin()
        let path = String(head.uri.prefix { $0 != "?" })
        let body = bodies[path]
        var headers = HTTPHeaders([("content-type", "application/json"), ("content-length", "\(body?.readableBytes ?? 0)")])
        headers.add(name: "connection", value: "keep-alive")
        let response = HTTPResponseHead(version: head.version, status: body == nil ? .notFound : .ok, headers: headers)
        let bound = NIOLoopBound((context, self), eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .milliseconds(2)) {
            let (context, handler) = bound.value
            context.write(handler.wrapOutboundOut(.head(response)), promise: nil)
            if let body { context.write(handler.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
            context.writeAndFlush(handler.wrapOutboundOut(.end(nil)), promise: nil)
            handler.load.end()
        }
    }
}
