// `headroom calibrate`: fits this machine's per-regime execution-time model to a stored run and prints every
// regime's fit and leave-one-out error, every measurement against it, and a held-out run's errors.
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomReport
import HeadroomRunner
import HeadroomStore

struct CalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Fit this machine's execution-time model per kernel regime and print its errors (predicted against measured).",
        discussion: """
            Reads the GEMM and inference measurements of a stored run of this machine (the latest complete run \
            of scenario `calibrate`, else the latest complete run of this machine — what `plan` calibrates on — \
            or --run / --scenario), groups them by regime — the code path (OpenBLAS sgemm with one row or \
            several, the engine's prefill, its single-sequence decode, its batched decode), the weight format and \
            the thread count — and fits each regime alone: seconds = a × (bytes ÷ probed read bandwidth) + b × \
            (FLOPs ÷ probed sgemm peak). Every measurement is checked against its regime fitted without it \
            (leave-one-out). With a held-out run (the latest complete run of scenario `calibrate-holdout`, or \
            --holdout-run / --holdout-scenario), every measurement of it — never fitted — is predicted by the full \
            fit. `make calibrate` measures both scenarios (Scenarios/calibrate.yaml, \
            Scenarios/calibrate-holdout.yaml; about 16 minutes on the 2-core development machine) and runs this. Exit 1 when no run holds measurements.
            """)

    @Option(name: .customLong("run"), help: ArgumentHelp("Fit this stored run.", valueName: "id"))
    var runID: Int64?

    @Option(name: .long, help: ArgumentHelp("Fit the latest complete run of this scenario on this machine.", valueName: "name"))
    var scenario: String?

    @Option(name: .customLong("holdout-run"), help: ArgumentHelp("Predict this stored run's measurements with the fit (held out).", valueName: "id"))
    var holdoutRunID: Int64?

    @Option(name: .customLong("holdout-scenario"),
            help: ArgumentHelp("Predict the latest complete run of this scenario on this machine (default: calibrate-holdout, when stored).",
                               valueName: "name"))
    var holdoutScenario: String?

    @Flag(name: .customLong("cases"), help: "List every measurement with its prediction (default: the regimes and the worst cases).")
    var listCases = false

    @OptionGroup var catalog: CatalogOptions
    @OptionGroup var store: StoreOptions

    @Flag(name: .long, help: "Print JSON on standard output instead of tables.")
    var json = false

    func validate() throws {
        if runID != nil && scenario != nil { throw ValidationError("--run and --scenario exclude each other") }
        if holdoutRunID != nil && holdoutScenario != nil { throw ValidationError("--holdout-run and --holdout-scenario exclude each other") }
    }

    struct Output: Encodable {
        var run: Int64
        var scenario: String
        var calibration: RegimeCalibration
        var holdoutRun: Int64?
        var holdoutScenario: String?
        var holdout: [RegimeCheck]?
        var holdoutMedianAbsErrorPercent: Double?
        var holdoutWorstAbsErrorPercent: Double?
    }

    func run() throws {
        try reportingErrors {
            let catalog = try self.catalog.load()
            guard let store = try openExistingStore(self.store.path, source: self.store.source) else {
                throw RunFailure("\(self.store.shown): no results store yet; measure first (`make calibrate`, or `headroom run`)")
            }
            let fingerprint = MachineInfo.current().fingerprint
            func latest(_ name: String) throws -> StoredRun? {
                for r in try store.completeRuns(scenario: name, limit: nil) where r.machineFingerprint == fingerprint {
                    if let id = r.id { return try store.load(runID: id) }
                }
                return nil
            }
            let fitted: StoredRun
            if let id = runID {
                fitted = try store.load(runID: id)
            } else if let name = scenario {
                guard let r = try latest(name) else {
                    throw RunFailure("\(self.store.shown): no complete run of scenario \(name) on this machine; run `headroom run` on it first")
                }
                fitted = r
            } else if let r = try latest("calibrate") ?? store.latestCompleteRun(fingerprint: fingerprint) {
                fitted = r
            } else {
                throw RunFailure("\(self.store.shown): no complete run of this machine; measure first (`make calibrate`, or `headroom run`)")
            }
            let held: StoredRun?
            if let id = holdoutRunID {
                held = try store.load(runID: id)
            } else {
                held = try latest(holdoutScenario ?? "calibrate-holdout")
                if held == nil, let name = holdoutScenario {
                    throw RunFailure("\(self.store.shown): no complete run of scenario \(name) on this machine to hold out")
                }
            }
            let points = RegimeCalibration.points(cases: fitted.cases, probe: ProbeFigures(cases: fitted.cases), models: catalog.models)
            guard !points.isEmpty else {
                throw RunFailure("run \(fitted.run.id ?? 0) (\(fitted.run.scenarioName)) holds no GEMM or inference measurements with probe figures to fit")
            }
            let cal = RegimeCalibration(points: points, runID: fitted.run.id)
            var out = Output(run: fitted.run.id ?? 0, scenario: fitted.run.scenarioName, calibration: cal)
            if let h = held, h.run.id != fitted.run.id {
                let hp = RegimeCalibration.points(cases: h.cases, probe: ProbeFigures(cases: h.cases), models: catalog.models)
                let checks = cal.check(hp)
                let e = RegimeCalibration.errors(checks)
                out.holdoutRun = h.run.id; out.holdoutScenario = h.run.scenarioName; out.holdout = checks
                out.holdoutMedianAbsErrorPercent = e.median; out.holdoutWorstAbsErrorPercent = e.worst
            }
            if json { try printJSON(out) } else { print(Self.text(out, allCases: listCases)) }
        }
    }

    static func pct(_ x: Double?) -> String { x.map { String(format: "%.1f", $0) } ?? "—" }

    static func text(_ o: Output, allCases: Bool) -> String {
        var lines: [String] = []
        let c = o.calibration
        lines.append("Local execution-time model of run \(o.run) (\(o.scenario)): \(c.label).")
        lines.append("Each regime fitted alone: seconds = a × bytes/read bandwidth + b × FLOPs/sgemm peak (this run's probe); "
                     + "errors are predicted against measured, each point predicted by its regime fitted without it.")
        lines.append("")
        var t = TextTable(["regime", "points", "sizes", "fit", "LOO median |err| %", "worst %"], rightAligned: [1, 4, 5])
        for f in c.fits {
            t.add([f.key.description, "\(f.points)", "\(f.key.kernel.sizeName) " + f.sizes.map(String.init).joined(separator: ","),
                   f.model.summary, pct(f.medianAbsErrorPercent), pct(f.worstAbsErrorPercent)])
        }
        lines.append(t.rendered)
        func caseTable(_ checks: [RegimeCheck], title: String) {
            lines.append("")
            lines.append(title)
            var t = TextTable(["measurement", "measured ms", "predicted ms", "error %", "n", "predicted by"], rightAligned: [1, 2, 3, 4])
            for k in checks {
                t.add([k.point.label, String(format: "%.3f", k.point.measuredSeconds * 1e3),
                       k.predictedSeconds.map { String(format: "%.3f", $0 * 1e3) } ?? "—",
                       k.errorPercent.map { String(format: "%+.1f", $0) } ?? "—", "\(k.point.samples)", k.via ?? "its regime"])
            }
            lines.append(t.rendered)
        }
        let worst = c.checks.sorted { abs($0.errorPercent ?? .infinity) > abs($1.errorPercent ?? .infinity) }
        caseTable(allCases ? c.checks : Array(worst.prefix(8)),
                  title: allCases ? "Every measurement, leave-one-out:" : "The worst leave-one-out cases (--cases lists all \(c.checks.count)):")
        if let h = o.holdout, let run = o.holdoutRun {
            let e = RegimeCalibration.errors(h)
            lines.append("")
            lines.append("Held out: run \(run) (\(o.holdoutScenario ?? "?")), \(h.count) measurements never fitted: median |error| \(pct(e.median)) %, "
                         + "worst \(pct(e.worst)) %\(e.unchecked > 0 ? "; \(e.unchecked) in no fitted regime" : "").")
            var byRegime = TextTable(["regime", "points", "median |err| %", "worst %"], rightAligned: [1, 2, 3])
            for (k, v) in Dictionary(grouping: h, by: \.point.key).sorted(by: { $0.key < $1.key }) {
                let e = RegimeCalibration.errors(v)
                byRegime.add([k.description, "\(v.count)", pct(e.median), pct(e.worst)])
            }
            lines.append(byRegime.rendered)
            if allCases { caseTable(h, title: "Every held-out measurement:") }
        } else {
            lines.append("")
            lines.append("No held-out run (scenario calibrate-holdout): `headroom run Scenarios/calibrate-holdout.yaml` measures one.")
        }
        return lines.joined(separator: "\n")
    }
}
