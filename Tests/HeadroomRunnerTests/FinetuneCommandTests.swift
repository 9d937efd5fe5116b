// `headroom finetune` end to end on a micro model from a temporary catalog: the JSON contract, the
// memory figures, and bad input (token file, sequence length) refused with exit code 2.
import Foundation
import XCTest

final class FinetuneCommandTests: XCTestCase {
    /// The command's words: top-level `finetune` on the trainer's branch, `bench finetune` once merged under `bench`.
    static let command = ["bench", "finetune"]

    var binary: URL { HeadroomCLI.binary }

    func run(_ args: [String], cwd: URL) throws -> (status: Int32, stdout: String, stderr: String) {
        try HeadroomCLI.run(args, cwd: cwd)
    }

    func makeDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ft-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("catalog"), withIntermediateDirectories: true)
        try """
            schema: 1
            models:
              - id: micro
                layers: 2
                dim: 32
                heads: 4
                kv_heads: 2
                ffn_dim: 64
                vocab: 64
                context: 32
                source: "test fixture"
            """.write(to: dir.appendingPathComponent("catalog/models.yaml"), atomically: true, encoding: .utf8)
        return dir
    }

    func testJSONCarriesTheContract() throws {
        let dir = try makeDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try run(Self.command + ["--catalog", "catalog", "--model", "micro", "--method", "lora", "--rank", "4", "--alpha", "8",
                                               "--targets", "q,v,down", "--seq-len", "16", "--batch", "2", "--steps", "3", "--threads", "1",
                                               "--checkpointing", "--json"], cwd: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        for key in ["step_ms", "tokens_per_s", "trainable_params", "total_params", "peak_rss_bytes", "weights_bytes", "adapter_bytes",
                    "gradient_bytes", "optimizer_bytes", "activation_bytes", "loss_first", "loss_last", "flops_per_token",
                    "roofline_fraction", "memory_check", "sgemm_gflops"] {
            XCTAssertNotNil(obj[key], "missing \(key)")
        }
        XCTAssertEqual(obj["kind"] as? String, "measured")
        XCTAssertEqual((obj["step_ms"] as? [String: Any])?["samples"] as? Int, 3)
        XCTAssertEqual((obj["losses"] as? [Double])?.count, 4) // one warm-up and three timed steps
        // Adapters per layer: q (A 4×32, B 32×4), v (A 4×32, B 16×4), down (A 4×64, B 32×4).
        XCTAssertEqual(obj["trainable_params"] as? Int, 2 * (256 + 192 + 384))
        XCTAssertEqual(obj["gradient_bytes"] as? Int, 4 * 2 * (256 + 192 + 384))
        XCTAssertEqual(obj["checkpointing"] as? Bool, true)
        let roof = try XCTUnwrap(obj["roofline_fraction"] as? Double)
        XCTAssertTrue(roof > 0 && roof < 1.5, "\(roof)")
    }

    func testBadTokenFileAndSequenceLengthExitTwo() throws {
        let dir = try makeDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data([1, 0, 0, 0, 2, 0, 0]).write(to: dir.appendingPathComponent("odd.bin"))
        let base = Self.command + ["--catalog", "catalog", "--model", "micro", "--seq-len", "4", "--batch", "1", "--steps", "1", "--threads", "1"]
        let r = try run(base + ["--tokens", "odd.bin"], cwd: dir)
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("odd.bin: size 7 bytes is not a multiple of 4"), r.stderr)
        let long = try run(Self.command + ["--catalog", "catalog", "--model", "micro", "--seq-len", "64"], cwd: dir)
        XCTAssertEqual(long.status, 2, long.stderr)
        XCTAssertTrue(long.stderr.contains("models.micro.context: --seq-len 64 exceeds the model's context of 32"), long.stderr)
        let prec = try run(base + ["--precision", "q4_k_m"], cwd: dir)
        XCTAssertEqual(prec.status, 2)
        XCTAssertTrue(prec.stderr.contains("--precision: expected one of f32 (fp32), f16 (fp16), bf16, q8_0 (int8), q4_0 (int4), q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k; q4_k_m is a GGUF format the engine does not compute yet, got \"q4_k_m\""), prec.stderr)
        let fullQ = try run(base + ["--method", "full", "--precision", "q4_0"], cwd: dir)
        XCTAssertEqual(fullQ.status, 2)
        XCTAssertTrue(fullQ.stderr.contains("full fine-tuning trains every weight in f32"), fullQ.stderr)
    }

    /// LoRA on a q4_0 base: the precision is reported and the base costs its quantized size plus one tile buffer.
    func testQuantizedBaseRunsAndCountsItsBytes() throws {
        let dir = try makeDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        func measure(_ precision: String) throws -> [String: Any] {
            let r = try run(Self.command + ["--catalog", "catalog", "--model", "micro", "--precision", precision, "--seq-len", "8",
                                            "--batch", "1", "--steps", "2", "--threads", "1", "--json"], cwd: dir)
            XCTAssertEqual(r.status, 0, r.stderr)
            return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        }
        let f32 = try measure("f32"), q4 = try measure("q4_0")
        XCTAssertEqual(q4["precision"] as? String, "q4_0")
        XCTAssertEqual(q4["total_params"] as? Int, f32["total_params"] as? Int)
        let wf = try XCTUnwrap(f32["weights_bytes"] as? Int), wq = try XCTUnwrap(q4["weights_bytes"] as? Int)
        XCTAssertLessThan(wq, wf)
        XCTAssertTrue((q4["loss_last"] as? Double)?.isFinite == true)
    }

    func testRunMeasuresTheScenariosFinetuneSection() throws {
        let dir = try makeDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try """
            schema: 1
            name: ft
            probe: { read_mib: 16, gemm_size: 64, repetitions: 1 }
            measure:
              model: micro
              threads: [1]
              prompt_tokens: [8]
              generate_tokens: 4
              repetitions: 1
              warmup: 0
              finetune: { method: [lora, full], rank: 2, seq_len: 8, batch: 2, steps: 2, warmup: 1, checkpointing: [false, true] }
            """.write(to: dir.appendingPathComponent("ft.yaml"), atomically: true, encoding: .utf8)
        let r = try run(["run", "ft.yaml", "--db", "h.sqlite", "--reports", "out"], cwd: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("Fine-tuning steps (measured)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("lora r2 q,v f32, ckpt, 1t"), r.stdout)
        let md = try String(contentsOf: dir.appendingPathComponent("out/ft/index.md"), encoding: .utf8)
        XCTAssertTrue(md.contains("## Fine-tuning (measured)"))
        for png in ["finetune_memory.png", "finetune_loss.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/ft/\(png)").path), png)
        }
    }
}
