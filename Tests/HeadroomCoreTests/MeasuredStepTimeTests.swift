// The execution-time model fitted to measured steps: it recovers a formula of its own form, interpolates and
// extrapolates linearly, computes leave-one-out errors as worked by hand, and refuses shapes that cannot fit it.
import XCTest
@testable import HeadroomCore

final class MeasuredStepTimeTests: XCTestCase {
    func prefill(_ t: Int, after past: Int = 0) -> StepParams { StepParams(model: "m", precision: "q4_0", prefillTokens: t, pastTokens: past) }
    func decode(_ d: Int, at context: Int) -> StepParams { StepParams(model: "m", precision: "q4_0", decodes: d, context: context) }
    func mixed(_ t: Int, _ d: Int, at context: Int, after past: Int = 0) -> StepParams {
        StepParams(model: "m", precision: "q4_0", prefillTokens: t, pastTokens: past, decodes: d, context: context)
    }

    /// A machine whose steps follow the model's own form: a lone decode on a faster kernel, decode rows and chunk
    /// rows linear beyond that, and a cost per key.
    func truth(_ b: BatchShape) -> Double {
        let r = MeasuredStepTime.rows(b)
        let fd = r.decode == 0 ? 0 : r.decode == 1 ? 0.020 : 0.028 + 0.0015 * r.decode
        let fc = r.chunk == 0 ? 0 : 0.045 + 0.0075 * r.chunk
        return fd + fc + 3e-7 * b.attendedKeys
    }

    var standardShapes: [StepParams] {
        [1, 8, 32, 64, 128, 256, 512].map { prefill($0) } + [prefill(128, after: 256)]
            + [128, 1024].flatMap { c in [1, 2, 4, 8, 16, 32].map { decode($0, at: c) } }
            + [mixed(8, 32, at: 1024), mixed(64, 8, at: 128), mixed(128, 16, at: 512, after: 256), mixed(224, 32, at: 128)]
    }

    func testFitOnAKnownFormulaRecoversIt() throws {
        let points = standardShapes.map { StepTimePoint(params: $0, seconds: truth($0.shape), samples: 5) }
        let fit = try MeasuredStepTime(points: points, model: "m", precision: "q4_0", threads: 2, runID: 7)
        XCTAssertEqual(fit.secondsPerKey, 3e-7, accuracy: 3e-9)
        XCTAssertEqual(fit.decodeRows.knots, [1, 2, 4, 8, 16, 32])
        XCTAssertEqual(fit.chunkRows.knots, [16, 32, 64, 128, 256, 512], "a 1-token chunk is a decode row; 8 rows go to sgemm padded to 16 (`PrefillKernel`)")
        // Shapes never measured: between the knots, beyond them, other contexts, mixed, several chunks.
        var several = BatchShape()
        several.addPrefill(tokens: 100, pastTokens: 20)
        several.addPrefill(tokens: 60, pastTokens: 0, samples: false)
        for _ in 0..<5 { several.addDecode(context: 333) }
        let shapes = [decode(3, at: 300).shape, decode(24, at: 700).shape, decode(64, at: 100).shape, prefill(100, after: 50).shape,
                      prefill(700).shape, prefill(2048).shape, mixed(480, 32, at: 900).shape, several]
        for s in shapes {
            XCTAssertEqual(fit.iterationSeconds(s), truth(s), accuracy: truth(s) * 0.01, "\(s)")
        }
        // Every fitted shape's leave-one-out prediction and every held-out one is right too (a lone decode is
        // measured at two contexts and as a 1-token chunk, so leaving one out keeps its kernel's knot).
        XCTAssertEqual(fit.checks.count, points.count)
        XCTAssertEqual(fit.checks.filter(\.heldOut).map(\.point.params), points.map(\.params).filter(\.isMixed))
        for c in fit.checks {
            XCTAssertEqual(try XCTUnwrap(c.relativeError), 0, accuracy: 0.01, c.point.params.label)
        }
        XCTAssertEqual(fit.heldOut?.worst ?? 1, 0, accuracy: 0.01)
        XCTAssertTrue(fit.basis.hasPrefix("steps measured in run 7 (m q4_0, 2 threads; 20 shapes; leave-one-out median 0 %"), fit.basis)
        XCTAssertTrue(fit.basis.contains("4 mixed held out: median 0 %, worst 0 %"), fit.basis)
        XCTAssertEqual(fit.iterationSeconds(BatchShape()), 0)
    }

    /// The batched decode kernel's groups (16, 8, 4, 2, 1, largest first) worked by hand, and a machine whose
    /// decode steps pay 11 ms for each pass a batch adds beyond whole groups: with 3 and 12 decodes measured (one
    /// extra pass each) the fit recovers the 11 ms and prices 5, 6, 7, 13 and 23 decodes it never saw, where a
    /// line through the whole-group knots alone is off by up to 22 ms.
    func testExtraPassesOfTheBatchedDecodeKernelAreFittedAndPriced() throws {
        let passes = [0: 0, 1: 1, 2: 1, 3: 2, 4: 1, 5: 2, 6: 2, 7: 3, 8: 1, 12: 2, 15: 4, 16: 1, 17: 2, 24: 2, 31: 5, 32: 2]
        for (b, n) in passes { XCTAssertEqual(BatchedDecodeKernel.passes(batch: b), n, "batch \(b)") }
        let extra = [1: 0, 2: 0, 3: 1, 4: 0, 7: 2, 8: 0, 12: 1, 16: 0, 20: 0, 23: 2, 24: 0, 32: 0, 35: 1]
        for (b, n) in extra { XCTAssertEqual(BatchedDecodeKernel.remainderExtraPasses(batch: b), n, "batch \(b)") }
        XCTAssertEqual(RegimePoint.extraPasses(batch: 24), 1, "the regime model counts every pass beyond the first")

        let e = 0.011
        func truthWithPasses(_ b: BatchShape) -> Double {
            truth(b) + e * Double(BatchedDecodeKernel.remainderExtraPasses(batch: MeasuredStepTime.rows(b).decode > 1 ? Int(MeasuredStepTime.rows(b).decode) : 0))
        }
        let shapes = standardShapes + [128, 1024].flatMap { c in [3, 12].map { decode($0, at: c) } } + [mixed(32, 5, at: 1024)]
        let points = shapes.map { StepTimePoint(params: $0, seconds: truthWithPasses($0.shape), samples: 5) }
        let fit = try MeasuredStepTime(points: points, model: "m", precision: "q4_0", threads: 2)
        XCTAssertEqual(fit.secondsPerExtraPass, e, accuracy: 1e-4)
        XCTAssertTrue(fit.extraPassesMeasured)
        XCTAssertEqual(fit.decodeRows.knots, [1, 2, 4, 8, 16, 32], "3 and 12 are not knots: they price the passes")
        for d in [5, 6, 7, 13, 23] {
            let s = decode(d, at: 400).shape
            XCTAssertEqual(fit.iterationSeconds(s), truthWithPasses(s), accuracy: truthWithPasses(s) * 0.01, "decode \(d)")
        }
        for c in fit.checks {
            XCTAssertEqual(try XCTUnwrap(c.relativeError), 0, accuracy: 0.01, c.point.params.label)
        }
        XCTAssertFalse(fit.basis.contains("priced at 0"), fit.basis)

        // Without them the passes cannot be told apart from the line, and the basis says what was assumed.
        let plain = try MeasuredStepTime(points: standardShapes.map { StepTimePoint(params: $0, seconds: truth($0.shape), samples: 5) },
                                         model: "m", precision: "q4_0", threads: 2)
        XCTAssertEqual(plain.secondsPerExtraPass, 0)
        XCTAssertFalse(plain.extraPassesMeasured)
        XCTAssertTrue(plain.basis.contains("the kernel's extra passes priced at 0"), plain.basis)
    }

    func testInterpolationAndLinearExtrapolation() throws {
        let f = PiecewiseLinear(knots: [8, 32, 128], values: [10, 20, 50])
        XCTAssertEqual(f(0), 0)
        XCTAssertEqual(f(-3), 0)
        XCTAssertEqual(f(8), 10)
        XCTAssertEqual(f(20), 15, accuracy: 1e-12)
        XCTAssertEqual(f(80), 35, accuracy: 1e-12)
        XCTAssertEqual(f(128), 50, accuracy: 1e-12)
        XCTAssertEqual(f(256), 90, accuracy: 1e-12, "beyond the last knot: the last segment's slope, not flat")
        XCTAssertEqual(f(1024), 50 + 896 * 30.0 / 96, accuracy: 1e-9)
        XCTAssertEqual(f(4), 10 - 4 * 10.0 / 24, accuracy: 1e-12, "below the first: the first segment's slope")
        let steep = PiecewiseLinear(knots: [8, 16], values: [1, 10])
        XCTAssertEqual(steep(2), 0, "floored at zero")

        // Through the predictor: a chunk past the longest measured grows by the last segment's slope.
        let points = standardShapes.map { StepTimePoint(params: $0, seconds: truth($0.shape), samples: 5) }
        let fit = try MeasuredStepTime(points: points, model: "m", precision: "q4_0", threads: 2)
        let step = { (t: Int) in fit.iterationSeconds(self.prefill(t).shape) - fit.secondsPerKey * self.prefill(t).shape.attendedKeys }
        XCTAssertEqual(step(1024) - step(512), 512 * 0.0075, accuracy: 1e-6)
        XCTAssertEqual(step(768) - step(512), 256 * 0.0075, accuracy: 1e-6)
        XCTAssertTrue(fit.basis.hasPrefix("steps measured (m q4_0, 2 threads;"), fit.basis)
    }

    /// Fitted steps: decodes 1, 2, 4 at context 0 (one key each) and 2 at context 100, chunks of 16, 32 and 64
    /// tokens (multiples of 16: the engine pads chunk rows to one); times that a = 0 and Fd = (1, 2, 3), Fc = (10, 12, 20) fit exactly. Leaving one out:
    /// - decode 1: Fd through (2, 2), (4, 3) extended down: 1.5 → +50 %;
    /// - decode 2 at 0, or at 100: 6 steps for 7 terms → no prediction;
    /// - decode 4: Fd through (1, 1), (2, 2) extended up: 4 → +33.3 %;
    /// - chunk 16: Fc through (32, 12), (64, 20) extended down: 8 → −20 %;
    /// - chunk 32: between (16, 10) and (64, 20): 13.33 → +11.1 %;
    /// - chunk 64: Fc through (16, 10), (32, 12) extended up: 16 → −20 %.
    /// |errors| 11.1, 20, 20, 33.3, 50: median 20 %, worst 50 %, 5 of 7.
    func testLeaveOneOutErrorsOnAHandWorkedExample() throws {
        let points = [(decode(1, at: 0), 1.0), (decode(2, at: 0), 2), (decode(4, at: 0), 3), (decode(2, at: 100), 2),
                      (prefill(16), 10), (prefill(32), 12), (prefill(64), 20)].map { StepTimePoint(params: $0.0, seconds: $0.1, samples: 1) }
        let fit = try MeasuredStepTime(points: points, model: "m", precision: "q4_0", threads: 1)
        XCTAssertEqual(fit.secondsPerKey, 0, accuracy: 1e-12)
        XCTAssertEqual(fit.decodeRows.values[0], 1, accuracy: 1e-9)
        XCTAssertEqual(fit.decodeRows.values[1], 2, accuracy: 1e-9)
        XCTAssertEqual(fit.decodeRows.values[2], 3, accuracy: 1e-9)
        XCTAssertEqual(fit.chunkRows.values[2], 20, accuracy: 1e-9)
        let expected: [Double?] = [0.5, nil, 1.0 / 3, nil, -0.2, 1.0 / 9, -0.2]
        XCTAssertEqual(fit.checks.count, 7)
        for (c, e) in zip(fit.checks, expected) {
            if let e {
                XCTAssertEqual(try XCTUnwrap(c.relativeError, c.point.params.label), e, accuracy: 1e-9, c.point.params.label)
            } else {
                XCTAssertNil(c.predictedSeconds, c.point.params.label)
            }
        }
        let loo = try XCTUnwrap(fit.leaveOneOut)
        XCTAssertEqual(loo.median, 0.2, accuracy: 1e-9)
        XCTAssertEqual(loo.worst, 0.5, accuracy: 1e-9)
        XCTAssertEqual(loo.count, 5)
        XCTAssertEqual(loo.of, 7)
        XCTAssertNil(fit.heldOut)
        XCTAssertEqual(fit.basis, "steps measured (m q4_0, 1 thread; 7 shapes; leave-one-out median 20 %, worst 50 %; no decode batch of 3, 5, 6, 7, 12, … measured: the kernel's extra passes priced at 0)")
    }

    func testTooFewShapesAreRefusedWithTheReason() {
        func fitError(_ params: [StepParams]) -> String {
            let points = params.map { StepTimePoint(params: $0, seconds: truth($0.shape), samples: 1) }
            do {
                _ = try MeasuredStepTime(points: points, model: "m", precision: "q4_0", threads: 1)
                return "no error"
            } catch { return "\(error)" }
        }
        XCTAssertEqual(fitError([decode(1, at: 8), decode(4, at: 8), decode(4, at: 64)]),
                       "too few step shapes to fit: prefill chunks alone of 2 lengths above 1 token at least are needed (got [])")
        XCTAssertEqual(fitError([decode(4, at: 8), decode(4, at: 64), prefill(8), prefill(64), mixed(8, 2, at: 4)]),
                       "too few step shapes to fit: decodes alone at 2 batch sizes the kernel takes in whole groups (1, 2, 4, 8, 16, 32, …) at least are needed (got [4])",
                       "a mixed step is never fitted")
        XCTAssertEqual(fitError([decode(1, at: 8), decode(4, at: 8), prefill(8), prefill(64)]),
                       "too few step shapes to fit: the shapes do not separate attention from rows: measure decodes at two contexts, or a chunk after cached positions")
        XCTAssertEqual(fitError([]), "too few step shapes to fit: decodes alone at 2 batch sizes the kernel takes in whole groups (1, 2, 4, 8, 16, 32, …) at least are needed (got [])")

        // From cases: one configuration only, and each with its samples.
        func c(_ p: StepParams, threads: Int = 2, seconds: Double? = 0.1) -> MeasuredCase {
            MeasuredCase(kind: .step, name: "m", threads: threads, params: p.params,
                         samples: seconds.map { [.init(metric: "step_seconds", unit: "s", repetition: 0, value: $0)] } ?? [])
        }
        XCTAssertThrowsError(try MeasuredStepTime(cases: [c(decode(1, at: 8)), c(decode(2, at: 8), threads: 1)])) {
            XCTAssertEqual("\($0)", "cannot fit step times: the cases mix m q4_0 on 2 threads with m q4_0 on 1")
        }
        XCTAssertThrowsError(try MeasuredStepTime(cases: [c(decode(1, at: 8), seconds: nil)])) {
            XCTAssertEqual("\($0)", "cannot fit step times: case m (decode 1 at 8) has no step_seconds")
        }
        XCTAssertThrowsError(try MeasuredStepTime(cases: [])) { XCTAssertEqual("\($0)", "cannot fit step times: no step cases") }
        XCTAssertEqual(StepFitError.notMeasured(model: "small", precision: "q4_0", threads: 2, store: "h.sqlite").description,
                       "h.sqlite: no complete run holds steps measured for small q4_0 on 2 threads; "
                       + "run `headroom bench steps --model small --precision q4_0 --threads 2` first")
    }

    func testStepParamsAndTheShapeTheyDescribe() {
        let p = mixed(128, 16, at: 512, after: 256)
        XCTAssertEqual(p.params, ["model": "m", "precision": "q4_0", "prefill_tokens": "128", "past_tokens": "256", "decodes": "16", "context": "512"])
        XCTAssertEqual(StepParams(params: p.params), p)
        XCTAssertNil(StepParams(params: decode(0, at: 4).params), "a step of no token")
        XCTAssertNil(StepParams(params: ["model": "m", "precision": "f32", "prefill_tokens": "-1", "past_tokens": "0", "decodes": "1", "context": "0"]))
        XCTAssertEqual(p.label, "prefill 128 after 256 + decode 16 at 512")
        XCTAssertEqual(decode(8, at: 1024).label, "decode 8 at 1024")
        XCTAssertTrue(p.isMixed)
        XCTAssertFalse(prefill(64).isMixed)
        let s = p.shape
        XCTAssertEqual(s.tokens, 144)
        XCTAssertEqual(s.sampledSequences, 17)
        XCTAssertEqual(s.attendedKeys, 128 * (256 + 129 / 2.0) + 16 * 513)
        // The engine lays out 1-token chunks as decode rows.
        XCTAssertEqual(MeasuredStepTime.rows(prefill(1).shape).decode, 1)
        XCTAssertEqual(MeasuredStepTime.rows(prefill(1).shape).chunk, 0)
        XCTAssertEqual(MeasuredStepTime.rows(p.shape).decode, 16)
        XCTAssertEqual(MeasuredStepTime.rows(p.shape).chunk, 128)
    }
}
