// Serving capacity of one replica under load. How latency responds to load is the one decision that
// varies (the discrete-event simulator, or a queueing approximation), so it sits behind `ServingModel`;
// the planner does not know which one it has. Both read the step time from an `ExecutionTimePredictor`
// and the KV budget from the memory model, through `ReplicaSpec`.
import Foundation
import HeadroomScheduling

/// One serving replica as the serving models see it: how long its steps take, and how its scheduler
/// fills them (token budget, sequence cap, chunked prefill, KV blocks from the memory model).
public struct ReplicaSpec: Sendable {
    public var predictor: any ExecutionTimePredictor
    public var scheduler: SchedulerConfig
    /// Sequences the KV budget holds at the workload's full context (the memory model's `maxBatch`).
    public var maxBatch: Int

    public init(predictor: any ExecutionTimePredictor, scheduler: SchedulerConfig, maxBatch: Int) {
        self.predictor = predictor; self.scheduler = scheduler; self.maxBatch = maxBatch
    }

    /// Seconds to prefill one prompt of `promptTokens` alone, in chunks of the step budget when it is chunked.
    public func prefillSeconds(promptTokens: Int) -> Double {
        let budget = scheduler.chunkedPrefill ? max(1, scheduler.maxBatchedTokens) : max(1, promptTokens)
        var done = 0, seconds = 0.0
        while done < promptTokens {
            let n = min(budget, promptTokens - done)
            var shape = BatchShape()
            shape.addPrefill(tokens: n, pastTokens: done, samples: done + n == promptTokens)
            seconds += predictor.iterationSeconds(shape)
            done += n
        }
        return seconds
    }

    /// Seconds of a decode step of `batch` sequences at `context` cached positions each.
    public func decodeStepSeconds(batch: Int, context: Int) -> Double {
        predictor.iterationSeconds(.uniform(sequences: batch, newTokens: 1, pastTokens: max(1, context)))
    }
}

/// Every request alike: prompt and output lengths (the planner's demand).
public struct ServingWorkload: Equatable, Sendable {
    public var promptTokens: Int
    public var outputTokens: Int
    public init(promptTokens: Int, outputTokens: Int) { self.promptTokens = promptTokens; self.outputTokens = outputTokens }
}

/// A figure with its confidence interval (nil bounds when the model gives none).
public struct Estimate: Codable, Equatable, Sendable {
    public var value: Double
    public var low: Double?
    public var high: Double?
    public init(_ value: Double, low: Double? = nil, high: Double? = nil) { self.value = value; self.low = low; self.high = high }
}

/// What a replica can do, from the performance and memory models: the queueing approximation's view.
public struct ReplicaPerformance: Sendable {
    /// Largest batch the KV cache holds at the workload's context.
    public var maxBatch: Int
    /// Seconds to prefill one request's prompt alone.
    public var prefillSeconds: Double
    /// Seconds of one decode step at a batch size (1 ... maxBatch).
    public var decodeStepSeconds: @Sendable (Int) -> Double

    public init(maxBatch: Int, prefillSeconds: Double, decodeStepSeconds: @escaping @Sendable (Int) -> Double) {
        self.maxBatch = maxBatch; self.prefillSeconds = prefillSeconds; self.decodeStepSeconds = decodeStepSeconds
    }

    /// `spec` for requests of `workload`: decode steps at the mean context (prompt + half the output),
    /// remembered by batch size (the capacity search asks for the same few many times).
    public init(_ spec: ReplicaSpec, _ workload: ServingWorkload) {
        let cap = max(0, min(spec.maxBatch, spec.scheduler.maxNumSeqs))
        let context = workload.promptTokens + workload.outputTokens / 2
        let memo = StepMemo(count: cap + 1)
        self.init(maxBatch: cap, prefillSeconds: spec.prefillSeconds(promptTokens: workload.promptTokens)) { b in
            memo.value(b) { spec.decodeStepSeconds(batch: b, context: context) }
        }
    }
}

/// Latency at one arrival rate.
public struct LoadPoint: Codable, Equatable, Sendable {
    public var requestsPerSecond: Double
    public var ttftP95Seconds: Double
    public var tpotP95Seconds: Double
    /// Mean number of requests decoding at once.
    public var concurrency: Double
    /// Fraction of time spent in prefill.
    public var prefillUtilization: Double
    /// Medians, where the model gives them (the simulator does).
    public var ttftP50Seconds: Double?
    public var tpotP50Seconds: Double?
    /// 95 % confidence intervals of the p95s over the simulator's replications (nil: none).
    public var ttftP95Interval: Estimate?
    public var tpotP95Interval: Estimate?

    public init(requestsPerSecond: Double, ttftP95Seconds: Double, tpotP95Seconds: Double, concurrency: Double,
                prefillUtilization: Double, ttftP50Seconds: Double? = nil, tpotP50Seconds: Double? = nil,
                ttftP95Interval: Estimate? = nil, tpotP95Interval: Estimate? = nil) {
        self.requestsPerSecond = requestsPerSecond; self.ttftP95Seconds = ttftP95Seconds; self.tpotP95Seconds = tpotP95Seconds
        self.concurrency = concurrency; self.prefillUtilization = prefillUtilization; self.ttftP50Seconds = ttftP50Seconds
        self.tpotP50Seconds = tpotP50Seconds; self.ttftP95Interval = ttftP95Interval; self.tpotP95Interval = tpotP95Interval
    }
}

public protocol ServingModel: Sendable {
    /// A short description printed with every figure it produces.
    var name: String { get }
    /// Latency at `requestsPerSecond`, or nil when the replica cannot sustain that rate at all
    /// (the queue grows without bound or the batch exceeds the KV cache).
    func load(_ r: ReplicaSpec, _ w: ServingWorkload, requestsPerSecond: Double) -> LoadPoint?
    /// The highest request rate whose p95 TTFT and p95 TPOT stay within `slo` (0 when even a lone request
    /// misses it).
    func capacity(_ r: ReplicaSpec, _ w: ServingWorkload, slo: SLO) -> Double
    /// Whether this model answers for `w` on `r` within its time bounds (the simulator's steps grow with
    /// the output length); the planner keeps another model's figures, and its name, where it does not.
    func affords(_ r: ReplicaSpec, _ w: ServingWorkload) -> Bool
    /// `r` serving `w`, to be asked several questions (its capacity, then its latency at a few rates): a
    /// model may remember work they share (the simulator its saturation run). The answers are those of
    /// `load` and `capacity`.
    func served(_ r: ReplicaSpec, _ w: ServingWorkload) -> any ServedReplica
}

/// One replica serving one workload under a serving model (`ServingModel.served`); safe to ask from
/// several threads at once.
public protocol ServedReplica: Sendable {
    func load(requestsPerSecond: Double) -> LoadPoint?
    func capacity(slo: SLO) -> Double
}

extension ServingModel {
    public func affords(_ r: ReplicaSpec, _ w: ServingWorkload) -> Bool { true }
    public func served(_ r: ReplicaSpec, _ w: ServingWorkload) -> any ServedReplica { Unremembered(model: self, spec: r, work: w) }
}

/// A model that remembers nothing between questions: each is asked of the model afresh.
struct Unremembered<Model: ServingModel>: ServedReplica {
    let model: Model
    let spec: ReplicaSpec
    let work: ServingWorkload
    func load(requestsPerSecond: Double) -> LoadPoint? { model.load(spec, work, requestsPerSecond: requestsPerSecond) }
    func capacity(slo: SLO) -> Double { model.capacity(spec, work, slo: slo) }
}

/// A queueing approximation of a continuous-batching server (prefill first, decode batched):
/// - prefills form an M/D/1 queue with service time S (one prompt alone) and load ρ = λS; the wait's
///   p95 comes from the exponential-tail approximation P(W > t) ≈ ρ·exp(−ρt/W̄), W̄ = ρS / (2(1 − ρ));
///   TTFT p95 = W95 + S + one decode step (a prefill waits for the step in flight);
/// - the decode batch n solves Little's law n = λ·O·TPOT(n), with TPOT(n) = D(n)/(1 − ρ): decode runs
///   in the time prefills leave;
/// - a request's TPOT (its mean inter-token time) is stretched by the prefills that arrive while it
///   decodes, a Poisson count whose p95 is taken as mean + 1.645·sd.
public struct QueueingServingModel: ServingModel {
    public init() {}
    public var name: String { "queueing approximation (M/D/1 prefill queue, Little's-law decode batch, Poisson prefill interference)" }

    public func load(_ r: ReplicaSpec, _ w: ServingWorkload, requestsPerSecond: Double) -> LoadPoint? {
        load(ReplicaPerformance(r, w), requestsPerSecond: requestsPerSecond, outputTokens: w.outputTokens)
    }

    public func capacity(_ r: ReplicaSpec, _ w: ServingWorkload, slo: SLO) -> Double {
        capacity(ReplicaPerformance(r, w), outputTokens: w.outputTokens, ttftP95: slo.ttftP95, tpotP95: slo.tpotP95)
    }

    /// The highest request rate whose p95 TTFT and p95 TPOT stay within the SLO (0 when even a lone
    /// request misses it), found by bisection: latency never falls as load rises.
    public func capacity(_ r: ReplicaPerformance, outputTokens: Int, ttftP95: Double, tpotP95: Double) -> Double {
        func ok(_ rate: Double) -> Bool {
            guard let p = load(r, requestsPerSecond: rate, outputTokens: outputTokens) else { return false }
            return p.ttftP95Seconds <= ttftP95 && p.tpotP95Seconds <= tpotP95
        }
        guard r.maxBatch >= 1, ok(1e-9) else { return 0 }
        var lo = 1e-9, hi = 1 / r.prefillSeconds
        for _ in 0..<60 {
            let mid = (lo + hi) / 2
            if ok(mid) { lo = mid } else { hi = mid }
            if hi - lo < 1e-6 * hi { break }
        }
        return lo
    }

    public func load(_ r: ReplicaPerformance, requestsPerSecond lambda: Double, outputTokens: Int) -> LoadPoint? {
        let S = r.prefillSeconds
        let rho = lambda * S
        guard rho < 1, r.maxBatch >= 1 else { return nil }
        let O = Double(outputTokens)
        // Little's law fixed point for the batch: monotone, so iterate from below.
        var n = 1.0
        var step = r.decodeStepSeconds(1)
        for _ in 0..<100 {
            let b = Int(saturating: n, rounding: .up, into: 1...r.maxBatch)
            step = r.decodeStepSeconds(b)
            let next = lambda * O * step / (1 - rho)
            // NaN compares false with everything: refuse it here rather than carry it into the batch size.
            if !(next <= Double(r.maxBatch)) { return nil }
            if abs(next - n) < 1e-6 * max(1, n) { n = next; break }
            n = next
        }
        let b = Int(saturating: n, rounding: .up, into: 1...r.maxBatch)
        step = r.decodeStepSeconds(b)
        let meanWait = rho * S / (2 * (1 - rho))
        let wait95 = rho > 0.05 ? (meanWait / rho) * log(rho / 0.05) : 0
        let ttft = wait95 + S + step
        let decodeDuration = O * step / (1 - rho)
        let interruptions = lambda * decodeDuration
        let k95 = interruptions + 1.645 * interruptions.squareRoot()
        let tpot = O > 0 ? (O * step + k95 * S) / O : step
        return LoadPoint(requestsPerSecond: lambda, ttftP95Seconds: ttft, tpotP95Seconds: tpot, concurrency: n,
                         prefillUtilization: rho)
    }
}
