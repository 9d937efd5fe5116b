// What a simulation reports: each request's timings, a run's aggregates, and over replications each
// figure's mean with a 95 % t-interval. Definitions follow `vllm bench serve` and docs/load.md:
// TTFT = first token − arrival; TPOT = (E2E − TTFT) / (output tokens − 1); ITL = the gap between
// consecutive tokens of a request (the first token excluded); goodput counts the requests meeting every
// SLO. Every figure here is PREDICTED: it is what the scheduler does with the predictor's step times.
import Foundation
import HeadroomScheduling

/// One finished request of a run.
public struct SimulatedRequest: Hashable, Sendable {
    /// Its place in arrival order (its `RequestID` in the scheduler).
    public var index: Int
    public var replica: Int
    public var promptTokens: Int
    public var outputTokens: Int
    /// Seconds from the run's start.
    public var arrival: Double
    /// First scheduled − arrival: seconds before any of its tokens entered a step.
    public var queueWait: Double
    /// First token − arrival: the step that completes its prefill samples its first token.
    public var ttft: Double
    /// Finish − arrival.
    public var e2e: Double
    /// Times the scheduler preempted it (each one a recompute of its prompt and output so far).
    public var preemptions: Int

    public var firstToken: Double { arrival + ttft }
    public var finish: Double { arrival + e2e }
    /// (finish − first token) / (output − 1): the mean time per token after the first; nil for one token.
    public var tpot: Double? { outputTokens > 1 ? (e2e - ttft) / Double(outputTokens - 1) : nil }
}

/// A request its replica's scheduler refused at the door (it could never finish there).
public struct RejectedRequest: Hashable, Sendable {
    public var index: Int
    public var replica: Int
    public var arrival: Double
    public var promptTokens: Int
    public var outputTokens: Int
    public var reason: AdmissionError
}

/// The KV cache in use at one moment: blocks held by running requests over all blocks, all replicas together.
public struct KVUsageSample: Hashable, Sendable {
    public var time: Double
    public var fraction: Double
}

/// A per-request latency a run reports percentiles of.
public enum LatencyMetric: String, CaseIterable, Sendable {
    case ttft, tpot, interTokenGap, e2e, queueWait
}

/// p50/p90/p95/p99 (linear interpolation between order statistics, as NumPy and `vllm bench serve`
/// compute them; exact, since the simulator keeps every value) and the mean.
public struct LatencyPercentiles: Hashable, Sendable {
    public var count: Int
    public var p50: Double
    public var p90: Double
    public var p95: Double
    public var p99: Double
    public var mean: Double

    /// Nil for no values.
    public init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        count = sorted.count
        p50 = Summary.percentile(sorted, 0.5)
        p90 = Summary.percentile(sorted, 0.9)
        p95 = Summary.percentile(sorted, 0.95)
        p99 = Summary.percentile(sorted, 0.99)
        mean = sorted.reduce(0, +) / Double(sorted.count)
    }
}

/// One run of the event loop.
public struct SimulationRun: Sendable {
    /// Finished requests in arrival order: every request not rejected.
    public var requests: [SimulatedRequest]
    public var rejected: [RejectedRequest]
    /// Every gap between consecutive tokens of a request, when `recordInterTokenGaps` was set.
    public var interTokenGaps: [Double]?
    /// Model steps, all replicas and virtual engines together.
    public var steps: Int
    /// Arrivals and step completions processed.
    public var events: Int
    /// Seconds from the first arrival to the last finish (0 with nothing finished).
    public var span: Double
    /// Finished requests, and their output tokens, per second of `span`.
    public var requestThroughput: Double
    public var outputTokenThroughput: Double
    /// Requests per second of `span` whose TTFT and TPOT (where it has one) are within the SLO; nil without one.
    public var goodput: Double?
    /// Requests waiting or running, averaged over `span` (Little's law: ≈ throughput × mean E2E).
    public var meanRequestsInSystem: Double
    /// Requests running (holding KV blocks), averaged over `span`.
    public var meanRunning: Double
    /// The KV cache in use over time, sampled whenever a step is planned or completed and decimated evenly
    /// to at most `kvUsageSamples` points.
    public var kvUsage: [KVUsageSample]
    public var peakKVUsage: Double
    /// KV use averaged over `span`.
    public var meanKVUsage: Double
    /// Tokens and sequences per step.
    public var meanBatchTokens: Double
    public var meanBatchSequences: Double
    /// Fraction of `span` spent on prefill: each step's time split between its prefill and decode tokens by
    /// token count (a linear apportioning: the predictor gives one time per step, not per part).
    public var prefillFraction: Double
    public var preemptions: Int
    /// Requests that finished during the second half of the arrival window per request that arrived in it:
    /// about 1 when the replicas keep up, below when a backlog builds (the warm-up and the drain after the
    /// last arrival stay outside the window). Nil when fewer than 10 requests arrived in it.
    public var keepUp: Double?

    /// The most points `kvUsage` keeps.
    public static let kvUsageSamples = 1000

    /// Every value of `metric`, in arrival order (gaps in the order recorded); empty when it has none.
    public func values(_ metric: LatencyMetric) -> [Double] {
        switch metric {
        case .ttft: return requests.map(\.ttft)
        case .tpot: return requests.compactMap(\.tpot)
        case .interTokenGap: return interTokenGaps ?? []
        case .e2e: return requests.map(\.e2e)
        case .queueWait: return requests.map(\.queueWait)
        }
    }

    /// Percentiles of `metric`; nil when it has no values (TPOT of one-token outputs, gaps not recorded).
    public func latency(_ metric: LatencyMetric) -> LatencyPercentiles? { LatencyPercentiles(values(metric)) }
}

/// p50/p90/p95/p99 of one latency over replications.
public struct LatencyEstimates: Equatable, Sendable {
    public var p50: Estimate
    public var p90: Estimate
    public var p95: Estimate
    public var p99: Estimate
}

/// R runs of one configuration with different seeds, and each figure as the mean over them with a 95 %
/// t-interval (the runs are independent, so their means are; only the value when R = 1).
public struct SimulationSummary: Sendable {
    public var runs: [SimulationRun]
    /// Nil when no run has the metric.
    public var ttft: LatencyEstimates?
    public var tpot: LatencyEstimates?
    public var interTokenGap: LatencyEstimates?
    public var e2e: LatencyEstimates?
    public var queueWait: LatencyEstimates?
    public var requestThroughput: Estimate
    public var outputTokenThroughput: Estimate
    /// Nil without an SLO.
    public var goodput: Estimate?
    public var meanRequestsInSystem: Estimate
    public var meanRunning: Estimate
    public var prefillFraction: Estimate
    public var peakKVUsage: Estimate
    /// Preemptions per run.
    public var preemptions: Estimate
    /// Nil when no run could tell (too few arrivals in the window).
    public var keepUp: Estimate?

    public var replications: Int { runs.count }

    public init(runs: [SimulationRun]) {
        precondition(!runs.isEmpty, "a summary of no runs")
        self.runs = runs
        func latency(_ m: LatencyMetric) -> LatencyEstimates? {
            let per = runs.compactMap { $0.latency(m) }
            guard !per.isEmpty else { return nil }
            return LatencyEstimates(p50: Estimate(replicated: per.map(\.p50)), p90: Estimate(replicated: per.map(\.p90)),
                                    p95: Estimate(replicated: per.map(\.p95)), p99: Estimate(replicated: per.map(\.p99)))
        }
        func each(_ f: (SimulationRun) -> Double) -> Estimate { Estimate(replicated: runs.map(f)) }
        ttft = latency(.ttft); tpot = latency(.tpot); interTokenGap = latency(.interTokenGap); e2e = latency(.e2e)
        queueWait = latency(.queueWait)
        requestThroughput = each(\.requestThroughput)
        outputTokenThroughput = each(\.outputTokenThroughput)
        let good = runs.compactMap(\.goodput)
        goodput = good.isEmpty ? nil : Estimate(replicated: good)
        meanRequestsInSystem = each(\.meanRequestsInSystem)
        meanRunning = each(\.meanRunning)
        prefillFraction = each(\.prefillFraction)
        peakKVUsage = each(\.peakKVUsage)
        preemptions = each { Double($0.preemptions) }
        let keep = runs.compactMap(\.keepUp)
        keepUp = keep.isEmpty ? nil : Estimate(replicated: keep)
    }

    public func latency(_ metric: LatencyMetric) -> LatencyEstimates? {
        switch metric {
        case .ttft: return ttft
        case .tpot: return tpot
        case .interTokenGap: return interTokenGap
        case .e2e: return e2e
        case .queueWait: return queueWait
        }
    }
}

extension Estimate {
    /// The mean of independent replications with its 95 % Student-t interval, mean ± t(0.975, R − 1)·s/√R;
    /// the value alone for one replication.
    public init(replicated samples: [Double]) {
        precondition(!samples.isEmpty, "an estimate from no samples")
        let n = Double(samples.count)
        let mean = samples.reduce(0, +) / n
        guard samples.count > 1 else { self.init(mean); return }
        let variance = samples.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
        let half = StudentT.quantile975(degreesOfFreedom: samples.count - 1) * (variance / n).squareRoot()
        self.init(mean, low: mean - half, high: mean + half)
    }
}

/// The 97.5 % quantile of Student's t, for 95 % two-sided intervals.
enum StudentT {
    /// Degrees of freedom 1 … 30, from the standard tables (4 decimals).
    private static let table: [Double] = [
        12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
        2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
        2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
    ]

    /// From the table up to 30 degrees of freedom; beyond, the Cornish–Fisher expansion around the normal
    /// quantile (1.95996), within 1e-4 of the exact value there.
    static func quantile975(degreesOfFreedom nu: Int) -> Double {
        precondition(nu >= 1, "t quantile with \(nu) degrees of freedom")
        if nu <= table.count { return table[nu - 1] }
        let z = 1.959963984540054, v = Double(nu)
        let z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z
        return z + (z3 + z) / (4 * v) + (5 * z5 + 16 * z3 + 3 * z) / (96 * v * v)
            + (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * v * v * v)
    }
}

/// Records the KV use after every change, keeping at most `capacity` samples evenly spaced in record
/// order: when full it drops every other sample and from then on keeps every other record (then every
/// fourth, …), so memory stays bounded however long the run. The peak is exact.
struct KVUsageRecorder {
    private(set) var samples: [KVUsageSample] = []
    private(set) var peak = 0.0
    private let capacity: Int
    private var stride = 1
    private var recorded = 0

    init(capacity: Int) {
        precondition(capacity >= 2 && capacity % 2 == 0, "KVUsageRecorder needs an even capacity of at least 2")
        self.capacity = capacity
        samples.reserveCapacity(capacity)
    }

    mutating func record(time: Double, fraction: Double) {
        if fraction > peak { peak = fraction }
        defer { recorded += 1 }
        guard recorded % stride == 0 else { return }
        if samples.count == capacity {
            // Kept samples are the records at multiples of `stride`; keep the multiples of 2·stride. The
            // capacity is even, so this record (number capacity·stride) is one of them.
            for i in 0..<capacity / 2 { samples[i] = samples[2 * i] }
            samples.removeLast(capacity / 2)
            stride *= 2
        }
        samples.append(KVUsageSample(time: time, fraction: fraction))
    }
}
