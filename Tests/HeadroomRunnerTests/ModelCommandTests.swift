// `headroom model export` and `model logits` as a user runs them: on a tiny catalog shape written by the test,
// JSON that parses, and a truncated file refused with exit 2 and its name.
import Foundation
import HeadroomEngine
import HeadroomKernels
import XCTest

final class ModelCommandTests: XCTestCase {
    /// A temporary folder with a catalog holding one tiny llama shape (vocab 300: the minimal tokenizer needs 259).
    func workspace() throws -> URL {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: HeadroomCLI.binary.path), "headroom not built")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("model-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("catalog"), withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        try """
            schema: 1
            models:
              - id: mini
                layers: 2
                dim: 64
                heads: 4
                kv_heads: 2
                ffn_dim: 96
                vocab: 300
                context: 64
                source: test
            """.write(to: dir.appendingPathComponent("catalog/models.yaml"), atomically: true, encoding: .utf8)
        return dir
    }

    func testExportThenLogitsJSONParses() throws {
        let dir = try workspace()
        let e = try HeadroomCLI.run(["model", "export", "--catalog", "catalog", "--shape", "mini", "--precision", "q4_0", "m.gguf"], cwd: dir)
        XCTAssertEqual(e.status, 0, e.stderr)
        let r = try HeadroomCLI.run(["model", "logits", "--model", "m.gguf", "--tokens", "1,2,3", "--json", "--top", "5"], cwd: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let json = try XCTUnwrap(object, r.stdout)
        XCTAssertEqual(json["model"] as? String, "m.gguf")
        XCTAssertEqual(json["tokens"] as? [Int], [1, 2, 3])
        XCTAssertEqual(json["vocab"] as? Int, 300)
        let logits = try XCTUnwrap(json["logits"] as? [Double])
        XCTAssertEqual(logits.count, 300)
        let top = try XCTUnwrap(json["top"] as? [[String: Any]])
        XCTAssertEqual(top.count, 5)
        // The top list is the largest logits, in order.
        let best = logits.indices.max { logits[$0] < logits[$1] }!
        XCTAssertEqual(top[0]["id"] as? Int, best)
        let values = top.compactMap { $0["logit"] as? Double }
        XCTAssertEqual(values, values.sorted(by: >))

        let t = try HeadroomCLI.run(["model", "logits", "--model", "m.gguf", "--tokens", "1,2,3"], cwd: dir)
        XCTAssertEqual(t.status, 0, t.stderr)
        XCTAssertTrue(t.stdout.contains("rank"), t.stdout)
    }

    func testExportWritesAKQuantMixtureWithLlamaCppsFallback() throws {
        // mini's rows are 64 and 96 wide: no 256-element block fits, so every matrix takes llama.cpp's fallback
        // except the output head, which Q4_K_M's output rule puts in q8_0 at such widths.
        let dir = try workspace()
        let e = try HeadroomCLI.run(["model", "export", "--catalog", "catalog", "--shape", "mini", "--precision", "Q4_K_M", "--json", "m.gguf"], cwd: dir)
        XCTAssertEqual(e.status, 0, e.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any], e.stdout)
        XCTAssertEqual(json["precision"] as? String, "q4_k_m")
        XCTAssertEqual(json["file_type"] as? Int, 15)
        XCTAssertEqual((json["fallbacks"] as? [String])?.count, 15)
        // Layer 1's attn_v and ffn_down (use_more_bits of 2 layers) are q6_K → q8_0, the other 13 q4_K → q5_0.
        XCTAssertEqual(json["tensor_types"] as? [String: Int], ["q5_0": 13, "q8_0": 3])
        let file = try GGUFFile(path: dir.appendingPathComponent("m.gguf").path)
        XCTAssertEqual(file.metadata.int("general.file_type"), 15)
        XCTAssertEqual(try file.requireTensor("blk.1.ffn_down.weight").type, .q8_0)
        XCTAssertEqual(try file.requireTensor("blk.1.ffn_up.weight").type, .q5_0)
        let r = try HeadroomCLI.run(["model", "logits", "--model", "m.gguf", "--tokens", "1,2,3"], cwd: dir)
        XCTAssertEqual(r.status, 0, r.stderr)

        let text = try HeadroomCLI.run(["model", "export", "--catalog", "catalog", "--shape", "mini", "--precision", "q6_k", "k.gguf"], cwd: dir)
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("mini q6_k (16 q8_0 matrices)"), text.stdout)
        XCTAssertTrue(text.stdout.contains("16 of 16 matrices are in llama.cpp's fallback format"), text.stdout)

        let bad = try HeadroomCLI.run(["model", "export", "--catalog", "catalog", "--shape", "mini", "--precision", "q8_k", "x.gguf"], cwd: dir)
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("q4_k_m, q5_k_s, q5_k_m; q8_k is a GGUF format the engine does not compute yet"), bad.stderr)
    }

    func testTruncatedFileExitsTwoNamingTheFile() throws {
        let dir = try workspace()
        let e = try HeadroomCLI.run(["model", "export", "--catalog", "catalog", "--shape", "mini", "--precision", "f16", "m.gguf"], cwd: dir)
        XCTAssertEqual(e.status, 0, e.stderr)
        let data = try Data(contentsOf: dir.appendingPathComponent("m.gguf"))
        try data.prefix(data.count - 64).write(to: dir.appendingPathComponent("cut.gguf"))
        let r = try HeadroomCLI.run(["model", "logits", "--model", "cut.gguf", "--tokens", "1,2,3"], cwd: dir)
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("headroom: cut.gguf: "), r.stderr)
        XCTAssertEqual(r.stdout, "")
    }

    func testBenchInferTakesAGGUFFileAndChecksItsPrecision() throws {
        let dir = try workspace()
        let e = try HeadroomCLI.run(["model", "export", "--catalog", "catalog", "--shape", "mini", "--precision", "q8_0", "m.gguf"], cwd: dir)
        XCTAssertEqual(e.status, 0, e.stderr)
        let r = try HeadroomCLI.run(["bench", "infer", "--model", "m.gguf", "--precision", "f32", "--prompt-tokens", "4",
                                     "--generate-tokens", "2"], cwd: dir)
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "headroom: m.gguf: --precision f32 given, but the file's matrices are q8_0\n")
        let missing = try HeadroomCLI.run(["bench", "infer", "--model", "nothere.gguf"], cwd: dir)
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.stderr.hasPrefix("headroom: nothere.gguf: open failed"), missing.stderr)
    }

    /// `model logits` (prefill and decode) and `bench infer` answer a model whose activations turn NaN the same
    /// way: exit 1, naming the file and the first layer, and no logits printed.
    func testNonFiniteActivationsExitOneNamingTheLayer() throws {
        let dir = try workspace()
        let config = ModelConfig(name: "mini", layers: 2, dim: 64, heads: 4, kvHeads: 2, ffnDim: 96, vocab: 300, context: 64)
        let base = try ModelWeights.synthetic(config, type: .f32)
        let named = Dictionary(uniqueKeysWithValues: base.namedTensors.map { ($0.name, $0.matrix) })
        let bad = try ModelWeights(config: config) { name in
            guard let m = named[name] else { return nil }
            guard name == "blk.1.ffn_down.weight" else { return m }
            var values = m.dequantized()
            values[10] = .nan
            return WeightMatrix.quantized(values, type: .f32, rows: m.rows, cols: m.cols)
        }
        try GGUFModelExport.write(bad, to: dir.appendingPathComponent("bad.gguf").path)
        let message = "headroom: bad.gguf: the activations became non-finite (NaN or infinity) in layer 1 (blk.1)\n"
        for args in [["model", "logits", "--model", "bad.gguf", "--tokens", "1,2,3"],
                     ["model", "logits", "--model", "bad.gguf", "--tokens", "1,2,3", "--decode", "--json"],
                     ["bench", "infer", "--model", "bad.gguf", "--precision", "f32", "--prompt-tokens", "4", "--generate-tokens", "2",
                      "--repetitions", "1"]] {
            let r = try HeadroomCLI.run(args, cwd: dir)
            XCTAssertEqual(r.status, 1, "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr, message, "\(args)")
            XCTAssertEqual(r.stdout, "", "\(args)")
        }
    }

    func testDecodePathAgreesWithPrefillInF32() throws {
        let dir = try workspace()
        let e = try HeadroomCLI.run(["model", "export", "--catalog", "catalog", "--shape", "mini", "--precision", "f32", "m.gguf"], cwd: dir)
        XCTAssertEqual(e.status, 0, e.stderr)
        func logits(_ extra: [String]) throws -> [Double] {
            let r = try HeadroomCLI.run(["model", "logits", "--model", "m.gguf", "--tokens", "5,6,7,8,9", "--json"] + extra, cwd: dir)
            XCTAssertEqual(r.status, 0, r.stderr)
            let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            XCTAssertEqual(json?["path"] as? String, extra.isEmpty ? "prefill" : "decode")
            return try XCTUnwrap(json?["logits"] as? [Double])
        }
        let a = try logits([]), b = try logits(["--decode"])
        XCTAssertEqual(a.count, 300)
        XCTAssertLessThan(zip(a, b).map { abs($0 - $1) }.max()!, 1e-4)
    }
}

final class ModelTokenizeCommandTests: XCTestCase {
    /// llama.cpp's Llama-3 vocabulary (from `make vocab-fixtures`): the ids Llama-3 gives this sentence.
    func testTokenizeUsesTheModelsOwnTokenizer() throws {
        let file = HeadroomCLI.repo.appendingPathComponent(".cache/llama-vocab/ggml-vocab-llama-bpe.gguf")
        if ProcessInfo.processInfo.environment["HEADROOM_SKIP_VOCAB"] == "1" { throw XCTSkip("HEADROOM_SKIP_VOCAB=1") }
        XCTAssertTrue(FileManager.default.fileExists(atPath: file.path), "missing \(file.path): run `make vocab-fixtures`")
        let r = try HeadroomCLI.run(["model", "tokenize", file.path, "--text", "The capital of France is", "--json"], cwd: HeadroomCLI.repo)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [Int], [128000, 791, 6864, 315, 9822, 374])
        let plain = try HeadroomCLI.run(["model", "tokenize", "--model", file.path, "--text", "The capital", "--no-special"], cwd: HeadroomCLI.repo)
        XCTAssertEqual(plain.stdout, "791\t\"The\"\n6864\t\" capital\"\n")
        let both = try HeadroomCLI.run(["model", "tokenize", file.path, "--model", file.path, "--text", "x"], cwd: HeadroomCLI.repo)
        XCTAssertEqual(both.status, 2)
    }
}
