// Serving capacity of one replica under Poisson arrivals. How latency responds to load is the one
// decision that varies (this queueing approximation now, a discrete-event simulator later), so it sits
// behind `ServingModel`; the planner does not know which one it has.
import Foundation

/// What a replica can do, from the performance and memory models.
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
}

public protocol ServingModel: Sendable {
    /// A short description printed with every figure it produces.
    var name: String { get }
    /// Latency at `requestsPerSecond`, or nil when the replica cannot sustain that rate at all
    /// (the queue grows without bound or the batch exceeds the KV cache).
    func load(_ r: ReplicaPerformance, requestsPerSecond: Double, outputTokens: Int) -> LoadPoint?
}

extension ServingModel {
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
