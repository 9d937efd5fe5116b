// When simulated requests arrive: an open-loop process (Poisson, gamma for bursty traffic, evenly spaced),
// everything at once (to measure saturation throughput), or a recorded trace replayed as it was.
import Foundation

/// When requests arrive. The first request arrives at t = 0 (a trace's at its first timestamp); the
/// processes draw only the gaps after it.
public enum ArrivalProcess: Hashable, Sendable, CustomStringConvertible {
    /// Exponential gaps with mean 1/rate: independent users, the load generators' default.
    case poisson(rate: Double)
    /// Gamma gaps with mean 1/rate and coefficient of variation `cv` (shape 1/cv², scale cv²/rate): cv 1 is
    /// Poisson, cv > 1 bursty, cv < 1 more regular than Poisson (vLLM's `--burstiness` is 1/cv²).
    case gamma(rate: Double, cv: Double)
    /// Exactly 1/rate apart.
    case constant(rate: Double)
    /// Every request at t = 0: the replicas' saturation throughput, not a latency under load.
    case allAtOnce
    /// The trace's timestamps and lengths, which take the place of the length distributions; a run replays
    /// its first `SimulationConfig.requests` entries.
    case trace([LoadTraceEntry])

    /// Throws the first parameter out of range; `field` names the process ("arrivals").
    public func validate(field: String) throws(SimulationError) {
        func rate(_ r: Double) throws(SimulationError) {
            guard r.isFinite && r > 0 else {
                throw SimulationError(field: "\(field).rate", expected: "a finite rate above 0 requests/s", got: "\(r)")
            }
        }
        switch self {
        case .poisson(let r), .constant(let r):
            try rate(r)
        case .gamma(let r, let cv):
            try rate(r)
            // Shape 1/cv² below ~1e-300 or above ~1e300 is not a distribution a double can draw from.
            guard cv.isFinite && cv >= 1e-6 && cv <= 1e6 else {
                throw SimulationError(field: "\(field).cv", expected: "a coefficient of variation from 1e-6 to 1e6 (1 is Poisson)", got: "\(cv)")
            }
        case .allAtOnce:
            break
        case .trace(let entries):
            guard !entries.isEmpty else { throw SimulationError(field: "\(field).trace", expected: "at least one request", got: "none") }
            var last = -Double.infinity
            for (i, e) in entries.enumerated() {
                let at = "\(field).trace[\(i)]"
                guard e.timestamp.isFinite && e.timestamp >= 0 else {
                    throw SimulationError(field: "\(at).timestamp", expected: "a finite time at least 0 seconds", got: "\(e.timestamp)")
                }
                guard e.timestamp >= last else {
                    throw SimulationError(field: "\(at).timestamp", expected: "timestamps in order (at least \(last))", got: "\(e.timestamp)")
                }
                last = e.timestamp
                for (name, n) in [("promptTokens", e.promptTokens), ("outputTokens", e.outputTokens)]
                where n < 1 || n > LengthDistribution.maxLength {
                    throw SimulationError(field: "\(at).\(name)", expected: "a length from 1 to \(LengthDistribution.maxLength) tokens", got: "\(n)")
                }
            }
        }
    }

    /// Requests a run of `requested` requests simulates: `requested`, or fewer when a trace is shorter.
    public func count(requested: Int) -> Int {
        if case .trace(let entries) = self { return min(requested, entries.count) }
        return requested
    }

    /// The arrival times of `count` requests, non-decreasing, from a generator seeded with `seed`. The
    /// process must be valid. Gaps are drawn at rate 1 and divided by the rate, so runs at different rates
    /// with one seed see the same pattern stretched (common random numbers: latency against rate is then
    /// smooth, which the capacity search relies on).
    public func times(count: Int, seed: UInt64) -> [Double] {
        var random = SimulationRandom(seed: seed)
        var out: [Double] = []
        out.reserveCapacity(count)
        var t = 0.0
        switch self {
        case .poisson(let rate):
            for i in 0..<count {
                if i > 0 { t += random.exponential() / rate }
                out.append(t)
            }
        case .gamma(let rate, let cv):
            let shape = 1 / (cv * cv)
            for i in 0..<count {
                if i > 0 { t += random.gamma(shape: shape) / (shape * rate) }
                out.append(t)
            }
        case .constant(let rate):
            // i / rate rather than a running sum, so the thousandth arrival carries no accumulated rounding.
            for i in 0..<count { out.append(Double(i) / rate) }
        case .allAtOnce:
            out = Array(repeating: 0, count: count)
        case .trace(let entries):
            out = entries.prefix(count).map(\.timestamp)
        }
        return out
    }

    public var description: String {
        switch self {
        case .poisson(let r): return "Poisson at \(r) req/s"
        case .gamma(let r, let cv): return "gamma at \(r) req/s, CV \(cv)"
        case .constant(let r): return "constant at \(r) req/s"
        case .allAtOnce: return "all at once"
        case .trace(let entries): return "trace of \(entries.count) requests"
        }
    }
}
