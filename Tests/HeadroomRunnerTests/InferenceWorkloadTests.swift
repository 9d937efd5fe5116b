// The inference workload and `headroom bench infer` on a micro model: the cases a scenario asks for,
// the raw samples each stores, and the JSON contract with its rooflines.
import Foundation
import XCTest
import HeadroomCore
@testable import HeadroomRunner

final class InferenceWorkloadTests: XCTestCase {
    let micro = ModelShape(id: "micro", name: "micro", layers: 2, dim: 64, heads: 4, kvHeads: 2, ffnDim: 96, vocab: 128,
                           context: 64, source: "test")

    func testCasesAndSamples() throws {
        let settings = MeasureSettings(model: micro, threads: [1, 2], promptTokens: [4, 8], batch: [1, 3], repetitions: 2, warmup: 1,
                                       precisions: ["f32", "q4_0"], generateTokens: 5)
        let w = InferenceWorkload(settings)
        let cases = w.cases()
        XCTAssertEqual(cases.count, 2 * 2 * 2 * 2)
        XCTAssertEqual(Set(cases.map { $0.params["precision"]! }), ["f32", "q4_0"])
        XCTAssertTrue(cases.allSatisfy { $0.steps == 3 && $0.kind == "inference" })
        var steps = 0
        let spec = try XCTUnwrap(cases.first { $0.params["precision"] == "q4_0" && $0.params["batch"] == "3" && $0.params["prompt_tokens"] == "8" })
        let m = try w.measure(spec) { steps += 1 }
        XCTAssertEqual(steps, 3)
        for metric in ["decode_tokens_per_s", "prefill_tokens_per_s", "ttft_ms", "tpot_ms"] {
            XCTAssertEqual(m.values(metric).count, 2, metric)
            XCTAssertTrue(m.values(metric).allSatisfy { $0 > 0 && $0.isFinite }, metric)
        }
        XCTAssertGreaterThan(m.values("peak_rss_bytes").first ?? 0, 0)
        // 3 sequences × 5 tokens in the decode time; TPOT is that time over 5 steps.
        let d = m.values("decode_tokens_per_s")[0], tpot = m.values("tpot_ms")[0]
        XCTAssertEqual(d, 3 * 1000 / tpot, accuracy: d * 1e-9)
        // KV cache: 3 sequences × (8 + 5 + 1) positions × 2 layers × (K, V) × kv dim 32 × 4 bytes.
        XCTAssertEqual(m.facts["kv_cache_bytes"], String(3 * 14 * 2 * 2 * 32 * 4))
        XCTAssertFalse(InferenceFacts(facts: m.facts)?.isa.isEmpty ?? true)
        XCTAssertEqual(m.params["model"], "micro")
        // The parameters are the workload's inputs only: what it recorded about itself is among the facts.
        XCTAssertEqual(m.params, spec.params)
        XCTAssertEqual(InferenceParams(params: m.params),
                       InferenceParams(model: "micro", precision: "q4_0", promptTokens: 8, batch: 3, generateTokens: 5))
    }
}

final class BenchCommandTests: XCTestCase {
    var binary: URL {
        let bundle = Bundle(for: Self.self).bundleURL
        let candidates = [bundle.appendingPathComponent("headroom"), bundle.deletingLastPathComponent().appendingPathComponent("headroom")]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]
    }

    func run(_ args: [String], cwd: URL) throws -> (status: Int32, stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        p.currentDirectoryURL = cwd
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    func testBenchInferJSONCarriesTheContractAndSummaryReadsIt() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("catalog"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try """
            schema: 1
            models:
              - { id: micro, layers: 2, dim: 64, heads: 4, kv_heads: 2, ffn_dim: 96, vocab: 128, context: 64, source: test }
            """.write(to: dir.appendingPathComponent("catalog/models.yaml"), atomically: true, encoding: .utf8)
        let r = try run(["bench", "infer", "--model", "micro", "--catalog", "catalog", "--precision", "q8_0", "--threads", "1",
                         "--prompt-tokens", "8", "--generate-tokens", "4", "--repetitions", "2", "--read-mib", "16", "--json"], cwd: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        for key in ["prefill_tokens_per_s", "decode_tokens_per_s", "ttft_ms", "tpot_ms"] {
            let s = try XCTUnwrap(obj[key] as? [String: Any], key)
            for f in ["median", "p95", "min", "max"] { XCTAssertNotNil(s[f] as? Double, "\(key).\(f)") }
        }
        for key in ["weights_bytes", "kv_cache_bytes", "peak_rss_bytes", "decode_roofline_tokens_per_s", "prefill_roofline_tokens_per_s",
                    "decode_roofline_fraction", "prefill_roofline_fraction"] {
            XCTAssertNotNil(obj[key] as? Double ?? (obj[key] as? Int).map(Double.init), key)
        }
        let median = try XCTUnwrap((obj["decode_tokens_per_s"] as? [String: Any])?["median"] as? Double)
        let roof = try XCTUnwrap(obj["decode_roofline_tokens_per_s"] as? Double)
        XCTAssertEqual(try XCTUnwrap(obj["decode_roofline_fraction"] as? Double), median / roof, accuracy: 1e-9)
        // Read bandwidth probed before and after the measurement; the roofline is the better of the two.
        let before = try XCTUnwrap(obj["probe_read_before_gbps"] as? Double), after = try XCTUnwrap(obj["probe_read_after_gbps"] as? Double)
        XCTAssertEqual(try XCTUnwrap(obj["probe_read_gbps"] as? Double), max(before, after))
        XCTAssertTrue(["read_stream", "read_rows", "read_prefetch"].contains(obj["probe_read_pattern"] as? String ?? ""))
        XCTAssertEqual(obj["kind"] as? String, "measured")
        try r.stdout.write(to: dir.appendingPathComponent("r.json"), atomically: true, encoding: .utf8)
        let s = try run(["bench", "summary", "r.json"], cwd: dir)
        XCTAssertTrue(s.stdout.contains("micro"), s.stdout + s.stderr)
        // An unknown model names the catalog's models and exits 2.
        let bad = try run(["bench", "infer", "--model", "huge", "--catalog", "catalog"], cwd: dir)
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("no model \"huge\"; the catalog has ") && bad.stderr.contains(" micro, "), bad.stderr)
    }

    /// A `bench infer --json` result as written to disk, with the figures the summary judges set by hand:
    /// batch 16 and prompt 16 (no decode or prefill bar applies), peak RSS far under its limit.
    func benchFile(decodeFraction: Double, prefillFraction: Double) -> [String: Any] {
        func stat(_ v: Double) -> [String: Any] { ["median": v, "p95": v, "min": v, "max": v, "samples": 3] }
        return ["kind": "measured", "model": "small", "precision": "f32", "threads": 2, "prompt_tokens": 16, "generate_tokens": 16,
                "batch": 16, "repetitions": 3, "isa": "avx512-vnni", "openblas_core": "SkylakeX",
                "prefill_tokens_per_s": stat(100 * prefillFraction), "decode_tokens_per_s": stat(50 * decodeFraction),
                "weights_bytes": 4_000_000_000, "kv_cache_bytes": 1_000_000, "activation_bytes": 1_000_000, "peak_rss_bytes": 3_000_000_000,
                "probe_read_gbps": 30.0, "probe_read_mib": 1024, "probe_sgemm_gflops": 200.0, "decode_bytes_per_step": 4.16e9,
                "prefill_flops_per_token": 2e9, "decode_roofline_tokens_per_s": 50.0, "prefill_roofline_tokens_per_s": 100.0,
                "decode_roofline_fraction": decodeFraction, "prefill_roofline_fraction": prefillFraction, "sample_tokens": [1, 2]]
    }

    func testSummaryMissesAFigureAboveItsRoofline() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("summary-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func summary(_ name: String, decode: Double, prefill: Double) throws -> (status: Int32, stdout: String, stderr: String) {
            try JSONSerialization.data(withJSONObject: benchFile(decodeFraction: decode, prefillFraction: prefill))
                .write(to: dir.appendingPathComponent(name))
            return try run(["bench", "summary", name], cwd: dir)
        }
        // At and under the roofline: every verdict passes.
        let ok = try summary("ok.json", decode: 1.0, prefill: 0.55)
        XCTAssertEqual(ok.status, 0, ok.stdout + ok.stderr)
        XCTAssertFalse(ok.stdout.contains("MISS"), ok.stdout)
        XCTAssertTrue(ok.stdout.contains("≤ 100 %"), ok.stdout)
        // Decode at 104 % of its roofline (the f32 case): a miss, reported at 104 %, not capped at 100.
        let over = try summary("over.json", decode: 1.04, prefill: 0.55)
        XCTAssertEqual(over.status, 1, over.stdout + over.stderr)
        XCTAssertTrue(over.stdout.contains("104 %"), over.stdout)
        XCTAssertTrue(over.stdout.contains("MISS over.json: decode at 104 % of the roofline measured with it"), over.stdout)
        XCTAssertTrue(over.stdout.contains("1 bar missed."), over.stdout)
        // Prefill above its sgemm roofline is as wrong.
        let prefill = try summary("prefill.json", decode: 0.9, prefill: 1.2)
        XCTAssertEqual(prefill.status, 1, prefill.stdout + prefill.stderr)
        XCTAssertTrue(prefill.stdout.contains("MISS prefill.json: prefill at 120 %"), prefill.stdout)
        // A file written before the probe ran twice still reads (the before/after fields are optional).
        XCTAssertFalse(ok.stdout.contains("expected the JSON"), ok.stdout + ok.stderr)
    }
}
