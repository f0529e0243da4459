import Admin
import ArgumentParser
import Foundation

struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger", abstract: "Read the ledger through the admin API.", subcommands: [Top.self])

    struct Top: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The busiest slots.")

        @Option(name: .long, help: "The admin API, e.g. http://127.0.0.1:7070.")
        var admin: String = "http://127.0.0.1:7070"

        @Option(name: .long, help: "bytes_in, bytes_out or commands.")
        var by: String = "bytes_in"

        @Option(name: .long, help: "How many slots (1 to 1000).")
        var limit: Int = 10

        @Option(name: .long, help: "wire or node.")
        var view: String = "wire"

        @Flag(name: .long, help: "Print the API's JSON.")
        var json = false

        func run() async throws {
            let client = try AdminClient(url: admin)
            let reply: AdminClient.Reply
            do {
                reply = try await client.get("/v1/ledger/top?by=\(by)&limit=\(limit)&view=\(view)")
            } catch {
                printError("slotwarden ledger top: \(error)")
                throw ExitCode(2)
            }
            guard reply.status == 200 else {
                printError("slotwarden ledger top: HTTP \(reply.status): \(AdminClient.errorMessage(reply))")
                throw ExitCode(reply.status == 400 ? 1 : 2)
            }
            if json {
                print(String(decoding: reply.body, as: UTF8.self))
                return
            }
            let top = try AdminClient.decoder().decode(TopResponse.self, from: reply.body)
            print(
                table(
                    ["slot", "commands", "bytes in", "bytes out"],
                    top.slots.map { ["\($0.slot)", "\($0.commands)", "\($0.bytesIn)", "\($0.bytesOut)"] }))
        }
    }
}
