import RESP

/// What the node does with a command's bytes once it has answered with an error.
public enum ErrorTreatment: Equatable, Sendable {
    /// The command ran and failed (`WRONGTYPE`, `ERR value is not an integer`, …): the node counts its
    /// bytes in and its reply.
    case executed
    /// Refused after the slot was known (`MOVED`, `READONLY`, `OOM`, …): bytes in are counted, the error
    /// reply is not (there was no `call()`).
    case rejectedCountingInput
    /// Refused before a slot was set (unknown command, wrong arity, `CROSSSLOT`, …): nothing counted.
    case notCounted
}

/// The rules by which a Valkey node fills `CLUSTER SLOT-STATS` network-bytes-in/out, for one major
/// version. See docs/accounting.md §0 and §2.4 for the measurements behind each case.
public struct NodeCountingRules: Sendable, Equatable {
    public var version: ValkeyVersion

    public init(version: ValkeyVersion) { self.version = version }

    /// Valkey computes the slot at parse time from 9.0 on, so commands refused before the cluster
    /// check still have a slot there.
    public var slotKnownBeforeChecks: Bool { version.major >= 9 }

    /// Bytes that EXEC adds to its own frame: Valkey adds the length of `*1\r\n$5\r\nmulti\r\n` whatever
    /// form MULTI was sent in. NOTE: `cluster_slot_stats.c`, clusterSlotStatsAddNetworkBytesInForUserClient.
    public static let execMultiSurcharge = 15

    public func treatment(of error: ReplyError) -> ErrorTreatment {
        switch error {
        case .crossSlot, .unknownCommand, .unknownSubcommand, .wrongArity, .protocol:
            return .notCounted
        case .moved, .ask, .tryAgain, .readOnly, .loading, .outOfMemory, .busy, .masterDown, .noReplicas,
            .misconfigured, .notAllowedInContext:
            return .rejectedCountingInput
        case .clusterDown, .noAuth, .noPermission:
            // NOTE: networking.c / server.c processCommand: 8.x sets c->slot inside getNodeByQuery, after
            // the ACL and cluster-state checks; 9.x sets it in prepareCommand, before them.
            return slotKnownBeforeChecks ? .rejectedCountingInput : .notCounted
        case .unblocked:
            // A blocked command ended by CLIENT UNBLOCK ... ERROR or a role change: unblockClientOnError
            // resets the client without commandProcessed, so nothing is counted.
            return .notCounted
        case .wrongType, .noScript, .execAbort, .other:
            return .executed
        }
    }

    /// Whether the wire view files a command answered with this error under the `rejected` bucket: the
    /// node refused it instead of running it.
    public static func isRejection(_ error: ReplyError) -> Bool {
        switch error {
        case .moved, .ask, .tryAgain, .crossSlot, .clusterDown, .readOnly, .loading, .outOfMemory, .busy,
            .masterDown, .noReplicas, .misconfigured, .noAuth, .noPermission, .unknownCommand,
            .unknownSubcommand, .wrongArity, .protocol, .notAllowedInContext, .execAbort:
            return true
        case .wrongType, .noScript, .unblocked, .other:
            return false
        }
    }
}
