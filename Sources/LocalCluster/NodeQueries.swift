import Foundation
import Proxy
import RESP

/// Polls `check` until it returns a value or `timeout` passed, with a short pause between attempts: a
/// node announces none of these changes (a role, a replication link, a cluster view), so they are
/// asked for again. A thrown error counts as "not yet" and is named if time runs out.
@discardableResult
public func waitUntil<Value>(_ what: String, timeout: Duration, _ check: () throws -> Value?) throws -> Value {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    var lastError: (any Error)?
    while true {
        do {
            if let value = try check() { return value }
            lastError = nil
        } catch {
            lastError = error
        }
        guard clock.now < deadline else {
            let cause = lastError.map { " (last error: \($0))" } ?? ""
            throw LocalCluster.Failure(description: "timed out after \(timeout) waiting until \(what)\(cause)")
        }
        usleep(2_000)
    }
}

func expectOK(_ reply: RESPValue, _ what: String) throws {
    guard reply == .simpleString("OK") else { throw LocalCluster.Failure(description: "\(what) answered \(reply)") }
}

extension LocalCluster {
    /// The `key:value` lines of an `INFO`-style reply, as a dictionary.
    static func fields(of reply: RESPValue) throws -> [String: String] {
        guard let text = reply.string else { throw Failure(description: "not a key:value text: \(reply)") }
        var fields: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = String(line[line.index(after: colon)...])
        }
        return fields
    }
}

extension LocalCluster.Member {
    /// The first element of the node's `ROLE` reply (`master`, `slave`), asked directly.
    public func role() throws -> String {
        guard case .array(let parts) = try direct().call("ROLE"), let role = parts.first?.string else {
            throw LocalCluster.Failure(description: "ROLE on \(self) is not an array")
        }
        return role
    }

    /// `INFO <section>` as a dictionary.
    public func info(section: String) throws -> [String: String] {
        try info(command: ["INFO", section])
    }

    /// A command that answers `key:value` lines (`INFO`, `CLUSTER INFO`), as a dictionary.
    public func info(command: [String]) throws -> [String: String] {
        let reply = try direct().call(command)
        guard reply.string != nil else { throw LocalCluster.Failure(description: "\(command) on \(self): \(reply)") }
        return try LocalCluster.fields(of: reply)
    }

    /// The ports `CLUSTER SLOTS` names for each slot range, primary first.
    public func slotsPorts() throws -> [[Int]] {
        guard case .array(let ranges) = try direct().call("CLUSTER", "SLOTS") else { return [] }
        return ranges.map { range in
            guard case .array(let parts) = range else { return [] }
            return parts.dropFirst(2).compactMap { node in
                guard case .array(let fields) = node, fields.count >= 2, case .integer(let port) = fields[1] else { return nil }
                return Int(port)
            }
        }
    }
}
