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
        /// Legacy migrations open on this node, slot → the other node's id: `[slot->-id]` (migrating)
        /// and `[slot-<-id]` (importing). A node lists them only on its own (`myself`) line.
        public var migrating: [Int: String] = [:]
        public var importing: [Int: String] = [:]

        public var isPrimary: Bool { flags.contains("master") }
        public var isMyself: Bool { flags.contains("myself") }
        public var healthy: Bool { linkConnected && flags.isDisjoint(with: ["fail", "fail?", "handshake", "noaddr"]) }
        public var ownsAllSlots: Bool { slotRanges == [0...16383] }
        public func owns(slot: Int) -> Bool { slotRanges.contains { $0.contains(slot) } }
    }

    public var nodes: [String: Node] = [:]

    /// The node that answered.
    public var myself: Node? { nodes.values.first(where: \.isMyself) }

    /// The node this view names as the owner of `slot`, if any.
    public func owner(ofSlot slot: Int) -> Node? { nodes.values.first { $0.owns(slot: slot) } }

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
            var node = Node(
                id: fields[0], host: String(hostPort[0][..<colon]), port: port, busPort: bus, flags: flags,
                primaryID: fields[3] == "-" ? nil : fields[3], linkConnected: flags.contains("myself") || fields[7] == "connected",
                slotRanges: [])
            for token in fields.dropFirst(8) {
                // Importing/migrating markers ("[slot->-id]", "[slot-<-id]") are not ranges of owned slots.
                if token.hasPrefix("[") {
                    Self.parseMarker(token.dropFirst().dropLast(), into: &node)
                    continue
                }
                let bounds = token.split(separator: "-").compactMap { Int($0) }
                if bounds.count == 2 { node.slotRanges.append(bounds[0]...bounds[1]) }
                if bounds.count == 1 { node.slotRanges.append(bounds[0]...bounds[0]) }
            }
            nodes[fields[0]] = node
        }
    }

    private static func parseMarker(_ marker: Substring, into node: inout Node) {
        for (arrow, migrating) in [("->-", true), ("-<-", false)] {
            guard let range = marker.range(of: arrow), let slot = Int(marker[..<range.lowerBound]) else { continue }
            let other = String(marker[range.upperBound...])
            if migrating { node.migrating[slot] = other } else { node.importing[slot] = other }
        }
    }
}
