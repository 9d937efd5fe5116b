// What the gate knows about a metric from its name alone: which way is better, and which roofline of the
// same run turns it into a machine-normalised figure. Keyed by name, so new kinds are gated as they land.

/// A machine limit the probe measures in every run, per thread count.
public enum ProbeRoofline: String, Codable, Sendable {
    /// The best sgemm GFLOP/s: the compute roofline.
    case sgemm
    /// The best read bandwidth in GB/s (the best of the probe's read patterns): the memory roofline.
    case readBandwidth = "read"

    public var label: String { self == .sgemm ? "sgemm GFLOP/s" : "read GB/s" }

    /// This roofline's figure at `threads` (the best repetition), if the probe measured it.
    public func value(in probe: ProbeFigures, threads: Int) -> Double? {
        switch self {
        case .sgemm: return probe.at(threads: threads)?.sgemmGFLOPs
        case .readBandwidth: return probe.readGBps(threads: threads)
        }
    }

    /// The raw probe samples behind `value`: the sgemm case, or the read pattern whose best is the largest
    /// (its samples from every case of that name: before and after the workloads).
    ///
    /// `patterns` limits the read patterns considered: a comparison of two runs passes those both measured, so
    /// a pattern one run lacks (a baseline recorded before `read_prefetch` existed) does not change the
    /// yardstick between them; with every pattern in both, this is the pattern `ProbeFigures.readGBps` takes.
    public func samples(in cases: [MeasuredCase], threads: Int, patterns: Set<String>? = nil) -> [Double] {
        let probe = cases.filter { $0.kind == .probe && $0.threads == threads }
        switch self {
        case .sgemm:
            return probe.filter { $0.name == "sgemm" }.flatMap { $0.values("gflops") }
        case .readBandwidth:
            let names = ProbeFigures.readPatterns.filter { patterns?.contains($0) ?? true }
            let reads = names.map { name in probe.filter { $0.name == name }.flatMap { $0.values("gbps") } }.filter { !$0.isEmpty }
            return reads.max { ($0.max() ?? 0) < ($1.max() ?? 0) } ?? []
        }
    }

    /// The read patterns both runs measured (at any thread count): what `samples` may compare between them.
    public static func sharedReadPatterns(_ a: [MeasuredCase], _ b: [MeasuredCase]) -> Set<String> {
        func names(_ cases: [MeasuredCase]) -> Set<String> {
            Set(cases.filter { $0.kind == .probe && ProbeFigures.readPatterns.contains($0.name) }.map(\.name))
        }
        return names(a).intersection(names(b))
    }
}

/// How a metric becomes machine-normalised.
public enum Normalisation: Equatable, Sendable {
    /// A throughput divided by the roofline it is bounded by (a fraction of the machine's limit).
    case divide(ProbeRoofline)
    /// A time multiplied by the roofline (the work it would take at the limit): still lower-is-better.
    case multiply(ProbeRoofline)
    /// Does not depend on the machine's speed (memory in bytes): its raw figure is also its normalised one.
    case machineIndependent
    /// No roofline bounds it: gated raw only.
    case none

    /// How the table shows it: "÷ sgemm GFLOP/s", "× read GB/s", "machine-independent", "—".
    public var label: String {
        switch self {
        case .divide(let r): return "÷ \(r.label)"
        case .multiply(let r): return "× \(r.label)"
        case .machineIndependent: return "machine-independent"
        case .none: return "—"
        }
    }

    public var roofline: ProbeRoofline? {
        switch self {
        case .divide(let r), .multiply(let r): return r
        case .machineIndependent, .none: return nil
        }
    }
}

/// A metric's direction and normalisation.
public struct MetricRule: Equatable, Sendable {
    public var direction: Direction
    public var normalisation: Normalisation

    public init(_ direction: Direction, _ normalisation: Normalisation) {
        self.direction = direction; self.normalisation = normalisation
    }
}

public enum MetricRules {
    /// The gated metrics of the registry with their rule for a case measured here (for messages listing them).
    public static var named: [String: MetricRule] {
        var out: [String: MetricRule] = [:]
        for d in MetricRegistry.definitions { if let r = d.rule(for: .gemm) { out[d.name] = r } }
        return out
    }

    /// What the gate does with `metric` of a case of `kind`.
    public enum Treatment: Equatable, Sendable {
        case gated(MetricRule)
        /// Registered as bookkeeping (a count, a status, a loss): recorded, never gated.
        case bookkeeping
        /// Neither registered nor named in a way that says its direction.
        case unknown
    }

    /// The registry's treatment of `metric`; a name it lacks falls back to `guessed(_:)`. For a kind not
    /// measured here (`load`) no roofline of this machine applies, so the rule is raw only.
    public static func treatment(of metric: String, kind: CaseKind) -> Treatment {
        if let d = MetricRegistry.definition(metric) { return d.rule(for: kind).map(Treatment.gated) ?? .bookkeeping }
        guard var r = guessed(metric) else { return .unknown }
        if !kind.isMeasuredHere, r.normalisation.roofline != nil { r.normalisation = .none }
        return .gated(r)
    }

    /// The rule for `metric` in a case measured here, nil when it is bookkeeping or unknown: what a scenario's
    /// `gate.metrics` or `--metric` may name.
    public static func rule(for metric: String) -> MetricRule? {
        if case .gated(let r) = treatment(of: metric, kind: .gemm) { return r }
        return nil
    }

    /// A name the registry lacks, by its suffix (…_per_s and …gflops/…gbps higher is better; …_ms, …seconds,
    /// …_s lower; …_bytes lower and machine-independent), so a new workload's metrics are gated before they
    /// are registered. Nil when the name says nothing.
    static func guessed(_ metric: String) -> MetricRule? {
        if metric.hasSuffix("gflops") { return MetricRule(.higherIsBetter, .divide(.sgemm)) }
        if metric.hasSuffix("gbps") { return MetricRule(.higherIsBetter, .divide(.readBandwidth)) }
        if metric.hasSuffix("_per_s") { return MetricRule(.higherIsBetter, .none) }
        if metric.hasSuffix("_bytes") { return MetricRule(.lowerIsBetter, .machineIndependent) }
        if metric.hasSuffix("_ms") || metric.hasSuffix("seconds") || metric.hasSuffix("_s") {
            return MetricRule(.lowerIsBetter, .none)
        }
        return nil
    }
}
