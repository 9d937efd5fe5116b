// The step workload on a micro model: its grid, the cases it stores (kind, params, raw samples), the store's
// loader and the fit made from them, the gate comparing them, and `headroom bench steps` end to end.
import Foundation
import XCTest
import HeadroomCore
import HeadroomStore
@testable import HeadroomRunner

final class StepBenchTests: XCTestCase {
    let micro = ModelShape(id: "micro", name: "micro", layers: 2, dim: 64, heads: 4, kvHeads: 2, ffnDim: 96, vocab: 128, context: 64,
                           source: "test")

    override func tearDown() { Interrupt.reset() }

    func p(_ t: Int, after past: Int = 0, _ d: Int = 0, at context: Int = 0) -> StepParams {
        StepParams(model: "micro", precision: "q4_0", prefillTokens: t, pastTokens: past, decodes: d, context: context)
    }

    func testTheGridFollowsTheModelsContext() {
        let small = ModelShape(id: "small", name: "s", layers: 22, dim: 2048, heads: 32, kvHeads: 4, ffnDim: 5632, vocab: 32000,
                               context: 2048, source: "test")
        let grid = StepSettings.grid(model: small, precision: .q4_0)
        XCTAssertEqual(grid.count, 33)
        XCTAssertEqual(grid.filter { $0.decodes == 0 && $0.pastTokens == 0 }.map(\.prefillTokens), [1, 16, 32, 64, 80, 96, 112, 128, 256, 512, 1024])
        XCTAssertEqual(grid.filter(\.isMixed).map(\.label), ["prefill 8 + decode 32 at 1024", "prefill 64 + decode 8 at 128",
                                                              "prefill 128 after 256 + decode 16 at 512", "prefill 224 + decode 32 at 128",
                                                              "prefill 32 + decode 5 at 1024"])
        XCTAssertEqual(Set(grid.filter { $0.decodes > 0 && !$0.isMixed }.map(\.decodes)), [1, 2, 3, 4, 8, 12, 16, 32])
        XCTAssertEqual(Set(grid.filter { $0.decodes > 0 && !$0.isMixed }.map(\.context)), [128, 1024])
        XCTAssertTrue(grid.contains(StepParams(model: "small", precision: "q4_0", prefillTokens: 128, pastTokens: 256)))
        XCTAssertEqual(StepSettings.grid(model: small, precision: .q4_0, quick: true).count, 14)
        // The pool holds the largest shape: 32 decodes of 1025 positions (65 blocks each) and an 8-token chunk.
        let settings = StepSettings(model: small, precision: .q4_0, threads: 2, shapes: grid, repetitions: 5, warmup: 1)
        XCTAssertEqual(settings.poolBlocks(), 32 * 65 + 1)
        XCTAssertFalse(settings.batchInvariant, "as headroom serve runs the engine")

        let tiny = StepSettings.grid(model: micro, precision: .f32)
        XCTAssertTrue(tiny.allSatisfy { $0.pastTokens + $0.prefillTokens <= 64 && $0.context < 64 }, "\(tiny.map(\.label))")
        XCTAssertEqual(Set(tiny.filter { $0.decodes > 0 }.map(\.context)), [8, 32])
    }

    func testATinyMeasurementIsStoredWithItsShapesAndFitted() async throws {
        let shapes = [p(1), p(16), p(32), p(16, after: 8)] + [4, 16].flatMap { c in [1, 2, 4].map { p(0, $0, at: c) } } + [p(8, 2, at: 8)]
        let settings = StepSettings(model: micro, precision: .q4_0, threads: 1, shapes: shapes, repetitions: 3, warmup: 1)
        let store = try SQLiteStore(path: ":memory:", mode: .readWrite(createFolder: false))
        let scenario = Scenario(name: "bench-steps", description: "", file: "(command line)", text: "headroom bench steps", hash: "h",
                                probe: ProbeSettings(), measure: nil)
        let runner = Runner(store: store, progress: Progress(enabled: false), version: "test")
        let outcome = try await StepWorkload(settings).measure(runner: runner, scenario: scenario)

        XCTAssertEqual(outcome.cases.count, shapes.count)
        for (c, shape) in zip(outcome.cases, shapes) {
            XCTAssertEqual(c.kind, .step)
            XCTAssertEqual(c.name, "micro-q4_0")
            XCTAssertEqual(c.threads, 1)
            XCTAssertEqual(c.params, shape.params, "the params are the shape, nothing else")
            XCTAssertEqual(c.values("step_seconds").count, 3, shape.label)
            XCTAssertTrue(c.values("step_seconds").allSatisfy { $0 > 0 && $0 < 10 }, shape.label)
            XCTAssertEqual(c.unit(of: "step_seconds"), "s")
            XCTAssertEqual(c.facts["batch_invariant"], "false")
            XCTAssertFalse(c.facts[CaseFacts.isa, default: ""].isEmpty)
        }

        let found = try XCTUnwrap(try store.stepCases(model: "micro", precision: "q4_0", threads: 1))
        XCTAssertEqual(found.runID, outcome.runID)
        XCTAssertEqual(found.cases, outcome.cases)
        XCTAssertNil(try store.stepCases(model: "micro", precision: "q4_0", threads: 2))

        let fit = try StepTimeSource.load(store: store, model: "micro", precision: "q4_0", threads: 1)
        XCTAssertEqual(fit.runID, outcome.runID)
        XCTAssertTrue(fit.basis.hasPrefix("steps measured in run \(outcome.runID) (micro q4_0, 1 thread; 10 shapes; leave-one-out median"), fit.basis)
        // A timing on a shared machine: sane, not fast. Each fitted shape against the fit made with it, the mixed
        // one against the fit that never saw it.
        for c in outcome.cases {
            let shape = try XCTUnwrap(StepParams(params: c.params))
            let measured = try XCTUnwrap(c.summary("step_seconds")).median
            let predicted = fit.iterationSeconds(shape.shape)
            let factor = shape.isMixed ? 10.0 : 3.0
            XCTAssertTrue(predicted > measured / factor && predicted < measured * factor, "\(shape.label): \(predicted) s for \(measured) s")
        }
        XCTAssertEqual(fit.checks.filter(\.heldOut).map(\.point.params), [p(8, 2, at: 8)])

        // The gate compares step cases like any other: step_seconds, lower is better, raw.
        let out = try Gate.evaluate(baseline: outcome.cases, current: outcome.cases, options: GateOptions())
        XCTAssertEqual(out.rows.count, shapes.count)
        XCTAssertTrue(out.rows.allSatisfy { $0.metric == "step_seconds" && $0.normalisation == nil && $0.decision.verdict != .regression })

        XCTAssertThrowsError(try StepTimeSource.load(store: store, model: "micro", precision: "f32", threads: 1)) {
            XCTAssertEqual("\($0)", ":memory:: no complete run holds steps measured for micro f32 on 1 thread; "
                           + "run `headroom bench steps --model micro --precision f32 --threads 1` first")
        }
    }

    func testBenchStepsStoresARunAndPrintsTheFit() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steps-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("cat"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try """
            schema: 1
            models:
              - { id: micro, layers: 2, dim: 64, heads: 4, kv_heads: 2, ffn_dim: 96, vocab: 128, context: 64, source: "test" }
            """.write(to: dir.appendingPathComponent("cat/models.yaml"), atomically: true, encoding: .utf8)
        let args = ["bench", "steps", "--model", "micro", "--catalog", "cat", "--threads", "1", "--repetitions", "1", "--warmup", "0",
                    "--db", "h.sqlite"]
        let r = try HeadroomCLI.run(args + ["--json"], cwd: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(obj["run_id"] as? Int, 1)
        XCTAssertEqual(obj["precision"] as? String, "q4_0")
        let steps = try XCTUnwrap(obj["steps"] as? [[String: Any]])
        XCTAssertEqual(steps.count, 23)
        XCTAssertEqual(steps.filter { $0["check"] as? String == "held out" }.count, 3)
        XCTAssertTrue(steps.allSatisfy { (($0["measured"] as? [String: Any])?["samples"] as? Int) == 1 })
        let fit = try XCTUnwrap(obj["fit"] as? [String: Any])
        XCTAssertTrue((fit["basis"] as? String)?.hasPrefix("steps measured in run 1 (micro q4_0, 1 thread; 20 shapes;") ?? false, "\(fit)")
        XCTAssertNotNil(fit["leave_one_out"] as? [String: Any])

        let table = try HeadroomCLI.run(args, cwd: dir)
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.stdout.contains("run 2 in h.sqlite") && table.stdout.contains("measured ms (median)")
                      && table.stdout.contains("held out") && table.stdout.contains("leave-one-out: median"), table.stdout)
        let history = try HeadroomCLI.run(["history", "--db", "h.sqlite"], cwd: dir)
        XCTAssertTrue(history.stdout.contains("bench-steps"), history.stdout)

        for (bad, message) in [(["--repetitions", "0"], "--repetitions: expected 1 to 1000, got 0"),
                               (["--warmup", "101"], "--warmup: expected 0 to 100, got 101"),
                               (["--model", "nope"], "--model: expected a model of the catalog"),
                               (["--precision", "q9"], "--precision: expected one of")] {
            let e = try HeadroomCLI.run(["bench", "steps", "--catalog", "cat", "--db", "h.sqlite"] + bad, cwd: dir)
            XCTAssertEqual(e.status, 2, "\(bad): \(e.stderr)")
            XCTAssertTrue(e.stderr.contains(message), "\(bad): \(e.stderr)")
            XCTAssertEqual(e.stdout, "")
        }
    }
}
