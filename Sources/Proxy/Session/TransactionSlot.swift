/// The slot a transaction's queued commands agreed on: none yet, one, or several (then EXEC counts
/// to no slot). A keyless command queued first leaves it at none; queued after a keyed one, it makes
/// several.
enum TransactionSlot: Equatable {
    case none
    case one(Int32)
    case several

    /// `slot`: the queued command's slot, -1 when it has none (``InFlightCommand/slot``).
    mutating func queued(_ slot: Int32) {
        switch self {
        case .none: if slot >= 0 { self = .one(slot) }
        case .one(let agreed): if agreed != slot { self = .several }
        case .several: break
        }
    }

    var agreed: Int32? {
        if case .one(let slot) = self { return slot }
        return nil
    }
}
