import Admin
import AsyncHTTPClient
import Foundation
import NIOCore
import Proxy
import RESP

/// A whole cluster, found through any one of its sidecars, and the sidecars' admin APIs asked all
/// at once: what `slotwarden fleet` builds on.
public struct Fleet: Sendable {
    public let map: ClusterMap
    /// The admin `host:port` of the sidecar announced as `host:port` (the peer rule); nil when the
    /// rule covers no such address.
    private let adminAddress: @Sendable (String) -> String?
    public let timeoutMilliseconds: Int
    /// At most this many sidecars are asked at the same time: sockets and memory stay bounded on a
    /// fleet of any size.
    public let maxConcurrent: Int

    public init(map: ClusterMap, timeoutMilliseconds: Int, maxConcurrent: Int = 64, adminAddress: @escaping @Sendable (String) -> String?) {
        self.map = map
        self.timeoutMilliseconds = timeoutMilliseconds
        self.maxConcurrent = max(1, maxConcurrent)
        self.adminAddress = adminAddress
    }

    public struct Failure: Error, CustomStringConvertible, Sendable, Equatable {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// Asks the node behind the sidecar at `entry` (`host:port`, a client address) for `CLUSTER SHARDS`.
    public static func discover(entry: String, timeoutMilliseconds: Int) throws -> ClusterMap {
        guard let colon = entry.lastIndex(of: ":"), let port = Int(entry[entry.index(after: colon)...]) else {
            throw Failure("--cluster: expected host:port, got '\(entry)'")
        }
        let host = String(entry[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let client: NodeClient
        do {
            client = try NodeClient(host: host, port: port, timeoutMilliseconds: timeoutMilliseconds)
        } catch {
            throw Failure("cannot reach \(entry): \(error)")
        }
        defer { client.close() }
        let reply = try client.call("CLUSTER", "SHARDS")
        if let message = reply.errorMessage { throw Failure("CLUSTER SHARDS on \(entry): \(message)") }
        return try ClusterMap(clusterShards: reply)
    }

    /// One node's answer: its sidecar's admin address, and what it said or why it could not.
    public struct Answer<Value: Sendable>: Sendable {
        public var node: ClusterMap.Node
        public var admin: String?
        public var result: Result<Value, Failure>

        public var value: Value? { try? result.get() }

        public init(node: ClusterMap.Node, admin: String?, result: Result<Value, Failure>) {
            self.node = node
            self.admin = admin
            self.result = result
        }
    }

    /// `GET target` (a path with its query) on the admin API of every node in `nodes`, `maxConcurrent`
    /// at a time, each within the timeout; answers in the order of `nodes`.
    public func ask<Value: Decodable & Sendable>(_ nodes: [ClusterMap.Node], _ target: String, as type: Value.Type) async -> [Answer<Value>] {
        var answers = [Answer<Value>?](repeating: nil, count: nodes.count)
        await fold(nodes, target, as: type) { index, answer in answers[index] = answer }
        return answers.map { $0.unsafelyUnwrapped }
    }

    /// `ask`, handing each answer to `take` (with its node's index) as it arrives instead of keeping
    /// them all: what a fleet-wide merge of large answers holds at once is `maxConcurrent` of them.
    public func fold<Value: Decodable & Sendable>(
        _ nodes: [ClusterMap.Node], _ target: String, as type: Value.Type, _ take: (Int, Answer<Value>) -> Void
    ) async {
        await withTaskGroup(of: (Int, Answer<Value>).self) { group in
            var next = 0
            func askNext() {
                guard next < nodes.count else { return }
                let (index, node) = (next, nodes[next])
                next += 1
                group.addTask {
                    guard let admin = adminAddress(node.address) else {
                        return (index, Answer(node: node, admin: nil, result: .failure(Failure("the peer rule gives no admin address for \(node.address)"))))
                    }
                    return (index, Answer(node: node, admin: admin, result: await Self.get(admin, target, as: type, timeout: timeoutMilliseconds)))
                }
            }
            for _ in 0..<min(maxConcurrent, nodes.count) { askNext() }
            for await (index, answer) in group {
                take(index, answer)
                askNext()
            }
        }
    }

    /// Every sidecar's heat map rows merged into the cluster's, and the sidecars that could not be
    /// asked (`address: why`).
    public func heatmap() async -> (merged: ClusterHeatmap, unanswered: [String]) {
        var merged = ClusterHeatmap(map: map)
        var unanswered: [String] = []
        await fold(map.nodes, "/v1/heatmap/rows", as: HeatmapRows.self) { _, answer in
            switch answer.result {
            case .success(let rows): merged.add(rows, from: answer.node)
            case .failure(let failure): unanswered.append("\(answer.node.address): \(failure)")
            }
        }
        return (merged, unanswered)
    }

    /// The largest answer read: a reconciliation of every slot is a few MB.
    static let maxBodyBytes = 64 << 20

    static func get<Value: Decodable>(_ admin: String, _ target: String, as type: Value.Type, timeout: Int) async -> Result<Value, Failure> {
        let body: ByteBuffer
        let status: UInt
        do {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://\(admin)\(target)"), timeout: .milliseconds(Int64(timeout)))
            status = response.status.code
            body = try await response.body.collect(upTo: maxBodyBytes)
        } catch {
            return .failure(Failure("cannot ask \(admin): \(error)"))
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        guard status == 200 else {
            let message = (try? decoder.decode(ErrorBody.self, from: Data(buffer: body)))?.error.message ?? String(buffer: body)
            return .failure(Failure("\(admin) answered \(status): \(message)"))
        }
        do {
            return .success(try decoder.decode(Value.self, from: Data(buffer: body)))
        } catch {
            return .failure(Failure("\(admin) answered something unexpected: \(error)"))
        }
    }
}
