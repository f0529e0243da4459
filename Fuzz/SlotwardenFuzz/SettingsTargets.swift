import AdminQuery
import Settings

/// The configuration file. Parsing never crashes; a refusal names the file and, where it has a
/// position, one inside the text (line and column from 1); a configuration it accepts has every
/// value within its documented range, and its addresses read back as they were written.
enum ConfigTarget {
    static func run(_ input: [UInt8]) {
        let text = String(decoding: input, as: UTF8.self)
        let config: SlotwardenConfig
        do {
            config = try SlotwardenConfig.parse(text, path: "fuzz.yaml")
        } catch let error as ConfigError {
            require(error.path == "fuzz.yaml", "an error names \(error.path)")
            require(error.column == nil || error.line != nil, "\(error) has a column without a line")
            if let line = error.line {
                let lines = text.unicodeScalars.split(omittingEmptySubsequences: false) { "\n\r\u{85}\u{2028}\u{2029}".unicodeScalars.contains($0) }
                require(line >= 1 && line <= lines.count + 1, "\(error): line \(line) of \(lines.count)")
                let longest = lines.map(\.count).max() ?? 0
                require(error.column.map { $0 >= 1 && $0 <= longest + 1 } ?? true, "\(error): column of lines up to \(longest)")
            }
            return
        } catch {
            require(false, "parse threw \(error), not a ConfigError")
            return
        }
        let proxy = config.proxy
        require(proxy.lowWatermarkBytes < proxy.highWatermarkBytes, "watermarks \(proxy.lowWatermarkBytes) ≥ \(proxy.highWatermarkBytes)")
        require((1...64).contains(proxy.workers) && (1...1_000_000).contains(proxy.maxClients), "workers or max_clients out of range")
        require((4096...(16 << 20)).contains(proxy.readBufferBytes) && (1...600_000).contains(proxy.nodeConnectTimeoutMilliseconds),
                "read_buffer_bytes or node_connect_timeout_ms out of range")
        require(["node", "builtin"].contains(config.commandsSource), "commands: \(config.commandsSource)")
        require((0...1024).contains(config.admin.topSlots) && (1...10_000).contains(config.admin.maxPauseMilliseconds),
                "metrics.top_slots or reconcile.max_pause_ms out of range")
        require((10...60_000).contains(config.fence.rolePollIntervalMilliseconds) && (1...100_000).contains(config.fence.epochHistory),
                "fence values out of range")
        require((1...60_000).contains(config.peers.timeoutMilliseconds), "peers.timeout_ms out of range")
        for (host, port) in [(proxy.listenHost, proxy.listenPort), (proxy.nodeHost, proxy.nodePort), (config.admin.listenHost, config.admin.listenPort)] {
            let written = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            let again = HostPort(written)
            require(again?.host == host && again?.port == port, "\(host) port \(port) reads back as \(String(describing: again))")
        }
        for (announced, address) in config.peers.addresses {
            require(HostPort(announced) != nil && HostPort(address) != nil, "peers.admin: \(announced) → \(address)")
        }
    }
}

/// The admin API's query parameters (`name=value&…`). Every refusal is an `AdminParameterError`
/// naming the parameter asked for; every value taken is within its range; a slot selection lists
/// each slot it contains once, ascending, and reads back from its description.
enum AdminQueryTarget {
    static func run(_ input: [UInt8]) {
        var parameters: [String: String] = [:]
        for pair in String(decoding: input, as: UTF8.self).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            parameters[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        let query = QueryReader(parameters: parameters)
        expect("slots", parameters) { () throws(AdminParameterError) in
            let selection = try query.slots("slots")
            require(!selection.ranges.isEmpty && selection.ranges.allSatisfy { $0.lowerBound >= 0 && $0.upperBound < 16384 },
                    "slots=\(parameters["slots"] ?? "") selects \(selection)")
            // (Listing the slots of thousands of whole ranges takes long; a short list shows the same.)
            if selection.ranges.reduce(0, { $0 + $1.count }) <= 2_000 {
                let slots = selection.slots
                require(zip(slots, slots.dropFirst()).allSatisfy { $0 < $1 } && slots.allSatisfy(selection.contains),
                        "the slots of \(selection) are not each once, ascending, contained")
            }
            require(selection.ranges.allSatisfy { selection.contains($0.lowerBound) && selection.contains($0.upperBound) },
                    "\(selection) does not contain its own bounds")
            require((try? SlotSelection(parsing: selection.description)) == selection, "\(selection) does not read back")
        }
        expect("limit", parameters) { () throws(AdminParameterError) in
            let limit = try query.int("limit", default: 10, in: 1...16384)
            require((1...16384).contains(limit), "limit=\(limit)")
            require(parameters["limit"].map { Int($0) == limit } ?? (limit == 10), "limit=\(parameters["limit"] ?? "") reads as \(limit)")
        }
        expect("live", parameters) { () throws(AdminParameterError) in
            let live = try query.bool("live", default: false)
            require(parameters["live"].map { ["true", "1", ""].contains($0) == live } ?? !live, "live reads as \(live)")
        }
        expect("by", parameters) { () throws(AdminParameterError) in
            let order = try query.choice("by", default: TopOrder.bytesIn)
            require(parameters["by"].map { $0 == order.rawValue } ?? (order == .bytesIn), "by reads as \(order)")
        }
        expect("mode", parameters) { () throws(AdminParameterError) in
            let mode = try query.optionalChoice("mode", as: ReconcileMode.self)
            require(parameters["mode"] == mode?.rawValue, "mode reads as \(String(describing: mode))")
        }
    }

    /// Runs `body`; a refusal must name `parameter` and can only come from a value given for it.
    static func expect(_ parameter: String, _ parameters: [String: String], _ body: () throws(AdminParameterError) -> Void) {
        do {
            try body()
        } catch {
            require(error.parameter == parameter && parameters[parameter] != nil, "asking for \(parameter): \(error)")
        }
    }
}
