import Accounting
import RESP

/// Everything the data plane needs to run, already validated.
public struct ProxyConfiguration: Sendable {
    /// Where clients connect.
    public var listenHost: String
    public var listenPort: Int
    /// The Valkey node slotwarden stands in front of.
    public var nodeHost: String
    public var nodePort: Int
    /// Stop reading a connection's source while the other side has more than this many bytes queued.
    public var highWatermarkBytes: Int
    /// Resume reading once the queue fell to this many bytes.
    public var lowWatermarkBytes: Int
    /// Size of the pooled read chunks. A read holds one only during its callback, so this costs no
    /// memory per connection; larger chunks mean fewer reads and writes for large values.
    public var readBufferBytes: Int
    /// A client whose node connection is not up after this long gets an error and is closed.
    public var nodeConnectTimeoutMilliseconds: UInt64
    /// Accepted client connections beyond this many are closed at once.
    public var maxClients: Int
    public var tcpNoDelay: Bool
    /// Event loops, each on its own thread with its own listener and ledger shard.
    public var workers = 1
    /// The longest client reads stay paused, enforced on the event loop itself: clients resume when it
    /// passes even if whoever paused them never comes back.
    public var maxPauseMilliseconds: UInt64 = 5000
    /// For benchmarks only: forward bytes without parsing or accounting them (the ledger stays
    /// empty and the fence sees no commands), to measure what parsing costs on the same loop code.
    public var passthrough = false
    /// Read each replica link's stream and charge it per slot, as the node charges it (see
    /// `ReplicationLink`); false passes it through as opaque bytes in the `replication` bucket, and a
    /// primary with replicas then reconciles `difference … replication`. For benchmarks of that cost.
    public var readsReplicationStreams = true
    /// The id of the first epoch: one past the last in the epoch log, so that ids go on across restarts.
    public var firstEpochID: UInt64 = 1

    public init(
        listenHost: String = "127.0.0.1", listenPort: Int = 7000,
        nodeHost: String = "127.0.0.1", nodePort: Int = 6379,
        highWatermarkBytes: Int = 1 << 20, lowWatermarkBytes: Int = 256 << 10,
        readBufferBytes: Int = 256 << 10, nodeConnectTimeoutMilliseconds: UInt64 = 2000,
        maxClients: Int = 10_000, tcpNoDelay: Bool = true
    ) {
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.nodeHost = nodeHost
        self.nodePort = nodePort
        self.highWatermarkBytes = highWatermarkBytes
        self.lowWatermarkBytes = lowWatermarkBytes
        self.readBufferBytes = readBufferBytes
        self.nodeConnectTimeoutMilliseconds = nodeConnectTimeoutMilliseconds
        self.maxClients = maxClients
        self.tcpNoDelay = tcpNoDelay
    }
}

/// What slotwarden learnt about its node at start-up.
public struct NodeFacts: Sendable {
    public var version: ValkeyVersion
    public var commands: CommandTable
    /// Where the command table came from: the node's `COMMAND` reply or the built-in table.
    public var commandsSource: String
    public var clusterEnabled: Bool

    public init(version: ValkeyVersion, commands: CommandTable, commandsSource: String, clusterEnabled: Bool) {
        self.version = version
        self.commands = commands
        self.commandsSource = commandsSource
        self.clusterEnabled = clusterEnabled
    }
}
