// The discrete-event loop: requests arrive, a router sends each to a replica, and each virtual engine runs
// HeadroomScheduling's scheduler — the one behind `headroom serve` — step by step, each step taking the
// predictor's time for the batch the scheduler planned. Only two kinds of event exist, an arrival and a
// step's end, and an engine has at most one step in flight, so the next event is the earlier of the next
// arrival and the earliest step end, found by a scan over the engines (replicas × pipeline stages, a few):
// no event queue to allocate or maintain.
import Dispatch
import Foundation
import HeadroomScheduling

/// Runs simulations of a `SimulationConfig`.
public enum Simulation {
    /// One run. Throws the first invalid field, or a part's broken promise (a predictor's non-finite or
    /// non-positive step time; a scheduler that stops making progress).
    public static func run(_ config: SimulationConfig) throws(SimulationError) -> SimulationRun {
        try config.validate()
        return try runValidated(config)
    }

    /// `replications` runs with seeds from `replicationSeed`, in parallel across cores when `parallel`; each
    /// run depends only on its seed, so the summary does not depend on thread timing. Throws the error of
    /// the lowest-numbered failing run.
    public static func replicate(_ config: SimulationConfig, replications: Int, parallel: Bool = true)
        throws(SimulationError) -> SimulationSummary {
        guard replications >= 1 && replications <= maxReplications else {
            throw SimulationError(field: "replications", expected: "from 1 to \(maxReplications)", got: "\(replications)")
        }
        try config.validate()
        var results = [Result<SimulationRun, SimulationError>?](repeating: nil, count: replications)
        results.withUnsafeMutableBufferPointer { buffer in
            // Each iteration writes only its own slot.
            let slots = buffer
            let one = { (i: Int) in
                var c = config
                c.seed = replicationSeed(config.seed, replication: i)
                do throws(SimulationError) { slots[i] = .success(try runValidated(c)) } catch { slots[i] = .failure(error) }
            }
            if parallel && replications > 1 {
                DispatchQueue.concurrentPerform(iterations: replications, execute: one)
            } else {
                for i in 0..<replications { one(i) }
            }
        }
        var runs: [SimulationRun] = []
        runs.reserveCapacity(replications)
        for result in results {
            switch result! {
            case .success(let run): runs.append(run)
            case .failure(let error): throw error
            }
        }
        return SimulationSummary(runs: runs)
    }

    /// The most replications `replicate` runs.
    public static let maxReplications = 10_000

    /// The seed of replication `i` under `seed`: `seed` itself for the first, so one replication is `run`;
    /// an independent stream for each other.
    public static func replicationSeed(_ seed: UInt64, replication i: Int) -> UInt64 {
        i == 0 ? seed : SimulationRandom.seed(seed, stream: 1000 + UInt64(i))
    }

    static func runValidated(_ config: SimulationConfig) throws(SimulationError) -> SimulationRun {
        var loop = EventLoop(config)
        return try loop.run()
    }
}

/// The requests of one run, drawn before it starts: arrival times (seconds, non-decreasing) and lengths.
struct PlannedRequests {
    var arrival: [Double]
    var prompt: [Int]
    var output: [Int]

    /// Arrivals, prompt lengths and output lengths each from their own stream of `config.seed`.
    init(_ config: SimulationConfig) {
        let n = config.arrivals.count(requested: config.requests)
        arrival = config.arrivals.times(count: n, seed: SimulationRandom.seed(config.seed, stream: 1))
        if case .trace(let entries) = config.arrivals {
            prompt = entries.prefix(n).map(\.promptTokens)
            output = entries.prefix(n).map(\.outputTokens)
        } else {
            var p = SimulationRandom(seed: SimulationRandom.seed(config.seed, stream: 2))
            var o = SimulationRandom(seed: SimulationRandom.seed(config.seed, stream: 3))
            prompt = (0..<n).map { _ in config.promptLengths.sample(&p) }
            output = (0..<n).map { _ in config.outputLengths.sample(&o) }
        }
    }
}

/// One run's state. Times inside the loop are on the clock of the current busy period — seconds since
/// `origin`, the arrival that found the system empty — so a run whose arrivals are 10⁹ s apart (the
/// planner's near-zero load) still measures millisecond latencies to the nanosecond; absolute times are
/// `origin` + clock. Per-request arrays are indexed by arrival order, which is also the request's id.
struct EventLoop {
    private let planned: PlannedRequests
    private let recordGaps: Bool
    private let slo: SLO?
    private var engines: [Engine] = []
    private var replicas: [ReplicaState] = []
    private var cluster: Cluster
    private let totalBlocks: Int
    /// Σ (prompt + output) over the run's requests: more steps than this means no progress (see `start`).
    private let stepLimit: Int

    // Per request, on the clock of its busy period (NaN until it happens).
    private var arrivedAt: [Double]
    private var firstScheduledAt: [Double]
    private var firstTokenAt: [Double]
    private var lastTokenAt: [Double]
    private var finishedAt: [Double]
    private var preemptionsOf: [Int]
    private var replicaOf: [Int]
    private var rejected: [RejectedRequest] = []
    private var gaps: [Double] = []

    private var origin = 0.0
    private var now = 0.0
    /// Requests waiting or running, requests running, KV blocks in use: all engines together.
    private var held = 0
    private var running = 0
    private var usedBlocks = 0
    // Integrals over time, and per-step sums.
    private var heldArea = 0.0
    private var runningArea = 0.0
    private var kvArea = 0.0
    private var prefillStageSeconds = 0.0
    private var steps = 0
    private var events = 0
    private var batchTokens = 0
    private var batchSequences = 0
    private var preemptions = 0
    private var kv = KVUsageRecorder(capacity: SimulationRun.kvUsageSamples)

    /// The config must be valid.
    init(_ config: SimulationConfig) {
        planned = PlannedRequests(config)
        recordGaps = config.recordInterTokenGaps
        slo = config.slo
        cluster = Cluster(router: config.router)
        var blocks = 0
        for (r, replica) in config.replicas.enumerated() {
            let engineConfig = SimulationConfig.engineScheduler(replica)
            let first = engines.count
            for _ in 0..<replica.pipelineStages {
                // Valid: `SimulationConfig.validate` checked this very configuration.
                engines.append(Engine(scheduler: try! ContinuousBatchingScheduler(config: engineConfig), replica: r))
                blocks += engineConfig.totalBlocks
            }
            replicas.append(ReplicaState(predictor: replica.spec.predictor, engines: first..<engines.count,
                                         stages: replica.pipelineStages))
        }
        totalBlocks = blocks
        let n = planned.arrival.count
        var tokens = 0
        for k in 0..<n { tokens += planned.prompt[k] + planned.output[k] }
        stepLimit = tokens
        arrivedAt = Array(repeating: .nan, count: n)
        firstScheduledAt = arrivedAt; firstTokenAt = arrivedAt; lastTokenAt = arrivedAt; finishedAt = arrivedAt
        preemptionsOf = Array(repeating: 0, count: n)
        replicaOf = preemptionsOf
        if recordGaps { gaps.reserveCapacity(max(0, planned.output.reduce(0, +) - n)) }
    }

    mutating func run() throws(SimulationError) -> SimulationRun {
        let n = planned.arrival.count
        var cursor = 0
        while true {
            var next = -1, end = Double.infinity
            for e in engines.indices where engines[e].stepEnd < end {
                end = engines[e].stepEnd
                next = e
            }
            if cursor < n {
                if held == 0 && next < 0 { rebase(to: planned.arrival[cursor]) }
                let t = planned.arrival[cursor]
                // An arrival at the very time a step ends joins the scheduler before the next step is planned.
                if t - origin <= end {
                    advance(to: t - origin)
                    // Requests arriving together all join before any idle engine plans its step (all at once
                    // would otherwise start with a batch of one).
                    repeat {
                        admit(cursor)
                        cursor += 1
                    } while cursor < n && planned.arrival[cursor] == t
                    for e in engines.indices where engines[e].isIdle && engines[e].outstanding > 0 { try start(e) }
                    continue
                }
            }
            guard next >= 0 else { break }
            advance(to: end)
            finish(next)
            if engines[next].outstanding > 0 { try start(next) }
        }
        return result()
    }

    /// Starts a new busy period's clock at absolute time `t`; the system is empty, so no interval spans it.
    private mutating func rebase(to t: Double) {
        origin = t
        now = 0
        for r in replicas.indices {
            for k in replicas[r].stageFree.indices { replicas[r].stageFree[k] = 0 }
        }
    }

    private mutating func advance(to t: Double) {
        let dt = t - now
        guard dt > 0 else { return }
        heldArea += Double(held) * dt
        runningArea += Double(running) * dt
        kvArea += Double(usedBlocks) * dt
        now = t
    }

    private mutating func admit(_ k: Int) {
        events += 1
        let r = cluster.route(replicas)
        let e = replicas[r].engineForNewRequest(engines)
        let request = Request(id: RequestID(k), promptTokens: planned.prompt[k], maxOutputTokens: planned.output[k])
        do {
            try engines[e].scheduler.add(request)
        } catch {
            rejected.append(RejectedRequest(index: k, replica: r, arrival: planned.arrival[k], promptTokens: planned.prompt[k],
                                            outputTokens: planned.output[k], reason: error))
            return
        }
        arrivedAt[k] = now
        replicaOf[k] = r
        held += 1
        engines[e].outstanding += 1
        replicas[r].outstanding += 1
    }

    /// Plans engine `e`'s next step and puts it into its replica's pipeline.
    private mutating func start(_ e: Int) throws(SimulationError) {
        let r = engines[e].replica
        let plan = engines[e].scheduler.schedule()
        guard !plan.isEmpty else {
            throw SimulationError(field: "replicas[\(r)].scheduler", expected: "a step with work while requests are held",
                                  got: "an empty step with \(engines[e].outstanding) requests held")
        }
        // Every step gives the oldest running request at least one token, and it is never preempted, so it
        // finishes within prompt + output steps as the oldest: a run takes at most Σ (prompt + output) steps.
        steps += 1
        guard steps <= stepLimit else {
            throw SimulationError(field: "replicas[\(r)].scheduler", expected: "at most \(stepLimit) steps (the requests' tokens)",
                                  got: "more: it is not making progress")
        }
        let shape = BatchShape(plan.work)
        let seconds = replicas[r].predictor.iterationSeconds(shape)
        guard seconds.isFinite && seconds > 0 else {
            throw SimulationError(field: "replicas[\(r)].predictor", expected: "a finite step time above 0 seconds",
                                  got: "\(seconds) for a step of \(shape.tokens) tokens (prefill chunks: \(shape.prefillChunks), decodes: \(shape.decodes))")
        }
        let (begin, end) = replicas[r].occupy(now: now, seconds: seconds)
        for w in plan.work where firstScheduledAt[w.id.rawValue].isNaN { firstScheduledAt[w.id.rawValue] = begin }
        batchTokens += shape.tokens
        batchSequences += shape.sequences
        prefillStageSeconds += seconds / Double(replicas[r].stageFree.count) * Double(shape.prefillTokens) / Double(shape.tokens)
        preemptions += plan.preempted.count
        engines[e].plan = plan
        engines[e].stepEnd = end
        observe(e)
    }

    /// Ends engine `e`'s step at `now`: every work item that samples emits its token now; finished requests leave.
    private mutating func finish(_ e: Int) {
        events += 1
        guard let plan = engines[e].plan else { return }
        // The scheduler's buffer is shared with `plan` until this returns; the next `schedule()` comes after.
        engines[e].plan = nil
        engines[e].stepEnd = .infinity
        for w in plan.work where w.yieldsToken {
            let i = w.id.rawValue
            if firstTokenAt[i].isNaN {
                firstTokenAt[i] = now
            } else if recordGaps {
                gaps.append(now - lastTokenAt[i])
            }
            lastTokenAt[i] = now
        }
        let done = engines[e].scheduler.complete(step: plan)
        let r = engines[e].replica
        for f in done {
            let i = f.id.rawValue
            finishedAt[i] = now
            preemptionsOf[i] = f.preemptions
            held -= 1
            engines[e].outstanding -= 1
            replicas[r].outstanding -= 1
        }
        observe(e)
    }

    /// Brings the totals up to engine `e`'s scheduler and records the KV use.
    private mutating func observe(_ e: Int) {
        let run = engines[e].scheduler.runningCount
        let used = engines[e].scheduler.blocks.usedBlockCount
        running += run - engines[e].running
        usedBlocks += used - engines[e].usedBlocks
        engines[e].running = run
        engines[e].usedBlocks = used
        kv.record(time: origin + now, fraction: Double(usedBlocks) / Double(totalBlocks))
    }

    private func result() -> SimulationRun {
        let n = planned.arrival.count
        var records: [SimulatedRequest] = []
        records.reserveCapacity(n - rejected.count)
        var lastFinish = -Double.infinity
        var outputTokens = 0
        for k in 0..<n where !finishedAt[k].isNaN {
            let a = arrivedAt[k]
            let r = SimulatedRequest(index: k, replica: replicaOf[k], promptTokens: planned.prompt[k], outputTokens: planned.output[k],
                                     arrival: planned.arrival[k], queueWait: firstScheduledAt[k] - a, ttft: firstTokenAt[k] - a,
                                     e2e: finishedAt[k] - a, preemptions: preemptionsOf[k])
            lastFinish = max(lastFinish, r.finish)
            outputTokens += r.outputTokens
            records.append(r)
        }
        let span = records.isEmpty ? 0 : lastFinish - planned.arrival[0]
        func perSecond(_ x: Double) -> Double { span > 0 ? x / span : 0 }
        var goodput: Double?
        if let slo {
            let good = records.filter { $0.ttft <= slo.ttftP95 && ($0.tpot ?? 0) <= slo.tpotP95 }.count
            goodput = perSecond(Double(good))
        }
        return SimulationRun(
            requests: records, rejected: rejected, interTokenGaps: recordGaps ? gaps : nil, steps: steps, events: events,
            span: span, requestThroughput: perSecond(Double(records.count)), outputTokenThroughput: perSecond(Double(outputTokens)),
            goodput: goodput, meanRequestsInSystem: perSecond(heldArea), meanRunning: perSecond(runningArea),
            kvUsage: kv.samples, peakKVUsage: kv.peak, meanKVUsage: perSecond(kvArea / Double(totalBlocks)),
            meanBatchTokens: steps > 0 ? Double(batchTokens) / Double(steps) : 0,
            meanBatchSequences: steps > 0 ? Double(batchSequences) / Double(steps) : 0,
            prefillFraction: perSecond(prefillStageSeconds / Double(replicas.count)), preemptions: preemptions,
            keepUp: Self.keepUp(records))
    }

    /// Finishes per arrival over the second half of the arrival window (see `SimulationRun.keepUp`).
    static func keepUp(_ records: [SimulatedRequest]) -> Double? {
        guard let first = records.first?.arrival, let last = records.last?.arrival else { return nil }
        let middle = first + (last - first) / 2
        var arrived = 0, finished = 0
        for r in records {
            if r.arrival > middle { arrived += 1 }
            if r.finish > middle && r.finish <= last { finished += 1 }
        }
        return arrived >= 10 ? Double(finished) / Double(arrived) : nil
    }
}
