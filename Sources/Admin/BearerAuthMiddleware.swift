import Hummingbird

/// Guards the mutating endpoints (a route group): a request passes only with
/// `Authorization: Bearer <token>` naming the configured token. Without a configured token those
/// endpoints are disabled (403); a missing or malformed header is 401 with `WWW-Authenticate`, a
/// wrong token 403.
struct BearerAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The token as configured now (a reload may change it).
    let token: @Sendable () -> AdminToken?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let refusal = refusal(of: request) { return refusal }
        return try await next(request, context)
    }

    /// nil when the request carries the right bearer token, else the 401/403 response.
    func refusal(of request: Request) -> Response? {
        guard let token = token() else {
            return AdminService.json(
                ErrorBody(
                    error: .init(
                        code: "no_token_configured",
                        message: "mutating endpoints are disabled: configure admin.token_file or admin.token_env")),
                status: .forbidden)
        }
        guard let header = request.headers[.authorization] else {
            var response = AdminService.json(
                ErrorBody(error: .init(code: "unauthorized", message: "this endpoint needs Authorization: Bearer <token>")),
                status: .unauthorized)
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            var response = AdminService.json(
                ErrorBody(error: .init(code: "unauthorized", message: "expected the Bearer scheme")), status: .unauthorized)
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        guard token.matches(parts[1].trimmingWhitespace()) else {
            return AdminService.json(ErrorBody(error: .init(code: "forbidden", message: "wrong token")), status: .forbidden)
        }
        return nil
    }
}
