import LocalCluster
import Logging
import Proxy
import Testing
import TestSupport

extension LocalCluster {
    /// The fence as the failover tests run it: a short drain, and a max pause well below the test
    /// clients' 5 s reply timeout.
    static let testFence = FenceConfiguration(
        fence: .init(drainTimeoutMilliseconds: 500, maxPauseMilliseconds: 3000, roleChangeTimeoutMilliseconds: 2000))

    /// A cluster of the installed Valkey `major`, `shards` × (1 + `replicasPerShard`), with the test
    /// fence and quiet sidecars.
    convenience init(
        major: Int, shards: Int = 1, replicasPerShard: Int = 1, fence: FenceConfiguration = testFence,
        nodeTimeoutMilliseconds: Int = defaultNodeTimeoutMilliseconds, logLevel: Logger.Level = .critical
    ) throws {
        let executable = try #require(ValkeyBinaries.path(major: major), ValkeyBinaries.missingReason)
        try self.init(
            executable: executable, shards: shards, replicasPerShard: replicasPerShard, fence: fence,
            nodeTimeoutMilliseconds: nodeTimeoutMilliseconds, logLevel: logLevel)
    }

    convenience init(
        executable: String, shards: Int = 1, replicasPerShard: Int = 1, fence: FenceConfiguration = testFence,
        nodeTimeoutMilliseconds: Int = defaultNodeTimeoutMilliseconds, logLevel: Logger.Level = .critical
    ) throws {
        var logger = Logger(label: "slotwarden.test")
        logger.logLevel = logLevel
        try self.init(
            executable: executable, shards: shards, replicasPerShard: replicasPerShard, fence: fence,
            nodeTimeoutMilliseconds: nodeTimeoutMilliseconds, logger: logger)
    }
}
