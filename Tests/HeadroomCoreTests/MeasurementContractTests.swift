// The measurement contract: case kinds as stored text, the metric registry's directions and normalisations
// (by kind), facts that never take part in matching, and the typed parameter views.
import Foundation
import XCTest
@testable import HeadroomCore

final class MeasurementContractTests: XCTestCase {
    func testCaseKindsAreTheirTextAndUnknownOnesSurvive() throws {
        XCTAssertEqual(CaseKind.known.map(\.rawValue), ["probe", "gemm", "inference", "finetune", "load", "step"])
        let c = MeasuredCase(kind: .gemm, name: "qkv", threads: 1, params: ["M": "1"], facts: ["isa": "avx2"], samples: [])
        let json = String(decoding: try JSONEncoder().encode(c), as: UTF8.self)
        XCTAssertTrue(json.contains(#""kind":"gemm""#), json)
        let odd = try JSONDecoder().decode(MeasuredCase.self, from: Data(#"{"kind":"quantum","name":"q","threads":1,"params":{},"samples":[]}"#.utf8))
        XCTAssertEqual(odd.kind, CaseKind("quantum"))
        XCTAssertFalse(odd.kind.isKnown)
        XCTAssertEqual(odd.facts, [:], "JSON written before facts existed")
    }

    func testRegistryDirectionsAndNormalisationByKind() {
        func rule(_ m: String, _ k: CaseKind) -> MetricRule? {
            if case .gated(let r) = MetricRules.treatment(of: m, kind: k) { return r }
            return nil
        }
        XCTAssertEqual(rule("ttft_ms", .inference), MetricRule(.lowerIsBetter, .multiply(.sgemm)))
        XCTAssertEqual(rule("ttft_ms", .load), MetricRule(.lowerIsBetter, .none), "an endpoint is not this machine")
        XCTAssertEqual(rule("tpot_ms", .load), MetricRule(.lowerIsBetter, .none))
        for m in ["itl_ms", "e2e_ms"] { XCTAssertEqual(rule(m, .load), MetricRule(.lowerIsBetter, .none), m) }
        for m in ["output_tokens_per_s", "requests_per_s", "goodput_per_s"] {
            XCTAssertEqual(rule(m, .load), MetricRule(.higherIsBetter, .none), m)
        }
        for m in ["status", "ok", "good", "prompt_tokens", "output_tokens", "itl_position", "itl_request", "schedule_lag_ms", "loss"] {
            XCTAssertEqual(MetricRules.treatment(of: m, kind: .load), .bookkeeping, m)
            XCTAssertNil(MetricRules.rule(for: m), m)
        }
        XCTAssertEqual(rule("peak_rss_bytes", .load), MetricRule(.lowerIsBetter, .machineIndependent))
        XCTAssertEqual(rule("kernel_gbps", .load), MetricRule(.higherIsBetter, .none), "a guessed rule is raw only for a load case")
        XCTAssertEqual(MetricRules.treatment(of: "wobble", kind: .gemm), .unknown)
        XCTAssertEqual(MetricRegistry.definition("itl_position")?.unit, "token")
    }

    func load(_ name: String, ttft: Double, facts: [String: String]) -> MeasuredCase {
        var samples: [MeasuredCase.Sample] = []
        for i in 0..<20 {
            let v = ttft * (1 + 0.001 * Double(i % 5))
            samples += [.init(metric: "ttft_ms", unit: "ms", repetition: i, value: v),
                        .init(metric: "status", unit: "code", repetition: i, value: 200),
                        .init(metric: "ok", unit: "bool", repetition: i, value: 1)]
        }
        return MeasuredCase(kind: .load, name: name, threads: 0, params: ["endpoint": name, "profile": "rate:2", "point": "rate:2"],
                            facts: facts, samples: samples)
    }

    func testLoadCasesAreGatedRawAndMatchOnParamsNotFacts() throws {
        let base = [load("prod", ttft: 100, facts: ["url": "http://10.0.0.5:8000", "achieved_rate": "1.99"])]
        let cur = [load("prod", ttft: 130, facts: ["url": "http://10.0.0.6:8000", "achieved_rate": "1.97"])]
        let out = try Gate.evaluate(baseline: base, current: cur, options: GateOptions())
        XCTAssertEqual(out.rows.map(\.metric), ["ttft_ms"], "one raw row; no probe normalisation for an endpoint")
        XCTAssertNil(out.rows[0].normalisation)
        XCTAssertEqual(out.rows[0].decision.verdict, .regression)
        XCTAssertEqual(out.rows[0].params["endpoint"], "prod")
        XCTAssertNil(out.rows[0].params["url"])
        XCTAssertTrue(out.notes.contains("not gated, recorded for reference: ok, status"), "\(out.notes)")
        XCTAssertFalse(out.notes.contains { $0.contains("not normalised") }, "\(out.notes)")
    }

    func testTypedParamsRoundTrip() {
        let g = GemmParams(model: "small", phase: "decode", m: 4, n: 768, k: 256)
        XCTAssertEqual(g.params, ["model": "small", "phase": "decode", "M": "4", "N": "768", "K": "256", "precision": "f32"])
        XCTAssertEqual(GemmParams(params: g.params), g)
        XCTAssertNil(GemmParams(params: ["M": "4", "N": "x", "K": "1"]))
        let i = InferenceParams(model: "small", precision: "q4_0", promptTokens: 128, batch: 8, generateTokens: 16,
                                modelFile: "m.gguf", modelFileBytes: 1000)
        XCTAssertEqual(InferenceParams(params: i.params), i)
        XCTAssertEqual(InferenceParams(params: ["model": "small", "precision": "f32", "prompt_tokens": "16"])?.batch, 1)
        let split = CaseFacts.splitLegacy(params: ["M": "1", "isa": "avx2", "weights_bytes": "9"])
        XCTAssertEqual(split.params, ["M": "1"])
        XCTAssertEqual(split.facts, ["isa": "avx2", "weights_bytes": "9"])
    }
}
