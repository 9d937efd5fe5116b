// A replica inside the event loop: its virtual engines (one scheduler each, at most one step in flight)
// and its pipeline stages, which decide when a step can start and when it ends. See
// `SimulationConfig.Replica` for the pipeline model.
import HeadroomScheduling

/// One virtual engine: a scheduler (the real one) and the step it has in flight, if any.
struct Engine {
    var scheduler: ContinuousBatchingScheduler
    /// Index of the replica it belongs to.
    let replica: Int
    /// The plan in flight; nil when idle. Dropped before the next `schedule()`, so the scheduler's buffer
    /// is again uniquely held and reused rather than copied.
    var plan: StepPlan?
    /// When the step in flight leaves the last stage (∞ when idle).
    var stepEnd = Double.infinity
    /// Requests added and not yet finished.
    var outstanding = 0
    /// The scheduler's running count and used blocks when last looked at, so the loop's totals change by
    /// the difference.
    var running = 0
    var usedBlocks = 0

    init(scheduler: ContinuousBatchingScheduler, replica: Int) {
        self.scheduler = scheduler; self.replica = replica
    }

    var isIdle: Bool { plan == nil }
}

/// One replica's shared parts: the predictor, which engines are its own, and its pipeline's stages.
struct ReplicaState {
    let predictor: any ExecutionTimePredictor
    /// Its virtual engines' indices in the loop's engine array.
    let engines: Range<Int>
    /// When each stage is next free (the clock of the current busy period).
    var stageFree: [Double]
    /// Requests added to its engines and not yet finished (the least-outstanding router's measure).
    var outstanding = 0

    init(predictor: any ExecutionTimePredictor, engines: Range<Int>, stages: Int) {
        self.predictor = predictor; self.engines = engines
        stageFree = Array(repeating: 0, count: stages)
    }

    /// Puts a step of `seconds` (all stages) into the pipeline at `now`: it enters each stage when the stage
    /// is free and the previous stage is done with it, and spends seconds / stages in each. Returns when it
    /// entered the first stage and left the last. With one stage: (now, now + seconds).
    mutating func occupy(now: Double, seconds: Double) -> (start: Double, end: Double) {
        if stageFree.count == 1 {
            let start = max(now, stageFree[0])
            stageFree[0] = start + seconds
            return (start, start + seconds)
        }
        let perStage = seconds / Double(stageFree.count)
        let start = max(now, stageFree[0])
        var t = start
        for k in stageFree.indices {
            t = max(t, stageFree[k]) + perStage
            stageFree[k] = t
        }
        return (start, t)
    }

    /// The engine of this replica a new request goes to: the one with the fewest unfinished requests
    /// (vLLM v0's choice among virtual engines), the first on a tie.
    func engineForNewRequest(_ all: [Engine]) -> Int {
        var best = engines.lowerBound
        for e in engines where all[e].outstanding < all[best].outstanding { best = e }
        return best
    }
}
