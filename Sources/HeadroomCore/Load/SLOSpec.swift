// Service-level objectives on request latencies (`--slo ttft_p95=500ms,tpot_p95=50ms`), and which requests meet
// them: vLLM's goodput definition, where a request is good when its own values meet every objective.
import Foundation

/// A set of latency objectives. Parse one with `SLOSpec.parse(_:file:path:)`.
public struct SLOSpec: Hashable, Sendable {
    /// A latency a request has.
    public enum Metric: String, CaseIterable, Hashable, Sendable {
        /// Time to first token: send → the first chunk carrying content.
        case ttft
        /// Time per output token after the first: (e2e − ttft) / (output tokens − 1).
        case tpot
        /// Inter-token latency: the gaps between content chunks.
        case itl
        /// End to end: send → the end of the stream.
        case e2e
    }

    /// One objective: `metric`'s `percentile` at most `thresholdMs`.
    public struct Objective: Hashable, Sendable {
        public var metric: Metric
        /// 50, 90, 95 or 99.
        public var percentile: Int
        public var thresholdMs: Double
        public init(metric: Metric, percentile: Int, thresholdMs: Double) {
            self.metric = metric; self.percentile = percentile; self.thresholdMs = thresholdMs
        }
    }

    public var objectives: [Objective]
    /// The text as the user wrote it (stored as the `slo` fact).
    public var text: String

    public init(objectives: [Objective], text: String) { self.objectives = objectives; self.text = text }

    public static let percentiles = [50, 90, 95, 99]

    /// Reads `ttft_p95=500ms,tpot_p95=50ms,itl_p99=…,e2e_p50=2s`: metrics ttft, tpot, itl, e2e; percentiles p50,
    /// p90, p95, p99; thresholds a positive number with the unit ms or s. Each metric and percentile at most
    /// once. Errors are `InputError`s with `file` (a flag or file) and `path` (a key path or "").
    public static func parse(_ text: String, file: String = "--slo", path: String = "") throws -> SLOSpec {
        func fail(_ message: String) -> InputError { InputError(file: file, path: path, message: message) }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw fail("expected objectives such as ttft_p95=500ms,tpot_p95=50ms, got nothing") }
        var objectives: [Objective] = []
        for part in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let item = part.trimmingCharacters(in: .whitespaces)
            let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2 else { throw fail("expected METRIC_pNN=VALUE such as ttft_p95=500ms, got \"\(item)\"") }
            let key = String(kv[0]), value = String(kv[1])
            let name = key.split(separator: "_", maxSplits: 1, omittingEmptySubsequences: false)
            guard name.count == 2, let metric = Metric(rawValue: String(name[0])) else {
                throw fail("\(key): expected a metric ttft, tpot, itl or e2e with a percentile, such as ttft_p95")
            }
            guard name[1].hasPrefix("p"), let p = Int(name[1].dropFirst()), percentiles.contains(p) else {
                throw fail("\(key): expected a percentile p50, p90, p95 or p99 after \(metric.rawValue)_")
            }
            guard let ms = parseDuration(value) else {
                throw fail("\(key): expected a duration above 0 in ms or s, such as 500ms or 2s, got \"\(value)\"")
            }
            guard !objectives.contains(where: { $0.metric == metric && $0.percentile == p }) else {
                throw fail("\(key): given twice")
            }
            objectives.append(Objective(metric: metric, percentile: p, thresholdMs: ms))
        }
        return SLOSpec(objectives: objectives, text: trimmed)
    }

    /// `500ms` → 500, `2s` → 2000, `0.5s` → 500; nil for anything else, zero, negative or not finite.
    static func parseDuration(_ s: String) -> Double? {
        let (number, scale): (Substring, Double)
        if s.hasSuffix("ms") { (number, scale) = (s.dropLast(2), 1) } else if s.hasSuffix("s") { (number, scale) = (s.dropLast(), 1000) } else { return nil }
        guard let v = Double(number), v.isFinite, v > 0 else { return nil }
        return v * scale
    }

    /// Whether one successful request meets every objective. A percentile objective applies to the request's
    /// own value (vLLM's goodput): TTFT, TPOT and e2e have one value per request; for ITL it is that percentile
    /// of the request's own gaps (nearest rank). A request without the value (TPOT with under 2 output tokens,
    /// ITL without gaps) meets that objective, as in vLLM where such a request's TPOT is 0.
    public func isGood(ttftMs: Double, tpotMs: Double?, itlMs: [Double], e2eMs: Double) -> Bool {
        objectives.allSatisfy { o in
            let value: Double?
            switch o.metric {
            case .ttft: value = ttftMs
            case .tpot: value = tpotMs
            case .e2e: value = e2eMs
            case .itl: value = Self.nearestRank(itlMs, percentile: o.percentile)
            }
            guard let value else { return true }
            return value <= o.thresholdMs
        }
    }

    /// The nearest-rank percentile of `values` (nil when empty).
    static func nearestRank(_ values: [Double], percentile: Int) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let rank = Int((Double(percentile) / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(sorted.count, max(1, rank)) - 1]
    }
}
