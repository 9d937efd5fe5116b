// A scenario whose `measure.model` names a GGUF file, as a user runs it: `headroom run`, `baseline record` and
// `gate` measure the file (its shape, precision and mapped weights) and store which file it was; a missing file,
// a file that is not GGUF and a precision the file does not have are refused with exit 2, naming the scenario
// and `measure.model`, with nothing written. Also `bench finetune --model FILE.gguf`.
import Foundation
import HeadroomEngine
import HeadroomKernels
import XCTest

final class ScenarioGGUFTests: XCTestCase {
    /// dir/scenarios/{catalog/models.yaml, models/m.gguf}: a 2-layer, width-64 llama in q4_0 written in-process
    /// (vocabulary 300: the minimal tokenizer needs 259 entries).
    func workspace() throws -> URL {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: HeadroomCLI.binary.path), "headroom not built")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-scenario-\(UUID().uuidString)")
        let scenarios = dir.appendingPathComponent("scenarios")
        try FileManager.default.createDirectory(at: scenarios.appendingPathComponent("catalog"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: scenarios.appendingPathComponent("models"), withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        // The catalog a scenario loads beside it (a scenario's plan: reads it); the measured model is the file.
        try "schema: 1\nmodels:\n  - { id: other, layers: 1, dim: 64, heads: 4, kv_heads: 4, ffn_dim: 64, vocab: 300, context: 64, source: test }\n".write(to: scenarios.appendingPathComponent("catalog/models.yaml"), atomically: true, encoding: .utf8)
        let config = ModelConfig(name: "mini", layers: 2, dim: 64, heads: 4, kvHeads: 2, ffnDim: 96, vocab: 300, context: 64)
        try GGUFModelExport.writeSynthetic(config, type: .q4_0, to: scenarios.appendingPathComponent("models/m.gguf").path)
        try Data("NOPE this is not a model file, padded out to more than a header's length........".utf8)
            .write(to: scenarios.appendingPathComponent("models/bad.gguf"))
        return dir
    }

    func scenario(_ dir: URL, model: String, extra: String = "") throws {
        try """
            schema: 1
            name: gguf
            probe: { read_mib: 16, gemm_size: 64, repetitions: 1 }
            measure:
              model: \(model)
              threads: [1]
              prompt_tokens: [8]
              generate_tokens: 2
              repetitions: 2
              warmup: 0
            \(extra)
            """.write(to: dir.appendingPathComponent("scenarios/g.yaml"), atomically: true, encoding: .utf8)
    }

    func testRunGateAndBaselineMeasureTheFileAndStoreWhichFileItWas() throws {
        let dir = try workspace()
        try scenario(dir, model: "models/m.gguf",
                     extra: "  finetune: { method: [lora, full], rank: 2, seq_len: 8, batch: 1, steps: 1, warmup: 0 }")
        let r = try HeadroomCLI.run(["run", "scenarios/g.yaml", "--db", "h.sqlite", "--reports", "out", "--json"], cwd: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let runs = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]], r.stdout)
        let cases = try XCTUnwrap(runs.first?["cases"] as? [[String: Any]])
        func params(_ c: [String: Any]) -> [String: String] { c["params"] as? [String: String] ?? [:] }
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent("scenarios/models/m.gguf").path)[.size] as? Int)

        let inference = cases.filter { $0["kind"] as? String == "inference" }
        XCTAssertEqual(inference.count, 1)
        let ip = params(try XCTUnwrap(inference.first))
        XCTAssertEqual(ip["model_file"], "scenarios/models/m.gguf", "resolved against the scenario's folder")
        XCTAssertEqual(ip["model_file_bytes"], String(size))
        XCTAssertEqual(ip["precision"], "q4_0", "the file's precision")
        XCTAssertEqual(ip["model"], "m.gguf")
        let measured = try XCTUnwrap(inference.first?["measured"] as? [String: Any])
        XCTAssertNotNil(measured["decode_tokens_per_s"])

        // The GEMMs of one layer of the file's shape: qkv is (64 + 2·32) × 64.
        let qkv = try XCTUnwrap(cases.first { $0["kind"] as? String == "gemm" && $0["name"] as? String == "qkv" })
        XCTAssertEqual(params(qkv)["N"], "128")
        XCTAssertEqual(params(qkv)["K"], "64")

        // Fine-tuning: LoRA on the file's q4_0 tensors, full on them dequantized to f32.
        let finetune = cases.filter { $0["kind"] as? String == "finetune" }
        XCTAssertEqual(Set(finetune.map { params($0)["method"]! + "/" + params($0)["precision"]! }), ["lora/q4_0", "full/f32"])
        for c in finetune { XCTAssertEqual(params(c)["model_file"], "scenarios/models/m.gguf") }

        let md = try String(contentsOf: dir.appendingPathComponent("out/gguf/index.md"), encoding: .utf8)
        XCTAssertTrue(md.contains("on the weights of `scenarios/models/m.gguf` (mapped)"), md)
        XCTAssertTrue(md.contains("on the tensors of `scenarios/models/m.gguf`"), md)

        // The gate refuses a fine-tuning case's zero-valued byte metrics (full has no adapters) whatever the model,
        // so the gate is checked on the inference and GEMM cases.
        try scenario(dir, model: "models/m.gguf")
        let b = try HeadroomCLI.run(["baseline", "record", "base", "scenarios/g.yaml", "--db", "h.sqlite"], cwd: dir)
        XCTAssertEqual(b.status, 0, b.stderr)
        let g = try HeadroomCLI.run(["gate", "--baseline", "base", "--scenario", "scenarios/g.yaml", "--db", "h.sqlite",
                                     "--threshold", "1000%", "--json"], cwd: dir)
        XCTAssertEqual(g.status, 0, g.stderr)
        XCTAssertTrue(g.stdout.contains("model_file=scenarios/models/m.gguf") || g.stdout.contains("scenarios/models/m.gguf"), g.stdout)
    }

    func testBadModelFilesAndPrecisionsExitTwoWritingNothing() throws {
        let dir = try workspace()
        let cases: [(model: String, extra: String, expect: [String])] = [
            ("models/missing.gguf", "", ["scenarios/g.yaml: measure.model:", "scenarios/models/missing.gguf"]),
            ("models/bad.gguf", "", ["scenarios/g.yaml: measure.model:", "scenarios/models/bad.gguf", "not a GGUF file"]),
            ("models/m.gguf", "  precisions: [f32]", ["scenarios/g.yaml: measure.precisions:", "q4_0"]),
            ("models/m.gguf", "  finetune: { precision: [q8_0] }", ["scenarios/g.yaml: measure.finetune.precision[0]:", "q4_0"]),
        ]
        for c in cases {
            try scenario(dir, model: c.model, extra: c.extra)
            let r = try HeadroomCLI.run(["run", "scenarios/g.yaml", "--db", "h.sqlite", "--no-report"], cwd: dir)
            XCTAssertEqual(r.status, 2, "\(c.model) \(c.extra): \(r.stderr)")
            for e in c.expect { XCTAssertTrue(r.stderr.contains(e), "expected \"\(e)\" in: \(r.stderr)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("h.sqlite").path), "nothing written")
        }
    }

    func testBenchFinetuneTakesAGGUFFile() throws {
        let dir = try workspace()
        let file = "scenarios/models/m.gguf"
        func finetune(_ extra: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            try HeadroomCLI.run(["bench", "finetune", "--model", file, "--seq-len", "8", "--batch", "1", "--steps", "1",
                                 "--threads", "1", "--json"] + extra, cwd: dir)
        }
        let lora = try finetune([])
        XCTAssertEqual(lora.status, 0, lora.stderr)
        let j = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(lora.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(j["precision"] as? String, "q4_0", "the file's own")
        XCTAssertEqual(j["model_file"] as? String, file)
        let full = try finetune(["--method", "full"])
        XCTAssertEqual(full.status, 0, full.stderr)
        XCTAssertTrue(full.stdout.contains("\"precision\" : \"f32\""), full.stdout)
        let wrong = try finetune(["--precision", "q8_0"])
        XCTAssertEqual(wrong.status, 2)
        XCTAssertTrue(wrong.stderr.contains("the file's matrices are q4_0"), wrong.stderr)
    }
}
