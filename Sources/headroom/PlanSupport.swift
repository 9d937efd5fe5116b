// Shared by `run`, `plan` and `whatif`: calibrate the local profile from a stored run, build the plan's
// input from the scenario's plan section, and plan. The planner itself lives in HeadroomCore.
import Foundation
import HeadroomCore
import HeadroomStore

enum PlanSupport {
    /// Plans `settings`; `calibrationRun` (when there is one) provides this machine's probe figures and
    /// the measurements its efficiencies are fitted to. `leaveOneOut` also checks each measurement
    /// against a fit made without it (slower: off for what-if).
    static func plan(_ settings: PlanSettings, catalog: Catalog, pricesFile: String?, calibrationRun: StoredRun?,
                     leaveOneOut: Bool, curves: Bool) throws -> PlanResult {
        let prices = try pricesFile.map { try PriceSheet.load($0, hardware: catalog.hardware) } ?? catalog.prices
        guard let defaults = catalog.defaultEfficiency else {
            throw InputError(file: (catalog.directory as NSString).appendingPathComponent("hardware.yaml"), path: "",
                             message: "cannot read the file (missing): the planner needs the hardware catalog")
        }
        var local: HardwareProfile?
        var calibration: CalibrationResult?
        if let run = calibrationRun, let machine = run.machine {
            let probe = ProbeFigures(cases: run.cases)
            let points = Calibration.points(cases: run.cases, probe: probe, models: catalog.models)
            let cal = Calibration.calibrate(points, fallback: defaults.efficiency,
                                            fallbackLabel: "local uses the default efficiencies", leaveOneOut: leaveOneOut)
            calibration = cal
            local = HardwareProfile.local(probe: probe, machine: machine, efficiency: cal.efficiency,
                                          calibration: "\(cal.label) (run \(run.run.id ?? 0))")
            local?.trainingMFU = defaults.trainingMFU
        }
        let (input, skipped) = try settings.input(catalog: catalog, prices: prices, local: local, calibration: calibration)
        var result = Planner().plan(input, curves: curves)
        result.skipped = skipped
        result.catalogFiles = catalog.files
        if calibrationRun != nil && local == nil && settings.hardware.contains("local") {
            result.skipped["local"] = "the run used for calibration has no probe figures"
        }
        return result
    }

    /// The latest complete run of this kind of machine in the store at `path`, without creating a store
    /// where there is none.
    static func latestLocalRun(storePath: String, runID: Int64? = nil) throws -> StoredRun? {
        guard storePath == ":memory:" || FileManager.default.fileExists(atPath: storePath) else { return nil }
        let store = try Store(path: storePath)
        if let runID { return try store.load(runID: runID) }
        return try store.latestCompleteRun(fingerprint: MachineInfo.current().fingerprint)
    }
}
