// `headroom gate`: measure (or take a stored run), compare every gated metric with a baseline, and exit 1
// only on a significant regression beyond its threshold. Tables for people, JUnit and Markdown for CI.
import ArgumentParser
import Dispatch
import Foundation
import HeadroomCore
import HeadroomReport
import HeadroomRunner
import HeadroomStore

struct GateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gate",
        abstract: "Compare a run with a baseline; exit 1 on a significant regression.",
        discussion: """
            Runs the scenario (or takes --run ID), then compares each gated metric of each case with the baseline's \
            case of the same workload: the ratio current ÷ baseline (Hodges–Lehmann) with its Mann–Whitney confidence \
            interval, over the raw samples. A figure regresses only when it is worse by more than its threshold and \
            the interval excludes "no change"; "not significant" means the noise could hide a change beyond the \
            threshold. Normalised figures divide by the roofline the probe measured in the same run at the same \
            threads, so they compare code across machines. Thread counts present in both runs are compared like \
            with like; others pair by position (a --threads 1 run against a 2-thread baseline).
            Exit codes: 0 pass (or improvement, or not significant), 1 a regression, 2 bad input.
            """)

    @Argument(help: ArgumentHelp("The scenario to run (default: the scenario the baseline records).", valueName: "scenario"))
    var scenarioArgument: String?

    @Option(name: .customLong("scenario"), help: .hidden)
    var scenarioOption: String?

    @OptionGroup var catalog: CatalogOptions

    @Option(name: .long, help: ArgumentHelp(
        "A stored baseline's name, a baseline file (.json) from `headroom baseline export`, or BRANCH@CLASS: the latest complete runs of a branch on one class of machine.",
        discussion: "CLASS is `this` (this machine's CPU model, cores and memory), a machine fingerprint, or a catalog hardware id an endpoint's load cases name; --baseline-runs says how many runs are pooled.",
        valueName: "name|file|branch@class"))
    var baseline: String?

    @Option(name: .customLong("baseline-runs"), help: ArgumentHelp("With --baseline BRANCH@CLASS: pool the samples of this many latest runs (1 to 100).", valueName: "n"))
    var baselineRuns: Int = 3

    @Option(name: .long, help: ArgumentHelp("The default largest tolerated worsening, such as 5% (default: the scenario's gate.max_regression, else 5%).", valueName: "percent"))
    var threshold: String?

    @Option(name: .long, parsing: .upToNextOption, help: ArgumentHelp("Gate only these metrics (\(listHelp); default: the scenario's gate.metrics, else every metric with a known direction).", valueName: "metric"))
    var metric: [String] = []

    @Flag(name: .customLong("normalised-only"), help: "Gate only machine-normalised figures (and machine-independent ones such as bytes).")
    var normalisedOnly = false

    @Option(name: .long, parsing: .upToNextOption,
            help: ArgumentHelp("Thread counts to measure, overriding the scenario's measure.threads (\(listHelp)).", valueName: "n"))
    var threads: [String] = []

    @Option(name: .customLong("run"), help: ArgumentHelp("Gate this stored run instead of measuring.", valueName: "id"))
    var runID: Int64?

    @Option(name: .long, help: ArgumentHelp("Write JUnit XML here (one test case per gated figure).", valueName: "file"))
    var junit: String?

    @Option(name: .long, help: ArgumentHelp("Write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY).", valueName: "file"))
    var markdown: String?

    @Option(name: .customLong("benchmark-decision"), help: ArgumentHelp("Instead of gating: time one decision over two synthetic sets of N samples each.", valueName: "N"))
    var benchmarkDecision: Int?

    @OptionGroup var store: StoreOptions

    @Flag(name: .long, help: "Print JSON on standard output instead of the table.")
    var json = false

    func validate() throws {
        if scenarioArgument != nil && scenarioOption != nil { throw ValidationError("give the scenario once: as the argument, or with --scenario") }
        _ = try threadCounts(threads)
        _ = try flatList(metric, option: "--metric")
        if !(1...100).contains(baselineRuns) { throw ValidationError("--baseline-runs: expected an integer from 1 to 100, got \(baselineRuns)") }
    }

    func run() throws {
        try reportingErrors {
            if let n = benchmarkDecision { try Self.benchmark(samples: n, json: json); return }
            let started = DispatchTime.now().uptimeNanoseconds
            guard let baselineArg = baseline else {
                throw InputError(file: "command line", path: "--baseline", message: "missing; name a stored baseline or a baseline .json file")
            }
            let threads = try threadCounts(self.threads)
            let metric = try flatList(self.metric, option: "--metric")
            // Outputs are checked before anything is measured: a bad path is bad input (2), never a "regression" (1).
            if let junit { try FileChecks.requireWritableOutput(junit, option: "--junit") }
            if let markdown { try FileChecks.requireWritableOutput(markdown, option: "--markdown") }
            let cliThreshold = try threshold.map { t -> Double in
                guard let v = GateSettings.parsePercentage(t) else {
                    throw InputError(file: "command line", path: "--threshold", message: "expected a percentage such as 5%, got \"\(t)\"")
                }
                return v
            }
            for m in metric where MetricRules.rule(for: m) == nil {
                throw InputError(file: "command line", path: "--metric", message: "expected a metric whose direction is known "
                                 + "(\(MetricRules.named.keys.sorted().joined(separator: ", ")), or a name ending in _per_s, gflops, gbps, _ms, seconds or _bytes), got \"\(m)\"")
            }
            let scenarioFile = scenarioArgument ?? scenarioOption
            let loadedScenario = try scenarioFile.map { try catalog.scenario($0) }   // validated before anything is measured
            let db = try store.open()
            // BRANCH@CLASS unless it is a file or the name of a stored baseline (a branch may hold slashes).
            // A store that cannot list its baselines fails here with its own error, not as "no such baseline".
            let savedNames = BranchBaselineSpec(baselineArg) == nil ? [] : try db.baselines().map(\.name)
            let branchSpec = FileManager.default.fileExists(atPath: baselineArg) || savedNames.contains(baselineArg)
                ? nil : BranchBaselineSpec(baselineArg)
            let isFile = branchSpec == nil && (baselineArg.hasSuffix(".json") || baselineArg.contains("/"))
            var pooledRuns: [Int64] = []
            let base: Baseline
            if let branchSpec {
                let scenarioName = try loadedScenario?.name ?? runID.map { try db.load(runID: $0).run.scenarioName }
                let cls = branchSpec.machineClass == "this" ? MachineInfo.current().fingerprint : branchSpec.machineClass
                let pooled = try db.branchBaseline(branch: branchSpec.branch, machineClass: cls, scenario: scenarioName,
                                                   runs: baselineRuns, excluding: runID)
                base = pooled.baseline
                pooledRuns = pooled.runIDs
            } else {
                base = isFile ? try BaselineFile.load(baselineArg) : try db.loadBaseline(named: baselineArg)
            }

            // The run under test: stored, or measured now.
            let current: StoredRun
            var settings: GateSettings
            if let runID {
                if !threads.isEmpty {
                    throw InputError(file: "command line", path: "--threads", message: "applies when gate measures; not with --run")
                }
                current = try db.load(runID: runID)
                guard current.run.status == .complete else {
                    throw InputError(file: store.shown, path: "", message: "run \(runID) is \(current.run.status.rawValue); only a complete run can be gated")
                }
                settings = try loadedScenario?.gate ?? GateSettings.parse(scenarioText: current.run.scenarioText, file: "run \(runID)'s scenario")
            } else {
                var sc: Scenario
                if let loadedScenario { sc = loadedScenario } else if base.scenarioFile == Scenario.builtinDefaultLabel {
                    sc = try catalog.scenario(nil)
                } else {
                    guard FileManager.default.fileExists(atPath: base.scenarioFile) else {
                        throw InputError(file: "command line", path: "SCENARIO", message: "missing, and the baseline's scenario file \(base.scenarioFile) is not here")
                    }
                    sc = try catalog.scenario(base.scenarioFile)
                }
                if !threads.isEmpty { sc.measure?.threads = threads }
                settings = sc.gate
                current = try Self.measure(sc, store: db)
            }
            guard current.run.scenarioName == base.scenarioName else {
                throw InputError(file: isFile ? baselineArg : store.shown, path: "",
                                 message: "the baseline is of scenario \"\(base.scenarioName)\", the run of \"\(current.run.scenarioName)\": cases match within one scenario")
            }
            if let cliThreshold { settings.maxRegression = cliThreshold }
            let options = GateOptions(settings: settings, metrics: metric.isEmpty ? nil : metric, normalisedOnly: normalisedOnly)
            let outcome: GateOutcome
            do {
                outcome = try Gate.evaluate(baseline: base.cases, current: current.cases, options: options)
            } catch let e as GateError {
                throw InputError(file: isFile ? baselineArg : store.shown, path: "", message: e.description)
            } catch let e as ComparisonError {
                throw InputError(file: isFile ? baselineArg : store.shown, path: "", message: e.description)
            }

            let baseRuns = pooledRuns.count > 1 ? "runs \(pooledRuns.map(String.init).joined(separator: ", ")) (pooled)" : "run \(base.runID)"
            var context = [
                "baseline \(base.name): \(baseRuns) of \(base.scenarioName), git \(base.gitRevision.prefix(12)), "
                    + "\(base.machine.map { "\($0.cpuModel), \($0.cores) cores" } ?? "unknown machine")"
                    + (isFile ? " (from \(baselineArg))" : branchSpec != nil ? " (the latest of the branch on that class)" : " (stored)"),
                "current: run \(current.run.id!) of \(current.run.scenarioName), git \(current.run.gitRevision.prefix(12)), "
                    + "\(current.machine.map { "\($0.cpuModel), \($0.cores) cores" } ?? "unknown machine")",
            ]
            if let bm = base.machine, let cm = current.machine, bm.fingerprint != cm.fingerprint {
                context.append("the machines differ (fingerprints \(bm.fingerprint) and \(cm.fingerprint)): raw figures compare machines; normalised ones compare code")
            }
            let report = GateReport(outcome: outcome, context: context)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            if let junit { try write(report.junit(suite: "headroom gate: \(current.run.scenarioName) vs \(base.name)", seconds: seconds), to: junit) }
            if let markdown { try write(report.markdown, to: markdown) }
            if json {
                try printJSON(GateJSON(outcome: outcome, baseline: base, baselineSource: isFile ? baselineArg : "store", current: current))
            } else {
                print(report.text)
            }
            if outcome.exitCode != 0 { throw ExitCode(outcome.exitCode) }
        }
    }

    /// Measures `scenario` the way the gate does: the workloads `headroom run` uses (`ScenarioWorkloads`), in the scenario's
    /// `gate.rounds` interleaved rounds. Returns the stored, complete run.
    static func measure(_ scenario: Scenario, store db: Store) throws -> StoredRun {
        // The endpoints' API keys first: an unset variable is bad input, before anything is measured.
        let line = LoadProgressLine()
        let load = ScenarioWorkloads.LoadContext(apiKeys: try ScenarioWorkloads.apiKeys(for: scenario), progress: line.handler)
        defer { line.clear() }
        Interrupt.install()
        let machine = MachineInfo.current()
        let runner = Runner(store: db, progress: Progress(), version: Headroom.version)
        let outcome: RunOutcome
        do {
            outcome = try ServeCommand.runBlocking {
                try await runner.run(scenario: scenario, rounds: scenario.gate.rounds, machine: machine) {
                    ScenarioWorkloads.workloads(for: $0, machine: machine, load: load)
                }
            }
        } catch is RunInterrupted {
            throw ExitCode(130)
        }
        return try db.load(runID: outcome.runID)
    }

    func write(_ text: String, to path: String) throws {
        try FileChecks.writeAtomically(Data(text.utf8), to: path, option: path == junit ? "--junit" : "--markdown")
    }

    /// Times the decision for one metric over two synthetic sets of `samples` values each (a 3 % shift
    /// under 5 % noise): the ratio, its interval and the verdict, 21 times; prints the median and the range.
    static func benchmark(samples n: Int, json: Bool) throws {
        guard n >= 1 && n <= 10_000_000 else {
            throw InputError(file: "command line", path: "--benchmark-decision", message: "expected 1 to 10000000 samples, got \(n)")
        }
        var state: UInt64 = 42
        func uniform() -> Double {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return (Double((z ^ (z >> 31)) >> 11) + 0.5) / Double(1 << 53)
        }
        func normal() -> Double { (-2 * log(uniform())).squareRoot() * cos(2 * Double.pi * uniform()) }
        let base = (0..<n).map { _ in 100 * (1 + 0.05 * normal()) }, cur = (0..<n).map { _ in 97 * (1 + 0.05 * normal()) }
        var times: [Double] = []
        var last: Decision?
        for _ in 0..<21 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let e = try RatioEstimate.compare(baseline: base, current: cur)
            last = Decision(estimate: e, direction: .higherIsBetter, threshold: 0.05)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        let s = Summary(times)!
        if json {
            try printJSON(["kind": "measured", "samples_per_set": String(n), "repetitions": "21",
                           "median_ms": String(s.median), "min_ms": String(s.min), "max_ms": String(s.max),
                           "verdict": last!.verdict.rawValue, "ratio": String(last!.estimate.ratio)])
        } else {
            print("Decision over \(n) + \(n) samples (measured, 21 repetitions): median \(Fmt.sig(s.median)) ms, "
                  + "min \(Fmt.sig(s.min)) ms, max \(Fmt.sig(s.max)) ms")
            print("  ratio \(String(format: "%.4f", last!.estimate.ratio)) [\(String(format: "%.4f", last!.estimate.lower)), "
                  + "\(String(format: "%.4f", last!.estimate.upper))], verdict \(last!.verdict.rawValue) (synthetic: a 3 % drop under 5 % noise)")
        }
    }
}

struct GateJSON: Encodable {
    struct Row: Encodable {
        var kind: String, name: String, params: [String: String], threads: Int, baselineThreads: Int
        var metric: String, unit: String, normalised: Bool, normalisation: String, direction: String
        var baselineMedian: Double, currentMedian: Double, baselineSamples: Int, currentSamples: Int
        var ratio: Double, ciLower: Double, ciUpper: Double, confidence: Double, threshold: Double, verdict: String
        var measured = true
    }
    var verdict: String
    var exitCode: Int32
    var baseline: [String: String]
    var run: [String: String]
    var threadPairs: [GateOutcome.ThreadPair]
    var counts: [String: Int]
    var rows: [Row]
    var notes: [String]

    init(outcome: GateOutcome, baseline b: Baseline, baselineSource: String, current: StoredRun) {
        verdict = outcome.exitCode == 0 ? "pass" : "regression"
        exitCode = outcome.exitCode
        baseline = ["name": b.name, "run_id": String(b.runID), "scenario": b.scenarioName, "git_revision": b.gitRevision,
                    "machine_fingerprint": b.machine?.fingerprint ?? "", "source": baselineSource]
        run = ["id": String(current.run.id ?? 0), "scenario": current.run.scenarioName, "git_revision": current.run.gitRevision,
               "machine_fingerprint": current.run.machineFingerprint]
        threadPairs = outcome.threadPairs
        counts = Dictionary(uniqueKeysWithValues: Verdict.allCases.map { ($0.rawValue.replacingOccurrences(of: " ", with: "_"), outcome.count($0)) })
        rows = outcome.rows.map { r in
            let d = r.decision
            return Row(kind: r.kind.rawValue, name: r.name, params: r.params, threads: r.threads, baselineThreads: r.baselineThreads,
                       metric: r.metric, unit: r.unit, normalised: r.normalisation != nil, normalisation: r.normalisation ?? "none",
                       direction: d.direction.rawValue,
                       baselineMedian: r.baselineMedian, currentMedian: r.currentMedian,
                       baselineSamples: d.estimate.baselineCount, currentSamples: d.estimate.currentCount,
                       ratio: d.estimate.ratio, ciLower: d.estimate.lower, ciUpper: d.estimate.upper,
                       confidence: d.estimate.confidence, threshold: d.threshold, verdict: d.verdict.rawValue)
        }
        notes = outcome.notes
    }
}
