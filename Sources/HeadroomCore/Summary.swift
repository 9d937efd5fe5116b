// Order statistics of raw samples: what every measured figure is reported with.

/// Median, p95, min and max of a set of samples (p95 by linear interpolation between order statistics).
public struct Summary: Codable, Equatable, Sendable {
    public let count: Int
    public let median: Double
    public let p95: Double
    public let min: Double
    public let max: Double
    public let mean: Double

    public init?(_ values: [Double]) {
        let sorted = values.filter { $0.isFinite }.sorted()
        guard !sorted.isEmpty else { return nil }
        count = sorted.count
        median = Self.percentile(sorted, 0.5)
        p95 = Self.percentile(sorted, 0.95)
        min = sorted.first!
        max = sorted.last!
        mean = sorted.reduce(0, +) / Double(sorted.count)
    }

    /// The q-quantile of already sorted values (type 7, the default of R and NumPy).
    public static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        precondition(!sorted.isEmpty, "percentile of no values")
        let h = Double(sorted.count - 1) * q
        let lo = Int(h.rounded(.down))
        let hi = Swift.min(lo + 1, sorted.count - 1)
        return sorted[lo] + (h - Double(lo)) * (sorted[hi] - sorted[lo])
    }
}
