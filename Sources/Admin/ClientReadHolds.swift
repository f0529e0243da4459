import Ledger

extension AdminService {
    func setOperatorPause(_ paused: Bool) async throws -> FenceStateResponse {
        if paused { await readHolds.operatorPause() } else { await readHolds.operatorResume() }
        let state = await readHolds.state
        return FenceStateResponse(paused: state.paused, operatorPaused: state.operatorPaused, inFlight: await backend.inFlightCount())
    }
}

/// Who holds client reads paused: the operator, and fenced reconciliations in progress. Reads are
/// paused while anyone holds them; pause and resume calls reach the data plane in order.
actor ClientReadHolds {
    let backend: any AdminBackend
    private var holders = 0
    private var operatorHold = false
    private var transition: Task<Void, Never>?

    init(backend: any AdminBackend) { self.backend = backend }

    var state: (paused: Bool, operatorPaused: Bool) { (isPaused, operatorHold) }
    private var isPaused: Bool { holders > 0 || operatorHold }

    func hold() async {
        let wasPaused = isPaused
        holders += 1
        if wasPaused { await transition?.value } else { await apply(pause: true) }
    }

    func release() async {
        holders -= 1
        if !isPaused { await apply(pause: false) }
    }

    func operatorPause() async {
        let wasPaused = isPaused
        operatorHold = true
        if wasPaused { await transition?.value } else { await apply(pause: true) }
    }

    func operatorResume() async {
        guard operatorHold else { return }
        operatorHold = false
        if !isPaused { await apply(pause: false) }
    }

    private func apply(pause: Bool) async {
        let previous = transition
        let backend = backend
        let task = Task {
            await previous?.value
            if pause { await backend.pauseClientReads() } else { await backend.resumeClientReads() }
        }
        transition = task
        await task.value
    }
}
