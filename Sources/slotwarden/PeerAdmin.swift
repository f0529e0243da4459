import Admin
import Settings

extension PeerStreamClient {
    /// The client the executable uses: `rule`, with this sidecar's own admin offset as its default.
    init(rule: PeerAdminRule, ownOffset: Int) {
        self.init(timeoutMilliseconds: rule.timeoutMilliseconds) { rule.adminAddress(of: $0, ownOffset: ownOffset) }
    }
}
