import Accounting
import RESP

/// A query value the API refuses: answered with 400 and a JSON error naming the parameter.
public struct AdminParameterError: Error, Equatable, Sendable, CustomStringConvertible {
    public var parameter: String
    public var message: String

    public init(parameter: String, message: String) {
        self.parameter = parameter
        self.message = message
    }

    public var description: String { "\(parameter): \(message)" }
}

/// A set of slots given as `0-16383`, `42` or `0-99,200,300-310`.
public struct SlotSelection: Equatable, Sendable, CustomStringConvertible {
    public private(set) var ranges: [ClosedRange<Int>]

    public static let all = SlotSelection(ranges: [0...(HashSlot.count - 1)])

    init(ranges: [ClosedRange<Int>]) { self.ranges = ranges }

    public init(parsing text: some StringProtocol, parameter: String = "slots") throws(AdminParameterError) {
        var ranges: [ClosedRange<Int>] = []
        let maximum = HashSlot.count - 1
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count), let low = Int(bounds[0]), let high = Int(bounds[bounds.count - 1]) else {
                throw AdminParameterError(
                    parameter: parameter, message: "expected a slot or a range such as 0-16383 (comma-separated), got '\(part)'")
            }
            guard (0...maximum).contains(low), (0...maximum).contains(high) else {
                throw AdminParameterError(parameter: parameter, message: "slots are 0 to \(maximum), got '\(part)'")
            }
            guard low <= high else {
                throw AdminParameterError(parameter: parameter, message: "range '\(part)' ends before it starts")
            }
            ranges.append(low...high)
        }
        self.ranges = ranges
    }

    public func contains(_ slot: Int) -> Bool { ranges.contains { $0.contains(slot) } }

    /// Every selected slot once, ascending.
    public var slots: [Int] {
        var seen = Set<Int>()
        return ranges.flatMap { $0 }.filter { seen.insert($0).inserted }.sorted()
    }

    public var description: String {
        ranges.map { $0.lowerBound == $0.upperBound ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
            .joined(separator: ",")
    }
}

/// Reads and validates query parameters.
package struct QueryReader {
    package var parameters: [String: String]

    package init(parameters: [String: String]) { self.parameters = parameters }

    package func string(_ name: String) -> String? { parameters[name] }

    package func choice<Value: RawRepresentable>(_ name: String, default value: Value) throws(AdminParameterError) -> Value
    where Value.RawValue == String, Value: CaseIterable {
        guard let text = parameters[name] else { return value }
        guard let parsed = Value(rawValue: text) else {
            let choices = Value.allCases.map(\.rawValue).joined(separator: ", ")
            throw AdminParameterError(parameter: name, message: "expected one of \(choices), got '\(text)'")
        }
        return parsed
    }

    package func optionalChoice<Value: RawRepresentable>(_ name: String, as type: Value.Type) throws(AdminParameterError) -> Value?
    where Value.RawValue == String, Value: CaseIterable {
        guard parameters[name] != nil else { return nil }
        return try choice(name, default: Value.allCases.first!)
    }

    package func bool(_ name: String, default value: Bool) throws(AdminParameterError) -> Bool {
        guard let text = parameters[name] else { return value }
        switch text {
        case "true", "1", "": return true
        case "false", "0": return false
        default: throw AdminParameterError(parameter: name, message: "expected true or false, got '\(text)'")
        }
    }

    package func int(_ name: String, default value: Int, in range: ClosedRange<Int>) throws(AdminParameterError) -> Int {
        guard let text = parameters[name] else { return value }
        guard let parsed = Int(text) else {
            throw AdminParameterError(parameter: name, message: "expected an integer, got '\(text)'")
        }
        guard range.contains(parsed) else {
            throw AdminParameterError(
                parameter: name, message: "\(parsed) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return parsed
    }

    package func slots(_ name: String) throws(AdminParameterError) -> SlotSelection {
        guard let text = parameters[name] else { return .all }
        return try SlotSelection(parsing: text, parameter: name)
    }
}

/// `by=` of `/v1/ledger/top`.
public enum TopOrder: String, CaseIterable, Sendable {
    case bytesIn = "bytes_in"
    case bytesOut = "bytes_out"
    case commands

    package func value(_ counters: SlotCounters) -> UInt64 {
        switch self {
        case .bytesIn: counters.bytesIn
        case .bytesOut: counters.bytesOut
        case .commands: counters.commands
        }
    }
}

/// `mode=` of `/v1/reconcile`.
public enum ReconcileMode: String, CaseIterable, Sendable, Codable {
    case live
    case fenced
}
