import RESP

/// `CLUSTER NODES`, parsed: one entry per node.
public struct ClusterNodesView: Sendable {
    public struct Node: Sendable {
        public var id: String
        public var host: String
        public var port: Int
        public var busPort: Int
        public var flags: Set<String>
        public var primaryID: String?
        public var linkConnected: Bool
        public var slotRanges: [ClosedRange<Int>]

        public var isPrimary: Bool { flags.contains("master") }
        public var healthy: Bool { linkConnected && flags.isDisjoint(with: ["fail", "fail?", "handshake", "noaddr"]) }
        public var ownsAllSlots: Bool { slotRanges == [0...16383] }
    }

    public var nodes: [String: Node] = [:]

    public init(reply: RESPValue) throws {
        guard let text = reply.string else { throw LocalCluster.Failure(description: "CLUSTER NODES answered \(reply)") }
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count >= 8 else { continue }
            // ip:port@cport[,hostname]
            let address = fields[1].split(separator: ",")[0]
            let hostPort = address.split(separator: "@")
            guard hostPort.count == 2, let colon = hostPort[0].lastIndex(of: ":"),
                let port = Int(hostPort[0][hostPort[0].index(after: colon)...]), let bus = Int(hostPort[1])
            else { continue }
            let flags = Set(fields[2].split(separator: ",").map(String.init))
            // Importing/migrating markers ("[slot->-id]") are not ranges of owned slots.
            let ranges: [ClosedRange<Int>] = fields.dropFirst(8).compactMap { token in
                guard !token.hasPrefix("[") else { return nil }
                let bounds = token.split(separator: "-").compactMap { Int($0) }
                return bounds.count == 2 ? bounds[0]...bounds[1] : bounds.count == 1 ? bounds[0]...bounds[0] : nil
            }
            nodes[fields[0]] = Node(
                id: fields[0], host: String(hostPort[0][..<colon]), port: port, busPort: bus, flags: flags,
                primaryID: fields[3] == "-" ? nil : fields[3], linkConnected: flags.contains("myself") || fields[7] == "connected",
                slotRanges: ranges)
        }
    }
}
