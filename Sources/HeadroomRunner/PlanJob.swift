// A scenario's `plan:` section made ready to plan: the price sheet loaded, the hardware catalog and
// every hardware id checked. `headroom run` prepares it before it measures anything, so bad plan input
// stops with exit 2 and nothing written; after measuring it plans from the run's own calibration before
// the run is marked complete (see `Runner.run`). `plan` and `whatif` use the same path.
import Foundation
import HeadroomCore
import HeadroomStore

public struct PlanJob: Sendable {
    /// Checked by `init`; a caller that changes it afterwards gets its errors from `plan` instead.
    public var settings: PlanSettings
    public let catalog: Catalog
    /// The sheet the plan prices with: `--prices`, else the catalog's prices.yaml (nil: no prices).
    public let prices: PriceSheet?
    public let defaults: DefaultEfficiency
    /// Whether the plan computes the report's curves (cost against users, latency against load, batch).
    public var curves: Bool
    /// How latency responds to load (`--serving-model`).
    public var servingModel: any ServingModel = Planner.defaultServingModel
    /// Leading candidates the serving model refines (`Planner.refinedCandidates`): the rows a table shows.
    public var refinedCandidates = 12

    /// Loads what the plan needs and checks it; throws `InputError` naming the file and key.
    public init(settings: PlanSettings, catalog: Catalog, pricesFile: String? = nil, curves: Bool = true) throws {
        guard let defaults = catalog.defaultEfficiency else {
            throw InputError(file: (catalog.directory as NSString).appendingPathComponent("hardware.yaml"), path: "",
                             message: "cannot read the file (missing): the planner needs the hardware catalog")
        }
        self.settings = settings; self.catalog = catalog; self.defaults = defaults; self.curves = curves
        prices = try pricesFile.map { try PriceSheet.load($0, hardware: catalog.hardware) } ?? catalog.prices
        // Every hardware id resolves (a scenario read against another catalog could name one this one lacks).
        _ = try settings.input(catalog: catalog, prices: prices, local: nil, calibration: nil)
    }

    /// What `plan` plans: the planner's input with `local` calibrated on `calibrationRun` and catalog hardware
    /// with `endpoints`' fits (`headroom simulate` takes one configuration of it).
    public func input(calibrationRun: StoredRun?, endpoints: EndpointCalibrations = .none) throws -> PlanInput {
        try prepared(calibrationRun: calibrationRun, leaveOneOut: false, endpoints: endpoints).input
    }

    func prepared(calibrationRun: StoredRun?, leaveOneOut: Bool, endpoints: EndpointCalibrations)
        throws -> (input: PlanInput, skipped: [String: String], used: [EndpointCalibration], local: HardwareProfile?, regimes: RegimeCalibration?) {
        var local: HardwareProfile?
        var calibration: CalibrationResult?
        var regimeCalibration: RegimeCalibration?
        if let run = calibrationRun, let machine = run.machine {
            let probe = ProbeFigures(cases: run.cases)
            let points = Calibration.points(cases: run.cases, probe: probe, models: catalog.models)
            let cal = Calibration.calibrate(points, fallback: defaults.efficiency,
                                            fallbackLabel: "local uses the default efficiencies", leaveOneOut: leaveOneOut)
            calibration = cal
            // Steps of a format the run measured are priced per regime; the efficiencies above price the rest.
            let regimes = RegimeCalibration(points: RegimeCalibration.points(cases: run.cases, probe: probe, models: catalog.models),
                                            runID: run.run.id)
            regimeCalibration = regimes
            let label = regimes.fits.isEmpty ? "\(cal.label) (run \(run.run.id ?? 0))"
                : "\(regimes.label) (formats: \(Set(regimes.fits.filter { [.prefill, .decodeOne, .decodeBatch].contains($0.key.kernel) }.map(\.key.format)).sorted().joined(separator: ", "))); "
                    + "other formats: \(cal.label)"
            local = HardwareProfile.local(probe: probe, machine: machine, efficiency: cal.efficiency, calibration: label)
            local?.trainingMFU = defaults.trainingMFU
            local?.regimeFits = regimes.fits.isEmpty ? nil : regimes.fits
        }
        var (input, skipped) = try settings.input(catalog: catalog, prices: prices, local: local, calibration: calibration)
        input.hardware = applyingPublishedFits(input.hardware, precisions: input.precisions)
        let used = endpoints.fitted.filter { e in input.hardware.contains { $0.id == e.hardware } }
        input.hardware = input.hardware.map { h in used.first { $0.hardware == h.id }.map(h.applying) ?? h }
        return (input, skipped, used, local, regimeCalibration)
    }

    /// Plans; `calibrationRun` (when there is one) provides this machine's probe figures and the
    /// measurements its efficiencies are fitted to. `leaveOneOut` also checks each measurement against a
    /// fit made without it (slower: off for what-if). Each catalog hardware `endpoints` fitted is planned
    /// with the fitted efficiencies; its notes (fits that failed) go to the result.
    public func plan(calibrationRun: StoredRun?, leaveOneOut: Bool, endpoints: EndpointCalibrations = .none) throws -> PlanResult {
        let (input, skipped, used, local, regimes) = try prepared(calibrationRun: calibrationRun, leaveOneOut: leaveOneOut, endpoints: endpoints)
        var planner = Planner(servingModel: servingModel)
        planner.refinedCandidates = refinedCandidates
        var result = planner.plan(input, curves: curves)
        result.endpointCalibrations = used.isEmpty ? nil : used
        result.regimeCalibration = regimes
        result.calibrationNotes = endpoints.notes.isEmpty ? nil : endpoints.notes
        result.publishedCalibrations = publishedFits(in: input)
        result.skipped = skipped
        result.catalogFiles = catalog.files
        if calibrationRun != nil && local == nil && settings.hardware.contains("local") {
            result.skipped["local"] = "the run used for calibration has no probe figures"
        }
        return result
    }
}

extension PlanJob {
    /// The run `plan`, `whatif` and `catalog hardware` calibrate from: run `runID`, else the latest complete
    /// run of this kind of machine, in the store at `path`; nil when there is no store there (none is created).
    public static func latestLocalRun(storePath: String, runID: Int64? = nil,
                                      fingerprint: @autoclosure () -> String = MachineInfo.current().fingerprint) throws -> StoredRun? {
        guard let store = try openExistingStore(storePath) else { return nil }
        if let runID { return try store.load(runID: runID) }
        return try store.latestCompleteRun(fingerprint: fingerprint())
    }
}

/// What endpoint calibration found for the hardware a plan considers: the fits, and why a hardware that an
/// endpoint's load run names could not be fitted (that hardware keeps its catalog efficiencies).
public struct EndpointCalibrations: Sendable {
    public var fitted: [EndpointCalibration]
    public var notes: [String]
    public init(fitted: [EndpointCalibration] = [], notes: [String] = []) { self.fitted = fitted; self.notes = notes }
    /// Nothing fitted, nothing to say (no store, or turned off).
    public static let none = EndpointCalibrations()
}

extension PlanJob {
    /// Fits every catalog hardware among `hardware` that the latest complete run (or run `runID`) of an
    /// endpoint naming it measured, in the store at `path`, reading only the load cases' facts and the
    /// samples the fit uses. A run whose endpoints name no hardware changes nothing; one that names it but
    /// cannot be fitted (missing facts, too few points) leaves a note. No store there: nothing (none is created).
    public static func endpointCalibrations(storePath: String, hardware: [String], runID: Int64? = nil,
                                            catalog: Catalog) throws -> EndpointCalibrations {
        let ids = hardware.filter { id in catalog.hardware.contains { $0.id == id && $0.kind != .local } }
        guard !ids.isEmpty, let store = try openExistingStore(storePath) else { return .none }
        return fit(try store.endpointLoadCases(hardware: ids, runID: runID), catalog: catalog)
    }

    /// Each hardware's fit from the first of its endpoints (by name) that fits; when none does, a note with
    /// every endpoint's reason.
    public static func fit(_ found: [EndpointLoadCases], catalog: Catalog) -> EndpointCalibrations {
        var out = EndpointCalibrations()
        for f in found {
            var reasons: [String] = []
            for endpoint in f.endpoints {
                do {
                    out.fitted.append(try EndpointCalibration.fit(cases: f.cases, endpoint: endpoint, runID: f.runID, catalog: catalog))
                    reasons = []
                    break
                } catch {
                    reasons.append("\(error)")
                }
            }
            if !reasons.isEmpty {
                out.notes.append("\(f.hardware) keeps its catalog efficiencies: run \(f.runID) names it, but \(reasons.joined(separator: "; "))")
            }
        }
        return out
    }
}

/// A run whose measurements are stored but whose plan failed: the run is recorded as failed (its note
/// says why) and the command exits 1 — a failure while running, not bad input, which `PlanJob` refused
/// before measuring.
public struct RunPlanningFailed: Error, CustomStringConvertible {
    public var runID: Int64
    public var scenario: String
    public var reason: String

    public var description: String {
        "scenario \(scenario): run \(runID) was measured and stored, but planning its plan: section failed: \(reason); "
            + "the run is recorded as failed"
    }
}
