// The percentiles of load latencies, computed one way for every table, JSON and report: an HdrHistogram at
// microsecond resolution with 3 significant digits (as GuideLLM, wrk2 and vLLM's benchmarks report them).
import Foundation
import Histogram

/// p50/p90/p95/p99, mean and max of a list of millisecond values.
///
/// Values are recorded in whole microseconds (negative values as 0) into an HdrHistogram with 3 significant
/// digits: a percentile is exact below 2 ms and within 0.1 % above, and is HdrHistogram's "highest equivalent
/// value" of its bucket (never above the largest value recorded). `mean` and `max` are exact (from the values).
public struct LatencyDistribution: Hashable, Sendable, Codable {
    public var count: Int
    public var p50: Double
    public var p90: Double
    public var p95: Double
    public var p99: Double
    public var mean: Double
    public var max: Double

    /// Nil for no values; non-finite values are skipped.
    public init?(_ valuesMs: [Double]) {
        let finite = valuesMs.filter(\.isFinite)
        guard !finite.isEmpty else { return nil }
        var h = Histogram<UInt64>(numberOfSignificantValueDigits: .three)
        for v in finite { _ = h.record(Self.microseconds(v)) }
        count = finite.count
        func at(_ p: Double) -> Double { Double(h.valueAtPercentile(p)) / 1000 }
        p50 = at(50); p90 = at(90); p95 = at(95); p99 = at(99)
        mean = finite.reduce(0, +) / Double(finite.count)
        max = finite.max()!
    }

    /// The value at 50, 90, 95 or 99 (nil for any other).
    public func percentile(_ p: Int) -> Double? {
        switch p {
        case 50: return p50
        case 90: return p90
        case 95: return p95
        case 99: return p99
        default: return nil
        }
    }

    static func microseconds(_ ms: Double) -> UInt64 {
        let us = (ms * 1000).rounded()
        return us <= 0 ? 0 : us >= 1e15 ? UInt64(1e15) : UInt64(us)
    }
}
