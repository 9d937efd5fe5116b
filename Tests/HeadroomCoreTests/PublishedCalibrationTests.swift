// GPUs fitted to published measurements: published.yaml is read strictly (a bad entry names the file,
// the entry and the key); the derivation of a calibration point is checked by hand; figures generated
// from known efficiencies are fitted back; each built-in GPU's leave-one-out errors are recomputed from
// scratch and must be the ones its label states; a GPU without points stays uncalibrated.
import Foundation
import XCTest
@testable import HeadroomCore

final class PublishedCalibrationTests: XCTestCase {
    let source = "https://example.org/bench"

    func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("published-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// The message of loading the built-in catalog with `text` as an override published.yaml ("no error" when it loads).
    func message(_ text: String) throws -> String {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try text.write(to: dir.appendingPathComponent("published.yaml"), atomically: true, encoding: .utf8)
        do { _ = try Catalog.load(directory: dir.path) } catch let e as InputError {
            return e.description.replacingOccurrences(of: dir.path + "/", with: "")
        }
        return "no error"
    }

    func entry(_ fields: String) -> String {
        "schema: 1\nmeasurements:\n  - { \(fields), document: \"doc\", date: \"2025-01-01\", source: \"\(source)\" }\n"
    }

    func testBuiltInMeasurementsParseWithSourceAndDate() throws {
        let c = try Catalog.builtin()
        XCTAssertFalse(c.published.isEmpty)
        for m in c.published {
            XCTAssertTrue(m.source.hasPrefix("https://"), m.key)
            XCTAssertFalse(m.date.isEmpty, m.key)
            XCTAssertNotNil(c.models[m.model], m.key)
        }
        // The first entry as the source prints it: TensorRT-LLM v0.6.1, H100 FP8, Llama-2-7b, batch 768, 128/128, 19,694 tok/s/GPU.
        let first = try XCTUnwrap(c.published.first)
        XCTAssertEqual(first.hardware, "h100-sxm")
        XCTAssertEqual(first.model, "llama-2-7b")
        XCTAssertEqual(first.precision, .fp8)
        XCTAssertEqual(first.batch, 768)
        XCTAssertEqual(first.outputTokensPerSecond, 19694)
        XCTAssertTrue(first.perDevice)
        // At least four points to fit on each of H100 SXM, H200, A100 80 GB and L40S.
        for id in ["h100-sxm", "h200", "a100-80g", "l40s"] {
            XCTAssertGreaterThanOrEqual(c.published.filter { $0.hardware == id && $0.role == .fit }.count, 4, id)
        }
    }

    func testBadEntriesNameTheFileTheEntryAndTheKey() throws {
        let ok = "hardware: h100-sxm, model: llama-3.1-8b, precision: fp8, devices: 1, input_tokens: 128, output_tokens: 128"
        XCTAssertEqual(try message(entry(ok + ", output_tokens_per_s: 1000, per: total")), "no error")
        XCTAssertEqual(try message(entry(ok + ", output_tokens_per_s: 1000, per: each")),
                       "published.yaml: measurements[0].per: expected one of gpu, total, got \"each\"")
        XCTAssertEqual(try message(entry(ok + ", output_tokens_per_s: fast, per: total")),
                       "published.yaml: measurements[0].output_tokens_per_s: expected a positive number of at most 1000000000, got \"fast\"")
        XCTAssertEqual(try message(entry(ok.replacingOccurrences(of: "h100-sxm", with: "tpu-v9") + ", output_tokens_per_s: 1000, per: total")),
                       "published.yaml: measurements[0].hardware: expected a catalog GPU or CPU id (h100-sxm, h100-pcie, h800, h200, a100-80g, a100-40g, a800, l40s, l4, rtx-4090, rtx-3090, xeon-8480, epyc-9654), got \"tpu-v9\"")
        XCTAssertEqual(try message(entry(ok.replacingOccurrences(of: "h100-sxm", with: "a100-80g") + ", output_tokens_per_s: 1000, per: total")),
                       "published.yaml: measurements[0].precision: NVIDIA A100 SXM4 80GB has no fp8 peak in the catalog (no fp8 support)")
        XCTAssertEqual(try message(entry(ok + ", output_tokens_per_s: 1000, per: total, tokens: 3")),
                       "published.yaml: measurements[0].tokens: unknown key; expected one of " + PublishedMeasurement.keys.joined(separator: ", "))
        XCTAssertEqual(try message(entry(ok + ", output_tokens_per_s: 1000, ttft_ms: 20, per: total")),
                       "published.yaml: measurements[0].ttft_ms: give one measurement per entry, not both output_tokens_per_s and ttft_ms")
        XCTAssertEqual(try message(entry(ok)),
                       "published.yaml: measurements[0]: states no measurement: give output_tokens_per_s (with per:) or ttft_ms")
        XCTAssertEqual(try message(entry(ok + ", output_tokens_per_s: 1000")),
                       "published.yaml: measurements[0].per: missing; this key is required")
        XCTAssertEqual(try message(entry(ok + ", batch: 4, ttft_ms: 20")),
                       "published.yaml: measurements[0].batch: expected 1 (ttft_ms is one request alone), got \"4\"")
        XCTAssertEqual(try message("schema: 1\nmeasurements:\n  - { hardware: h100-sxm, model: llama-3.1-8b, precision: fp8, devices: 1, input_tokens: 128, ttft_ms: 20, document: doc, source: x }\n"),
                       "published.yaml: measurements[0].date: missing; this key is required")
        // A batch the memory model cannot hold is stated, not silently shrunk: Llama-3.1-70B bf16 does not fit one L4.
        XCTAssertEqual(try message(entry("hardware: l4, model: llama-3.1-70b, precision: bf16, devices: 1, input_tokens: 128, output_tokens: 128, output_tokens_per_s: 10, per: total")),
                       "published.yaml: measurements[0]: not one sequence of 256 tokens fits llama-3.1-70b at bf16 on 1 × l4 in the planner's memory model; state the batch")
    }

    func testOverrideFolderReplacesTheSameEntryAndAddsNewOnes() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let builtin = try Catalog.builtin()
        let first = try XCTUnwrap(builtin.published.first)
        try """
            schema: 1
            measurements:
              - { hardware: h100-sxm, model: llama-2-7b, precision: fp8, devices: 1, batch: 768, input_tokens: 128, output_tokens: 128, output_tokens_per_s: 20000, per: gpu, kv_cache: fp8, role: check, document: "NVIDIA TensorRT-LLM performance.md", date: "v0.6.1 (undated page)", source: "\(first.source)" }
              - { hardware: l4, model: llama-3.1-8b, precision: fp8, devices: 1, batch: 1, input_tokens: 512, ttft_ms: 60, document: "mine", date: "2026-11-30", source: "\(source)" }
            """.write(to: dir.appendingPathComponent("published.yaml"), atomically: true, encoding: .utf8)
        let c = try Catalog.load(directory: dir.path)
        XCTAssertEqual(c.published.count, builtin.published.count + 1)
        XCTAssertEqual(c.published.first?.outputTokensPerSecond, 20000)
        XCTAssertEqual(c.published.last?.hardware, "l4")
        XCTAssertEqual(c.files.last, dir.appendingPathComponent("published.yaml").path)
    }

    /// The derivation worked by hand for one throughput figure at tp 1: B × OSL output tokens in B × OSL ÷ throughput
    /// seconds; ops = one prefill of B × ISL tokens + OSL decode steps of B sequences at context ISL + OSL/2.
    func testThroughputPointIsPrefillPlusDecodeStepsAtTheStatedBatch() throws {
        let c = try Catalog.builtin()
        let h = try c.hardware("l40s"), m = try c.model("llama-2-7b")
        let figure = PublishedMeasurement(hardware: "l40s", model: "llama-2-7b", precision: .fp8, devices: 1, batch: 16, inputTokens: 2048,
                                          outputTokens: 2048, outputTokensPerSecond: 531, ttftMs: nil, document: "d", date: "v", source: source)
        let d = try PublishedCalibration.derive(figure, hardware: h, model: m)
        XCTAssertEqual(d.batch, 16)
        XCTAssertEqual(d.point.measuredSeconds, 16.0 * 2048 / 531, accuracy: 1e-9)   // 61.71 s
        let prefill = PerformanceModel.forwardOps(m, .fp8, sequences: 16, newTokens: 2048, pastTokens: 0)
        let decode = PerformanceModel.forwardOps(m, .fp8, sequences: 16, newTokens: 1, pastTokens: 3072)
        XCTAssertEqual(d.point.flops, prefill.reduce(0) { $0 + $1.flops } + 2048 * decode.reduce(0) { $0 + $1.flops }, accuracy: 1)
        XCTAssertEqual(d.point.bytes, prefill.reduce(0) { $0 + $1.bytes } + 2048 * decode.reduce(0) { $0 + $1.bytes }, accuracy: 1)
        // Llama-2-7b: 2 × 6.74 B FLOPs a token (weights) → 16 × 4096 tokens ≈ 0.88 PFLOP before attention.
        XCTAssertEqual(d.point.flops / 1e15, 0.9, accuracy: 0.1)
        // Without a stated batch, the memory model's: L40S 48 GiB × 0.9 less fp8 weights and workspace, over 4096 tokens of 16-bit KV (2 MiB a token).
        var unstated = figure
        unstated.batch = nil
        let mem = MemoryModel.serving(m, .fp8, deviceBytes: h.memoryBytes, tp: 1, contextTokens: 4096, chunkTokens: 2048)
        XCTAssertEqual(PublishedCalibration.batch(unstated, hardware: h, model: m).batch, mem.maxBatch)
        XCTAssertEqual(mem.maxBatch, 18)   // (43.2 GiB usable − 6.28 GiB fp8 weights − 0.25 GiB workspace) ÷ 2 GiB a sequence = 18.3
    }

    /// Figures generated from known efficiencies (compute 0.6, bandwidth 0.8) through the same derivation, on
    /// prefill-heavy, decode-heavy and first-token points, at tp 1 and 2, are fitted back within 1 %.
    func testSyntheticFiguresFitBackTheirEfficiencies() throws {
        let c = try Catalog.builtin()
        let h = try c.hardware("h100-sxm")
        let truth = Efficiency(compute: 0.6, bandwidth: 0.8)
        func figure(_ model: String, tp: Int, batch: Int?, isl: Int, osl: Int?, ttft: Bool = false) throws -> PublishedMeasurement {
            var f = PublishedMeasurement(hardware: h.id, model: model, precision: .fp8, devices: tp, batch: batch, inputTokens: isl,
                                         outputTokens: ttft ? nil : osl, outputTokensPerSecond: ttft ? nil : 1, perDevice: tp > 1,
                                         ttftMs: ttft ? 1 : nil, document: "synthetic", date: "2026-11-30", source: source)
            let v = try PublishedCalibration.predictedValue(f, hardware: h, model: try c.model(model), efficiency: truth)
            if ttft { f.ttftMs = v } else { f.outputTokensPerSecond = v }
            return f
        }
        let figures = [
            try figure("llama-3.1-8b", tp: 1, batch: 256, isl: 128, osl: 128),
            try figure("llama-3.1-8b", tp: 1, batch: 64, isl: 128, osl: 2048),
            try figure("llama-3.1-8b", tp: 1, batch: nil, isl: 2048, osl: 128),
            try figure("llama-3.1-8b", tp: 1, batch: 1, isl: 2048, osl: nil, ttft: true),
            try figure("llama-3.1-8b", tp: 1, batch: 1, isl: 128, osl: nil, ttft: true),
            try figure("llama-3.1-70b", tp: 2, batch: 32, isl: 1000, osl: 1000),
        ]
        let fit = try XCTUnwrap(PublishedCalibration.fit(hardware: h, published: figures, models: c.models))
        XCTAssertTrue(fit.result.computeFitted && fit.result.bandwidthFitted)
        XCTAssertEqual(fit.efficiency.compute, 0.6, accuracy: 0.006)
        XCTAssertEqual(fit.efficiency.bandwidth, 0.8, accuracy: 0.008)
        XCTAssertLessThan(fit.worstAbsErrorPercent, 1)
        XCTAssertTrue(fit.label.hasPrefix("fitted to 6 published measurements at fp8 (synthetic, 2026-11-30): compute 0.6"), fit.label)
        // Off by a known factor: throughputs 20 % high give a faster GPU, not the same one.
        let fast = figures.map { f -> PublishedMeasurement in
            var g = f
            if let t = g.outputTokensPerSecond { g.outputTokensPerSecond = t * 1.2 } else { g.ttftMs = g.ttftMs! / 1.2 }
            return g
        }
        let faster = try XCTUnwrap(PublishedCalibration.fit(hardware: h, published: fast, models: c.models))
        XCTAssertEqual(faster.efficiency.compute, 0.72, accuracy: 0.0072)
        XCTAssertEqual(faster.efficiency.bandwidth, 0.96, accuracy: 0.0096)
    }

    /// Every built-in fit states the leave-one-out errors a fit made without each figure really has: recomputed
    /// here from the catalog with that figure removed, the prediction and the stated median and worst agree; and
    /// the fit on all points reproduces each figure within the stated worst.
    func testEachGPUReproducesItsPublishedFiguresWithinItsStatedError() throws {
        let c = try Catalog.builtin()
        let fits = PublishedCalibration.fits(hardware: c.hardware, published: c.published, models: c.models)
        XCTAssertEqual(Set(fits.map(\.hardware)), ["h100-sxm", "h200", "a100-80g", "l40s"])
        for f in fits {
            let h = try c.hardware(f.hardware)
            var errors: [Double] = []
            for r in f.rows where r.measurement.role == .fit {
                let rest = c.published.filter { $0.key != r.measurement.key }
                let without = try XCTUnwrap(PublishedCalibration.fit(hardware: h, published: rest, models: c.models, leaveOneOut: false))
                let predicted = try PublishedCalibration.predictedValue(r.measurement, hardware: h, model: try c.model(r.measurement.model),
                                                                        efficiency: without.efficiency)
                XCTAssertEqual(predicted, r.predictedWithout, accuracy: abs(predicted) * 1e-9, "\(f.hardware) \(r.measurement.configuration)")
                errors.append(abs(predicted / r.measurement.value - 1) * 100)
                XCTAssertLessThanOrEqual(abs(r.predicted / r.measurement.value - 1) * 100, f.worstAbsErrorPercent + 1e-9,
                                         "\(f.hardware) \(r.measurement.configuration): the full fit misses by more than the stated worst")
            }
            errors.sort()
            XCTAssertEqual(f.medianAbsErrorPercent, Summary.percentile(errors, 0.5), accuracy: 1e-9)
            XCTAssertEqual(f.worstAbsErrorPercent, errors.last!, accuracy: 1e-9)
            XCTAssertTrue(f.label.contains(String(format: "leave-one-out median |error| %.1f %%, worst %.1f %%", f.medianAbsErrorPercent,
                                                  f.worstAbsErrorPercent)), f.label)
            if f.applied {
                XCTAssertTrue(f.label.hasPrefix("fitted to \(errors.count) published measurements at \(f.rows[0].measurement.precision.rawValue) (NVIDIA TensorRT-LLM"),
                              f.label)
            } else {
                // Past the roofline: not used, and the label says so and why.
                XCTAssertTrue(f.efficiency.compute > 1 || f.efficiency.bandwidth > 1)
                XCTAssertTrue(f.label.hasPrefix("default efficiencies, uncalibrated: the \(errors.count) published measurements at"), f.label)
                XCTAssertTrue(f.label.contains("so the fit is not used"), f.label)
            }
            // A check is predicted by the fit it never entered, and says so by being absent from the count above.
            for r in f.rows where r.measurement.role == .check { XCTAssertEqual(r.predicted, r.predictedWithout) }
        }
    }

    func testAGPUWithoutPublishedPointsKeepsTheDefaultsAndSaysUncalibrated() throws {
        let c = try Catalog.builtin()
        let l4 = try c.hardware("l4")
        XCTAssertNil(PublishedCalibration.fit(hardware: l4, published: c.published, models: c.models))
        XCTAssertTrue(PublishedCalibration.fits(hardware: [l4], published: c.published, models: c.models).isEmpty)
        XCTAssertEqual(l4.efficiency, c.defaultEfficiency?.efficiency)
        XCTAssertTrue(l4.calibration.hasPrefix("default efficiencies, uncalibrated"), l4.calibration)
        // A fit applies only to its own GPU, and there only at the precisions it was measured at (fp16 and bf16 share one).
        let h100 = try XCTUnwrap(PublishedCalibration.fit(hardware: try c.hardware("h100-sxm"), published: c.published, models: c.models))
        XCTAssertEqual(h100.precisions, [.fp8])
        XCTAssertEqual(l4.applying(h100), l4)
        // H100's fp8 fit — to the v0.9.0 figures, which state their batch and FP8 KV cache — stays within the
        // roofline and is used.
        XCTAssertTrue(h100.applied, h100.label)
        XCTAssertLessThanOrEqual(max(h100.efficiency.compute, h100.efficiency.bandwidth), 1)
        XCTAssertEqual(try c.hardware("h100-sxm").applying(h100).efficiency(.fp8), h100.efficiency)
        // Fitted to its v1.0 figures instead (no batch stated: the planner's batch of at most 256 and a 16-bit KV
        // cache), it would need a bandwidth efficiency above 1: such a fit is not used, and the fp8 label says why.
        let v10 = c.published.filter { $0.hardware == "h100-sxm" && $0.date.hasPrefix("v1.0") }
            .map { m -> PublishedMeasurement in var m = m; m.role = .fit; return m }
        XCTAssertEqual(v10.count, 7)
        let pastRoofline = try XCTUnwrap(PublishedCalibration.fit(hardware: try c.hardware("h100-sxm"), published: v10, models: c.models))
        XCTAssertFalse(pastRoofline.applied)
        XCTAssertGreaterThan(pastRoofline.efficiency.bandwidth, 1)
        XCTAssertTrue(pastRoofline.label.contains("so the fit is not used"), pastRoofline.label)
        let notUsed = try c.hardware("h100-sxm").applying(pastRoofline)
        XCTAssertEqual(notUsed.efficiency(.fp8), c.defaultEfficiency?.efficiency)
        XCTAssertEqual(notUsed.calibration(.fp8), pastRoofline.label)
        XCTAssertEqual(RooflineExecutionTime(model: try c.model("llama-3.1-8b"), precision: .fp8, hardware: notUsed).roofline.efficiency,
                       c.defaultEfficiency?.efficiency)
        let a100 = try XCTUnwrap(PublishedCalibration.fit(hardware: try c.hardware("a100-80g"), published: c.published, models: c.models))
        XCTAssertEqual(a100.precisions, [.bf16, .fp16])
        XCTAssertTrue(a100.applied)
        let fitted = try c.hardware("a100-80g").applying(a100)
        XCTAssertEqual(fitted.efficiency(.fp16), a100.efficiency)
        XCTAssertEqual(fitted.calibration(.bf16), a100.label)
        XCTAssertEqual(fitted.efficiency(.int8), c.defaultEfficiency?.efficiency)
        XCTAssertTrue(fitted.calibration(.int8).hasPrefix("default efficiencies, uncalibrated"))
        // The roofline the planner predicts with takes the fit at its precisions only.
        XCTAssertEqual(RooflineExecutionTime(model: try c.model("llama-3.1-8b"), precision: .bf16, hardware: fitted).roofline.efficiency, a100.efficiency)
        XCTAssertEqual(RooflineExecutionTime(model: try c.model("llama-3.1-8b"), precision: .int4, hardware: fitted).roofline.efficiency,
                       c.defaultEfficiency?.efficiency)
        // No built-in fit that is used predicts past the roofline.
        for h in c.hardware where h.kind != .local {
            for f in PublishedCalibration.fits(hardware: h, published: c.published, models: c.models) where f.applied {
                XCTAssertLessThanOrEqual(max(f.efficiency.compute, f.efficiency.bandwidth), 1, f.hardware)
            }
        }
        // A calibration from the user's own endpoint measurements takes precedence over the published fit, at every precision.
        let own = Efficiency(compute: 0.4, bandwidth: 0.5)
        let endpoint = EndpointCalibration(hardware: "a100-80g", endpoint: "prod", runID: 1, devices: 1, precision: .fp16, model: "llama-3.1-8b",
                                           result: Calibration.calibrate([], fallback: own, fallbackLabel: "x"), points: [], label: "mine")
        let overridden = fitted.applying(endpoint)
        XCTAssertEqual(overridden.efficiency(.fp16), own)
        XCTAssertEqual(overridden.calibration(.bf16), "mine")
        // One point is too few to fit: the GPU stays uncalibrated.
        let one = c.published.filter { $0.hardware == "l40s" }.prefix(1)
        XCTAssertNil(PublishedCalibration.fit(hardware: try c.hardware("l40s"), published: Array(one), models: c.models))
    }
}
