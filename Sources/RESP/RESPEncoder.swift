/// Encodes commands as RESP multibulk frames (`*N\r\n` then `$len\r\n<arg>\r\n` per argument).
public enum RESPEncoder {
    public static func command(_ args: [String]) -> [UInt8] {
        command(args.map { Array($0.utf8) })
    }

    public static func command(_ args: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16 + args.reduce(0) { $0 + $1.count + 16 })
        out.append(UInt8(ascii: "*"))
        out.append(contentsOf: String(args.count).utf8)
        out.append(contentsOf: [13, 10])
        for arg in args {
            out.append(UInt8(ascii: "$"))
            out.append(contentsOf: String(arg.count).utf8)
            out.append(contentsOf: [13, 10])
            out.append(contentsOf: arg)
            out.append(contentsOf: [13, 10])
        }
        return out
    }
}
