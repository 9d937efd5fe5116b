// `headroom whatif`: a plan with changed inputs, from flags or `--set key.path=value`, answered fast
// (no report, no leave-one-out checks).
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomReport
import HeadroomRunner
import HeadroomStore

struct WhatifCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "whatif",
        abstract: "Re-plan with changed inputs: users, tokens, SLO, hardware, precision, or any plan key.",
        discussion: """
            Starts from the scenario's plan: section (default: the built-in default scenario, the same as \
            Scenarios/default.yaml) and replaces what the flags say; --set takes any key of the plan section as a \
            dotted path with a YAML value (--set demand.peak_to_mean=5 --set 'hardware=[h100-sxm, l40s]'). Every \
            figure is predicted. Candidates are ranked by autoscaled monthly cost, then p95 TTFT, then p95 TPOT, then \
            name; the first 8 are printed, every one with --all. Writes no report unless --reports is given (then REPORTS/NAME/plan/, as `plan` does). \
            The local profile is calibrated as `plan` does it; \(EndpointCalibrationOptions.discussion)
            """)

    @OptionGroup var scenario: ScenarioArgument
    @Option(name: .long, help: "Model id from the catalog (`headroom models`).") var model: String?
    @Option(name: .long, parsing: .unconditional, help: "Number of users.") var users: String?
    @Option(name: .customLong("requests-per-user"), parsing: .unconditional, help: "Requests per user per day.") var requestsPerUser: String?
    @Option(name: .customLong("prompt-tokens"), parsing: .unconditional, help: "Prompt tokens per request.") var promptTokens: String?
    @Option(name: .customLong("output-tokens"), parsing: .unconditional, help: "Output tokens per request.") var outputTokens: String?
    @Option(name: .customLong("ttft-p95"), parsing: .unconditional, help: ArgumentHelp("p95 time to first token, ms.", valueName: "ms")) var ttftP95: String?
    @Option(name: .customLong("tpot-p95"), parsing: .unconditional, help: ArgumentHelp("p95 time per output token, ms.", valueName: "ms")) var tpotP95: String?
    @Option(name: .long, parsing: .upToNextOption, help: ArgumentHelp("Hardware ids to consider (\(listHelp); `headroom hardware` lists them).", valueName: "id"))
    var hardware: [String] = []
    @Option(name: .long, parsing: .upToNextOption, help: ArgumentHelp("Precisions to consider (\(listHelp)): \(PrecisionNames.plannerList).", valueName: "p"))
    var precision: [String] = []
    @Option(name: .customLong("set"), help: ArgumentHelp("Any plan key: key.path=value (repeatable).", valueName: "key=value"))
    var sets: [String] = []
    @Option(name: .long, help: ArgumentHelp("A price sheet replacing the catalog's prices.yaml.", valueName: "file"))
    var prices: String?
    @Option(name: .customLong("run"), help: ArgumentHelp("Calibrate `local` on this stored run instead of the latest complete one.", valueName: "id"))
    var runID: Int64?
    @Option(name: .long, help: ArgumentHelp("Also write the plan's report to DIR/NAME/plan/.", valueName: "dir"))
    var reports: String?
    @OptionGroup var endpoints: EndpointCalibrationOptions
    @OptionGroup var serving: ServingModelOptions
    @OptionGroup var catalog: CatalogOptions
    @OptionGroup var store: StoreOptions
    @Flag(name: .long, help: "Print JSON on standard output instead of tables.") var json = false
    @Flag(name: .long, help: "List every ranked candidate (by cost, then p95 TTFT, then p95 TPOT, then name), not the first 8.") var all = false

    /// Ranked rows printed, and so the leading candidates the simulator refines.
    static let rows = 8

    func validate() throws {
        _ = try flatList(hardware, option: "--hardware")
        _ = try plannerPrecisions(precision)
    }

    func overrides() throws -> [PlanOverride] {
        var out: [PlanOverride] = []
        func add(_ path: String, _ value: String?) { if let value { out.append(PlanOverride(path: path.split(separator: ".").map(String.init), value: value)) } }
        add("model", model)
        add("demand.users", users)
        add("demand.requests_per_user_per_day", requestsPerUser)
        add("demand.prompt_tokens", promptTokens)
        add("demand.output_tokens", outputTokens)
        add("slo.ttft_p95_ms", ttftP95)
        add("slo.tpot_p95_ms", tpotP95)
        let hardware = try flatList(self.hardware, option: "--hardware")
        if !hardware.isEmpty { add("hardware", "[\(hardware.joined(separator: ", "))]") }
        let precisions = try plannerPrecisions(precision)
        if !precisions.isEmpty { add("precisions", "[\(precisions.map(\.rawValue).joined(separator: ", "))]") }
        return try out + sets.map(PlanOverride.init)
    }

    func run() throws {
        // HEADROOM_TIMING=1 prints how long each phase took (measured, on standard error).
        let timing = ProcessInfo.processInfo.environment["HEADROOM_TIMING"] != nil
        var last = DispatchTime.now()
        func lap(_ what: String) {
            guard timing else { return }
            let now = DispatchTime.now()
            warn(String(format: "%@: %.1f ms", what, Double(now.uptimeNanoseconds - last.uptimeNanoseconds) / 1e6))
            last = now
        }
        try reportingErrors {
            let file = scenario.path ?? Scenario.builtinDefaultLabel
            let text = try scenario.path.map { try FileChecks.readText($0, what: "scenario file") } ?? Catalog.builtinDefaultScenario
            let catalog = try self.catalog.load(forScenario: scenario.path)
            let settings = try PlanSettings.read(scenarioText: text, file: file, overrides: try overrides(), catalog: catalog)
            lap("catalog and scenario")
            let calibrationRun = settings.hardware.contains("local") || runID != nil
                ? try PlanJob.latestLocalRun(storePath: store.path, runID: runID) : nil
            lap("store")
            let fitted = try endpoints.calibrations(storePath: store.path, hardware: settings.hardware, catalog: catalog)
            lap("endpoint calibration")
            var job = try PlanJob(settings: settings, catalog: catalog, pricesFile: prices, curves: reports != nil)
            job.servingModel = serving.servingModel.model
            job.refinedCandidates = Self.rows
            let plan = try job.plan(calibrationRun: calibrationRun, leaveOneOut: false, endpoints: fitted)
            lap("calibration and plan")
            var written: [String] = []
            if let reports {
                let name = try Scenario.name(inText: text, file: file)
                let folder = ((reports as NSString).appendingPathComponent(name) as NSString).appendingPathComponent("plan")
                written = try ReportWriter.writePlan(plan, scenario: name, folder: folder)
            }
            if json {
                try printJSON(plan)
            } else {
                var out = PlanTables.preamble(plan) + "\n" + PlanTables.recommendation(plan) + "\n\nRanked (predicted; \(PlanTables.rankingRule)):\n"
                out += PlanTables.rankedText(plan, limit: all ? nil : Self.rows) + "\n\nDo not fit or miss the SLO (predicted):\n" + PlanTables.notFitting(plan).rendered
                if let f = PlanTables.finetune(plan) {
                    out += "\n\nFine-tuning plan (predicted):\n" + f.rendered
                    if let r = PlanTables.finetuneRecommendation(plan) { out += "\n" + r }
                }
                if let index = written.first(where: { $0.hasSuffix("index.html") }) { out += "\nReport: \(index)" }
                print(out)
            }
            lap("output")
        }
    }
}
