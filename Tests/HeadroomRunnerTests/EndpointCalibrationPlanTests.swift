// Endpoint calibration wired into `plan` and `whatif`: a store holding a synthetic `headroom load` sweep,
// made from known efficiencies with the planner's own forward time, calibrates the hardware its endpoint
// names; a run without hardware facts changes nothing; a run that cannot be fitted leaves a note.
import Foundation
import XCTest
import HeadroomCore
import HeadroomReport
import HeadroomStore
@testable import HeadroomRunner

/// Synthetic load runs as `headroom load` stores them (the load contract), on catalog hardware.
enum SyntheticLoad {
    static let truth = Efficiency(compute: 0.62, bandwidth: 0.71)
    static let prompt = 1024, output = 256
    static let facts = ["hardware": "h100-sxm", "model_shape": "llama-3.1-8b", "precision": "bf16", "devices": "1"]
    /// A sweep's points and their mean requests in flight.
    static let sweep: [(point: String, inFlight: Double)] = [("synchronous", 1), ("rate:2", 2.2), ("rate:4", 4.6), ("rate:8", 8.4),
                                                             ("rate:16", 16.3), ("rate:32", 31.7), ("throughput", 63.8)]

    /// The time the planner predicts on h100-sxm at the true efficiencies, ms.
    static func ms(_ catalog: Catalog, sequences: Int, newTokens: Int, pastTokens: Int) throws -> Double {
        var h = try catalog.hardware("h100-sxm")
        h.efficiency = truth
        let model = try XCTUnwrap(catalog.models["llama-3.1-8b"])
        return PerformanceModel.forwardTime(model, .bf16, sequences: sequences, newTokens: newTokens, pastTokens: pastTokens, tp: 1,
                                            roofline: Roofline(h), interconnect: h.interconnect) * 1000
    }

    /// The load points of one endpoint: `requests` requests a point, TTFT and TPOT from the truth (±1 %
    /// spread), and `gaps` inter-token gaps per request when `itl` (which calibration never reads; a real
    /// sweep has output − 1 of them).
    static func cases(_ catalog: Catalog, endpoint: String = "prod", facts: [String: String] = facts,
                      requests: Int = 50, itl: Bool = true, gaps: Int = 10, points: Int = sweep.count) throws -> [MeasuredCase] {
        let prefill = try ms(catalog, sequences: 1, newTokens: prompt, pastTokens: 0)
        return try sweep.prefix(points).map { point, inFlight in
            let tpot = try ms(catalog, sequences: Int(inFlight.rounded()), newTokens: 1, pastTokens: prompt + output / 2)
            let ttft = point == "synchronous" ? prefill : prefill * 3
            var f = facts
            f["mean_in_flight"] = String(inFlight)
            f["url"] = "http://127.0.0.1:8000"
            var samples: [MeasuredCase.Sample] = []
            for r in 0..<requests {
                let spread = 1 + 0.01 * Double(r % 3 - 1)
                samples.append(.init(metric: "status", unit: "code", repetition: r, value: 200))
                samples.append(.init(metric: "ok", unit: "bool", repetition: r, value: 1))
                samples.append(.init(metric: "ttft_ms", unit: "ms", repetition: r, value: ttft * spread))
                samples.append(.init(metric: "tpot_ms", unit: "ms", repetition: r, value: tpot * spread))
                samples.append(.init(metric: "e2e_ms", unit: "ms", repetition: r, value: ttft + tpot * Double(output - 1)))
                samples.append(.init(metric: "output_tokens", unit: "tokens", repetition: r, value: Double(output)))
            }
            if itl {
                for g in 0..<(requests * gaps) {
                    samples.append(.init(metric: "itl_ms", unit: "ms", repetition: g, value: tpot))
                    samples.append(.init(metric: "itl_position", unit: "token", repetition: g, value: Double(g % gaps + 1)))
                    samples.append(.init(metric: "itl_request", unit: "index", repetition: g, value: Double(g / gaps)))
                }
            }
            let params = ["endpoint": endpoint, "api": "completions", "model": "meta-llama/Llama-3.1-8B-Instruct", "profile": "sweep",
                          "point": point, "prompt_tokens": String(prompt), "output_tokens": String(output)]
            return MeasuredCase(kind: .load, name: endpoint, threads: 0, params: params, facts: f, samples: samples)
        }
    }

    /// Stores `cases` as one run ending `status`; returns its id.
    @discardableResult
    static func store(_ cases: [MeasuredCase], in store: Store, status: RunStatus = .complete) throws -> Int64 {
        let id = try store.beginRun(RunRecord(scenarioName: "load", scenarioFile: "-", scenarioHash: "h", scenarioText: "",
                                              gitRevision: "x", machineFingerprint: "fp", machineJson: "{}", headroomVersion: "test",
                                              pid: Int(getpid()), startedAt: Date(timeIntervalSince1970: 1_000_000)))
        for c in cases { try store.record(runID: id, c) }
        try store.finish(runID: id, status: status)
        return id
    }
}

final class EndpointCalibrationPlanTests: XCTestCase {
    func catalog() throws -> Catalog { try Catalog.load(directory: HeadroomCLI.repo.appendingPathComponent("Scenarios/catalog").path) }

    func job(_ catalog: Catalog) throws -> PlanJob {
        let settings = try PlanSettings.read(scenarioText: """
            plan:
              model: llama-3.1-8b
              demand: { users: 2000, requests_per_user_per_day: 40, prompt_tokens: \(SyntheticLoad.prompt), output_tokens: \(SyntheticLoad.output) }
              slo: { ttft_p95_ms: 1000, tpot_p95_ms: 60 }
              hardware: [h100-sxm, l40s]
              precisions: [bf16]
              tensor_parallel: [1]
            """, file: "p.yaml", overrides: [], catalog: catalog)
        var job = try PlanJob(settings: settings, catalog: catalog, curves: false)
        job.servingModel = QueueingServingModel()
        return job
    }

    func plan(_ store: Store, _ catalog: Catalog, runID: Int64? = nil) throws -> (PlanResult, EndpointCalibrations) {
        let found = try store.endpointLoadCases(hardware: ["h100-sxm", "l40s"], runID: runID)
        let fitted = PlanJob.fit(found, catalog: catalog)
        return (try job(catalog).plan(calibrationRun: nil, leaveOneOut: false, endpoints: fitted), fitted)
    }

    func testTheHardwareAnEndpointNamesIsPlannedWithItsFit() throws {
        let catalog = try catalog()
        let store = try SQLiteStore(path: ":memory:")
        try SyntheticLoad.store(try SyntheticLoad.cases(catalog, facts: [:], itl: false), in: store)  // run 1: names no hardware
        let run = try SyntheticLoad.store(try SyntheticLoad.cases(catalog), in: store)               // run 2: the sweep
        try SyntheticLoad.store(try SyntheticLoad.cases(catalog, points: 1), in: store, status: .failed)  // run 3: never used
        let (p, fitted) = try plan(store, catalog)
        XCTAssertEqual(fitted.notes, [])
        let e = try XCTUnwrap(p.endpointCalibrations?.first)
        XCTAssertEqual(p.endpointCalibrations?.count, 1)
        XCTAssertEqual(e.hardware, "h100-sxm")
        XCTAssertEqual(e.runID, run)
        XCTAssertEqual(e.points.count, 8, "the synchronous TTFT and seven TPOTs")
        XCTAssertEqual(e.efficiency.compute, SyntheticLoad.truth.compute, accuracy: SyntheticLoad.truth.compute * 0.01)
        XCTAssertEqual(e.efficiency.bandwidth, SyntheticLoad.truth.bandwidth, accuracy: SyntheticLoad.truth.bandwidth * 0.01)
        XCTAssertTrue(e.label.hasPrefix("calibrated from endpoint prod, run \(run) (8 points, median error "), e.label)
        XCTAssertEqual(e.result.label, e.label)

        let h100 = p.candidates.filter { $0.hardware == "h100-sxm" }, l40s = p.candidates.filter { $0.hardware == "l40s" }
        XCTAssertFalse(h100.isEmpty)
        for c in h100 { XCTAssertEqual(c.calibration, e.label) }
        for c in l40s { XCTAssertEqual(c.calibration, try catalog.hardware("l40s").calibration, "other hardware keeps the catalog's") }
        // The plan predicts what the endpoint measured: one decode step at batch 1 in the middle of a request.
        let measured = try SyntheticLoad.ms(catalog, sequences: 1, newTokens: 1, pastTokens: SyntheticLoad.prompt + SyntheticLoad.output / 2)
        XCTAssertEqual(try XCTUnwrap(h100.first?.predictedTpotBatch1Ms), measured, accuracy: measured * 0.01)

        let text = PlanTables.text(p)
        XCTAssertTrue(text.contains("default_efficiency), uncalibrated except h100-sxm.\n"), text)
        XCTAssertTrue(text.contains("Calibration of h100-sxm (every h100-sxm figure below): calibrated from endpoint prod, run \(run) ("), text)
        XCTAssertTrue(text.contains("Calibration of h100-sxm from endpoint prod, run \(run): each measurement against a fit made without it:"), text)
    }

    func testARunWithoutHardwareFactsChangesNothing() throws {
        let catalog = try catalog()
        let store = try SQLiteStore(path: ":memory:")
        try SyntheticLoad.store(try SyntheticLoad.cases(catalog, facts: [:], itl: false), in: store)
        let (p, fitted) = try plan(store, catalog)
        XCTAssertTrue(fitted.fitted.isEmpty && fitted.notes.isEmpty)
        XCTAssertEqual(p, try job(catalog).plan(calibrationRun: nil, leaveOneOut: false))
        XCTAssertNil(p.endpointCalibrations)
        XCTAssertNil(p.calibrationNotes)
    }

    func testAFitThatFailsLeavesTheCatalogEfficienciesAndANote() throws {
        let catalog = try catalog()
        let store = try SQLiteStore(path: ":memory:")
        var noModel = SyntheticLoad.facts
        noModel["model_shape"] = nil
        let run = try SyntheticLoad.store(try SyntheticLoad.cases(catalog, facts: noModel, itl: false), in: store)
        let (p, _) = try plan(store, catalog)
        let note = "h100-sxm keeps its catalog efficiencies: run \(run) names it, but endpoint \"prod\" cannot calibrate its hardware: "
            + "it does not declare its catalog model (model_shape)"
        XCTAssertEqual(p.calibrationNotes, [note])
        XCTAssertNil(p.endpointCalibrations)
        for c in p.candidates where c.hardware == "h100-sxm" { XCTAssertEqual(c.calibration, try catalog.hardware("h100-sxm").calibration) }
        XCTAssertTrue(PlanTables.preamble(p).contains("Note: \(note).\n"), PlanTables.preamble(p))

        // A later run of one point without TPOT: too few measurements, said the same way.
        var one = try SyntheticLoad.cases(catalog, itl: false, points: 1)
        one[0].samples.removeAll { $0.metric == "tpot_ms" }
        let later = try SyntheticLoad.store(one, in: store)
        let (q, _) = try plan(store, catalog)
        XCTAssertEqual(q.calibrationNotes?.count, 1)
        XCTAssertTrue(q.calibrationNotes?.first?.hasPrefix("h100-sxm keeps its catalog efficiencies: run \(later) names it, but ") == true)
        XCTAssertTrue(q.calibrationNotes?.first?.contains("give 1 usable measurement") == true, "\(q.calibrationNotes ?? [])")
    }

    /// Per hardware, the latest complete run naming it; a run naming other hardware does not hide it; a run id
    /// chooses; only the metrics the fit reads come back.
    func testWhichRunCalibratesWhichHardware() throws {
        let catalog = try catalog()
        let store = try SQLiteStore(path: ":memory:")
        let first = try SyntheticLoad.store(try SyntheticLoad.cases(catalog, points: 3), in: store)
        let second = try SyntheticLoad.store(try SyntheticLoad.cases(catalog), in: store)
        var l40s = SyntheticLoad.facts
        l40s["hardware"] = "l40s"
        let third = try SyntheticLoad.store(try SyntheticLoad.cases(catalog, endpoint: "edge", facts: l40s, itl: false), in: store)
        try SyntheticLoad.store(try SyntheticLoad.cases(catalog, itl: false), in: store, status: .interrupted)
        let found = try store.endpointLoadCases(hardware: ["l40s", "h100-sxm", "a100-80g"])
        XCTAssertEqual(found.map(\.hardware), ["l40s", "h100-sxm"])
        XCTAssertEqual(found.map(\.runID), [third, second])
        XCTAssertEqual(found[1].cases.count, 7)
        XCTAssertEqual(found[1].endpoints, ["prod"])
        XCTAssertEqual(Set(found[1].cases.flatMap { $0.samples.map(\.metric) }), ["ttft_ms", "tpot_ms", "output_tokens"])
        XCTAssertEqual(found[1].cases[0].summary("tpot_ms")?.count, 50)
        XCTAssertEqual(found[1].cases[0].facts["hardware"], "h100-sxm")
        XCTAssertEqual(found[1].cases[0].params["point"], "synchronous")
        let chosen = try store.endpointLoadCases(hardware: ["h100-sxm", "l40s"], runID: first)
        XCTAssertEqual(chosen.map(\.runID), [first])
        XCTAssertEqual(chosen.first?.cases.count, 3)
        XCTAssertThrowsError(try store.endpointLoadCases(hardware: ["h100-sxm"], runID: 99))
        XCTAssertEqual(try store.endpointLoadCases(hardware: []), [])
        let (p, _) = try plan(store, catalog)
        XCTAssertEqual(p.endpointCalibrations?.map(\.hardware).sorted(), ["h100-sxm", "l40s"])
    }

    /// Through the built executable: whatif's table and JSON say it, and --no-endpoint-calibration turns it off.
    func testWhatifSaysWhichHardwareAnEndpointCalibrated() throws {
        let catalog = try catalog()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cli-endpoint-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("h.sqlite").path
        let run = try SyntheticLoad.store(try SyntheticLoad.cases(catalog, itl: false), in: try SQLiteStore(path: db))
        let args = ["whatif", "--db", db, "--hardware", "h100-sxm", "l40s", "--precision", "bf16", "--serving-model", "queueing"]
        let t = try HeadroomCLI.run(args, cwd: HeadroomCLI.repo)
        XCTAssertEqual(t.status, 0, t.stderr)
        XCTAssertTrue(t.stdout.contains("Calibration of h100-sxm (every h100-sxm figure below): calibrated from endpoint prod, run \(run) ("), t.stdout)
        let j = try HeadroomCLI.run(args + ["--json"], cwd: HeadroomCLI.repo)
        XCTAssertEqual(j.status, 0, j.stderr)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any])
        let e = try XCTUnwrap((obj["endpoint_calibrations"] as? [[String: Any]])?.first)
        XCTAssertEqual(e["hardware"] as? String, "h100-sxm")
        XCTAssertEqual(e["run_id"] as? Int, Int(run))
        for c in try XCTUnwrap(obj["candidates"] as? [[String: Any]]) where c["hardware"] as? String == "h100-sxm" {
            XCTAssertTrue((c["calibration"] as? String)?.hasPrefix("calibrated from endpoint prod, run \(run) (") == true, "\(c)")
        }
        let off = try HeadroomCLI.run(args + ["--json", "--no-endpoint-calibration"], cwd: HeadroomCLI.repo)
        XCTAssertEqual(off.status, 0, off.stderr)
        XCTAssertFalse(off.stdout.contains("calibrated from endpoint"))
        let both = try HeadroomCLI.run(args + ["--no-endpoint-calibration", "--endpoint-run", "1"], cwd: HeadroomCLI.repo)
        XCTAssertEqual(both.status, 2, both.stderr)
        XCTAssertTrue(both.stderr.contains("--endpoint-run and --no-endpoint-calibration exclude each other"), both.stderr)
    }
}
