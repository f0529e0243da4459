import Foundation
import Testing
import Yams

/// docs/openapi.yaml, and a check of a JSON body against the schema it gives for one response.
/// Supports what the file uses: $ref, type, required, properties, additionalProperties (false or a
/// schema), items, enum, minimum and maximum.
struct OpenAPISchema: Sendable {
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    let document: [String: any Sendable]

    static func load() throws -> OpenAPISchema {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
        let loaded = try Yams.load(yaml: text)
        return OpenAPISchema(document: try #require(Self.sendable(loaded) as? [String: any Sendable]))
    }

    /// Yams gives `[String: Any]`; turn it into Sendable values.
    private static func sendable(_ value: Any?) -> any Sendable {
        switch value {
        case let map as [String: Any]: return map.mapValues { sendable($0) }
        case let map as [AnyHashable: Any]:
            return Dictionary(uniqueKeysWithValues: map.map { ("\($0.key)", sendable($0.value)) })
        case let list as [Any]: return list.map { sendable($0) }
        case let text as String: return text
        case let number as Int: return number
        case let number as Double: return number
        case let flag as Bool: return flag
        default: return "\(value ?? "null")"
        }
    }

    /// The paths the document lists, with their methods.
    var operations: [String] {
        let paths = document["paths"] as? [String: any Sendable] ?? [:]
        return paths.flatMap { path, item in
            ((item as? [String: any Sendable]) ?? [:]).keys.map { "\($0.uppercased()) \(path)" }
        }.sorted()
    }

    /// Problems found checking `body` (JSON text) against the schema of `path`/`method`/`status`.
    func problems(path: String, method: String, status: Int, body: String) throws -> [String] {
        let operation = try #require(
            ((document["paths"] as? [String: any Sendable])?[path] as? [String: any Sendable])?[method.lowercased()]
                as? [String: any Sendable], "\(method) \(path) is not in docs/openapi.yaml")
        var response = try #require(
            (operation["responses"] as? [String: any Sendable])?["\(status)"] as? [String: any Sendable],
            "\(method) \(path) documents no \(status) response")
        if let reference = response["$ref"] as? String { response = try resolve(reference) }
        let schema = try #require(
            ((response["content"] as? [String: any Sendable])?["application/json"] as? [String: any Sendable])?["schema"]
                as? [String: any Sendable], "\(method) \(path) \(status) has no JSON schema")
        let value = try JSONValue.parse(body)
        var problems: [String] = []
        try check(value, against: schema, at: "$", problems: &problems)
        return problems
    }

    private func resolve(_ reference: String) throws -> [String: any Sendable] {
        var node: any Sendable = document
        for part in reference.dropFirst(2).split(separator: "/") {
            node = try #require((node as? [String: any Sendable])?[String(part)], "unresolved \(reference)")
        }
        return try #require(node as? [String: any Sendable])
    }

    private func check(_ value: JSONValue, against schema: [String: any Sendable], at path: String, problems: inout [String]) throws {
        if let reference = schema["$ref"] as? String {
            try check(value, against: resolve(reference), at: path, problems: &problems)
            return
        }
        if let choices = schema["enum"] as? [any Sendable] {
            if case .string(let text) = value, !choices.contains(where: { "\($0)" == text }) {
                problems.append("\(path): \(text) is not one of \(choices)")
            }
        }
        switch (schema["type"] as? String, value) {
        case ("object", .object(let object)):
            let properties = schema["properties"] as? [String: any Sendable] ?? [:]
            for name in schema["required"] as? [any Sendable] ?? [] where object["\(name)"] == nil {
                problems.append("\(path): missing required '\(name)'")
            }
            for (name, member) in object {
                if let property = properties[name] as? [String: any Sendable] {
                    try check(member, against: property, at: "\(path).\(name)", problems: &problems)
                } else if let additional = schema["additionalProperties"] as? [String: any Sendable] {
                    try check(member, against: additional, at: "\(path).\(name)", problems: &problems)
                } else if (schema["additionalProperties"] as? Bool) == false {
                    problems.append("\(path): '\(name)' is not in the schema")
                }
            }
        case ("array", .array(let array)):
            if let items = schema["items"] as? [String: any Sendable] {
                for (index, element) in array.enumerated() {
                    try check(element, against: items, at: "\(path)[\(index)]", problems: &problems)
                }
            }
        case ("string", .string), ("boolean", .bool), ("number", .integer), ("number", .double), (nil, _):
            break
        case ("integer", .integer(let number)):
            if let minimum = schema["minimum"] as? Int, number < minimum { problems.append("\(path): \(number) < \(minimum)") }
            if let maximum = schema["maximum"] as? Int, number > maximum { problems.append("\(path): \(number) > \(maximum)") }
        case (let type?, _):
            problems.append("\(path): expected \(type), got \(value)")
        }
    }
}

/// A JSON value with its JSON type kept (JSONSerialization on Linux blurs booleans and numbers).
indirect enum JSONValue: Decodable, Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        if var list = try? decoder.unkeyedContainer() {
            var values: [JSONValue] = []
            while !list.isAtEnd { values.append(try list.decode(JSONValue.self)) }
            self = .array(values)
            return
        }
        if let map = try? decoder.container(keyedBy: AnyKey.self) {
            var values: [String: JSONValue] = [:]
            for key in map.allKeys { values[key.stringValue] = try map.decode(JSONValue.self, forKey: key) }
            self = .object(values)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            self = .null
        } else if let flag = try? single.decode(Bool.self) {
            self = .bool(flag)
        } else if let number = try? single.decode(Int64.self) {
            self = .integer(number)
        } else if let number = try? single.decode(Double.self) {
            self = .double(number)
        } else {
            self = .string(try single.decode(String.self))
        }
    }

    static func parse(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    subscript(key: String) -> JSONValue? {
        if case .object(let map) = self { return map[key] }
        return nil
    }

    subscript(index: Int) -> JSONValue? {
        if case .array(let list) = self, list.indices.contains(index) { return list[index] }
        return nil
    }

    var string: String? { if case .string(let text) = self { text } else { nil } }
    var int: Int64? { if case .integer(let number) = self { number } else { nil } }
    var bool: Bool? { if case .bool(let flag) = self { flag } else { nil } }
    var array: [JSONValue]? { if case .array(let list) = self { list } else { nil } }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
