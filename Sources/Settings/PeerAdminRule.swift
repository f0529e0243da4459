/// How a sidecar finds another node's sidecar admin API from the address that node announces (its
/// sidecar's listen address): an explicit entry for that address, or else the announced host at the
/// announced port plus an offset (`peers:` in the configuration).
public struct PeerAdminRule: Equatable, Sendable {
    /// Added to an announced port; nil: the same offset as this sidecar's own (admin port − listen port).
    public var adminPortOffset: Int?
    /// Announced `host:port` → admin `host:port`.
    public var addresses: [String: String] = [:]
    /// How long one ask of a peer may take.
    public var timeoutMilliseconds = 1000

    public init() {}

    /// The admin address (`host:port`) of the sidecar announced as `announced`.
    public func adminAddress(of announced: String, ownOffset: Int) -> String? {
        if let explicit = addresses[announced] { return explicit }
        guard let address = HostPort(announced) else { return nil }
        let port = address.port + (adminPortOffset ?? ownOffset)
        guard (1...65535).contains(port) else { return nil }
        return address.host.contains(":") ? "[\(address.host)]:\(port)" : "\(address.host):\(port)"
    }
}
