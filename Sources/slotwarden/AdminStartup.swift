import Admin
import Settings
import ArgumentParser
import Foundation
import Logging
import Metrics
import NIOCore
import Proxy

extension AdminSettings {
    /// Loads the token and validates the listener, before anything starts: a non-loopback listener
    /// without a token refuses to start.
    func configuration(environment: [String: String]) throws -> AdminConfiguration {
        do {
            let token = try AdminToken.load(
                file: tokenFile, environmentVariable: tokenEnvironmentVariable, environment: environment)
            let configuration = AdminConfiguration(
                listenHost: listenHost, listenPort: listenPort, token: token, maxPauseMilliseconds: maxPauseMilliseconds,
                topSlots: topSlots)
            try configuration.validate()
            return configuration
        } catch {
            throw ValidationError(error.description)
        }
    }
}

/// Starts the admin API for a data plane that is about to start: the node's baseline is read first,
/// so the epoch's node delta starts where the ledger does. The returned task serves until cancelled.
/// While another slotwarden hands this address over (`retryWhileAddressInUse`), the admin port may
/// still be its own: binding is retried until that one lets it go.
func startAdmin(
    _ configuration: AdminConfiguration, sidecar: Sidecar, logger: Logger, retryWhileAddressInUse: Bool
) async -> (task: Task<Void, Never>, service: AdminService) {
    let admin = AdminService(backend: ProxyBackend(sidecar: sidecar), configuration: configuration)
    MetricsSystem.bootstrap(admin.metrics.swiftMetricsFactory())
    do {
        try await admin.takeBaseline()
    } catch {
        logger.warning("cannot read the node's CLUSTER SLOT-STATS baseline: reconciliation is unavailable", metadata: ["error": "\(error)"])
    }
    let task = Task {
        var waitingForPort = false
        while !Task.isCancelled {
            do {
                try await admin.run(logger: logger) { port in
                    logger.info(
                        "admin API listening",
                        metadata: ["admin": "\(configuration.listenHost):\(port)", "token": "\(configuration.token == nil ? "none" : "set")"])
                }
                return
            } catch let error as IOError where error.errnoCode == EADDRINUSE && retryWhileAddressInUse {
                if !waitingForPort {
                    logger.notice(
                        "the admin port is still the previous slotwarden's; retrying until it is free",
                        metadata: ["admin": "\(configuration.listenHost):\(configuration.listenPort)"])
                    waitingForPort = true
                }
                try? await Task.sleep(for: .milliseconds(100))
            } catch {
                logger.error(
                    "the admin API stopped; the data plane goes on",
                    metadata: ["admin": "\(configuration.listenHost):\(configuration.listenPort)", "error": "\(error)"])
                return
            }
        }
    }
    return (task, admin)
}
