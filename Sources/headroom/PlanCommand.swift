// `headroom plan SCENARIO`: the sizing recommendation for the scenario's plan section, without measuring.
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomReport
import HeadroomRunner
import HeadroomStore

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Size the hardware for a scenario's plan: section (predicted, without measuring).",
        discussion: """
            Evaluates every hardware × precision × tensor-parallel configuration the plan lists: memory, latency \
            against load, the request rate each replica sustains within the SLO, the replicas for the peak, and \
            the monthly cost. Prints the recommendation (the cheapest configuration that meets the SLO) and why it \
            won, the runners-up — ranked by autoscaled monthly cost, then p95 TTFT, then p95 TPOT, then name; the \
            first 12, or every one with --all — what does not fit and why, and the Pareto set of cost against \
            latency. A priced instance of N devices serving at tensor parallel tp runs N/tp replicas; fine-tuning \
            and training use every device billed, data-parallel, paying for gradient all-reduce and ZeRO-3 gathers \
            over the interconnect (or the network between nodes); plans that need more devices than the hardware \
            holds together are "not applicable", with the reason. With finetune.deadline_hours, the fine-tuning \
            recommendation is the cheapest plan of the requested method that finishes by then. The local \
            profile is calibrated on the latest complete run of this machine in the store (or --run); \
            \(EndpointCalibrationOptions.discussion) Writes REPORTS/NAME/plan/ unless --no-report.
            """)

    @OptionGroup var scenario: ScenarioArgument

    @OptionGroup var catalog: CatalogOptions

    @Option(name: .long, help: ArgumentHelp("A price sheet replacing the catalog's prices.yaml.", valueName: "file"))
    var prices: String?

    @Option(name: .customLong("run"), help: ArgumentHelp("Calibrate on this stored run instead of the latest complete one.", valueName: "id"))
    var runID: Int64?

    @Option(name: .long, help: ArgumentHelp("Folder that receives NAME/plan/.", valueName: "dir"))
    var reports = "Reports"

    @Flag(name: .customLong("no-report"), help: "Print only.")
    var noReport = false

    @OptionGroup var endpoints: EndpointCalibrationOptions
    @OptionGroup var serving: ServingModelOptions

    @OptionGroup var store: StoreOptions

    @Flag(name: .long, help: "Print JSON on standard output instead of tables.")
    var json = false

    @Flag(name: .long, help: "List every ranked candidate (by cost, then p95 TTFT, then p95 TPOT, then name), not the first 12.")
    var all = false

    func run() throws {
        try reportingErrors {
            let loaded = try catalog.scenario(scenario.path)
            guard let settings = loaded.plan else {
                throw InputError(file: loaded.file, path: "plan", message: "missing; `headroom plan` needs a plan: section")
            }
            let catalog = try self.catalog.load(for: loaded)
            let calibrationRun = try PlanJob.latestLocalRun(storePath: store.path, runID: runID)
            let fitted = try endpoints.calibrations(storePath: store.path, hardware: settings.hardware, catalog: catalog)
            var job = try PlanJob(settings: settings, catalog: catalog, pricesFile: prices, curves: !noReport)
            job.servingModel = serving.servingModel.model
            let plan = try job.plan(calibrationRun: calibrationRun, leaveOneOut: true, endpoints: fitted)
            var written: [String] = []
            if !noReport {
                let folder = ((reports as NSString).appendingPathComponent(loaded.name) as NSString).appendingPathComponent("plan")
                written = try ReportWriter.writePlan(plan, scenario: loaded.name, folder: folder)
            }
            if json {
                try printJSON(plan)
            } else {
                print(PlanTables.text(plan, limit: all ? nil : 12))
                if let index = written.first(where: { $0.hasSuffix("index.html") }) { print("Report: \(index)") }
            }
        }
    }
}

/// How `plan` and `whatif` calibrate catalog hardware from endpoints measured by `headroom load`.
struct EndpointCalibrationOptions: ParsableArguments {
    static let discussion = """
        each catalog hardware that an endpoint measured by `headroom load` names (its hardware, devices, precision \
        and model_shape facts) is planned with the efficiencies fitted to the latest complete run of that endpoint \
        (or --endpoint-run), and says so; a run that cannot be fitted leaves the catalog's efficiencies and a note \
        saying why (--no-endpoint-calibration: catalog efficiencies only).
        """

    @Option(name: .customLong("endpoint-run"),
            help: ArgumentHelp("Calibrate the hardware its endpoints name on this stored load run instead of the latest complete one.", valueName: "id"))
    var runID: Int64?

    @Flag(name: .customLong("no-endpoint-calibration"), help: "Plan catalog hardware with the catalog's efficiencies, never with an endpoint's fit.")
    var off = false

    func validate() throws {
        if off && runID != nil { throw ValidationError("--endpoint-run and --no-endpoint-calibration exclude each other") }
    }

    /// The fits for `hardware` from the store at `storePath` (none when turned off).
    func calibrations(storePath: String, hardware: [String], catalog: Catalog) throws -> EndpointCalibrations {
        off ? .none : try PlanJob.endpointCalibrations(storePath: storePath, hardware: hardware, runID: runID, catalog: catalog)
    }
}
