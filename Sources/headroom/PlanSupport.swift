// Shared by `run`, `plan` and `whatif`: calibrate the local profile from a stored run, build the plan's
// input from the scenario's plan section, and plan. The planner itself lives in HeadroomCore.
import Foundation
import HeadroomCore
import HeadroomRunner
import HeadroomStore

enum PlanSupport {
    /// Plans `settings` (see `PlanJob`, which `headroom run` uses too).
    static func plan(_ settings: PlanSettings, catalog: Catalog, pricesFile: String?, calibrationRun: StoredRun?,
                     leaveOneOut: Bool, curves: Bool) throws -> PlanResult {
        try PlanJob(settings: settings, catalog: catalog, pricesFile: pricesFile, curves: curves)
            .plan(calibrationRun: calibrationRun, leaveOneOut: leaveOneOut)
    }

    /// The latest complete run of this kind of machine in the store at `path`, without creating a store
    /// where there is none.
    static func latestLocalRun(storePath: String, runID: Int64? = nil) throws -> StoredRun? {
        guard storePath == ":memory:" || FileManager.default.fileExists(atPath: storePath) else { return nil }
        let store = try Store(path: storePath, mode: .readOnly)
        if let runID { return try store.load(runID: runID) }
        return try store.latestCompleteRun(fingerprint: MachineInfo.current().fingerprint)
    }
}
