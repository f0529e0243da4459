import Accounting
import Proxy
import RESP

/// A small blocking cluster client that only ever talks to sidecars: it sends a command through a
/// sidecar, follows `-MOVED`/`-ASK` to the sidecar they name (and records a violation when they name
/// anything else) — `-MOVED` changes the slot's route; `-ASK` sends `ASKING`, then the command, on
/// the target's connection, once, and keeps the route — and retries after `-TRYAGAIN`,
/// `-CLUSTERDOWN`, `-LOADING` or a lost connection a bounded number of times, without sleeping.
/// Every error reply other than a redirect, and every lost connection, is recorded in `problems`,
/// even when a retry then succeeded: through slotwarden a client should see nothing but redirects.
public final class SidecarClusterClient {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let sidecarPorts: Set<Int>
    public let maxAttempts: Int
    private var connections: [Int: NodeClient] = [:]
    /// Where each slot was last served; `entryPort` for every slot not seen yet.
    private var routes: [UInt16: Int] = [:]
    private let entryPort: Int

    public private(set) var commands = 0
    public private(set) var redirects = 0
    public private(set) var retries = 0
    /// Error replies other than redirects, lost connections, and redirects that name a non-sidecar port.
    public private(set) var problems: [String] = []

    public init(sidecarPorts: Set<Int>, entryPort: Int, maxAttempts: Int = 200) {
        precondition(sidecarPorts.contains(entryPort))
        self.sidecarPorts = sidecarPorts
        self.entryPort = entryPort
        self.maxAttempts = maxAttempts
    }

    public func close() {
        for connection in connections.values { connection.close() }
        connections.removeAll()
    }

    /// Sends a command whose first argument after the name is its key; returns the first reply that is
    /// not a redirect or a retryable error. Throws when the attempts are used up or a redirect leaves
    /// the sidecars.
    @discardableResult
    public func call(key: String, _ arguments: [String]) throws -> RESPValue {
        commands += 1
        let slot = HashSlot(key: key)
        var port = routes[slot.rawValue] ?? entryPort
        var asking = false
        for _ in 0..<maxAttempts {
            let reply: RESPValue
            // Whether this attempt follows an -ASK: then its port serves the slot once, not from now on.
            let asked = asking
            do {
                let connection = try connection(to: port)
                if asking {
                    asking = false
                    let ok = try connection.call("ASKING")
                    if ok != .simpleString("OK") { problems.append("ASKING via :\(port): \(ok)") }
                }
                reply = try connection.call(arguments)
            } catch {
                // Lost or refused: the reply (if any) is unknown. Drop the connection, try another sidecar.
                connections.removeValue(forKey: port)?.close()
                problems.append("\(arguments[0]) \(key) via :\(port): \(error)")
                retries += 1
                port = sidecarPorts.sorted().first { $0 != port } ?? port
                continue
            }
            guard case .error(let message) = reply else {
                if !asked { routes[slot.rawValue] = port }
                return reply
            }
            let words = message.split(separator: " ")
            switch words.first {
            case "MOVED", "ASK":
                redirects += 1
                guard words.count == 3, let redirectedSlot = UInt16(words[1]),
                    let colon = words[2].lastIndex(of: ":"), let target = Int(words[2][words[2].index(after: colon)...])
                else { throw record("unparsable redirect for \(key): -\(message)") }
                guard sidecarPorts.contains(target) else {
                    throw record("redirect for \(key) leaves the sidecars: -\(message) (sidecars: \(sidecarPorts.sorted()))")
                }
                if redirectedSlot != slot.rawValue {
                    problems.append("redirect for \(key) names slot \(redirectedSlot), the key hashes to \(slot.rawValue)")
                }
                if words[0] == "MOVED" { routes[slot.rawValue] = target } else { asking = true }
                port = target
            case "TRYAGAIN", "CLUSTERDOWN", "LOADING":
                problems.append("\(arguments[0]) \(key) via :\(port): -\(message)")
                retries += 1
            default:
                // Not retryable (WRONGTYPE, READONLY, ...): recorded and handed back.
                problems.append("\(arguments[0]) \(key) via :\(port): -\(message)")
                return reply
            }
        }
        throw record("\(arguments[0]) \(key): no answer after \(maxAttempts) attempts")
    }

    private func record(_ problem: String) -> Failure {
        problems.append(problem)
        return Failure(description: problem)
    }

    private func connection(to port: Int) throws -> NodeClient {
        if let connection = connections[port] { return connection }
        let connection = try NodeClient(host: "127.0.0.1", port: port)
        connections[port] = connection
        return connection
    }
}
