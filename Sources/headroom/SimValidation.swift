// `headroom bench sim`'s result: measured against predicted per point, the errors, the bars, and the plot.
import Foundation
import HeadroomCore
import HeadroomLoad
import HeadroomServe
import HeadroomReport

struct SimValidation: Codable {
    /// p50 and p95 of TTFT and TPOT, ms; with the simulator's 95 % intervals over its replications.
    struct Figures: Codable {
        var ttftP50Ms: Double?, ttftP95Ms: Double?, tpotP50Ms: Double?, tpotP95Ms: Double?
        var ttftP50IntervalMs: Estimate? = nil, ttftP95IntervalMs: Estimate? = nil
        var tpotP50IntervalMs: Estimate? = nil, tpotP95IntervalMs: Estimate? = nil

        init(ttftP50Ms: Double?, ttftP95Ms: Double?, tpotP50Ms: Double?, tpotP95Ms: Double?) {
            self.ttftP50Ms = ttftP50Ms; self.ttftP95Ms = ttftP95Ms; self.tpotP50Ms = tpotP50Ms; self.tpotP95Ms = tpotP95Ms
        }

        /// The queueing approximation gives p95s only.
        init(queueing p: LoadPoint) {
            self.init(ttftP50Ms: nil, ttftP95Ms: p.ttftP95Seconds * 1000, tpotP50Ms: nil, tpotP95Ms: p.tpotP95Seconds * 1000)
        }

        subscript(_ m: Metric) -> Double? {
            switch m {
            case .ttftP50: return ttftP50Ms
            case .ttftP95: return ttftP95Ms
            case .tpotP50: return tpotP50Ms
            case .tpotP95: return tpotP95Ms
            }
        }

        func interval(_ m: Metric) -> Estimate? {
            switch m {
            case .ttftP50: return ttftP50IntervalMs
            case .ttftP95: return ttftP95IntervalMs
            case .tpotP50: return tpotP50IntervalMs
            case .tpotP95: return tpotP95IntervalMs
            }
        }
    }

    enum Metric: String, Codable, CaseIterable {
        case ttftP50 = "TTFT p50", ttftP95 = "TTFT p95", tpotP50 = "TPOT p50", tpotP95 = "TPOT p95"
        /// The issue's bar on the median |error| over the Poisson points.
        var bar: Double { self == .ttftP50 || self == .tpotP50 ? 0.15 : 0.25 }
    }

    struct Point: Codable {
        var config: String, point: String, fraction: Double, offeredRate: Double, achievedRate: Double?
        /// `simulated`: the mean over seeded Poisson schedules of the rate (with intervals); `replayed`: one run
        /// on the very arrival times the client sent at (its seeded schedule), the like-for-like prediction.
        var measured: Figures, simulated: Figures, queueing: Figures?
        var replayed: Figures? = nil
        var runID: Int64
        /// The server's logged steps during the point against the step model (diagnostic).
        var serverSteps: StepLogCheck? = nil

        func error(_ m: Metric, _ predicted: Figures?) -> Double? {
            guard let p = predicted?[m], let x = measured[m], x > 0 else { return nil }
            return (p - x) / x
        }
    }

    struct Saturation: Codable {
        var config: String
        var measuredRequestsPerSecond: Double
        var simulated: Estimate
        var runID: Int64
        var serverSteps: StepLogCheck? = nil
        var error: Double? { measuredRequestsPerSecond > 0 ? (simulated.value - measuredRequestsPerSecond) / measuredRequestsPerSecond : nil }
    }

    /// Median |error| over one configuration's Poisson points, per metric and model.
    struct Summary: Codable {
        var config: String
        var model: String
        var medianAbsError: [String: Double]
    }

    struct Bar: Codable { var name: String; var measured: String; var bar: String; var passed: Bool }

    var kind = "measured and predicted"
    var model: String, threads: Int, promptTokens: Int, outputTokens: Int, requests: Int, warmup: Int, replications: Int
    /// What each format's step times rest on (`MeasuredStepTime.basis`).
    var stepModels: [String]
    var points: [Point]
    var saturations: [Saturation]
    var summaries: [Summary] = []
    var bars: [Bar] = []
    var plots: [String] = []
    /// Points during which the server ran its own steps slower for a while (`unsteadiness`).
    var unsteadyPoints: [String] = []

    init(model: String, threads: Int, promptTokens: Int, outputTokens: Int, requests: Int, warmup: Int, replications: Int,
         stepModels: [String], points: [Point], saturations: [Saturation]) {
        self.model = model; self.threads = threads; self.promptTokens = promptTokens; self.outputTokens = outputTokens
        self.requests = requests; self.warmup = warmup; self.replications = replications; self.stepModels = stepModels
        self.points = points; self.saturations = saturations
    }

    /// A window of the server's steps is slow when its measured / model ratio exceeds the configuration's median
    /// window by this factor (`StepLogCheck.windowRatios`): on a quiet machine the windows of a run sit within a few
    /// per cent of each other.
    static let unsteadyFactor = 1.10
    /// The configuration's median window further than this from 1: the whole run, not a stretch of it, ran off
    /// the step model (the step model's own errors are a few per cent).
    static let driftTolerance = 0.05

    /// The configuration's median window ratio over all its points' step logs.
    func medianWindow(_ config: String) -> Double? {
        Self.median(saturations.filter { $0.config == config }.flatMap { $0.serverSteps?.windowRatios ?? [] }
            + points.filter { $0.config == config }.flatMap { $0.serverSteps?.windowRatios ?? [] })
    }

    /// A point's slow windows (count, and the worst as a multiple of the configuration's median); nil when none.
    func unsteadiness(config: String, point: String) -> (slow: Int, worst: Double)? {
        let check = point == "saturation" ? saturations.first { $0.config == config }?.serverSteps
            : points.first { $0.config == config && $0.point == point }?.serverSteps
        guard let windows = check?.windowRatios, let m = medianWindow(config), m > 0 else { return nil }
        let slow = windows.filter { $0 > m * Self.unsteadyFactor }
        return slow.isEmpty ? nil : (slow.count, (slow.max() ?? m) / m)
    }

    /// "q4_0 chunked poisson-3" for every point with a slow window.
    func findUnsteady() -> [String] {
        configs.flatMap { config in
            (["saturation"] + points.filter { $0.config == config }.map(\.point))
                .filter { unsteadiness(config: config, point: $0) != nil }.map { "\(config) \($0)" }
        }
    }

    /// "+4.2 %": an error with its sign.
    static func signed(_ f: Double) -> String { String(format: "%+.1f %%", f * 100) }

    static func median(_ v: [Double]) -> Double? {
        guard !v.isEmpty else { return nil }
        let s = v.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    var configs: [String] {
        var seen: [String] = []
        for p in points where !seen.contains(p.config) { seen.append(p.config) }
        return seen
    }

    mutating func summarise() {
        summaries = []; bars = []
        unsteadyPoints = findUnsteady()
        for config in configs {
            let pts = points.filter { $0.config == config }
            for (name, pick) in [("simulator, client's schedule", { (p: Point) in p.replayed }),
                                 ("simulator, other schedules", { (p: Point) in p.simulated as Figures? }),
                                 ("queueing", { (p: Point) in p.queueing })] {
                var errs: [String: Double] = [:]
                for m in Metric.allCases {
                    if let e = Self.median(pts.compactMap { $0.error(m, pick($0)).map(abs) }) { errs[m.rawValue] = e }
                }
                summaries.append(Summary(config: config, model: name, medianAbsError: errs))
                guard name == "simulator, client's schedule" else { continue }
                for m in Metric.allCases {
                    let e = errs[m.rawValue]
                    bars.append(Bar(name: "\(config): simulator \(m.rawValue), median |error| over \(pts.count) Poisson points (client's schedule)",
                                    measured: e.map { Fmt.percent($0) } ?? "—", bar: "≤ \(Fmt.percent(m.bar))", passed: (e ?? .infinity) <= m.bar))
                }
            }
            if let s = saturations.first(where: { $0.config == config }) {
                bars.append(Bar(name: "\(config): simulator saturation throughput", measured: s.error.map { SimValidation.signed($0) } ?? "—",
                                bar: "within 10 %", passed: abs(s.error ?? .infinity) <= 0.10))
            }
        }
    }

    var rendered: String {
        func ms(_ v: Double?) -> String { v.map(Fmt.sig) ?? "—" }
        func withCI(_ v: Double?, _ e: Estimate?) -> String {
            guard let v else { return "—" }
            guard let lo = e?.low, let hi = e?.high else { return Fmt.sig(v) }
            return "\(Fmt.sig(v)) [\(Fmt.sig(lo)), \(Fmt.sig(hi))]"
        }
        func err(_ e: Double?) -> String { e.map(SimValidation.signed) ?? "—" }
        var out = "Serving simulator against `headroom serve` (\(model), \(threads) threads, prompt \(promptTokens), output \(outputTokens), "
        out += "\(warmup) + \(requests) requests a point): MEASURED by headroom load, PREDICTED from step times only\n"
        for s in stepModels { out += "  step times: \(s)\n" }
        out += "  simulator: on the client's own arrival times (its seeded Poisson schedule; the bars), and the mean [95 % interval] over "
        out += "\(replications) other seeded Poisson schedules of the same rate and count; queueing: p95s only\n\n"
        for m in Metric.allCases {
            var t = TextTable(["configuration", "point", "req/s", "measured ms", "simulated ms", "error", "other schedules ms", "error",
                               "queueing ms", "error"], rightAligned: [2, 3, 4, 5, 6, 7, 8, 9])
            for p in points {
                t.add([p.config, p.point, Fmt.sig(p.offeredRate), ms(p.measured[m]), ms(p.replayed?[m]), err(p.error(m, p.replayed)),
                       withCI(p.simulated[m], p.simulated.interval(m)), err(p.error(m, p.simulated)), ms(p.queueing?[m]),
                       err(p.error(m, p.queueing))])
            }
            out += "\(m.rawValue):\n\(t.rendered)\n\n"
        }
        var sat = TextTable(["configuration", "measured req/s", "simulated req/s", "error"], rightAligned: [1, 2, 3])
        for s in saturations {
            sat.add([s.config, Fmt.sig(s.measuredRequestsPerSecond), withCI(s.simulated.value, s.simulated), err(s.error)])
        }
        out += "Saturation throughput (every request at once):\n\(sat.rendered)\n\n"
        let checks = saturations.compactMap { s in s.serverSteps.map { (s.config, "saturation", $0) } }
            + points.compactMap { p in p.serverSteps.map { (p.config, p.point, $0) } }
        if !checks.isEmpty {
            func x(_ r: Double?) -> String { r.map { String(format: "%.2f×", $0) } ?? "—" }
            var t = TextTable(["configuration", "point", "steps", "measured / model", "decode-only steps", "steps with prefill",
                               "between steps", "slow half-minutes"], rightAligned: [2, 3, 4, 5, 6, 7])
            for (config, point, c) in checks.sorted(by: { $0.0 < $1.0 }) {
                let windows = c.windowRatios ?? []
                let slow = unsteadiness(config: config, point: point)
                t.add([config, point, "\(c.steps)", x(c.ratio), x(c.decodeOnlyRatio), x(c.withPrefillRatio),
                       c.betweenStepsFraction.map(Fmt.percent) ?? "—",
                       windows.isEmpty ? "—" : "\(slow?.slow ?? 0) of \(windows.count)" + (slow.map { String(format: " (to %.2f×)", $0.worst) } ?? "")])
            }
            out += "The server's steps (its --step-log) against the step model, same shapes (diagnostic, not an input):\n\(t.rendered)\n"
            out += "  slow half-minutes: windows of \(Int(StepLogCheck.windowSeconds)) s whose measured / model ratio is over "
            out += "\(String(format: "%.2f", Self.unsteadyFactor))× the configuration's median window (the worst, as a multiple of that median)\n"
            for config in configs {
                guard let m = medianWindow(config), abs(m - 1) > Self.driftTolerance else { continue }
                out += "  DRIFT: \(config): the server's median half-minute ran \(String(format: "%.2f", m))× the step model, all run long: "
                out += "the machine has changed since `bench steps` measured those shapes, or the server runs them differently; every "
                out += "prediction inherits it. Run `bench steps` and `bench sim` back to back on a quiet machine to tell which.\n"
            }
            if !unsteadyPoints.isEmpty {
                out += "  UNSTEADY: \(unsteadyPoints.joined(separator: ", ")): for a while the server ran the same shapes slower than "
                out += "itself — the machine, not the simulator. Errors at these points include it; where a bar is missed, rerun on a quiet machine.\n"
            }
            out += "\n"
        }
        var sum = TextTable(["configuration", "model"] + Metric.allCases.map { "\($0.rawValue) median |err|" }, rightAligned: [2, 3, 4, 5])
        for s in summaries { sum.add([s.config, s.model] + Metric.allCases.map { s.medianAbsError[$0.rawValue].map(Fmt.percent) ?? "—" }) }
        out += "Median |error| over the Poisson points:\n\(sum.rendered)\n\n"
        var b = TextTable(["bar", "measured", "bar", "verdict"])
        for bar in bars { b.add([bar.name, bar.measured, bar.bar, bar.passed ? "PASS" : "MISS"]) }
        out += b.rendered
        if !plots.isEmpty { out += "\nPlots: \(plots.joined(separator: ", "))" }
        return out
    }
}

/// Measured points against the simulator's and the queueing approximation's predictions, one plot per metric family.
enum SimValidationPlot {
    static func plots(_ r: SimValidation, folder: String) -> [Gnuplot.Plot] {
        let palette = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]
        var out: [Gnuplot.Plot] = []
        for (file, metrics, title) in [("sim_ttft.png", [SimValidation.Metric.ttftP50, .ttftP95], "TTFT"),
                                       ("sim_tpot.png", [SimValidation.Metric.tpotP50, .tpotP95], "TPOT")] {
            var data: [String: String] = [:], specs: [String] = []
            for (i, config) in r.configs.enumerated() {
                let pts = r.points.filter { $0.config == config }.sorted { $0.offeredRate < $1.offeredRate }
                let color = palette[i % palette.count]
                for (j, m) in metrics.enumerated() {
                    let dash = j == 0 ? 1 : 2
                    let measured = pts.compactMap { p in p.measured[m].map { "\(p.offeredRate)\t\($0)" } }
                    let simulated = pts.compactMap { p in p.simulated[m].map { "\(p.offeredRate)\t\($0)" } }
                    let replayed = pts.compactMap { p in p.replayed?[m].map { "\(p.offeredRate)\t\($0)" } }
                    let queueing = pts.compactMap { p in p.queueing?[m].map { "\(p.offeredRate)\t\($0)" } }
                    for (key, rows, style, name) in [("m", measured, "with points pt 7 ps 1.5 lc rgb '\(color)'", "measured"),
                                                     ("r", replayed, "with points pt 2 ps 1.5 lc rgb '\(color)'", "simulator, client's schedule"),
                                                     ("s", simulated, "with lines lw 2 dt \(dash) lc rgb '\(color)'", "simulator, other schedules"),
                                                     ("q", queueing, "with lines lw 1 dt 3 lc rgb '\(color)'", "queueing")] where !rows.isEmpty {
                        let id = "\(key)\(i)_\(j)"
                        data[id] = rows.joined(separator: "\n") + "\n"
                        specs.append("{{\(id)}} using 1:2 \(style) title '\(Gnuplot.label("\(config) \(m.rawValue) \(name)"))'")
                    }
                }
            }
            guard !specs.isEmpty else { continue }
            let script = Gnuplot.preamble(title: "\(title): measured (points) against predicted (lines) at Poisson rates — \(r.model)", width: 1000, height: 600)
                + "\nset xlabel 'offered requests/s'\nset ylabel 'ms'\nset logscale y\nset key outside right\n"
                + "plot \(specs.joined(separator: ", \\\n     "))\n"
            out.append(Gnuplot.Plot(output: (folder as NSString).appendingPathComponent(file), script: script, data: data))
        }
        return out
    }
}

/// The simulator's predictions of one measured point: the same rate, request count and warm-ups — on the client's
/// own arrival times, and over seeded replications (each figure the mean of the replications' with its 95 %
/// interval).
enum SimPrediction {
    static func config(_ spec: ReplicaSpec, arrivals: ArrivalProcess, requests: Int, prompt: Int, output: Int, seed: UInt64) -> SimulationConfig {
        SimulationConfig(replicas: [.init(spec)], arrivals: arrivals, promptLengths: .fixed(prompt), outputLengths: .fixed(output),
                         requests: requests, seed: seed)
    }

    /// The measured requests of a run: warm-ups (the first arrivals) left out, as the client leaves them out.
    static func measured(_ run: SimulationRun, warmup: Int) -> [SimulatedRequest] { run.requests.filter { $0.index >= warmup } }

    /// The run on the arrival times `headroom load` sends a Poisson point at (`LoadArrivals.schedule`, the same seed):
    /// like for like, where other schedules of the same rate and count differ by their luck (with 40 requests near
    /// saturation, by more than the model's error).
    static func replay(_ spec: ReplicaSpec, rate: Double, seed: UInt64, requests: Int, warmup: Int, prompt: Int, output: Int) throws
        -> SimValidation.Figures {
        let due = LoadArrivals.poisson(rate: rate, seed: seed).schedule(warmup: warmup, bound: .requests(requests))
        let trace = due.map { LoadTraceEntry(timestamp: $0, promptTokens: prompt, outputTokens: output) }
        let run = try Simulation.run(config(spec, arrivals: .trace(trace), requests: trace.count, prompt: prompt, output: output, seed: seed))
        let (ttft, tpot) = distributions(run, warmup: warmup)
        return SimValidation.Figures(ttftP50Ms: ttft?.p50, ttftP95Ms: ttft?.p95, tpotP50Ms: tpot?.p50, tpotP95Ms: tpot?.p95)
    }

    /// TTFT and TPOT of a run's measured requests, ms, as the client computes them.
    static func distributions(_ run: SimulationRun, warmup: Int) -> (ttft: LatencyDistribution?, tpot: LatencyDistribution?) {
        let kept = measured(run, warmup: warmup)
        return (LatencyDistribution(kept.map { $0.ttft * 1000 }), LatencyDistribution(kept.compactMap { $0.tpot.map { $0 * 1000 } }))
    }

    static func poisson(_ spec: ReplicaSpec, rate: Double, requests: Int, warmup: Int, prompt: Int, output: Int, replications: Int,
                        seed: UInt64) throws -> SimValidation.Figures {
        let summary = try Simulation.replicate(config(spec, arrivals: .poisson(rate: rate), requests: warmup + requests, prompt: prompt,
                                                      output: output, seed: seed), replications: replications)
        var f: [String: [Double]] = [:]
        for run in summary.runs {
            guard case let (ttft?, tpot?) = distributions(run, warmup: warmup) else { continue }
            f["ttft50", default: []].append(ttft.p50); f["ttft95", default: []].append(ttft.p95)
            f["tpot50", default: []].append(tpot.p50); f["tpot95", default: []].append(tpot.p95)
        }
        func e(_ k: String) -> Estimate? { f[k].flatMap { $0.isEmpty ? nil : Estimate(replicated: $0) } }
        var figures = SimValidation.Figures(ttftP50Ms: e("ttft50")?.value, ttftP95Ms: e("ttft95")?.value,
                                            tpotP50Ms: e("tpot50")?.value, tpotP95Ms: e("tpot95")?.value)
        figures.ttftP50IntervalMs = e("ttft50"); figures.ttftP95IntervalMs = e("ttft95")
        figures.tpotP50IntervalMs = e("tpot50"); figures.tpotP95IntervalMs = e("tpot95")
        return figures
    }

    /// Every request at once: measured requests over the time the slowest of them took, as the client measures it.
    static func saturation(_ spec: ReplicaSpec, requests: Int, warmup: Int, prompt: Int, output: Int) throws -> Estimate {
        // Arrivals all at t = 0 leave nothing to chance: one run says it all.
        let run = try Simulation.run(config(spec, arrivals: .allAtOnce, requests: warmup + requests, prompt: prompt, output: output, seed: 1))
        let kept = measured(run, warmup: warmup)
        let span = kept.map(\.e2e).max() ?? 0
        return Estimate(span > 0 ? Double(kept.count) / span : 0)
    }
}
