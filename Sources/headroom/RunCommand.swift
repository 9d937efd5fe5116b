import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomReport
import HeadroomRunner
import HeadroomStore

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Probe, measure, store and report one or more scenarios.",
        discussion: """
            For each scenario: measures this machine's limits (the probe), runs the scenario's measurements \
            with warm-up and repetitions, stores every raw sample in the results store, and writes \
            Reports/NAME/ (index.md, index.html and PNG plots). Every scenario is validated before anything \
            runs: a bad file stops with exit code 2 and nothing is written. Ctrl-C stops between repetitions \
            and records the run as interrupted.
            """)

    @Argument(help: ArgumentHelp("Scenario files (default: the built-in default scenario, the same as Scenarios/default.yaml).",
                                 valueName: "scenario"))
    var scenarios: [String] = []

    @Option(name: .long, parsing: .upToNextOption,
            help: ArgumentHelp("Thread counts to measure, overriding each scenario's measure.threads (\(listHelp)).", valueName: "n"))
    var threads: [String] = []

    @OptionGroup var catalog: CatalogOptions

    @Option(name: .long, help: ArgumentHelp("Folder that receives one report folder per scenario.", valueName: "dir"))
    var reports = "Reports"

    @Flag(name: .customLong("no-report"), help: "Measure and store only.")
    var noReport = false

    @OptionGroup var store: StoreOptions

    @Flag(name: .long, help: "Print JSON on standard output instead of tables.")
    var json = false

    @Option(name: .long, help: ArgumentHelp(
        "Measure shard I of N of the scenario's cases (I from 0 to N-1), or env/N: I from JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID (Slurm array).",
        discussion: "Every shard probes its own machine; the other cases are split by expected cost, each exactly once across the N shards "
            + "(docs/sweeps.md). `headroom report --sweep ID` merges the shards once all have completed.",
        valueName: "I/N|env/N"))
    var shard: String?

    @Option(name: .long, help: ArgumentHelp(
        "The sweep this shard belongs to (letters, digits, '.', '_', '-'; default: NAME-Nx-HASH from the scenario's name, N and its text's hash, the same on every shard).",
        valueName: "id"))
    var sweep: String?

    func validate() throws {
        _ = try threadCounts(threads)
        if let shard {
            do { _ = try ShardOption.parse(shard) } catch let e as InputError { throw ValidationError(e.description) }
            if scenarios.count > 1 { throw ValidationError("--shard: expected one scenario (a sweep shards one scenario), got \(scenarios.count)") }
        }
        if let sweep {
            guard shard != nil else { throw ValidationError("--sweep: names the sweep of a shard; give --shard I/N too") }
            guard SweepID.isValid(sweep) else {
                throw ValidationError("--sweep: expected letters, digits, '.', '_' or '-' (at most 128, starting with a letter or digit), got \"\(sweep)\"")
            }
        }
    }

    /// The shard this run measures, its index read from the scheduler's variable for env/N; nil without --shard.
    /// `--threads` changes the cases, so it changes the default sweep id too (hashed with the scenario's text).
    func resolvedShard(for scenario: Scenario, threads: [Int]) throws -> SweepShard? {
        guard let shard else { return nil }
        let option = try ShardOption.parse(shard)
        let index = try option.index()
        var keyed = scenario
        if !threads.isEmpty { keyed.hash = fnv1a64Hex(scenario.text + "\n--threads " + threads.map(String.init).joined(separator: ",")) }
        return SweepShard(sweep: sweep ?? SweepID.default(for: keyed, count: option.count), index: index, count: option.count)
    }

    func run() throws {
        try reportingErrors {
            // Every scenario is loaded (and so validated) before anything is measured.
            var loaded = try scenarios.isEmpty ? [catalog.scenario(nil)] : scenarios.map { try catalog.scenario($0) }
            let threads = try threadCounts(self.threads)
            if !threads.isEmpty { for i in loaded.indices { loaded[i].measure?.threads = threads } }
            // The shard's index from the scheduler's variable, checked before the store opens like the rest.
            let shards = try loaded.map { try resolvedShard(for: $0, threads: threads) }
            // Plan input is checked with the scenarios, before the store opens: bad input exits 2 with nothing written.
            // A shard measures part of the scenario: planning from it would calibrate on part of the cases.
            let jobs = try loaded.map { s in
                shard != nil ? nil : try s.plan.map { try PlanJob(settings: $0, catalog: catalog.load(for: s),
                                                                  curves: !noReport) }
            }
            if shard != nil, loaded.contains(where: { $0.plan != nil }) {
                warn("note: a shard does not plan (it measured part of the scenario); the plan: section is left out")
            }
            // The endpoints' API keys, read now: an unset variable is bad input, before the store opens.
            let apiKeys = try loaded.map { try ScenarioWorkloads.apiKeys(for: $0) }
            let db = try store.open()
            Interrupt.install()
            let machine = MachineInfo.current()
            let runner = Runner(store: db, progress: Progress(), version: Headroom.version)
            var results: [RunJSON] = []
            for (((scenario, job), keys), shard) in zip(zip(zip(loaded, jobs), apiKeys), shards) {
                let outcome: RunOutcome
                let line = LoadProgressLine()
                let load = ScenarioWorkloads.LoadContext(apiKeys: keys, progress: line.handler)
                let workloads = shard.map { ScenarioWorkloads.workloads(for: scenario, machine: machine, load: load, shard: $0.index, of: $0.count) }
                    ?? ScenarioWorkloads.workloads(for: scenario, machine: machine, load: load)
                do {
                    outcome = try ServeCommand.runBlocking {
                        try await runner.run(scenario: scenario, workloads: workloads, machine: machine, plan: job, shard: shard)
                    }
                } catch is RunInterrupted {
                    line.clear()
                    throw ExitCode(130)
                }
                line.clear()
                let stored = try db.load(runID: outcome.runID)
                // The plan was computed once, from this run's measurements, and stored beside it; the report draws it.
                var builders = ReportWriter.standardBuilders
                let computedPlan = outcome.plan
                if let plan = computedPlan {
                    builders.append(PlanningSection(plan: plan))
                }
                var reportPath: String?
                if !noReport {
                    // A shard's own report goes beside the others' (NAME-shard-I-of-N), not over the merged one's.
                    let folder = (reports as NSString).appendingPathComponent(scenario.name + (shard.map { "-shard-\($0.index)-of-\($0.count)" } ?? ""))
                    try ReportWriter(builders: builders).write(run: stored, folder: folder)
                    reportPath = (folder as NSString).appendingPathComponent("index.html")
                }
                if json {
                    var result = RunJSON(stored, report: reportPath, db: store.shown)
                    result.plan = computedPlan
                    results.append(result)
                } else {
                    print("Scenario \(scenario.name): run \(outcome.runID) complete, \(try db.sampleCount(runID: outcome.runID)) samples in \(store.shown)")
                    if let shard { print("Shard \(shard.index) of \(shard.count) of sweep \(shard.sweep): \(stored.cases.filter { $0.kind != .probe }.count) case(s) besides the probe") }
                    if scenario.measure != nil { print(Tables.runSummary(stored)) }
                    if let load = LoadNotes.tables(stored) { print("\n" + load) }
                    if let finetune = Tables.finetune(stored) { print("\n" + finetune) }
                    if let computedPlan { print("\n" + PlanTables.recommendation(computedPlan)) }
                    if let reportPath { print("Report: \(reportPath)") }
                }
            }
            if json { try printJSON(results) }
        }
    }
}

struct RunJSON: Encodable {
    var runId: Int64
    var scenario: String
    var scenarioHash: String
    var status: String
    var gitRevision: String
    var machineFingerprint: String
    var startedAt: Date
    var endedAt: Date?
    var store: String
    var report: String?
    var probe: ProbeFiguresJSON
    var cases: [CaseJSON]
    /// The scenario's plan (predicted), when it has a plan: section.
    var plan: PlanResult?
    /// The sweep, shard index and shard count of a `--shard` run.
    var sweep: String?
    var shardIndex: Int?
    var shardCount: Int?

    init(_ s: StoredRun, report: String?, db: String) {
        runId = s.run.id ?? 0; scenario = s.run.scenarioName; scenarioHash = s.run.scenarioHash
        sweep = s.run.sweep; shardIndex = s.run.shardIndex; shardCount = s.run.shardCount
        status = s.run.status.rawValue; gitRevision = s.run.gitRevision; machineFingerprint = s.run.machineFingerprint
        startedAt = s.run.startedAt; endedAt = s.run.endedAt; store = db; self.report = report
        probe = ProbeFiguresJSON(ProbeFigures(cases: s.cases))
        cases = s.cases.map(CaseJSON.init)
    }
}
