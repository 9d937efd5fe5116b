import Foundation
import XCTest
@testable import HeadroomCore

final class GateMatchingTests: XCTestCase {
    /// A run on `threads`: probe rooflines proportional to the thread count, and two GEMM cases whose
    /// throughput is `speed` × threads (so a run on fewer threads is a slower machine, not slower code).
    func run(threads: [Int], speed: Double = 1, seed: UInt64, noise: Double = 0.02, reps: Int = 15) -> [MeasuredCase] {
        var g = SyntheticSamples(seed: seed)
        func c(_ kind: CaseKind, _ name: String, _ t: Int, _ params: [String: String], _ metrics: [(String, String, Double)]) -> MeasuredCase {
            var samples: [MeasuredCase.Sample] = []
            for (metric, unit, center) in metrics {
                for (i, v) in g.set(reps, center: center, noise: noise).enumerated() {
                    samples.append(.init(metric: metric, unit: unit, repetition: i, value: v))
                }
            }
            return MeasuredCase(kind: kind, name: name, threads: t, params: params, samples: samples)
        }
        var cases: [MeasuredCase] = []
        for t in threads {
            let f = Double(t)
            cases.append(c("probe", "read_rows", t, ["bytes": "1"], [("gbps", "GB/s", 15 * f), ("seconds", "s", 1 / f)]))
            cases.append(c("probe", "sgemm", t, ["size": "64"], [("gflops", "GFLOP/s", 150 * f), ("seconds", "s", 1 / f)]))
            for phase in ["prefill", "decode"] {
                let gf = (phase == "prefill" ? 140 : 4) * f * speed
                cases.append(c("gemm", "qkv", t, ["model": "tiny", "phase": phase, "M": phase == "prefill" ? "64" : "1"],
                               [("seconds", "s", 0.01 / (f * speed)), ("gflops", "GFLOP/s", gf), ("weight_gbps", "GB/s", gf / 2)]))
            }
        }
        return cases
    }

    func testReadRooflineComparesOnlyThePatternsBothRunsMeasured() throws {
        // The current run adds the prefetched walk, which reads 30 % faster than read_rows on the same machine:
        // a new yardstick, not slower code, so the decode-shape GEMM's weight_gbps ÷ read must not regress.
        let base = run(threads: [2], seed: 1)
        var cur = run(threads: [2], seed: 2)
        var g = SyntheticSamples(seed: 9)
        cur.append(MeasuredCase(kind: "probe", name: "read_prefetch", threads: 2, params: ["bytes": "1", "row_floats": "2048"],
                                samples: g.set(15, center: 39, noise: 0.02).enumerated().map {
                                    .init(metric: "gbps", unit: "GB/s", repetition: $0.offset, value: $0.element) }))
        XCTAssertEqual(ProbeRoofline.sharedReadPatterns(base, cur), ["read_rows"])
        XCTAssertEqual(ProbeRoofline.readBandwidth.samples(in: cur, threads: 2).max() ?? 0, 39, accuracy: 3, "alone, the best pattern")
        let out = try Gate.evaluate(baseline: base, current: cur, options: GateOptions(metrics: ["weight_gbps"], normalisedOnly: true))
        let rows = out.rows.filter { $0.normalisation == "÷ read GB/s" }
        XCTAssertEqual(rows.count, 2)
        for r in rows {
            XCTAssertNotEqual(r.decision.verdict, .regression, "\(r.caseLabel) \(r.decision.estimate)")
            XCTAssertEqual(r.decision.estimate.ratio, 1, accuracy: 0.05, "\(r.caseLabel)")
        }
        // With the pattern in both runs, it is the yardstick in both: the same figure ProbeFigures.readGBps takes.
        var base2 = base
        base2.append(cur.last!)
        XCTAssertEqual(ProbeRoofline.sharedReadPatterns(base2, cur), ["read_rows", "read_prefetch"])
        let shared = ProbeRoofline.readBandwidth.samples(in: base2, threads: 2, patterns: ["read_rows", "read_prefetch"])
        XCTAssertEqual(shared.max(), ProbeFigures(cases: base2).readGBps(threads: 2))
    }

    func testThreadCountsPairLikeWithLikeThenByPosition() {
        func pairs(_ c: [Int], _ b: [Int]) -> [[Int]] { Gate.pairThreads(current: c, baseline: b).map { [$0.current, $0.baseline] } }
        XCTAssertEqual(pairs([1, 2], [1, 2]), [[1, 1], [2, 2]])
        XCTAssertEqual(pairs([1], [2]), [[1, 2]])
        XCTAssertEqual(pairs([1], [1, 2]), [[1, 1]])
        XCTAssertEqual(pairs([1, 2], [2, 4]), [[1, 4], [2, 2]])
        XCTAssertEqual(pairs([4], [1, 2]), [[4, 1]])
    }

    /// A baseline of 50,000 identical samples against one current sample 30 % worse: not significant, exit 0.
    func testOneCurrentSampleNeverFailsTheGate() throws {
        func run(_ values: [Double]) -> [MeasuredCase] {
            [MeasuredCase(kind: "inference", name: "small", threads: 1, params: ["precision": "f32"],
                          samples: values.enumerated().map { .init(metric: "peak_rss_bytes", unit: "bytes", repetition: $0.offset, value: $0.element) })]
        }
        let out = try Gate.evaluate(baseline: run(Array(repeating: 1e9, count: 50_000)), current: run([1.3e9]), options: GateOptions())
        XCTAssertEqual(out.rows.map(\.decision.verdict), [.notSignificant])
        XCTAssertEqual(out.exitCode, 0)
        let four = try Gate.evaluate(baseline: run(Array(repeating: 1e9, count: 4)), current: run(Array(repeating: 1.3e9, count: 4)),
                                     options: GateOptions())
        XCTAssertEqual(four.rows.map(\.decision.verdict), [.regression], "four identical bytes each side: a real change")
        XCTAssertEqual(four.exitCode, 1)
    }

    func testSameConfigurationPasses() throws {
        let out = try Gate.evaluate(baseline: run(threads: [2], seed: 1), current: run(threads: [2], seed: 2), options: GateOptions())
        // 2 cases × (seconds raw, gflops raw + normalised, weight_gbps raw + normalised).
        XCTAssertEqual(out.rows.count, 10)
        XCTAssertEqual(out.exitCode, 0)
        XCTAssertEqual(out.count(.regression), 0)
        XCTAssertEqual(out.count(.pass), 10, out.rows.map { "\($0.caseLabel) \($0.metricLabel) \($0.decision.verdict) \($0.decision.estimate)" }.joined(separator: " // "))
        XCTAssertTrue(out.notes.isEmpty, "\(out.notes)")
    }

    func testFewerThreadsRegressRawThroughputButNotNormalised() throws {
        let base = run(threads: [2], seed: 1), cur = run(threads: [1], seed: 2)
        let raw = try Gate.evaluate(baseline: base, current: cur, options: GateOptions())
        XCTAssertEqual(raw.exitCode, 1)
        for r in raw.rows where r.normalisation == nil {
            XCTAssertEqual(r.decision.verdict, .regression, "\(r.caseLabel) \(r.metric)")
            XCTAssertEqual(r.threads, 1); XCTAssertEqual(r.baselineThreads, 2)
        }
        let gflops = raw.rows.first { $0.metric == "gflops" && $0.normalisation == nil && $0.params["phase"] == "prefill" }!
        XCTAssertEqual(gflops.decision.estimate.ratio, 0.5, accuracy: 0.02)
        XCTAssertTrue(raw.notes.contains { $0.contains("threads 1 are compared with the baseline's threads 2") }, "\(raw.notes)")

        let norm = try Gate.evaluate(baseline: base, current: cur, options: GateOptions(normalisedOnly: true))
        XCTAssertEqual(norm.rows.count, 4)   // gflops ÷ sgemm and weight_gbps ÷ read, for both cases; seconds has no roofline
        XCTAssertEqual(norm.exitCode, 0)
        for r in norm.rows {
            XCTAssertNotNil(r.normalisation)
            XCTAssertNotEqual(r.decision.verdict, .regression, "\(r.caseLabel) \(r.metricLabel)")
            XCTAssertEqual(r.decision.estimate.ratio, 1, accuracy: 0.05, "\(r.caseLabel) \(r.metricLabel) \(r.decision.estimate)")
        }
        let prefill = norm.rows.first { $0.metric == "gflops" && $0.params["phase"] == "prefill" }!
        XCTAssertEqual(prefill.normalisation, "÷ sgemm GFLOP/s")
        XCTAssertEqual(prefill.currentMedian, 140.0 / 150, accuracy: 0.03, "a fraction of the sgemm peak")
    }

    func testSlowerCodeOnTheSameThreadsRegressesNormalisedToo() throws {
        let base = run(threads: [2], seed: 1), cur = run(threads: [2], speed: 0.8, seed: 2)
        let out = try Gate.evaluate(baseline: base, current: cur, options: GateOptions(metrics: ["gflops"], normalisedOnly: true))
        XCTAssertEqual(out.rows.count, 2)
        XCTAssertEqual(out.regressions.count, 2)
    }

    func testMetricSelectionThresholdsAndNotes() throws {
        let base = run(threads: [1, 2], seed: 1), cur = run(threads: [2], speed: 0.9, seed: 2)
        var settings = GateSettings(metrics: ["seconds", "decode_tokens_per_s"], maxRegression: 0.05, thresholds: ["seconds": 0.15])
        let lenient = try Gate.evaluate(baseline: base, current: cur, options: GateOptions(settings: settings))
        XCTAssertEqual(lenient.rows.map(\.metric), ["seconds", "seconds"])
        XCTAssertEqual(lenient.exitCode, 0, "an 11 % slowdown is within a 15 % threshold")
        XCTAssertTrue(lenient.notes.contains("selected but not measured in this run: decode_tokens_per_s"), "\(lenient.notes)")
        XCTAssertTrue(lenient.notes.contains("baseline threads [1] were not measured in this run"), "\(lenient.notes)")
        settings.thresholds = [:]
        let strict = try Gate.evaluate(baseline: base, current: cur, options: GateOptions(settings: settings))
        XCTAssertEqual(strict.regressions.count, 2)
    }

    func testCountsThatAreZeroAreNotRatios() throws {
        // Full fine-tuning has no adapter: adapter_bytes is 0 in every run, which is unchanged, not an error.
        func finetune(_ adapter: [Double], step: Double) -> MeasuredCase {
            var samples = adapter.enumerated().map { MeasuredCase.Sample(metric: "adapter_bytes", unit: "B", repetition: $0.offset, value: $0.element) }
            samples += (0..<5).map { MeasuredCase.Sample(metric: "step_ms", unit: "ms", repetition: $0, value: step + Double($0) * 0.01) }
            return MeasuredCase(kind: "finetune", name: "full", threads: 2, params: ["model": "tiny"], samples: samples)
        }
        let zeros = [Double](repeating: 0, count: 5)
        let same = try Gate.evaluate(baseline: run(threads: [2], seed: 1) + [finetune(zeros, step: 100)],
                                     current: run(threads: [2], seed: 2) + [finetune(zeros, step: 100)], options: GateOptions())
        XCTAssertEqual(same.exitCode, 0)
        XCTAssertFalse(same.rows.contains { $0.metric == "adapter_bytes" })
        XCTAssertTrue(same.rows.contains { $0.metric == "step_ms" })
        XCTAssertTrue(same.notes.isEmpty, "\(same.notes)")
        // Zero on one side only is reported, not compared.
        let changed = try Gate.evaluate(baseline: run(threads: [2], seed: 1) + [finetune(zeros, step: 100)],
                                        current: run(threads: [2], seed: 2) + [finetune([Double](repeating: 4096, count: 5), step: 100)],
                                        options: GateOptions())
        XCTAssertTrue(changed.notes.contains { $0.contains("zero or negative in one run and not the other") && $0.contains("adapter_bytes") },
                      "\(changed.notes)")
    }

    func testNothingInCommonIsAnError() {
        var other = run(threads: [2], seed: 2)
        for i in other.indices where other[i].kind == "gemm" { other[i].params["model"] = "small" }
        XCTAssertThrowsError(try Gate.evaluate(baseline: run(threads: [2], seed: 1), current: other, options: GateOptions())) {
            XCTAssertTrue("\($0)".hasPrefix("nothing to gate: no metric of the run matches the baseline's workloads"), "\($0)")
        }
    }

    func testGateSectionIsReadStrictly() throws {
        let catalog = Catalog(models: [ModelShape(id: "tiny", name: "t", layers: 1, dim: 8, heads: 2, kvHeads: 2, ffnDim: 16,
                                                  vocab: 32, context: 64, source: "test")], directory: "catalog")
        let head = "schema: 1\nname: g\nmeasure:\n  model: tiny\n  threads: [2]\n  prompt_tokens: [8]\n"
        let s = try Scenario.parse(head + "gate:\n  metrics: [gflops, ttft_ms]\n  max_regression: 10%\n  thresholds: { ttft_ms: 2.5% }\n",
                                   file: "g.yaml", catalog: catalog)
        XCTAssertEqual(s.gate.metrics, ["gflops", "ttft_ms"])
        XCTAssertEqual(s.gate.threshold(for: "gflops"), 0.10, accuracy: 1e-12)
        XCTAssertEqual(s.gate.threshold(for: "ttft_ms"), 0.025, accuracy: 1e-12)
        XCTAssertEqual(try Scenario.parse(head, file: "g.yaml", catalog: catalog).gate, GateSettings())
        XCTAssertEqual(try Scenario.parse(head + "gate:\n  rounds: 4\n", file: "g.yaml", catalog: catalog).gate.rounds, 4)
        func message(_ gate: String) -> String {
            do { _ = try Scenario.parse(head + gate, file: "g.yaml", catalog: catalog); return "accepted" } catch { return "\(error)" }
        }
        XCTAssertEqual(message("gate:\n  max_regression: five\n"), "g.yaml: gate.max_regression: expected a percentage such as 5%, got \"five\"")
        XCTAssertEqual(message("gate:\n  max_regression: 0.05\n"), "g.yaml: gate.max_regression: expected a percentage such as 5%, got \"0.05\"")
        XCTAssertTrue(message("gate:\n  metrics: [gflops, speed]\n").hasPrefix("g.yaml: gate.metrics[1]: expected a metric whose direction is known"))
        XCTAssertTrue(message("gate:\n  thresholds: { speed: 5% }\n").hasPrefix("g.yaml: gate.thresholds.speed: expected a metric whose direction is known"))
        XCTAssertEqual(message("gate:\n  max_regresion: 5%\n"),
                       "g.yaml: gate.max_regresion: unknown key; expected one of metrics, max_regression, thresholds, confidence, rounds")
        // A stored run's scenario text: only its gate section is read.
        XCTAssertEqual(try GateSettings.parse(scenarioText: "name: x\ngate:\n  max_regression: 20%\n", file: "run 3").maxRegression, 0.2, accuracy: 1e-12)
    }
}
