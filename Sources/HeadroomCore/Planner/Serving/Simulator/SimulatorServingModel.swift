// The serving model that simulates: at each rate the planner asks about, Poisson arrivals of the
// workload's requests through HeadroomScheduling's scheduler on one replica, replicated with different
// seeds, so each p95 comes with its interval. Slower than the queueing approximation and closer to what a
// vLLM-style server does (chunked prefill mixed with decodes, KV-limited admission, preemption).
import Foundation

/// `ServingModel` by discrete-event simulation of one replica (see `Simulation`).
///
/// - `load`: `requests` requests of exactly the workload's lengths arrive as a Poisson process at the rate,
///   `replications` times with seeds derived from `seed`; the p50s and p95s are means over replications
///   and the p95s carry their 95 % t-intervals. `concurrency` is the time-averaged number of running
///   requests, `prefillUtilization` the fraction of time spent on prefill tokens (each step's time split by
///   token count). Nil when the replica cannot sustain the rate: the scheduler refuses the request (it
///   cannot fit the KV cache), or the rate reaches the replica's saturation throughput (`saturation`:
///   every request at once, the completion rate between the first and third quartile of finishes) — the
///   backlog would grow without bound. (A flow-balance check over the run, `SimulationRun.keepUp`, was the
///   first rule; with the few hundred requests a fast plan can afford, its Poisson noise refused rates
///   half the capacity. It stays a reported figure.)
/// - `capacity`: below the saturation throughput, starts at the queueing approximation's capacity and
///   bisects between a lone request and saturation with at most `capacityProbes` simulated rates (each
///   remembered). Seeds are fixed, so the answer is the same on every call and machine.
public struct SimulatorServingModel: ServingModel {
    public let requests: Int
    public let replications: Int
    public let seed: UInt64
    /// Simulated rates `capacity` may try.
    public let capacityProbes: Int

    /// The rate standing for "a lone request": the planner's unloaded probe.
    public static let loneRate = 1e-9
    public static let defaultSeed: UInt64 = 0x5EED_0F_5E27E

    /// 1000 requests × 5 replications, 10 capacity probes.
    public init() {
        requests = 1000; replications = 5; seed = Self.defaultSeed; capacityProbes = 10
    }

    /// Throws when `requests` is below 100 (too few for a p95 and a reported keep-up ratio) or out
    /// of range, or when `replications` or `capacityProbes` is below 1.
    public init(requests: Int, replications: Int = 5, seed: UInt64 = defaultSeed, capacityProbes: Int = 10) throws(SimulationError) {
        guard requests >= 100 && requests <= SimulationConfig.maxRequests else {
            throw SimulationError(field: "requests", expected: "from 100 to \(SimulationConfig.maxRequests)", got: "\(requests)")
        }
        guard replications >= 1 && replications <= Simulation.maxReplications else {
            throw SimulationError(field: "replications", expected: "from 1 to \(Simulation.maxReplications)", got: "\(replications)")
        }
        guard capacityProbes >= 1 else {
            throw SimulationError(field: "capacityProbes", expected: "at least 1", got: "\(capacityProbes)")
        }
        self.requests = requests; self.replications = replications; self.seed = seed; self.capacityProbes = capacityProbes
    }

    public var name: String {
        "discrete-event simulator (HeadroomScheduling's scheduler, \(requests) requests × \(replications) replications, Poisson)"
    }

    /// Model steps one replication may take, counted as if no two requests ever shared a step (the bound of
    /// `affords`): 2 million, a few seconds of simulation in a release build.
    public static let maxSteps = 2_000_000.0

    /// Whether a replication of `w` stays within `maxSteps`: requests × (output tokens + prefill chunks).
    public func affords(_ r: ReplicaSpec, _ w: ServingWorkload) -> Bool {
        let chunk = Double(max(1, r.scheduler.chunkedPrefill ? r.scheduler.maxBatchedTokens : w.promptTokens))
        let steps = Double(requests) * (Double(w.outputTokens) + (Double(w.promptTokens) / chunk).rounded(.up))
        return steps <= Self.maxSteps
    }

    /// What `load` simulates at `requestsPerSecond`.
    public func config(_ r: ReplicaSpec, _ w: ServingWorkload, requestsPerSecond: Double) -> SimulationConfig {
        SimulationConfig(replicas: [.init(r)], arrivals: .poisson(rate: requestsPerSecond), promptLengths: .fixed(w.promptTokens),
                         outputLengths: .fixed(w.outputTokens), requests: requests, seed: seed)
    }

    /// The replications behind `load`, for a report that wants more than the load point.
    public func summary(_ r: ReplicaSpec, _ w: ServingWorkload, requestsPerSecond: Double) throws(SimulationError) -> SimulationSummary {
        try Simulation.replicate(config(r, w, requestsPerSecond: requestsPerSecond), replications: replications)
    }

    /// Nil also when the simulation cannot run (a rate or length out of range, a scheduler configuration
    /// that does not validate, a predictor that returns a non-finite time): no load point can be given.
    /// A one-token output has no TPOT; its p95 is reported as 0.
    /// At the lone rate (no request ever meets another) one request tells everything: simulating a thousand
    /// one after the other would take as many steps for the same answer.
    /// Beyond `affords`, the queueing approximation answers instead (the planner, which names each
    /// candidate's model, asks `affords` first).
    public func load(_ r: ReplicaSpec, _ w: ServingWorkload, requestsPerSecond: Double) -> LoadPoint? {
        served(r, w).load(requestsPerSecond: requestsPerSecond)
    }

    /// `r` serving `w`, its saturation run simulated once, on the first question that needs it.
    public func served(_ r: ReplicaSpec, _ w: ServingWorkload) -> any ServedReplica {
        guard affords(r, w) else { return QueueingServingModel().served(r, w) }
        return Served(model: self, spec: r, work: w)
    }

    /// The saturation throughput, computed under a lock the first time it is asked (`load` runs in
    /// parallel for the report's curves), then read.
    final class Served: ServedReplica, @unchecked Sendable {
        let model: SimulatorServingModel
        let spec: ReplicaSpec
        let work: ServingWorkload
        private let lock = NSLock()
        private var saturationRun: Double??

        init(model: SimulatorServingModel, spec: ReplicaSpec, work: ServingWorkload) {
            self.model = model; self.spec = spec; self.work = work
        }

        var saturation: Double? {
            lock.lock(); defer { lock.unlock() }
            if let known = saturationRun { return known }
            let s = model.saturation(spec, work)
            saturationRun = .some(s)
            return s
        }

        func load(requestsPerSecond: Double) -> LoadPoint? {
            model.load(spec, work, requestsPerSecond: requestsPerSecond,
                       saturation: requestsPerSecond <= SimulatorServingModel.loneRate ? .infinity : saturation)
        }

        func capacity(slo: SLO) -> Double { model.capacity(spec, work, slo: slo, saturation: saturation) }
    }

    func load(_ r: ReplicaSpec, _ w: ServingWorkload, requestsPerSecond: Double, saturation: Double?) -> LoadPoint? {
        guard let saturation, requestsPerSecond < saturation else { return nil }
        if requestsPerSecond <= Self.loneRate {
            var lone = config(r, w, requestsPerSecond: requestsPerSecond)
            lone.requests = 1
            guard let s = try? Simulation.replicate(lone, replications: 1, parallel: false),
                  var p = Self.point(s, requestsPerSecond: requestsPerSecond) else { return nil }
            // The run is one request's stay; at the lone rate the replica is idle but for a fraction λ·E2E of
            // the time (Little's law), and prefilling λ·TTFT of it.
            p.concurrency = requestsPerSecond * (s.e2e?.p50.value ?? 0)
            p.prefillUtilization = requestsPerSecond * p.ttftP95Seconds
            return p
        }
        guard let s = try? summary(r, w, requestsPerSecond: requestsPerSecond) else { return nil }
        return Self.point(s, requestsPerSecond: requestsPerSecond)
    }

    /// Requests per second the replica completes when it never waits for work: one run (nothing is random)
    /// of N requests at once, N at least four running batches (`maxNumSeqs`, or the KV-limited batch), and
    /// the completion rate from the last finish of the first batch (B requests) to the (N − B)-th finish —
    /// past the first batch, whose requests all start together, and before the last drains. Nil when
    /// a request cannot be served.
    public func saturation(_ r: ReplicaSpec, _ w: ServingWorkload) -> Double? {
        let batch = max(1, min(r.scheduler.maxNumSeqs, max(1, r.maxBatch)))
        var c = config(r, w, requestsPerSecond: 1)
        c.arrivals = .allAtOnce
        c.requests = max(requests, 4 * batch)
        guard let run = try? Simulation.run(c), run.rejected.isEmpty, run.requests.count >= 4 else { return nil }
        let finishes = run.requests.map(\.finish).sorted()
        // The last finish of the first batch to the last of the batch before the last: whole batches, so a
        // server whose batches start and end together (cohorts) is counted right too.
        let edge = min(batch, finishes.count / 4)
        let (a, b) = (edge - 1, finishes.count - 1 - edge)
        guard b > a, finishes[b] > finishes[a] else { return run.requestThroughput }
        return Double(b - a) / (finishes[b] - finishes[a])
    }

    /// The load point of a summary, or nil when a request was refused.
    static func point(_ s: SimulationSummary, requestsPerSecond: Double) -> LoadPoint? {
        guard s.runs.allSatisfy({ $0.rejected.isEmpty }), let ttft = s.ttft else { return nil }
        let tpot = s.tpot
        return LoadPoint(requestsPerSecond: requestsPerSecond, ttftP95Seconds: ttft.p95.value, tpotP95Seconds: tpot?.p95.value ?? 0,
                         concurrency: s.meanRunning.value, prefillUtilization: s.prefillFraction.value,
                         ttftP50Seconds: ttft.p50.value, tpotP50Seconds: tpot?.p50.value,
                         ttftP95Interval: ttft.p95, tpotP95Interval: tpot?.p95)
    }

    public func capacity(_ r: ReplicaSpec, _ w: ServingWorkload, slo: SLO) -> Double {
        served(r, w).capacity(slo: slo)
    }

    func capacity(_ r: ReplicaSpec, _ w: ServingWorkload, slo: SLO, saturation: Double?) -> Double {
        guard let saturation, saturation > 0 else { return 0 }
        var memo: [Double: Bool] = [:]
        var probes = 0
        func ok(_ rate: Double) -> Bool {
            if let known = memo[rate] { return known }
            probes += 1
            let p = load(r, w, requestsPerSecond: rate, saturation: rate <= Self.loneRate ? .infinity : saturation)
            let good = p.map { $0.ttftP95Seconds <= slo.ttftP95 && $0.tpotP95Seconds <= slo.tpotP95 } ?? false
            memo[rate] = good
            return good
        }
        guard ok(Self.loneRate) else { return 0 }
        // The approximation's answer is usually close; saturation bounds it from above.
        let guess = QueueingServingModel().capacity(r, w, slo: slo)
        let start = min(guess > 0 ? guess : saturation / 2, saturation * 0.95)
        var lo = Self.loneRate, hi = saturation
        if ok(start) { lo = start } else { hi = start }
        for _ in 0..<64 where probes < capacityProbes + 1 {
            let mid = (lo + hi) / 2
            if mid <= lo || mid >= hi { break }
            if ok(mid) { lo = mid } else { hi = mid }
        }
        return lo
    }
}
