import Foundation
import XCTest
import HeadroomCore
import HeadroomStore
@testable import HeadroomRunner

let tinyShape = ModelShape(id: "t", name: "t", layers: 1, dim: 64, heads: 4, kvHeads: 2, ffnDim: 96, vocab: 100, context: 64, source: "test")

func smallScenario(threads: [Int] = [1]) -> Scenario {
    Scenario(name: "unit", description: "", file: "unit.yaml", text: "schema: 1", hash: "h",
             probe: ProbeSettings(readMiB: 16, gemmSize: 64, repetitions: 2),
             measure: MeasureSettings(model: tinyShape, threads: threads, promptTokens: [8], batch: [1, 2], repetitions: 3, warmup: 1))
}

final class ProbeTests: XCTestCase {
    func testProbeFiguresArePositiveAndFinite() throws {
        let w = ProbeWorkload(settings: ProbeSettings(readMiB: 16, gemmSize: 64, repetitions: 2), threads: [1, 2], rows: 4)
        let cases = try w.cases().map { try w.measure($0) {} }
        XCTAssertEqual(cases.count, 10)
        let f = ProbeFigures(cases: cases)
        for t in [1, 2] {
            let p = try XCTUnwrap(f.at(threads: t))
            for v in [p.readStreamGBps, p.readRowsGBps, p.readPrefetchGBps, p.triadGBps, p.sgemmGFLOPs] {
                let v = try XCTUnwrap(v)
                XCTAssertTrue(v.isFinite && v > 0, "\(v)")
            }
            XCTAssertEqual(p.repetitions, 2)
            XCTAssertEqual(f.readGBps(threads: t), [p.readStreamGBps!, p.readRowsGBps!, p.readPrefetchGBps!].max())
        }
        XCTAssertEqual(cases.first { $0.name == "read_prefetch" }?.params["row_floats"], "2048")
    }

    func testClosingProbeReadsAgainAndTheRooflineTakesTheBestOfBoth() throws {
        let settings = ProbeSettings(readMiB: 16, gemmSize: 64, repetitions: 2)
        let opening = ProbeWorkload(settings: settings, threads: [1])
        let closing = ProbeWorkload(settings: settings, threads: [1], closing: true)
        XCTAssertEqual(closing.cases().map(\.name), ["read_stream", "read_rows", "read_prefetch"], "reads only: cheap after a run")
        XCTAssertTrue(closing.cases().allSatisfy { $0.params[ProbeFigures.stageParam] == ProbeFigures.closingStage })
        XCTAssertTrue(opening.cases().allSatisfy { $0.params[ProbeFigures.stageParam] == nil }, "the opening probe's cases as before")
        let before = try opening.cases().map { try opening.measure($0) {} }
        XCTAssertFalse(opening.holdsArrays, "the buffers go after the last case, before any later workload's peak RSS")
        let after = try closing.cases().map { try closing.measure($0) {} }
        XCTAssertFalse(closing.holdsArrays)
        let f = ProbeFigures(cases: before + after)
        let p = try XCTUnwrap(f.at(threads: 1))
        let reads = (before + after).filter { ProbeFigures.readPatterns.contains($0.name) }
        let beforeBest = reads.filter { !ProbeFigures.isClosing($0) }.flatMap { $0.values("gbps") }.max()
        let afterBest = reads.filter(ProbeFigures.isClosing).flatMap { $0.values("gbps") }.max()
        XCTAssertEqual(p.readBeforeGBps, beforeBest)
        XCTAssertEqual(p.readAfterGBps, afterBest)
        XCTAssertEqual(f.readGBps(threads: 1), max(beforeBest!, afterBest!))
    }
}

final class RunnerTests: XCTestCase {
    override func tearDown() { Interrupt.reset() }

    func testGemmCasesCoverEveryProjectionPhaseAndThreadCount() throws {
        let w = GemmWorkload(smallScenario(threads: [1, 2]).measure!)
        let specs = w.cases()
        XCTAssertEqual(specs.count, 2 * 3 * 4)
        let m = try w.measure(specs[0]) {}
        XCTAssertEqual(m.values("seconds").count, 3)
        XCTAssertTrue(m.values("gflops").allSatisfy { $0.isFinite && $0 > 0 })
        XCTAssertEqual(m.params["N"], String(64 + 2 * 32))
    }

    /// `XCTAssertThrowsError` for an async expression.
    func assertThrows(_ body: () async throws -> RunOutcome, _ check: (Error) -> Void = { _ in },
                      file: StaticString = #filePath, line: UInt = #line) async {
        do {
            _ = try await body()
            XCTFail("expected an error", file: file, line: line)
        } catch { check(error) }
    }

    func testCompleteRunStoresEverySample() async throws {
        let store = try SQLiteStore(path: ":memory:")
        let s = smallScenario()
        let runner = Runner(store: store, progress: Progress(enabled: false), version: "test")
        let outcome = try await runner.run(scenario: s, workloads: [
            ("probe", ProbeWorkload(settings: s.probe, threads: [1])), ("gemm", GemmWorkload(s.measure!)),
        ], gitRevision: "rev")
        XCTAssertEqual(outcome.status, .complete)
        let stored = try store.load(runID: outcome.runID)
        XCTAssertEqual(stored.run.status, .complete)
        XCTAssertEqual(stored.run.gitRevision, "rev")
        XCTAssertEqual(stored.cases.count, 5 + 12)
        // probe: 5 cases × 2 reps × 2 metrics; gemm: 12 cases × 3 reps × 3 metrics
        XCTAssertEqual(try store.sampleCount(runID: outcome.runID), 20 + 108)
        XCTAssertNotNil(stored.run.endedAt)
    }

    /// A workload that asks for an interruption after its first case, as Ctrl-C would.
    struct InterruptingWorkload: SingleCaseWorkload {
        let inner: GemmWorkload
        func cases() -> [CaseSpec] { inner.cases() }
        func measure(_ spec: CaseSpec, step: () throws -> Void) async throws -> MeasuredCase {
            let m = try await inner.measure(spec, step: step)
            Interrupt.request()
            return m
        }
    }

    func testInterruptedRunIsRecordedAsSuchAndKeepsWhatItStored() async throws {
        let store = try SQLiteStore(path: ":memory:")
        let s = smallScenario()
        let runner = Runner(store: store, progress: Progress(enabled: false), version: "test")
        await assertThrows({ try await runner.run(scenario: s, workloads: [("gemm", InterruptingWorkload(inner: GemmWorkload(s.measure!)))]) }) {
            XCTAssertTrue($0 is RunInterrupted)
        }
        let run = try XCTUnwrap(store.runs().first)
        XCTAssertEqual(run.status, .interrupted)
        XCTAssertEqual(try store.load(runID: run.id!).cases.count, 1, "the first case was stored whole; nothing after it")
        XCTAssertTrue(try store.completeRuns().isEmpty)
    }

    struct FailingWorkload: SingleCaseWorkload {
        struct Boom: Error {}
        func cases() -> [CaseSpec] { [CaseSpec(kind: "x", name: "x", threads: 1, params: [:], steps: 1)] }
        func measure(_ spec: CaseSpec, step: () throws -> Void) throws -> MeasuredCase { throw Boom() }
    }

    func testFailedRunIsRecordedAsFailed() async throws {
        let store = try SQLiteStore(path: ":memory:")
        let runner = Runner(store: store, progress: Progress(enabled: false), version: "test")
        await assertThrows { try await runner.run(scenario: smallScenario(), workloads: [("x", FailingWorkload())]) }
        XCTAssertEqual(try store.runs().first?.status, .failed)
    }

    func planJob() throws -> PlanJob {
        let catalog = try Catalog.load(directory: HeadroomCLI.repo.appendingPathComponent("Scenarios/catalog").path)
        let settings = try PlanSettings.read(scenarioText: """
            plan:
              model: llama-3.1-8b
              demand: { users: 2000, requests_per_user_per_day: 40, prompt_tokens: 800, output_tokens: 250 }
              slo: { ttft_p95_ms: 1000, tpot_p95_ms: 60 }
              hardware: [l40s, local]
              precisions: [bf16]
              tensor_parallel: [1]
            """, file: "p.yaml", overrides: [], catalog: catalog)
        var job = try PlanJob(settings: settings, catalog: catalog, curves: false)
        job.servingModel = QueueingServingModel()
        return job
    }

    func testThePlanIsStoredBeforeTheRunIsComplete() async throws {
        let store = try SQLiteStore(path: ":memory:")
        let s = smallScenario()
        let runner = Runner(store: store, progress: Progress(enabled: false), version: "test")
        let job = try planJob()
        let outcome = try await runner.run(scenario: s, workloads: [("probe", ProbeWorkload(settings: s.probe, threads: [1]))], plan: job)
        let plan = try XCTUnwrap(outcome.plan)
        XCTAssertEqual(try store.plan(runID: outcome.runID), plan)
        XCTAssertEqual(try store.load(runID: outcome.runID).run.status, .complete)
        XCTAssertNotNil(plan.local, "calibrated on the run's own probe")
    }

    /// Planning that fails after measuring (here: the plan input changed after it was checked) leaves the
    /// measurements stored, the run failed with the reason, no plan, and an error that is not bad input.
    func testAPlanThatFailsAfterMeasuringMarksTheRunFailed() async throws {
        let store = try SQLiteStore(path: ":memory:")
        let s = smallScenario()
        let runner = Runner(store: store, progress: Progress(enabled: false), version: "test")
        var job = try planJob()
        job.settings.hardware = ["tpu-v9"]
        await assertThrows({ try await runner.run(scenario: s, workloads: [("probe", ProbeWorkload(settings: s.probe, threads: [1]))], plan: job) }) { e in
            XCTAssertTrue(e is RunPlanningFailed, "\(e)")
            XCTAssertFalse(e is InputError)
            XCTAssertTrue("\(e)".hasPrefix("scenario unit: run 1 was measured and stored, but planning its plan: section failed: "), "\(e)")
            XCTAssertTrue("\(e)".contains("no hardware \"tpu-v9\""), "\(e)")
        }
        let run = try XCTUnwrap(store.runs().first)
        XCTAssertEqual(run.status, .failed)
        XCTAssertTrue(run.note.contains("planning its plan: section failed"), run.note)
        XCTAssertEqual(try store.load(runID: run.id!).cases.count, 5, "the measurements stay, flagged")
        XCTAssertNil(try store.plan(runID: run.id!))
        XCTAssertTrue(try store.completeRuns().isEmpty)
    }

    func testProbeCoversScenarioThreadsAndAllCores() {
        XCTAssertEqual(Runner.probeThreads(for: smallScenario(threads: [3]), cores: 2), [1, 2, 3])
    }
}
