import Foundation

/// slotwarden's version, as `/metrics` reports it in `slotwarden_build_info`.
public let slotwardenVersion = "0.1.0-dev"

/// How the admin listener is set up; validated by ``validate()`` before it starts.
public struct AdminConfiguration: Sendable {
    public var listenHost: String
    public var listenPort: Int
    /// Required by the mutating endpoints; nil disables them.
    public var token: AdminToken?
    /// The longest a fenced reconciliation waits for in-flight commands to drain.
    public var maxPauseMilliseconds: Int
    /// How many of the busiest slots get per-slot series in `/metrics`.
    public var topSlots: Int

    public init(
        listenHost: String = "127.0.0.1", listenPort: Int = 7070, token: AdminToken? = nil,
        maxPauseMilliseconds: Int = 50, topSlots: Int = 16
    ) {
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.token = token
        self.maxPauseMilliseconds = maxPauseMilliseconds
        self.topSlots = topSlots
    }

    /// Refuses a listener reachable from other machines without a token.
    public func validate() throws(AdminStartupError) {
        if token == nil && !isLoopbackHost(listenHost) {
            throw AdminStartupError(
                "admin.listen is \(listenHost):\(listenPort), which other machines can reach, but no admin token is "
                    + "configured: set admin.token_file or admin.token_env, or listen on 127.0.0.1")
        }
    }
}
