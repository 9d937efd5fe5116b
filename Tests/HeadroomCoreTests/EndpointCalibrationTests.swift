// Endpoint calibration: a one-point sweep worked by hand, a round trip through the planner's own
// forward-time model, and the reasons given instead of a fit.
import Foundation
import XCTest
@testable import HeadroomCore

final class EndpointCalibrationTests: XCTestCase {
    /// One load point as `headroom load` stores it.
    func loadCase(endpoint: String = "ep", point: String, prompt: Int, output: Int, inFlight: Double,
                  ttftMs: [Double], tpotMs: [Double], facts: [String: String]) -> MeasuredCase {
        let params = ["endpoint": endpoint, "api": "completions", "model": "m", "profile": "sweep", "point": point,
                      "prompt_tokens": String(prompt), "output_tokens": String(output)]
        var facts = facts
        facts["mean_in_flight"] = String(inFlight)
        func s(_ metric: String, _ vs: [Double]) -> [MeasuredCase.Sample] {
            vs.enumerated().map { .init(metric: metric, unit: "ms", repetition: $0.offset, value: $0.element) }
        }
        return MeasuredCase(kind: "load", name: endpoint, threads: 0, params: params, facts: facts, samples: s("ttft_ms", ttftMs) + s("tpot_ms", tpotMs))
    }

    /// A one-layer model and a device with round peaks: 1 GFLOP/s fp32, 1 GB/s.
    let toy = ModelShape(id: "toy", name: "toy", layers: 1, dim: 8, heads: 1, kvHeads: 1, ffnDim: 16, vocab: 16, context: 256, source: "test")
    let device = HardwareProfile(id: "dev", name: "device", kind: .gpu, peakTflops: ["fp32": 1e-3], memoryGib: 1, bandwidthGbps: 1,
                                 interconnect: Interconnect(kind: "none", bandwidthGbps: 1, latencyUs: 0), devicesPerNode: 1,
                                 powerWatts: 1, efficiency: Efficiency(compute: 0.3, bandwidth: 0.3), calibration: "catalog default", source: "test")
    let toyFacts = ["hardware": "dev", "devices": "1", "precision": "fp32", "model_shape": "toy"]

    /// The synchronous point of a sweep on the toy model (dim 8, kv dim 8, ffn 16, vocab 16, one layer, fp32:
    /// 4 bytes a weight and an activation), prompt 64, output 32, one request in flight.
    ///
    /// Decode step at batch 1, past = 64 + 32/2 = 80 tokens. Bytes per op (weights n·k·4 + activations (n+k)·4):
    ///   qkv 24·8·4 + 32·4 = 896; attention (KV 81·2·8·4 + q,o 2·8·4) = 5248; o 8·8·4 + 16·4 = 320;
    ///   gate_up 32·8·4 + 40·4 = 1184; down 8·16·4 + 24·4 = 608; norms (10·8 + 3·16)·4 = 512;
    ///   lm_head 16·8·4 + 24·4 = 608; sampling 2·16·4 = 128. Sum 9504 bytes.
    /// Every op's FLOPs/byte is below 0.63, under the ridge (1 GFLOP/s × 0.5) / (1 GB/s × 0.25) = 2, so all are
    /// bandwidth-bound: TPOT 0.038016 ms = 9504 B / (1e9 B/s × eb) gives eb = 9504 / 38016 = 0.25.
    ///
    /// Prefill of 64 tokens: compute-bound (FLOPs/byte above 2) are qkv 2·64·24·8 = 24576,
    ///   attention 4·64·(0 + 65/2)·8 = 66560, gate_up 2·64·32·8 = 32768, down 2·64·8·16 = 16384: 140288 FLOPs;
    ///   bandwidth-bound are o (8·8·4 + 64·16·4 = 4352 B for 8192 FLOPs: 1.88 < 2), norms 64·128·4 = 32768,
    ///   lm_head 608, sampling 128: 37856 bytes.
    /// TTFT 0.432 ms = 140288 / (1e9 × ec) + 37856 / (1e9 × 0.25) = 140288 / (1e9 × ec) + 151.424 µs,
    ///   so 140288 FLOPs take 280.576 µs: ec = 140288 / 280576 = 0.5.
    func testOnePointWorkedByHand() throws {
        let c = loadCase(point: "synchronous", prompt: 64, output: 32, inFlight: 1, ttftMs: [0.4, 0.432, 0.5],
                         tpotMs: [0.038016, 0.038016], facts: toyFacts)
        let fit = try EndpointCalibration.fit(cases: [c], endpoint: "ep", runID: 7, hardware: [device], models: ["toy": toy])
        XCTAssertEqual(fit.points.count, 2)
        XCTAssertEqual(fit.points[0].measuredSeconds, 0.432e-3, accuracy: 1e-12)
        XCTAssertEqual(fit.points[0].flops, 140288 + 8192 + 9216 + 256 + 80)
        XCTAssertEqual(fit.points[1].bytes, 9504)
        XCTAssertEqual(fit.points[1].measuredSeconds, 0.038016e-3, accuracy: 1e-12)
        XCTAssertTrue(fit.computeFitted && fit.bandwidthFitted)
        XCTAssertEqual(fit.efficiency.compute, 0.5, accuracy: 0.5 * 0.005)
        XCTAssertEqual(fit.efficiency.bandwidth, 0.25, accuracy: 0.25 * 0.005)
        XCTAssertTrue(fit.label.hasPrefix("calibrated from endpoint ep, run 7 (2 points, median error "), fit.label)
        XCTAssertEqual(fit.result.checks.count, 2)

        let applied = device.applying(fit)
        XCTAssertEqual(applied.efficiency, fit.efficiency)
        XCTAssertEqual(applied.calibration, fit.label)
        var other = device
        other.id = "other"
        XCTAssertEqual(other.applying(fit), other, "only the calibrated hardware changes")
    }

    /// A sweep synthesised from known efficiencies with the planner's forward time (tensor parallel 2, so its
    /// all-reduces are in the measurement) fits back to them within 1 %.
    func testSweepRoundTrip() throws {
        let catalog = try repoCatalog()
        var h = try catalog.hardware("h100-sxm")
        let model = try XCTUnwrap(catalog.models["llama-3.1-8b"])
        let truth = Efficiency(compute: 0.62, bandwidth: 0.71)
        h.efficiency = truth
        let (prompt, output, tp) = (1024, 256, 2)
        let roof = Roofline(h)
        func ms(_ sequences: Int, _ new: Int, _ past: Int) -> Double {
            PerformanceModel.forwardTime(model, .bf16, sequences: sequences, newTokens: new, pastTokens: past, tp: tp,
                                         roofline: roof, interconnect: h.interconnect) * 1000
        }
        let facts = ["hardware": "h100-sxm", "devices": String(tp), "precision": "bf16", "model_shape": "llama-3.1-8b"]
        var cases: [MeasuredCase] = []
        for (point, inFlight) in [("synchronous", 1.0), ("rate:2", 3.6), ("rate:8", 15.2), ("throughput", 63.8)] {
            let ttft = point == "synchronous" ? ms(1, prompt, 0) : ms(1, prompt, 0) * 3   // loaded TTFTs are not used
            let tpot = ms(Int(inFlight.rounded()), 1, prompt + output / 2)
            cases.append(loadCase(endpoint: "prod", point: point, prompt: prompt, output: output, inFlight: inFlight,
                                  ttftMs: [ttft], tpotMs: [tpot * 0.99, tpot, tpot * 1.01], facts: facts))
        }
        cases.append(loadCase(endpoint: "elsewhere", point: "synchronous", prompt: 8, output: 8, inFlight: 1, ttftMs: [1], tpotMs: [1],
                              facts: facts))
        // The catalog's profile starts from its default efficiencies, not the truth.
        let fit = try EndpointCalibration.fit(cases: cases, endpoint: "prod", runID: 3, catalog: catalog)
        XCTAssertEqual(fit.points.count, 5, "one prefill (synchronous TTFT) and four decode points")
        XCTAssertTrue(fit.computeFitted && fit.bandwidthFitted)
        XCTAssertEqual(fit.efficiency.compute, truth.compute, accuracy: truth.compute * 0.01)
        XCTAssertEqual(fit.efficiency.bandwidth, truth.bandwidth, accuracy: truth.bandwidth * 0.01)
        XCTAssertEqual(fit.devices, 2)
        XCTAssertEqual(fit.hardware, "h100-sxm")
        XCTAssertTrue(fit.label.hasPrefix("calibrated from endpoint prod, run 3 (5 points, median error "), fit.label)
        let calibrated = try catalog.hardware("h100-sxm").applying(fit)
        XCTAssertEqual(calibrated.efficiency, fit.efficiency)
        // The calibrated profile predicts the measured decode step again.
        let predicted = PerformanceModel.forwardTime(model, .bf16, sequences: 16, newTokens: 1, pastTokens: prompt + output / 2, tp: tp,
                                                     roofline: Roofline(calibrated), interconnect: calibrated.interconnect) * 1000
        XCTAssertEqual(predicted, ms(16, 1, prompt + output / 2), accuracy: ms(16, 1, prompt + output / 2) * 0.01)
    }

    func testReasonsInsteadOfAFit() throws {
        let catalog = try repoCatalog()
        func reason(_ facts: [String: String], _ ttft: [Double] = [40], _ tpot: [Double] = [12]) -> String {
            let c = loadCase(point: "synchronous", prompt: 128, output: 64, inFlight: 1, ttftMs: ttft, tpotMs: tpot, facts: facts)
            do {
                let fit = try EndpointCalibration.fit(cases: [c], endpoint: "ep", runID: 1, catalog: catalog)
                return "fitted: \(fit.label)"
            } catch let e as EndpointCalibrationError {
                return e.description
            } catch { return "unexpected \(error)" }
        }
        let good = ["hardware": "a100-80g", "devices": "1", "precision": "bf16", "model_shape": "llama-3.1-8b"]
        XCTAssertTrue(reason(good).hasPrefix("fitted: calibrated from endpoint ep, run 1"))
        var f = good; f["hardware"] = nil
        XCTAssertEqual(reason(f), "endpoint \"ep\" cannot calibrate its hardware: it does not declare its hardware (hardware)")
        f = good; f["model_shape"] = nil
        XCTAssertEqual(reason(f), "endpoint \"ep\" cannot calibrate its hardware: it does not declare its catalog model (model_shape)")
        f = good; f["hardware"] = "tpu-v9"
        XCTAssertTrue(reason(f).contains("hardware \"tpu-v9\" is not in the catalog (h100-sxm, "), reason(f))
        f = good; f["model_shape"] = "gpt-9"
        XCTAssertTrue(reason(f).contains("model \"gpt-9\" is not in the catalog ("), reason(f))
        f = good; f["precision"] = "fp8"
        XCTAssertTrue(reason(f).contains("no fp8"), reason(f))
        f = good; f["devices"] = "0"
        XCTAssertTrue(reason(f).contains("devices \"0\" is not a count from 1 to 8"), reason(f))
        XCTAssertTrue(reason(good, [40], []).contains("give 1 usable measurement"), reason(good, [40], []))
        XCTAssertThrowsError(try EndpointCalibration.fit(cases: [], endpoint: "ep", runID: 4, catalog: catalog)) {
            XCTAssertEqual("\($0)", "endpoint \"ep\" cannot calibrate its hardware: run 4 has no load cases for it")
        }
        let a = loadCase(point: "rate:1", prompt: 8, output: 8, inFlight: 1, ttftMs: [1], tpotMs: [1], facts: good)
        var otherFacts = good; otherFacts["hardware"] = "l4"
        let b = loadCase(point: "rate:2", prompt: 8, output: 8, inFlight: 2, ttftMs: [1], tpotMs: [1], facts: otherFacts)
        XCTAssertThrowsError(try EndpointCalibration.fit(cases: [a, b], endpoint: "ep", runID: 4, catalog: catalog)) {
            XCTAssertEqual("\($0)", "endpoint \"ep\" cannot calibrate its hardware: its load points disagree on hardware (\"a100-80g\", \"l4\")")
        }
    }
}
