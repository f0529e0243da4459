import Foundation
import AdminQuery
import Hummingbird
import NIOCore

extension AdminService {
    /// A failure that becomes an HTTP error with a JSON body.
    struct Failure: Error {
        var status: HTTPResponse.Status
        var body: ErrorBody

        init(_ status: HTTPResponse.Status, code: String, _ message: String, parameter: String? = nil) {
            self.status = status
            self.body = ErrorBody(error: .init(code: code, message: message, parameter: parameter))
        }
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data(#"{"error":{"code":"encoding","message":"cannot encode"}}"#.utf8)
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    func respond(_ body: () async throws -> some Encodable) async -> Response {
        do {
            return Self.json(try await body())
        } catch let error as AdminParameterError {
            return Self.json(
                ErrorBody(error: .init(code: "invalid_parameter", message: error.description, parameter: error.parameter)),
                status: .badRequest)
        } catch let failure as Failure {
            return Self.json(failure.body, status: failure.status)
        } catch {
            return Self.json(ErrorBody(error: .init(code: "internal", message: "\(error)")), status: .internalServerError)
        }
    }
}
