// How much one set of raw samples differs from another: the ratio current ÷ baseline with a
// distribution-free confidence interval (Hodges–Lehmann estimate, Mann–Whitney interval, on logarithms).
import Foundation

/// The ratio current ÷ baseline of two sets of positive samples, with its confidence interval.
///
/// The estimate is the Hodges–Lehmann shift of the logarithms: exp of the median of all n·m pairwise
/// differences log(current_j) − log(baseline_i). When the change scales every sample by the same factor
/// (what a slowdown does) it estimates that factor, which is also the ratio of the medians. The interval
/// is the Mann–Whitney (Wilcoxon rank-sum) interval for that shift: exact for up to `exactLimit` pairs,
/// the normal approximation with a correction for ties above. It excludes 1 exactly when the two-sided
/// rank-sum test rejects "no change" at 1 − confidence.
public struct RatioEstimate: Codable, Equatable, Sendable {
    /// Hodges–Lehmann estimate of current ÷ baseline.
    public var ratio: Double
    /// Lower bound of the interval; 0 when there are too few samples to bound it.
    public var lower: Double
    /// Upper bound of the interval; +infinity when there are too few samples to bound it.
    public var upper: Double
    /// The interval's nominal coverage (0.95 for a 95 % interval).
    public var confidence: Double
    public var baselineCount: Int
    public var currentCount: Int

    public init(ratio: Double, lower: Double, upper: Double, confidence: Double, baselineCount: Int, currentCount: Int) {
        self.ratio = ratio; self.lower = lower; self.upper = upper; self.confidence = confidence
        self.baselineCount = baselineCount; self.currentCount = currentCount
    }

    /// Whether the interval is bounded on both sides (enough samples for this confidence).
    public var isBounded: Bool { lower > 0 && upper.isFinite }

    /// Pairs up to which the critical rank comes from the exact null distribution of U.
    public static let exactLimit = 10_000

    /// Samples each side needs before an interval is computed; with fewer on either side the interval is
    /// unbounded, so the verdict is "not significant" (the README's rule). Four against four is the smallest
    /// balanced design with a 95 % interval (P(U = 0) = 1/70). The rank test alone would bound an interval
    /// for lopsided designs — 50,000 baseline samples against one current sample — whose one or few values
    /// decide everything; with a baseline of identical values that interval is zero-wide and a single
    /// sample became a "regression". Zero spread with enough samples on both sides is different: it is a
    /// deterministic change (bytes, counts), and its zero-width interval at the shift is the right answer.
    public static let minimumSamples = 4

    /// Compares two sample sets. Non-finite values are dropped; a non-positive value has no logarithm
    /// and is an error, as is an empty set. Fewer than `minimumSamples` on a side: the estimate with an
    /// unbounded interval.
    public static func compare(baseline: [Double], current: [Double], confidence: Double = 0.95) throws -> RatioEstimate {
        precondition(confidence > 0 && confidence < 1, "confidence must lie in (0, 1)")
        let b = baseline.filter(\.isFinite), c = current.filter(\.isFinite)
        guard !b.isEmpty, !c.isEmpty else { throw ComparisonError.noSamples(baseline: b.count, current: c.count) }
        if let bad = (b + c).first(where: { $0 <= 0 }) { throw ComparisonError.nonPositive(bad) }
        let x = b.map { Foundation.log($0) }.sorted(), y = c.map { Foundation.log($0) }.sorted()
        let diffs = PairwiseDifferences(x: x, y: y)
        let pairs = diffs.count
        let estimate = pairs % 2 == 1 ? diffs.kth((pairs + 1) / 2)
                                      : (diffs.kth(pairs / 2) + diffs.kth(pairs / 2 + 1)) / 2
        let k: Int
        if Swift.min(x.count, y.count) < minimumSamples {
            k = 0
        } else {
            k = criticalRank(n: x.count, m: y.count, confidence: confidence, tieSum: pairs > exactLimit ? tieSum(x, y) : 0)
        }
        let lo = k >= 1 ? Foundation.exp(diffs.kth(k)) : 0
        let hi = k >= 1 ? Foundation.exp(diffs.kth(pairs + 1 - k)) : .infinity
        return RatioEstimate(ratio: Foundation.exp(estimate), lower: lo, upper: hi, confidence: confidence,
                             baselineCount: x.count, currentCount: y.count)
    }

    /// This ratio of raw figures turned into the ratio of normalised ones, given the ratio of the rooflines
    /// (current ÷ baseline) estimated from the probe's own samples: divided by it for a throughput,
    /// multiplied for a time. The roofline's uncertainty widens the interval: the two intervals' half-widths
    /// on the log scale add in quadrature (independent, roughly normal estimates). Unbounded stays unbounded.
    public func normalised(by roofline: RatioEstimate, dividing: Bool) -> RatioEstimate {
        let sign = dividing ? -1.0 : 1.0
        let center = Foundation.log(ratio) + sign * Foundation.log(roofline.ratio)
        guard isBounded && roofline.isBounded else {
            return RatioEstimate(ratio: Foundation.exp(center), lower: 0, upper: .infinity, confidence: confidence,
                                 baselineCount: baselineCount, currentCount: currentCount)
        }
        let below = Foundation.log(ratio / lower), above = Foundation.log(upper / ratio)
        let roofBelow = Foundation.log(roofline.ratio / roofline.lower), roofAbove = Foundation.log(roofline.upper / roofline.ratio)
        // Dividing by the roofline: its upper side pulls the result's lower bound down, and vice versa.
        let (rb, ra) = dividing ? (roofAbove, roofBelow) : (roofBelow, roofAbove)
        return RatioEstimate(ratio: Foundation.exp(center),
                             lower: Foundation.exp(center - (below * below + rb * rb).squareRoot()),
                             upper: Foundation.exp(center + (above * above + ra * ra).squareRoot()),
                             confidence: confidence, baselineCount: baselineCount, currentCount: currentCount)
    }

    /// The 1-based rank K such that [D(K), D(nm+1−K)] of the sorted pairwise differences covers the shift
    /// with at least `confidence`: the largest K with P(U ≤ K−1) ≤ (1 − confidence)/2 under no change.
    /// 0 when even the widest interval (the extreme differences) falls short.
    public static func criticalRank(n: Int, m: Int, confidence: Double, tieSum: Double = 0) -> Int {
        let alphaHalf = (1 - confidence) / 2
        let pairs = n * m
        if pairs <= exactLimit {
            let cdf = MannWhitney.lowerCDF(n: n, m: m, upTo: pairs / 2)
            var k = 0
            while k < cdf.count && cdf[k] <= alphaHalf { k += 1 }  // cdf[k] = P(U ≤ k)
            return k
        }
        // Normal approximation with the tie-corrected variance and a continuity correction.
        let nm = Double(pairs), total = Double(n + m)
        // A pool of all-equal values has variance 0 in exact arithmetic; rounding can take it a hair below.
        let variance = Swift.max(0, nm / 12 * ((total + 1) - tieSum / (total * (total - 1))))
        let z = Normal.quantile(1 - alphaHalf)
        return Int(saturating: nm / 2 - z * variance.squareRoot() + 0.5, rounding: .down, into: 0...pairs / 2)
    }

    /// Σ (t³ − t) over groups of equal values in the pooled sample (both inputs sorted).
    static func tieSum(_ x: [Double], _ y: [Double]) -> Double {
        var pooled = x + y
        pooled.sort()
        var sum = 0.0, run = 1
        for i in 1..<max(pooled.count, 1) {
            if pooled[i] == pooled[i - 1] { run += 1; continue }
            if run > 1 { sum += Double(run * run * run - run) }
            run = 1
        }
        if run > 1 { sum += Double(run * run * run - run) }
        return sum
    }
}

public enum ComparisonError: Error, CustomStringConvertible, Equatable {
    case noSamples(baseline: Int, current: Int)
    case nonPositive(Double)

    public var description: String {
        switch self {
        case .noSamples(let b, let c): return "cannot compare: \(b) baseline and \(c) current finite samples"
        case .nonPositive(let v): return "cannot compare ratios of a metric with a non-positive sample (\(v))"
        }
    }
}

/// The n·m differences y_j − x_i of two sorted arrays, never materialised: order statistics are found
/// by bisection on the value, counting the differences at or below it in O(n + m).
struct PairwiseDifferences {
    let x: [Double]
    let y: [Double]
    var count: Int { x.count * y.count }

    /// The number of pairs with y_j − x_i ≤ t. Floating-point subtraction is monotone in each argument,
    /// so for growing x_i the qualifying j form a growing prefix of y.
    func countAtMost(_ t: Double) -> Int {
        x.withUnsafeBufferPointer { x in
            y.withUnsafeBufferPointer { y in
                var j = 0, total = 0
                for i in 0..<x.count {
                    let xi = x[i]
                    while j < y.count && y[j] - xi <= t { j += 1 }
                    total += j
                }
                return total
            }
        }
    }

    /// The smallest difference strictly greater than t (t below the largest difference).
    func smallestAbove(_ t: Double) -> Double {
        x.withUnsafeBufferPointer { x in
            y.withUnsafeBufferPointer { y in
                var best = Double.infinity, j = 0
                // For growing x_i the first j with y_j − x_i > t does not decrease.
                for i in 0..<x.count {
                    let xi = x[i]
                    while j < y.count && y[j] - xi <= t { j += 1 }
                    if j < y.count { best = Swift.min(best, y[j] - xi) }
                }
                return best
            }
        }
    }

    /// The k-th smallest difference, 1-based.
    func kth(_ k: Int) -> Double {
        precondition(k >= 1 && k <= count, "rank \(k) outside 1...\(count)")
        let smallest = y[0] - x[x.count - 1], largest = y[y.count - 1] - x[0]
        if k == 1 { return smallest }
        if k == count { return largest }
        // Invariant: countAtMost(lo) < k ≤ countAtMost(hi), so the k-th difference lies in (lo, hi].
        var lo = smallest, hi = largest
        if countAtMost(lo) >= k { return lo }
        while true {
            let mid = lo + (hi - lo) / 2
            let narrow = hi - lo <= 1e-12 * Swift.max(abs(lo), abs(hi), 1e-3)
            if narrow || mid <= lo || mid >= hi {
                // Snap to the first actual difference above lo; it is the k-th when it already counts k.
                let s = smallestAbove(lo)
                if countAtMost(s) >= k { return s }
                lo = s
                continue
            }
            if countAtMost(mid) >= k { hi = mid } else { lo = mid }
        }
    }
}

/// The null distribution of the Mann–Whitney U statistic (no ties), from the Gaussian binomial
/// coefficient [n+m choose n]_q whose coefficients count the arrangements with U = u.
public enum MannWhitney {
    /// P(U ≤ u) for u = 0 … upTo, for sample sizes n and m.
    public static func lowerCDF(n: Int, m: Int, upTo: Int) -> [Double] {
        let small = min(n, m), large = max(n, m)
        let top = min(upTo, small * large)
        // Π_{i=1..small} (1 − q^{large+i}) / (1 − q^i), truncated above `top`. Each partial product is
        // a polynomial with non-negative coefficients, so the running values stay positive.
        var c = [Double](repeating: 0, count: top + 1)
        c[0] = 1
        for i in 1...small {
            if i <= top { for u in i...top { c[u] += c[u - i] } }          // ÷ (1 − q^i)
            let a = large + i
            if a <= top { for u in stride(from: top, through: a, by: -1) { c[u] -= c[u - a] } }  // × (1 − q^a)
        }
        let total = binomial(n + m, small)
        var out = [Double](repeating: 0, count: top + 1)
        var running = 0.0
        for u in 0...top { running += c[u]; out[u] = Swift.min(1, running / total) }
        return out
    }

    /// C(n, k) in floating point.
    static func binomial(_ n: Int, _ k: Int) -> Double {
        var r = 1.0
        for i in 0..<k { r = r * Double(n - i) / Double(i + 1) }
        return r
    }
}

/// The standard normal distribution, as far as the gate needs it.
public enum Normal {
    public static func cdf(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }

    /// The p-quantile, by bisection on the CDF (exact to double precision; only called once per decision).
    public static func quantile(_ p: Double) -> Double {
        precondition(p > 0 && p < 1)
        var lo = -40.0, hi = 40.0
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if mid <= lo || mid >= hi { break }
            if cdf(mid) < p { lo = mid } else { hi = mid }
        }
        return (lo + hi) / 2
    }
}
