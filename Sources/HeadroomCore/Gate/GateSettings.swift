// A scenario's `gate:` section: which metrics the regression gate compares, and how much worse each may get.
import Foundation

/// What `headroom gate` checks for a scenario.
///
/// ```yaml
/// gate:
///   metrics: [gflops, weight_gbps]   # default: every measured metric whose direction is known
///   max_regression: 5%               # the default threshold
///   thresholds: { weight_gbps: 10% } # per metric, wins over max_regression
///   confidence: 0.95                 # of the ratio's interval
///   rounds: 4                        # measure in interleaved rounds (see `rounds`)
/// ```
public struct GateSettings: Codable, Equatable, Sendable {
    /// Metric names to gate; nil gates every measured metric with a known direction.
    public var metrics: [String]?
    /// The default largest tolerated worsening, as a fraction.
    public var maxRegression: Double
    /// Per-metric thresholds, as fractions.
    public var thresholds: [String: Double]
    public var confidence: Double
    /// When the gate (or `baseline record`) measures: in this many rounds, each running the probe and every
    /// workload with a share of the repetitions, so that load changing during the run shows in the spread
    /// of every case's samples instead of shifting whole cases.
    public var rounds: Int

    public init(metrics: [String]? = nil, maxRegression: Double = 0.05, thresholds: [String: Double] = [:], confidence: Double = 0.95,
                rounds: Int = 1) {
        self.metrics = metrics; self.maxRegression = maxRegression; self.thresholds = thresholds; self.confidence = confidence
        self.rounds = rounds
    }

    public func threshold(for metric: String) -> Double { thresholds[metric] ?? maxRegression }

    /// Reads the `gate:` mapping.
    public static func read(_ field: YAMLField) throws -> GateSettings {
        let m = try field.mapping(allowed: ["metrics", "max_regression", "thresholds", "confidence", "rounds"])
        var s = GateSettings()
        if let f = m.optional("metrics") {
            s.metrics = try f.list { try knownMetric($0) }
            if Set(s.metrics!).count != s.metrics!.count { throw f.error("lists a metric twice") }
        }
        if let f = m.optional("max_regression") { s.maxRegression = try percentage(f) }
        if let f = m.optional("thresholds") {
            guard case .mapping(let pairs)? = f.node else { throw f.fail("a mapping of metric names to percentages") }
            for (k, v) in pairs {
                guard case .scalar(let key) = k else { throw f.error("expected metric names as keys") }
                let entry = f.child(key.string, v)
                _ = try knownMetric(YAMLField(node: k, path: entry.path, file: f.file))
                s.thresholds[key.string] = try percentage(entry)
            }
        }
        if let f = m.optional("confidence") {
            let c = try f.double(min: 0, exclusiveMin: true, max: 1)
            guard c >= 0.5 && c < 1 else { throw f.fail("a confidence from 0.5 to below 1, such as 0.95") }
            s.confidence = c
        }
        if let f = m.optional("rounds") { s.rounds = try f.int(min: 1, max: 100) }
        return s
    }

    /// The `gate:` section of a scenario's text as stored with a run (the rest of the file is not re-validated).
    public static func parse(scenarioText text: String, file: String) throws -> GateSettings {
        let doc = try YAMLField.document(text, file: file)
        guard case .mapping(let root)? = doc.node else { return GateSettings() }
        guard let node = root["gate"] else { return GateSettings() }
        return try read(YAMLField(node: node, path: "gate", file: file))
    }

    static func knownMetric(_ f: YAMLField) throws -> String {
        let name = try f.string()
        guard MetricRules.rule(for: name) != nil else {
            throw f.fail("a metric whose direction is known (such as \(MetricRules.named.keys.sorted().joined(separator: ", ")), "
                         + "or a name ending in _per_s, gflops, gbps, _ms, seconds or _bytes)")
        }
        return name
    }

    static func percentage(_ f: YAMLField) throws -> Double {
        guard let s = f.scalar, let v = parsePercentage(s) else { throw f.fail("a percentage such as 5%") }
        return v
    }

    /// "5%" or "2.5 %" as a fraction (0.05, 0.025); nil for anything else, or outside 0 to 1000 %.
    public static func parsePercentage(_ text: String) -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard t.hasSuffix("%"), let v = Double(t.dropLast().trimmingCharacters(in: .whitespaces)),
              v.isFinite, v >= 0, v <= 1000 else { return nil }
        return v / 100
    }
}
