import Foundation

/// Free loopback ports for servers the demo and the tests start.
public enum FreePorts {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// A free port for a cluster-mode node whose bus port (the port + 10000) is free too.
    ///
    /// Valkey refuses client ports above 55535 in cluster mode (the bus port must fit), and the
    /// kernel's own free ports come from its ephemeral range (32768–60999 by default), so candidates
    /// are drawn at random from 20000–32000 instead: below the ephemeral range, with bus ports at
    /// most 42000.
    public static func clusterNodePort() throws -> Int {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let port = Int.random(in: 20_000...32_000, using: &generator)
            if isFree(port), isFree(port + 10_000) { return port }
        }
        throw Failure(description: "no free port pair (port, port + 10000) with the port in 20000–32000")
    }

    /// A port the kernel reports free now (it may be taken again before the caller binds it).
    public static func any() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket failed") }
        defer { close(descriptor) }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(descriptor, pointer, length) == 0 && getsockname(descriptor, pointer, &length) == 0
            }
        }
        guard bound else { throw Failure(description: "cannot bind a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether a listening socket could bind 127.0.0.1:`port` now.
    private static func isFree(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = loopback(port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}
