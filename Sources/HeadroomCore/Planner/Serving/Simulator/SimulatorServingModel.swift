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
///   cannot fit the KV cache), or fewer than 95 % as many requests finish as arrive over the second half
///   of the arrival window (`SimulationRun.keepUp`, averaged over replications) — the backlog grows. The
///   check assumes the run is long against a request's stay (λ · E2E well under `requests`/4).
/// - `capacity`: starts at the queueing approximation's capacity, doubles or falls back to a lone request
///   to bracket it, then bisects, with at most `capacityProbes` simulated rates (each remembered). Seeds
///   are fixed, so the answer is the same on every call and machine.
public struct SimulatorServingModel: ServingModel {
    public let requests: Int
    public let replications: Int
    public let seed: UInt64
    /// Simulated rates `capacity` may try.
    public let capacityProbes: Int

    /// The fraction of arrivals that must finish in step with them (see the type's documentation).
    public static let keepUpThreshold = 0.95
    /// The rate standing for "a lone request": the planner's unloaded probe.
    public static let loneRate = 1e-9
    public static let defaultSeed: UInt64 = 0x5EED_0F_5E27E

    /// 1000 requests × 5 replications, 10 capacity probes.
    public init() {
        requests = 1000; replications = 5; seed = Self.defaultSeed; capacityProbes = 10
    }

    /// Throws when `requests` is below 100 (the keep-up check needs enough arrivals to see a trend) or out
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
    public func load(_ r: ReplicaSpec, _ w: ServingWorkload, requestsPerSecond: Double) -> LoadPoint? {
        guard let s = try? summary(r, w, requestsPerSecond: requestsPerSecond) else { return nil }
        return Self.point(s, requestsPerSecond: requestsPerSecond)
    }

    /// The load point of a summary, or nil when the replica did not keep up (see the type's documentation).
    static func point(_ s: SimulationSummary, requestsPerSecond: Double) -> LoadPoint? {
        guard s.runs.allSatisfy({ $0.rejected.isEmpty }), let ttft = s.ttft else { return nil }
        if let keepUp = s.keepUp, keepUp.value < keepUpThreshold { return nil }
        let tpot = s.tpot
        return LoadPoint(requestsPerSecond: requestsPerSecond, ttftP95Seconds: ttft.p95.value, tpotP95Seconds: tpot?.p95.value ?? 0,
                         concurrency: s.meanRunning.value, prefillUtilization: s.prefillFraction.value,
                         ttftP50Seconds: ttft.p50.value, tpotP50Seconds: tpot?.p50.value,
                         ttftP95Interval: ttft.p95, tpotP95Interval: tpot?.p95)
    }

    public func capacity(_ r: ReplicaSpec, _ w: ServingWorkload, slo: SLO) -> Double {
        var memo: [Double: Bool] = [:]
        var probes = 0
        func ok(_ rate: Double) -> Bool {
            if let known = memo[rate] { return known }
            probes += 1
            let p = load(r, w, requestsPerSecond: rate)
            let good = p.map { $0.ttftP95Seconds <= slo.ttftP95 && $0.tpotP95Seconds <= slo.tpotP95 } ?? false
            memo[rate] = good
            return good
        }
        // The approximation's answer is usually within a factor of two; where it says even a lone request
        // misses the SLO, start from the rate at which lone prefills back to back would fill the replica.
        let guess = QueueingServingModel().capacity(r, w, slo: slo)
        let start = guess > 0 ? guess : 1 / r.prefillSeconds(promptTokens: w.promptTokens)
        guard start.isFinite && start > 0 else { return 0 }
        var lo: Double, hi: Double
        if ok(start) {
            lo = start; hi = 2 * start
            while ok(hi) {
                lo = hi; hi *= 2
                if probes >= capacityProbes { return lo }
            }
        } else {
            guard ok(Self.loneRate) else { return 0 }
            lo = Self.loneRate; hi = start
        }
        while probes < capacityProbes {
            let mid = (lo + hi) / 2
            if ok(mid) { lo = mid } else { hi = mid }
        }
        return lo
    }
}
