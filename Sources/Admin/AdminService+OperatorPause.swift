import Proxy

extension AdminService {
    /// `POST /v1/fence/pause` and `/resume`: the operator's pause is one holder among the fence's and
    /// the fenced reconciliations' (``ClientGate``), on or off however often it is asked for.
    func setOperatorPause(_ paused: Bool) async throws -> FenceStateResponse {
        if paused {
            await backend.pauseClientReads(by: .operator)
        } else {
            await backend.resumeClientReads(by: .operator)
        }
        let state = await backend.clientReadState()
        return FenceStateResponse(paused: state.paused, operatorPaused: state.operatorPaused, inFlight: await backend.inFlightCount())
    }
}
