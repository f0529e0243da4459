/// How the fence and the role watcher behave; see `fence:` in config/slotwarden.yaml.
public struct FenceConfiguration: Sendable {
    public var fence: FailoverFence.Settings
    /// How often `ROLE` is polled on the control connection.
    public var rolePollIntervalMilliseconds: Int
    /// Reconnect back-off of the control connection: doubles from `rolePollIntervalMilliseconds` up to this.
    public var maxReconnectBackoffMilliseconds: Int
    /// Epoch records kept in memory.
    public var epochHistory: Int
    /// Closed epochs are appended here as JSON lines (none when nil).
    public var epochLogPath: String?
    public var credentials: NodeCredentials?
    /// Where a replica's sidecar asks what its node counted of the replication stream (nil: nowhere,
    /// and a replica's reconciliation names the stream as not known).
    public var replicaStreamSource: (any ReplicaStreamSource)?

    public init(
        fence: FailoverFence.Settings = .init(), rolePollIntervalMilliseconds: Int = 100,
        maxReconnectBackoffMilliseconds: Int = 5000, epochHistory: Int = 100, epochLogPath: String? = nil,
        credentials: NodeCredentials? = nil, replicaStreamSource: (any ReplicaStreamSource)? = nil
    ) {
        self.replicaStreamSource = replicaStreamSource
        self.fence = fence
        self.rolePollIntervalMilliseconds = rolePollIntervalMilliseconds
        self.maxReconnectBackoffMilliseconds = maxReconnectBackoffMilliseconds
        self.epochHistory = epochHistory
        self.epochLogPath = epochLogPath
        self.credentials = credentials
    }
}
