import Accounting
import RESP

/// The primary's side of one replica's link through the sidecar: reads the stream the node sends
/// down it and charges each command to its slot in the node view, as the primary charges its
/// replication stream (docs/accounting.md §3.2, measured on 8.1 and 9.1):
///
/// - every chunk fed to the replication buffer is charged `len × replicas` to the slot of the command
///   being executed, so each link through the sidecar adds the command's stream bytes once;
/// - a keyless command (`SELECT`, which the node adds and subtracts, `PING`, `REPLCONF GETACK`,
///   `FLUSHALL`) is charged to no slot;
/// - a `MULTI` … `EXEC` wrapper is charged to the slot of the transaction's commands;
/// - not followed: a key deleted by active expiry streams an `UNLINK`/`DEL` that the node does not
///   charge (no command caused it), and a script without `#!` streams writes it does not charge; both
///   look like any other command here. Slots where the stream carried a lone delete are marked
///   (``SlotMark/replicatedDelete``) so that the reconciliation can name expiry; scripts are marked
///   where they ran.
struct ReplicationLink {
    private var scanner: ReplicationStreamScanner
    /// The primary's replication offset up to which the stream was forwarded down the link (what the
    /// replica's offset becomes once it read it): known from `+FULLRESYNC`, or from the offset the
    /// replica asked `PSYNC` to continue from. Compared with `master_repl_offset` to tell whether
    /// everything the node charged has crossed.
    private(set) var forwardedOffset: Int64?
    /// For `+CONTINUE`: the offset the stream resumes after (`PSYNC`'s offset argument less one).
    private let continueAfter: Int64?
    /// The stream up to this offset is the backlog a `+CONTINUE` resends: the node charged it when
    /// it first fed it (to the replicas attached then), not now, so it is not charged here either;
    /// the replica still counts it. Read by the stream fence (``SessionCore/streamFenced(unchargedThrough:)``).
    private let unchargedThrough: Int64
    /// An open `MULTI`: its bytes, waiting for the slot of the first keyed command inside.
    private var transaction: (wrapperBytes: Int, slot: HashSlot?)?
    private(set) var violation: ProtocolViolation?
    /// What the replica will count of the stream (its `network-bytes-in`), per slot.
    private(set) var replicaView: ReplicaView
    /// `DEL` and `UNLINK` in the command table.
    private let del: CommandIdentity
    private let unlink: CommandIdentity

    /// `replicaCountsWholeTransaction`: the replica's version counts a replicated transaction's
    /// commands (9.x), not only its `MULTI` and `EXEC` (8.x).
    init(commands: CommandTable, continueAfter: Int64?, unchargedThrough: Int64? = nil, replicaCountsWholeTransaction: Bool) {
        scanner = ReplicationStreamScanner(commands: commands)
        replicaView = ReplicaView(countsWholeTransaction: replicaCountsWholeTransaction)
        self.continueAfter = continueAfter
        self.unchargedThrough = unchargedThrough ?? Int64.min
        del = commands.lookup("del")
        unlink = commands.lookup("unlink")
    }

    /// Whether the snapshot is behind and the link carries commands.
    var streamsCommands: Bool { scanner.streamsCommands }

    /// A full resync whose stream has not begun to cross (not even a command's first bytes): the node
    /// holds it back until the snapshot is through and the replica's first `REPLCONF ACK` came
    /// (charging every write to it meanwhile), and drops it unwritten if the replica leaves first.
    private(set) var nodeHoldsStream = false

    /// Scans bytes the node sent down the link; false when they stopped being a replication stream
    /// (the rest of the link is not charged).
    mutating func streamRead(_ bytes: UnsafeRawBufferPointer, ledger: LedgerShard) -> Bool {
        guard violation == nil else { return false }
        if nodeHoldsStream && scanner.streamsCommands { nodeHoldsStream = false }
        var position = 0
        while position < bytes.count {
            if let plain = scanner.nextPlainCommand(in: bytes, at: &position) {
                let slot: HashSlot? = if plain.arityIsValid, case .slot(let slot) = plain.keys { slot } else { nil }
                charge(wireBytes: plain.wireBytes, slot: slot, command: .known(plain.entryIndex), ledger: ledger)
                continue
            }
            switch scanner.next(in: bytes, at: &position) {
            case .complete(.fullResync(let start)):
                forwardedOffset = start
                nodeHoldsStream = true
            case .complete(.partialResync): forwardedOffset = continueAfter
            case .complete(.snapshot): nodeHoldsStream = position == bytes.count
            case .complete(.command(let request)): charge(request, ledger: ledger)
            case .incomplete: return true
            case .malformed(let problem):
                violation = problem
                return false
            }
        }
        return true
    }

    /// A command the general lane took: `MULTI` and `EXEC` frame a transaction; the rest is charged
    /// like a plain one.
    private mutating func charge(_ request: ScannedRequest, ledger: LedgerShard) {
        switch request.effect {
        case .multi where transaction == nil:
            forwardedOffset = forwardedOffset.map { $0 + Int64(request.wireBytes) }
            transaction = (request.wireBytes, nil)
            replicaView.multi(wireBytes: request.wireBytes)
        case .exec where transaction != nil:
            forwardedOffset = forwardedOffset.map { $0 + Int64(request.wireBytes) }
            if let open = transaction, let slot = open.slot, !isResent {
                ledger.recordNode(slot: slot, commands: 0, bytesIn: 0, bytesOut: open.wrapperBytes + request.wireBytes)
            }
            transaction = nil
            replicaView.exec(wireBytes: request.wireBytes, endOffset: forwardedOffset)
        default:
            let slot: HashSlot? = if case .known = request.command, request.arityIsValid, case .slot(let slot) = request.keys { slot } else { nil }
            charge(wireBytes: request.wireBytes, slot: slot, command: request.command, ledger: ledger)
        }
    }

    /// Whether what was just forwarded ends within the resent backlog (never before the stream's
    /// start is known: a `+FULLRESYNC` starts past it).
    @inline(__always)
    private var isResent: Bool { forwardedOffset.map { $0 <= unchargedThrough } ?? false }

    /// Charges one command of `wireBytes` to `slot` (none: keyless, charged nowhere), inside the open
    /// transaction if there is one.
    @inline(__always)
    private mutating func charge(wireBytes: Int, slot: HashSlot?, command: CommandIdentity, ledger: LedgerShard) {
        forwardedOffset = forwardedOffset.map { $0 + Int64(wireBytes) }
        replicaView.command(wireBytes: wireBytes, slot: slot, endOffset: forwardedOffset)
        guard let slot, !isResent else { return }
        ledger.recordNode(slot: slot, commands: 0, bytesIn: 0, bytesOut: wireBytes)
        if transaction != nil {
            if transaction?.slot == nil { transaction?.slot = slot }
        } else if command == del || command == unlink {
            ledger.mark(.replicatedDelete, slot: slot)
        }
    }
}
