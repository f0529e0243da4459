import Accounting
import RESP
import Testing

@Suite("SlotOwners: a node's view of the slot owners, from CLUSTER NODES")
struct SlotOwnersTests {
    let a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    let b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
    let r = "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr"

    /// Three nodes as `r`'s `CLUSTER NODES` shows them: `a` owns 0–8191 and is migrating 100,
    /// `b` owns 8192–16383 and slot 5, `r` (myself) replicates `b`.
    func view(aSlots: String = "0-4 6-8191 [100->-\(String(repeating: "b", count: 40))]", bSlots: String = "5 8192-16383") -> String {
        """
        \(a) 127.0.0.1:7001@17001,host-a master - 0 1 1 connected \(aSlots)
        \(b) 127.0.0.1:7002@17002 master - 0 1 2 connected \(bSlots)
        \(r) 127.0.0.1:7003@17003 myself,slave \(b) 0 0 2 connected

        """
    }

    func slot(_ number: Int) -> HashSlot { HashSlot(rawValue: UInt16(number))! }

    @Test("owners per slot, importing/migrating markers ignored, the shard of a replica is its primary's")
    func parses() throws {
        let owners = try SlotOwners(clusterNodes: view())
        #expect(owners.owner(of: slot(0))?.id == a)
        #expect(owners.owner(of: slot(0))?.address == "127.0.0.1:7001")
        #expect(owners.owner(of: slot(100))?.id == a)
        #expect(owners.owner(of: slot(5))?.id == b)
        #expect(owners.owner(of: slot(16383))?.id == b)
        #expect(owners.myself.id == r)
        #expect(owners.shardPrimaryID == b)
        #expect(owners.isReported(slot(5)))
        #expect(!owners.isReported(slot(0)))
    }

    @Test("unassigned slots have no owner; a node that owns nothing still parses")
    func unassigned() throws {
        let owners = try SlotOwners(clusterNodes: view(aSlots: "0-99", bSlots: ""))
        #expect(owners.owner(of: slot(100)) == nil)
        #expect(owners.primaries.map(\.id) == [a])
    }

    @Test("changes name each slot whose owner id changed, with what the node reports before and after")
    func changes() throws {
        let before = try SlotOwners(clusterNodes: view())
        let after = try SlotOwners(clusterNodes: view(aSlots: "0-4 7-8191", bSlots: "5-6 8192-16383"))
        let changes = after.changes(since: before)
        #expect(changes.map(\.slot) == [slot(6)])
        #expect(changes.first?.previousOwner?.id == a)
        #expect(changes.first?.newOwner?.id == b)
        #expect(changes.first?.wasReported == false)
        #expect(changes.first?.isReported == true)
        #expect(after.ownersDiffer(from: before))
        #expect(!before.ownersDiffer(from: before))
        #expect(before.changes(since: before).isEmpty)
    }

    @Test("a failover elsewhere (new owner id, same slots) changes every slot of that shard")
    func failoverElsewhere() throws {
        let r = self.r
        let before = try SlotOwners(clusterNodes: "\(a) 127.0.0.1:1@2 myself,master - 0 0 1 connected 0-9\n\(b) 127.0.0.1:3@4 master - 0 0 2 connected 10-19\n")
        let after = try SlotOwners(clusterNodes: "\(a) 127.0.0.1:1@2 myself,master - 0 0 1 connected 0-9\n\(r) 127.0.0.1:5@6 master - 0 0 3 connected 10-19\n\(b) 127.0.0.1:3@4 slave \(r) 0 0 3 connected\n")
        let changes = after.changes(since: before)
        #expect(changes.map(\.slot.rawValue) == Array(10...19))
        #expect(changes.allSatisfy { !$0.wasReported && !$0.isReported })
    }

    @Test("malformed input is refused with the offending entry")
    func malformed() {
        #expect(throws: SlotOwners.ParseError.self) { try SlotOwners(clusterNodes: "\(a) 127.0.0.1:1@2 myself,master - 0 0 1 connected 9-x\n") }
        #expect(throws: SlotOwners.ParseError.self) { try SlotOwners(clusterNodes: "\(a) 127.0.0.1:1@2 master - 0 0 1 connected 0-9\n") }
        #expect(throws: SlotOwners.ParseError.self) { try SlotOwners(clusterNodes: "garbage\n") }
        #expect(throws: SlotOwners.ParseError.self) { try SlotOwners(clusterNodes: "\(a) 127.0.0.1:1@2 myself,master - 0 0 1 connected 0-16384\n") }
    }
}
