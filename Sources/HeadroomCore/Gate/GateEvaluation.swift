// Matching a run's cases with a baseline's and deciding each gated metric, raw and machine-normalised.
// Cases match on their workload (kind, name, parameters; never the facts a measurement recorded about
// itself); the thread count is the hardware profile. What a metric's direction and normalisation are is
// the metric registry's (MetricRegistry).

/// What to gate, beyond the scenario's settings.
public struct GateOptions: Sendable {
    public var settings: GateSettings
    /// Metric names from the command line; when set they replace `settings.metrics`.
    public var metrics: [String]?
    /// Gate only machine-normalised figures (and machine-independent ones such as bytes).
    public var normalisedOnly: Bool

    public init(settings: GateSettings = GateSettings(), metrics: [String]? = nil, normalisedOnly: Bool = false) {
        self.settings = settings; self.metrics = metrics; self.normalisedOnly = normalisedOnly
    }
}

/// One gated figure: a metric of one case, raw or normalised, and its decision.
public struct GateRow: Codable, Equatable, Sendable {
    public var kind: CaseKind
    public var name: String
    public var params: [String: String]
    /// The thread count of the current case, and of the baseline case it is compared with.
    public var threads: Int
    public var baselineThreads: Int
    public var metric: String
    /// The raw metric's unit (a normalised figure is that unit divided or multiplied by the roofline's).
    public var unit: String
    /// Nil for a raw figure; otherwise how it was normalised ("÷ sgemm GFLOP/s", "machine-independent").
    public var normalisation: String?
    public var baselineMedian: Double
    public var currentMedian: Double
    public var decision: Decision

    public init(kind: CaseKind, name: String, params: [String: String], threads: Int, baselineThreads: Int, metric: String,
                unit: String, normalisation: String?, baselineMedian: Double, currentMedian: Double, decision: Decision) {
        self.kind = kind; self.name = name; self.params = params; self.threads = threads; self.baselineThreads = baselineThreads
        self.metric = metric; self.unit = unit; self.normalisation = normalisation; self.baselineMedian = baselineMedian
        self.currentMedian = currentMedian; self.decision = decision
    }

    /// "gemm qkv K=768 M=128 … ×2t": the case, its parameters and its threads (with the baseline's when they differ).
    public var caseLabel: String {
        let p = params.keys.sorted().map { "\($0)=\(params[$0]!)" }.joined(separator: " ")
        let t = threads == baselineThreads ? MeasuredCase.threadsLabel(threads)
                                           : "\(MeasuredCase.threadsLabel(threads)) vs \(MeasuredCase.threadsLabel(baselineThreads))"
        return [kind.rawValue, name, p, t].filter { !$0.isEmpty }.joined(separator: " ")
    }

    /// "gflops" or "gflops ÷ sgemm GFLOP/s".
    public var metricLabel: String { normalisation.map { "\(metric) (\($0))" } ?? metric }
}

/// The outcome of a gate: every decided row, how thread counts were paired, and what could not be compared.
public struct GateOutcome: Codable, Equatable, Sendable {
    public struct ThreadPair: Codable, Equatable, Sendable {
        public var current: Int
        public var baseline: Int
        public init(current: Int, baseline: Int) { self.current = current; self.baseline = baseline }
    }
    public var rows: [GateRow]
    public var threadPairs: [ThreadPair]
    public var notes: [String]

    public init(rows: [GateRow], threadPairs: [ThreadPair], notes: [String]) {
        self.rows = rows; self.threadPairs = threadPairs; self.notes = notes
    }

    public var regressions: [GateRow] { rows.filter { $0.decision.verdict == .regression } }
    public func count(_ v: Verdict) -> Int { rows.filter { $0.decision.verdict == v }.count }
    /// 0 when nothing regressed, 1 otherwise.
    public var exitCode: Int32 { regressions.isEmpty ? 0 : 1 }
}

public enum GateError: Error, CustomStringConvertible, Equatable {
    case nothingToCompare(String)
    public var description: String {
        switch self { case .nothingToCompare(let why): return "nothing to gate: \(why)" }
    }
}

public enum Gate {
    /// Probe cases are the rooflines (the hardware profile), not code under test: never gated.
    public static let rooflineKind = CaseKind.probe

    /// Pairs thread counts: a count present in both runs is compared with itself; the counts left over
    /// are paired in ascending order (position in the sorted lists), so a run overridden to `--threads 1`
    /// is compared with a baseline taken on 2. Counts left without a partner are not compared.
    public static func pairThreads(current: [Int], baseline: [Int]) -> [GateOutcome.ThreadPair] {
        let c = Set(current), b = Set(baseline)
        var pairs = c.intersection(b).sorted().map { GateOutcome.ThreadPair(current: $0, baseline: $0) }
        let restC = c.subtracting(b).sorted(), restB = b.subtracting(c).sorted()
        for (x, y) in zip(restC, restB) { pairs.append(.init(current: x, baseline: y)) }
        return pairs.sorted { $0.current < $1.current }
    }

    struct WorkloadKey: Hashable {
        var kind: CaseKind
        var name: String
        var params: [String: String]
    }

    struct Slot: Hashable {
        var key: WorkloadKey
        var threads: Int
    }

    /// Compares `current` with `baseline` (cases of one run each, probe cases included for the rooflines).
    public static func evaluate(baseline: [MeasuredCase], current: [MeasuredCase], options: GateOptions) throws -> GateOutcome {
        let gatedBase = baseline.filter { $0.kind != rooflineKind }, gatedCur = current.filter { $0.kind != rooflineKind }
        let pairs = pairThreads(current: gatedCur.map(\.threads), baseline: gatedBase.map(\.threads))
        var index: [WorkloadKey: [Int: MeasuredCase]] = [:]
        for c in gatedBase { index[WorkloadKey(kind: c.kind, name: c.name, params: c.params), default: [:]][c.threads] = c }
        let selected = options.metrics ?? options.settings.metrics
        let readPatterns = ProbeRoofline.sharedReadPatterns(baseline, current)
        var notes: [String] = []
        var rows: [GateRow] = []
        var used = Set<Slot>()       // baseline cases compared
        var unknown = Set<String>(), bookkeeping = Set<String>(), noRoofline = Set<String>(), nonPositive = Set<String>(), unmatched: [String] = []

        for c in gatedCur {
            guard let pair = pairs.first(where: { $0.current == c.threads }) else { continue }
            let key = WorkloadKey(kind: c.kind, name: c.name, params: c.params)
            guard let b = index[key]?[pair.baseline] else {
                unmatched.append(["\(c.kind)", c.name, MeasuredCase.threadsLabel(c.threads)].filter { !$0.isEmpty }.joined(separator: " ")); continue
            }
            used.insert(Slot(key: key, threads: pair.baseline))
            var metrics: [String] = []
            for s in c.samples where !metrics.contains(s.metric) { metrics.append(s.metric) }
            for metric in metrics {
                if let selected, !selected.contains(metric) { continue }
                let rule: MetricRule
                switch MetricRules.treatment(of: metric, kind: c.kind) {
                case .gated(let r): rule = r
                case .bookkeeping: bookkeeping.insert(metric); continue
                case .unknown: unknown.insert(metric); continue
                }
                let cur = c.values(metric), base = b.values(metric)
                guard !cur.isEmpty, !base.isEmpty else { continue }
                // A ratio needs positive figures. A count that is zero in both runs (full fine-tuning has no
                // adapter bytes) is unchanged; zero on one side only is a different workload, not a speed.
                if (base + cur).contains(where: { $0 <= 0 }) {
                    if Set(base + cur).count > 1 { nonPositive.insert("\(c.kind) \(c.name) \(metric)") }
                    continue
                }
                let threshold = options.settings.threshold(for: metric)
                func row(_ bv: [Double], _ cv: [Double], _ label: String?, roofline: RatioEstimate? = nil, divide: Bool = true) throws {
                    var estimate = try RatioEstimate.compare(baseline: base, current: cur, confidence: options.settings.confidence)
                    if let roofline { estimate = estimate.normalised(by: roofline, dividing: divide) }
                    rows.append(GateRow(
                        kind: c.kind, name: c.name, params: c.params, threads: c.threads, baselineThreads: pair.baseline,
                        metric: metric, unit: c.unit(of: metric), normalisation: label,
                        baselineMedian: Summary(bv)?.median ?? .nan, currentMedian: Summary(cv)?.median ?? .nan,
                        decision: Decision(estimate: estimate, direction: rule.direction, threshold: threshold)))
                }
                switch rule.normalisation {
                case .machineIndependent:
                    try row(base, cur, options.normalisedOnly ? rule.normalisation.label : nil)
                case .none:
                    if !options.normalisedOnly { try row(base, cur, nil) }
                case .divide(let roof), .multiply(let roof):
                    if !options.normalisedOnly { try row(base, cur, nil) }
                    let sb = roof.samples(in: baseline, threads: pair.baseline, patterns: readPatterns)
                    let sc = roof.samples(in: current, threads: c.threads, patterns: readPatterns)
                    guard let rb = Summary(sb)?.median, let rc = Summary(sc)?.median, rb > 0, rc > 0 else {
                        noRoofline.insert("\(roof.label) at \(c.threads) (current) / \(pair.baseline) (baseline) threads"); continue
                    }
                    // The decision divides the raw ratio by the ratio of the probe's samples, whose noise widens the
                    // interval; the medians shown are divided by (or multiplied by) the probe's median, so their ratio
                    // reads like the decision's.
                    let roofRatio = try RatioEstimate.compare(baseline: sb, current: sc, confidence: options.settings.confidence)
                    let divide = rule.normalisation == .divide(roof)
                    try row(base.map { divide ? $0 / rb : $0 * rb }, cur.map { divide ? $0 / rc : $0 * rc }, rule.normalisation.label,
                            roofline: roofRatio, divide: divide)
                }
            }
        }

        for p in pairs where p.current != p.baseline {
            notes.append("threads \(p.current) are compared with the baseline's threads \(p.baseline): a different hardware "
                         + "profile, so raw figures compare machines and normalised figures compare code")
        }
        let curThreads = Set(gatedCur.map(\.threads)), baseThreads = Set(gatedBase.map(\.threads))
        let pairedCur = Set(pairs.map(\.current)), pairedBase = Set(pairs.map(\.baseline))
        if !curThreads.subtracting(pairedCur).isEmpty {
            notes.append("not compared, no baseline thread count left to pair with: threads \(curThreads.subtracting(pairedCur).sorted())")
        }
        if !baseThreads.subtracting(pairedBase).isEmpty {
            notes.append("baseline threads \(baseThreads.subtracting(pairedBase).sorted()) were not measured in this run")
        }
        if !unmatched.isEmpty {
            notes.append("\(unmatched.count) case(s) have no baseline with the same workload: \(listed(unmatched))")
        }
        let missing = gatedBase.filter { pairedBase.contains($0.threads) && !used.contains(Slot(key: WorkloadKey(kind: $0.kind, name: $0.name, params: $0.params), threads: $0.threads)) }
        if !missing.isEmpty {
            notes.append("\(missing.count) baseline case(s) were not measured in this run: \(listed(missing.map { ["\($0.kind)", $0.name, MeasuredCase.threadsLabel($0.threads)].filter { !$0.isEmpty }.joined(separator: " ") }))")
        }
        if !unknown.isEmpty { notes.append("not gated, direction unknown: \(unknown.sorted().joined(separator: ", "))") }
        if !bookkeeping.isEmpty { notes.append("not gated, recorded for reference: \(bookkeeping.sorted().joined(separator: ", "))") }
        if !nonPositive.isEmpty {
            notes.append("not gated, zero or negative in one run and not the other (a ratio needs positive figures): "
                         + nonPositive.sorted().joined(separator: ", "))
        }
        if !noRoofline.isEmpty { notes.append("not normalised, the probe did not measure \(noRoofline.sorted().joined(separator: "; "))") }
        if let selected {
            let measured = Set(gatedCur.flatMap { $0.samples.map(\.metric) })
            let absent = selected.filter { !measured.contains($0) }
            if !absent.isEmpty { notes.append("selected but not measured in this run: \(absent.joined(separator: ", "))") }
        }
        if rows.isEmpty {
            let why = gatedBase.isEmpty ? "the baseline holds no measured case besides the probe"
                : gatedCur.isEmpty ? "the run holds no measured case besides the probe"
                : "no metric of the run matches the baseline's workloads" + (notes.isEmpty ? "" : " (\(notes.joined(separator: "; ")))")
            throw GateError.nothingToCompare(why)
        }
        return GateOutcome(rows: rows, threadPairs: pairs, notes: notes)
    }

    static func listed(_ items: [String]) -> String {
        items.count <= 4 ? items.joined(separator: ", ") : items.prefix(4).joined(separator: ", ") + ", …"
    }
}
