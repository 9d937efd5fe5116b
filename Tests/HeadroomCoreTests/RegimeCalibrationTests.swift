// The per-regime local execution-time model: fits worked by hand, the points a run's cases give, leave-one-out
// within a regime, and the predictor the planner prices `local` with.
import XCTest
@testable import HeadroomCore
import HeadroomScheduling

final class RegimeCalibrationTests: XCTestCase {
    let tiny = ModelShape(id: "tiny", name: "tiny", layers: 2, dim: 64, heads: 4, kvHeads: 4, ffnDim: 128, vocab: 100, context: 256, source: "t")

    func point(_ kernel: KernelRegime, size: Int, memory: Double, compute: Double, measured: Double, threads: Int = 1,
               format: String = "fp32") -> RegimePoint {
        RegimePoint(label: "\(kernel.rawValue) \(size)", key: RegimeKey(kernel: kernel, format: format, threads: threads), size: size,
                    memorySeconds: memory, computeSeconds: compute, measuredSeconds: measured, samples: 3)
    }

    func testALineThroughThreeSizesIsRecoveredAndPredictsEachPointLeftOut() throws {
        // t = 1.6 m + 1.3 c: one pass over 10 ms of weights, 2 ms of compute per row (sizes of one pass each).
        let pts = [2, 4, 16].map { b in point(.decodeBatch, size: b, memory: 0.010, compute: 0.002 * Double(b), measured: 1.6 * 0.010 + 1.3 * 0.002 * Double(b)) }
        let m = try XCTUnwrap(RegimeModel.fit(pts))
        XCTAssertNil(m.factor)
        XCTAssertEqual(m.a, 1.6, accuracy: 1e-9)
        XCTAssertEqual(m.b, 1.3, accuracy: 1e-9)
        XCTAssertEqual(m.summary, "1.60 × memory + 1.30 × compute time")
        let cal = RegimeCalibration(points: pts)
        XCTAssertEqual(cal.fits.count, 1)
        for c in cal.checks { XCTAssertEqual(try XCTUnwrap(c.errorPercent), 0, accuracy: 1e-6, c.point.label) }
        XCTAssertEqual(cal.medianAbsErrorPercent ?? -1, 0, accuracy: 1e-6)
    }

    func testTheBatchedDecodeKernelsPassesOverARowAreCountedAsTheKernelGroupsSequences() {
        // Groups of 16, 8, 4, 2, 1, largest first: 3 = 2+1, 5 = 4+1, 6 = 4+2, 7 = 4+2+1, 24 = 16+8, 31 = 16+8+4+2+1.
        let expected = [1: 0, 2: 0, 3: 1, 4: 0, 5: 1, 6: 1, 7: 2, 8: 0, 16: 0, 24: 1, 31: 4, 64: 3]
        for (b, e) in expected { XCTAssertEqual(RegimePoint.extraPasses(batch: b), e, "batch \(b)") }
    }

    func testExtraPassesGetACoefficientOfTheirOwn() throws {
        // t = 1.5 m + 2 c + 0.3 · extra · m, at batches 2, 3, 8 and two contexts each.
        var pts: [RegimePoint] = []
        for b in [2, 3, 8] {
            for m in [0.010, 0.011] {
                let c = 0.001 * Double(b), e = RegimePoint.extraPasses(batch: b)
                pts.append(RegimePoint(label: "b\(b)", key: RegimeKey(kernel: .decodeBatch, format: "int4", threads: 1), size: b, memorySeconds: m,
                                       computeSeconds: c, measuredSeconds: 1.5 * m + 2 * c + 0.3 * Double(e) * m, samples: 3, extraPasses: e))
            }
        }
        let model = try XCTUnwrap(RegimeModel.fit(pts))
        XCTAssertEqual(model.a, 1.5, accuracy: 1e-9); XCTAssertEqual(model.b, 2, accuracy: 1e-9); XCTAssertEqual(model.c, 0.3, accuracy: 1e-9)
        XCTAssertNil(model.segments, "a regime with extra passes keeps one model")
        XCTAssertEqual(model.seconds(memory: 0.01, compute: 0.006, size: 6, extraPasses: 1), 1.5 * 0.01 + 2 * 0.006 + 0.3 * 0.01, accuracy: 1e-15)
    }

    func testABendIsFollowedByALinePerPairOfAdjacentSizes() throws {
        // A bend: 1 s per unit of compute up to size 48, 0.5 s per unit beyond (memory term fixed at 0.1 s, a = 1). With
        // four sizes the piecewise form predicts each left-out point better than one line, so it is chosen.
        func t(_ size: Int) -> Double { let c = Double(size) * 0.01; return 0.1 + (size <= 48 ? c : 0.48 + 0.5 * (c - 0.48)) }
        let pts = [16, 32, 48, 64, 128].map { point(.prefill, size: $0, memory: 0.1, compute: Double($0) * 0.01, measured: t($0)) }
        let m = try XCTUnwrap(RegimeModel.fit(pts))
        let segs = try XCTUnwrap(m.segments)
        XCTAssertEqual(segs.map(\.high), [32, 48, 64, 128])
        // Each segment passes through its two sizes exactly, and a size between them is on that segment's line.
        for p in pts { XCTAssertEqual(m.seconds(memory: 0.1, compute: p.computeSeconds, size: p.size), p.measuredSeconds, accuracy: 1e-9) }
        XCTAssertEqual(m.seconds(memory: 0.1, compute: 0.96, size: 96), segs[3].a * 0.1 + segs[3].b * 0.96, accuracy: 1e-15)
        // A straight regime keeps one line.
        let straight = [16, 32, 48, 64, 128].map { point(.prefill, size: $0, memory: 0.1, compute: Double($0) * 0.01, measured: 0.1 + Double($0) * 0.01) }
        XCTAssertNil(try XCTUnwrap(RegimeModel.fit(straight)).segments)
        XCTAssertEqual(m.seconds(memory: 0.1, compute: 0.08, size: 8), segs[0].a * 0.1 + segs[0].b * 0.08, accuracy: 1e-15, "below the first size: the first segment")
    }

    func testOneSizeFitsOneFactorOnTheRoofline() throws {
        // Roofline max(1.0, 0.2) = 1 s for both; measured 1.2 s and 1.3 s: k = Σq/Σq² with q = 1/1.2, 1/1.3.
        let pts = [point(.decodeOne, size: 1, memory: 1.0, compute: 0.2, measured: 1.2), point(.decodeOne, size: 1, memory: 1.0, compute: 0.2, measured: 1.3)]
        let m = try XCTUnwrap(RegimeModel.fit(pts))
        let (q1, q2) = (1 / 1.2, 1 / 1.3)
        XCTAssertEqual(try XCTUnwrap(m.factor), (q1 + q2) / (q1 * q1 + q2 * q2), accuracy: 1e-12)
        // Leave one out: each predicted by the other alone (factor = its ratio): 1.3 predicted 1.2, −7.7 %.
        let cal = RegimeCalibration(points: pts)
        XCTAssertEqual(try XCTUnwrap(cal.checks[1].errorPercent), (1.2 / 1.3 - 1) * 100, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(cal.checks[0].predictedSeconds), 1.3, accuracy: 1e-12)
    }

    func testANegativeCoefficientIsNotFittedTheBetterSingleTermIs() throws {
        // Time falls as compute grows: the free fit wants b < 0; the non-negative one keeps a alone.
        let pts = [point(.gemm, size: 2, memory: 1, compute: 0.1, measured: 2.0), point(.gemm, size: 8, memory: 1, compute: 0.4, measured: 1.8)]
        let m = try XCTUnwrap(RegimeModel.fit(pts))
        XCTAssertEqual(m.b, 0)
        XCTAssertGreaterThan(m.a, 1.8)
        XCTAssertLessThan(m.a, 2.0)
    }

    func testAPointAloneInItsRegimeIsPredictedByTheNearestThreadCountAndSaysSo() throws {
        let pts = [point(.decodeOne, size: 1, memory: 1, compute: 0.1, measured: 1.1, threads: 1),
                   point(.decodeOne, size: 1, memory: 1, compute: 0.1, measured: 1.2, threads: 1),
                   point(.decodeOne, size: 1, memory: 0.5, compute: 0.05, measured: 0.7, threads: 2)]
        let cal = RegimeCalibration(points: pts)
        let alone = cal.checks[2]
        XCTAssertEqual(alone.via, "decode batch 1 fp32 ×1t")
        XCTAssertNotNil(alone.predictedSeconds)
        XCTAssertNil(cal.checks[0].via)
        // Held out: a 4-thread point uses the 2-thread fit, the nearest.
        let held = cal.check([point(.decodeOne, size: 1, memory: 0.3, compute: 0.03, measured: 0.4, threads: 4)])
        XCTAssertEqual(held[0].via, "decode batch 1 fp32 ×2t")
        XCTAssertEqual(try XCTUnwrap(held[0].predictedSeconds), 0.3 * 0.7 / 0.5, accuracy: 1e-9)
        // No regime of that kernel and format at all: no prediction, counted apart.
        let none = cal.check([point(.prefill, size: 16, memory: 1, compute: 1, measured: 1)])
        XCTAssertNil(none[0].predictedSeconds)
        XCTAssertEqual(RegimeCalibration.errors(none).unchecked, 1)
    }

    func probe() -> ProbeFigures {
        ProbeFigures(cases: [
            MeasuredCase(kind: "probe", name: "sgemm", threads: 2, params: [:], samples: [.init(metric: "gflops", unit: "GFLOP/s", repetition: 0, value: 300)]),
            MeasuredCase(kind: "probe", name: "read_rows", threads: 2, params: [:], samples: [.init(metric: "gbps", unit: "GB/s", repetition: 0, value: 30)]),
        ])
    }

    func inference(batch: Int, prompt: Int, prefill: Double, decode: Double, precision: String = "q4_0") -> MeasuredCase {
        MeasuredCase(kind: "inference", name: "i", threads: 2,
                     params: ["model": "tiny", "precision": precision, "prompt_tokens": "\(prompt)", "batch": "\(batch)", "generate_tokens": "4"],
                     samples: [.init(metric: "decode_tokens_per_s", unit: "tok/s", repetition: 0, value: decode),
                               .init(metric: "prefill_tokens_per_s", unit: "tok/s", repetition: 0, value: prefill)])
    }

    func testPointsFollowTheEnginesPassesAndMergeRepeatsOfOneConfiguration() throws {
        let gemm1 = MeasuredCase(kind: "gemm", name: "qkv", threads: 2, params: ["M": "1", "N": "2560", "K": "2048", "phase": "decode"],
                                 samples: [.init(metric: "seconds", unit: "s", repetition: 0, value: 0.002)])
        let gemm8 = MeasuredCase(kind: "gemm", name: "qkv", threads: 2, params: ["M": "8", "N": "2560", "K": "2048", "phase": "decode"],
                                 samples: [.init(metric: "seconds", unit: "s", repetition: 0, value: 0.003)])
        let cases = [gemm1, gemm8, inference(batch: 1, prompt: 16, prefill: 200, decode: 50), inference(batch: 4, prompt: 16, prefill: 100, decode: 160)]
        let pts = RegimeCalibration.points(cases: cases, probe: probe(), models: ["tiny": tiny])
        XCTAssertEqual(pts.map(\.key.kernel), [.gemmRow, .gemm, .prefill, .decodeOne, .decodeBatch])
        // GEMM M=8: 2·8·2560·2048 FLOPs at 300 GFLOP/s; (8·2048 + 2560·2048 + 8·2560)·4 bytes at 30 GB/s.
        XCTAssertEqual(pts[1].computeSeconds, 2 * 8 * 2560 * 2048 / 300e9, accuracy: 1e-15)
        XCTAssertEqual(pts[1].memorySeconds, Double(8 * 2048 + 2560 * 2048 + 8 * 2560) * 4 / 30e9, accuracy: 1e-15)
        // The prompt is prefilled once per case whatever the batch: one point, the mean of 16/200 and 16/100 s.
        XCTAssertEqual(pts[2].size, 16)
        XCTAssertEqual(pts[2].measuredSeconds, (16.0 / 200 + 16.0 / 100) / 2, accuracy: 1e-12)
        XCTAssertEqual(pts[2].samples, 2)
        let onePass = RegimePoint.terms(PerformanceModel.stepOps(tiny, .int4, .uniform(sequences: 1, newTokens: 16, pastTokens: 0),
                                                                 kvElementBytes: Double(EngineBytes.kvElement)), bandwidth: 30e9, peakFLOPs: 300e9)
        XCTAssertEqual(pts[2].memorySeconds, onePass.memory, accuracy: 1e-18)
        // Decode: a step of the batch (4 sequences at 160 tok/s: 25 ms), format int4, size 4.
        XCTAssertEqual(pts[4].measuredSeconds, 4.0 / 160, accuracy: 1e-12)
        XCTAssertEqual(pts[4].key, RegimeKey(kernel: .decodeBatch, format: "int4", threads: 2))
        XCTAssertEqual(pts[4].size, 4)
    }

    func testBatchShapeSplitsIntoDecodesAndMeanChunk() throws {
        var s = BatchShape()
        s.addDecode(context: 10); s.addDecode(context: 20)
        s.addPrefill(tokens: 8, pastTokens: 0); s.addPrefill(tokens: 8, pastTokens: 8, samples: false)
        let d = s.decodePart
        XCTAssertEqual(d.decodes, 2); XCTAssertEqual(d.tokens, 2); XCTAssertEqual(d.prefillChunks, 0)
        XCTAssertEqual(d.attendedKeys, 11 + 21)
        XCTAssertEqual(d.kvPositionsRead, 11 + 21)
        let c = try XCTUnwrap(s.meanChunk)
        XCTAssertEqual(c.prefillTokens, 8); XCTAssertEqual(c.prefillChunks, 1)
        XCTAssertEqual(c.attendedKeys * 2 + d.attendedKeys, s.attendedKeys, accuracy: 1e-9)
        XCTAssertEqual(c.kvPositionsRead * 2 + d.kvPositionsRead, s.kvPositionsRead)
        XCTAssertNil(d.meanChunk)
    }

    func local(_ fits: [RegimeFit]?) -> HardwareProfile {
        var h = HardwareProfile(id: "local", name: "this machine", kind: .local, peakTflops: ["fp32": 0.3], memoryGib: 16, bandwidthGbps: 30,
                                interconnect: Interconnect(kind: "none", bandwidthGbps: 0, latencyUs: 0), devicesPerNode: 1, powerWatts: 0,
                                efficiency: Efficiency(compute: 0.5, bandwidth: 0.5), calibration: "test", source: "test")
        h.regimeFits = fits; h.threads = 2
        return h
    }

    func testTheLocalPredictorPricesDecodesAndEachChunkByTheirRegimes() throws {
        func fit(_ k: KernelRegime, a: Double, b: Double) -> RegimeFit {
            RegimeFit(key: RegimeKey(kernel: k, format: "int4", threads: 2), model: RegimeModel(a: a, b: b, factor: nil), points: 3, sizes: [1, 2, 4],
                      medianAbsErrorPercent: 1, worstAbsErrorPercent: 2)
        }
        let h = local([fit(.decodeOne, a: 1.1, b: 1), fit(.decodeBatch, a: 1.5, b: 2), fit(.prefill, a: 3, b: 1.4)])
        let p = try XCTUnwrap(RegimeExecutionTime(model: tiny, precision: .int4, tensorParallel: 1, hardware: h))
        var s = BatchShape()
        for ctx in [5, 9, 13] { s.addDecode(context: ctx) }
        s.addPrefill(tokens: 6, pastTokens: 0); s.addPrefill(tokens: 6, pastTokens: 6)
        func terms(_ shape: BatchShape) -> (memory: Double, compute: Double) {
            RegimePoint.terms(PerformanceModel.stepOps(tiny, .int4, shape, kvElementBytes: h.kvElementBytes(.int4)), bandwidth: 30e9, peakFLOPs: 0.3e12)
        }
        // Each 6-token chunk is priced at the 16 rows the engine's sgemm multiplies (`PrefillKernel`).
        let d = terms(s.decodePart), c = terms(try XCTUnwrap(s.meanChunk).withPrefillRowsPadded)
        XCTAssertEqual(p.iterationSeconds(s), 1.5 * d.memory + 2 * d.compute + 2 * (3 * c.memory + 1.4 * c.compute), accuracy: 1e-15)
        var one = BatchShape(); one.addDecode(context: 5)
        let o = terms(one)
        XCTAssertEqual(p.iterationSeconds(one), 1.1 * o.memory + o.compute, accuracy: 1e-15)
        // A format without regimes: none (the planner keeps the roofline). One with some: the others' parts by the
        // roofline with the profile's efficiencies, and the basis says so.
        XCTAssertNil(RegimeExecutionTime(model: tiny, precision: .fp32, tensorParallel: 1, hardware: h))
        let partial = try XCTUnwrap(RegimeExecutionTime(model: tiny, precision: .int4, tensorParallel: 1, hardware: local([fit(.prefill, a: 3, b: 1.4)])))
        let roof = RooflineExecutionTime(model: tiny, precision: .int4, hardware: h)
        XCTAssertEqual(partial.iterationSeconds(s), roof.iterationSeconds(s.decodePart) + 2 * (3 * c.memory + 1.4 * c.compute), accuracy: 1e-15)
        XCTAssertTrue(partial.basis.contains("decode batch 1, decode batch>1 not measured in int4"), partial.basis)
        // No fits, or more than one device: no regime predictor.
        XCTAssertNil(RegimeExecutionTime(model: tiny, precision: .int4, tensorParallel: 1, hardware: local(nil)))
        XCTAssertNil(RegimeExecutionTime(model: tiny, precision: .int4, tensorParallel: 2, hardware: h))
    }
}
