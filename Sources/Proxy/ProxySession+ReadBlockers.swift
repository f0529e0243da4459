extension ProxySession {
    /// Why the client is not being read right now; it is read only while this is empty.
    struct ReadBlockers: OptionSet {
        let rawValue: UInt8
        /// The node connection is not up yet.
        static let connecting = ReadBlockers(rawValue: 1 << 0)
        /// The node's write queue passed its high watermark.
        static let backpressure = ReadBlockers(rawValue: 1 << 1)
        /// The worker paused client reads (a fence or a consistent cut).
        static let paused = ReadBlockers(rawValue: 1 << 2)
        /// The client finished sending.
        static let finished = ReadBlockers(rawValue: 1 << 3)
        /// A promotion guard runs on the node.
        static let guarded = ReadBlockers(rawValue: 1 << 4)
        /// A command waits for a role check (see `SessionCore.HeldCommand`).
        static let roleCheck = ReadBlockers(rawValue: 1 << 5)
        /// The process is stopping and the connection reached a command boundary.
        static let stopping = ReadBlockers(rawValue: 1 << 6)
        /// A replica's `PSYNC` waits for the stream fence (see ``ReplicaStreamFence``).
        static let streamFence = ReadBlockers(rawValue: 1 << 7)
    }
}
