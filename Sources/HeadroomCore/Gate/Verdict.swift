// The gate's decision for one metric: a regression only when the change is both beyond the metric's
// threshold and statistically significant; "not significant" when the noise could hide one.

/// Which way a metric gets better.
public enum Direction: String, Codable, Sendable {
    /// Throughput: tokens/s, GFLOP/s, GB/s.
    case higherIsBetter = "higher"
    /// Latency, time and memory: ms, seconds, bytes.
    case lowerIsBetter = "lower"
}

public enum Verdict: String, Codable, Sendable, CaseIterable {
    /// No change beyond the threshold can be hiding in the interval, or the change is within the threshold.
    case pass
    /// Significantly better by more than the threshold.
    case improvement
    /// Significantly worse by more than the threshold: the gate fails.
    case regression
    /// The interval reaches beyond the threshold on the worse side but also includes "no change":
    /// the noise is larger than the change, so the gate cannot tell (it does not fail).
    case notSignificant = "not significant"
}

/// A verdict with the figures behind it.
public struct Decision: Codable, Equatable, Sendable {
    public var estimate: RatioEstimate
    public var direction: Direction
    /// The largest tolerated worsening, as a fraction (0.05 for 5 %).
    public var threshold: Double
    public var verdict: Verdict

    /// How much worse the estimate is, as a fraction: 1 − ratio for throughput, ratio − 1 for latency
    /// and memory (so 0.2 means 20 % less throughput or 20 % more time). Negative when better.
    public var worsening: Double { Self.worsening(estimate.ratio, direction) }

    static func worsening(_ ratio: Double, _ direction: Direction) -> Double {
        direction == .higherIsBetter ? 1 - ratio : ratio - 1
    }

    /// Decides from the estimate of current ÷ baseline.
    public init(estimate: RatioEstimate, direction: Direction, threshold: Double) {
        precondition(threshold >= 0, "a threshold is a non-negative fraction")
        self.estimate = estimate; self.direction = direction; self.threshold = threshold
        // The interval in "worsening" terms: [least worse, most worse].
        let a = Self.worsening(estimate.lower, direction), b = Self.worsening(estimate.upper, direction)
        let (leastWorse, mostWorse) = (Swift.min(a, b), Swift.max(a, b))
        let point = Self.worsening(estimate.ratio, direction)
        let significantlyWorse = leastWorse > 0, significantlyBetter = mostWorse < 0
        if significantlyWorse && point > threshold {
            verdict = .regression
        } else if significantlyBetter && -point > threshold {
            verdict = .improvement
        } else if !significantlyWorse && mostWorse > threshold {
            verdict = .notSignificant
        } else {
            verdict = .pass
        }
    }

    /// "−20.1 % [−21.0, −19.2]": the change in the metric's own terms (positive = the metric grew).
    public var changeDescription: String {
        func pct(_ r: Double) -> String {
            guard r.isFinite, r > 0 else { return r == 0 ? "−100" : "+∞" }
            return String(format: "%+.1f", (r - 1) * 100).replacingOccurrences(of: "-", with: "−")
        }
        return "\(pct(estimate.ratio)) % [\(pct(estimate.lower)), \(pct(estimate.upper))]"
    }
}
