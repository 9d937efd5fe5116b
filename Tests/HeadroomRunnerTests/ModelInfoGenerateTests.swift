// `headroom model info` and `model generate` as a user runs them, on a tiny llama model written by the test with a
// small real SentencePiece vocabulary and a ChatML template: every info field, greedy generation equal to argmax
// stepping through the decode path, and a file without a usable tokenizer refused with exit 2.
import Foundation
import HeadroomCore
import HeadroomEngine
import HeadroomKernels
import XCTest

final class ModelInfoGenerateTests: XCTestCase {
    static let chatml = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    let config = ModelConfig(name: "mini", layers: 2, dim: 64, heads: 4, kvHeads: 2, ffnDim: 96, vocab: 272, context: 96)

    /// `<unk> <s> </s>`, the 256 byte tokens, then 13 scored pieces: 272 tokens.
    static func vocabulary(into m: inout GGUFMetadata) {
        var tokens = ["<unk>", "<s>", "</s>"], types: [Int32] = [2, 3, 3], scores: [Float] = [0, 0, 0]
        for b in 0..<256 { tokens.append(String(format: "<0x%02X>", b)); types.append(6); scores.append(0) }
        for (text, score) in [("▁", -10), ("h", -10), ("e", -10), ("l", -10), ("o", -10), ("a", -10), ("he", -1), ("ll", -2),
                              ("llo", -3), ("▁he", -4), ("▁hello", -5), ("aa", -1), ("é", -2)] as [(String, Float)] {
            tokens.append(text); types.append(1); scores.append(score)
        }
        m["tokenizer.ggml.model"] = .string("llama")
        m["tokenizer.ggml.tokens"] = .array(.string, tokens.map { .string($0) })
        m["tokenizer.ggml.scores"] = .array(.float32, scores.map { .float32($0) })
        m["tokenizer.ggml.token_type"] = .array(.int32, types.map { .int32($0) })
        m["tokenizer.ggml.bos_token_id"] = .uint32(1)
        m["tokenizer.ggml.eos_token_id"] = .uint32(2)
        m["tokenizer.ggml.unknown_token_id"] = .uint32(0)
        m["tokenizer.ggml.add_bos_token"] = .bool(true)
        m["tokenizer.chat_template"] = .string(chatml)
    }

    /// The synthetic model of `config` (f32) with the vocabulary above, written to `dir/m.gguf`.
    func workspace() throws -> URL {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: HeadroomCLI.binary.path), "headroom not built")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("model-gen-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        var metadata = try config.gguf.metadata(name: "mini", weightType: .f32)
        Self.vocabulary(into: &metadata)
        var writer = GGUFWriter(metadata: metadata)
        for (name, m) in try ModelWeights.synthetic(config, type: .f32).namedTensors {
            let bytes = [UInt8](UnsafeRawBufferPointer(start: m.data, count: m.bytes))
            try writer.addTensor(name: name, type: .f32, dims: m.rows == 1 ? [m.cols] : [m.cols, m.rows], bytes: bytes)
        }
        _ = try writer.write(to: dir.appendingPathComponent("m.gguf").path)
        return dir
    }

    func json(_ s: String) throws -> [String: Any] { try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any], s) }

    func testInfoReportsEveryField() throws {
        let dir = try workspace()
        let r = try HeadroomCLI.run(["model", "info", "m.gguf", "--json"], cwd: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try json(r.stdout)
        let c = config
        let matrices = c.vocab * c.dim * 2 + c.layers * (c.dim * c.dim * 2 + c.kvDim * c.dim * 2 + 3 * c.dim * c.ffnDim)
        let parameters = matrices + c.layers * 2 * c.dim + c.dim
        XCTAssertEqual(j["kind"] as? String, "file")
        XCTAssertEqual(j["architecture"] as? String, "llama")
        XCTAssertEqual(j["name"] as? String, "mini")
        XCTAssertEqual(j["shape"] as? [String: Int], ["layers": 2, "dim": 64, "heads": 4, "kv_heads": 2, "head_dim": 16, "ffn_dim": 96,
                                                      "vocab": 272, "context": 96])
        XCTAssertEqual(j["parameters"] as? Int, parameters)
        XCTAssertEqual(j["bytes"] as? Int, parameters * 4)
        let formats = try XCTUnwrap(j["formats"] as? [[String: Any]])
        XCTAssertEqual(formats.count, 1)
        XCTAssertEqual(formats[0]["format"] as? String, "f32")
        XCTAssertEqual(formats[0]["tensors"] as? Int, 1 + c.layers * 9 + 2)
        XCTAssertEqual(formats[0]["bytes"] as? Int, parameters * 4)
        let tokenizer = try XCTUnwrap(j["tokenizer"] as? [String: Any]), chat = try XCTUnwrap(j["chat_template"] as? [String: Any])
        XCTAssertEqual(tokenizer["kind"] as? String, "spm")
        XCTAssertEqual(tokenizer["vocabulary"] as? Int, 272)
        XCTAssertEqual(chat["present"] as? Bool, true)
        XCTAssertEqual(chat["family"] as? String, "chatml")
        let rope = try XCTUnwrap(j["rope"] as? [String: Any])
        XCTAssertEqual(rope["freq_base"] as? Double, 10000)
        XCTAssertEqual(rope["dimensions"] as? Int, 16)
        XCTAssertEqual(rope["ordering"] as? String, "normal")
        XCTAssertEqual(rope["linear_factor"] as? Double, 1)
        XCTAssertEqual(rope["frequency_factors_tensor"] as? Bool, false)
        XCTAssertNil(rope["llama3_factor"])
        XCTAssertEqual(j["tied_embeddings"] as? Bool, false)
        XCTAssertEqual(j["qkv_bias"] as? Bool, false)
        let catalog = try XCTUnwrap(j["catalog_shape"] as? [String: AnyHashable])
        XCTAssertEqual(catalog["id"], "m.gguf")
        XCTAssertEqual(catalog["precision"], "f32")
        XCTAssertEqual(catalog["vocab"], 272)

        let t = try HeadroomCLI.run(["model", "info", "--model", "m.gguf"], cwd: dir)
        XCTAssertEqual(t.status, 0, t.stderr)
        XCTAssertTrue(t.stdout.contains("formats: f32: 21 tensors, "), t.stdout)
        XCTAssertTrue(t.stdout.contains("chat template: present (chatml)"), t.stdout)
        XCTAssertTrue(t.stdout.contains("tokenizer: spm, vocabulary of 272"), t.stdout)
        let missing = try HeadroomCLI.run(["model", "info", "nothere.gguf"], cwd: dir)
        XCTAssertEqual(missing.status, 2)
    }

    func testGreedyGenerationEqualsArgmaxSteppingThroughDecode() throws {
        let dir = try workspace()
        let r = try HeadroomCLI.run(["model", "generate", "m.gguf", "--prompt", "hello", "--max-tokens", "8", "--threads", "1", "--json"], cwd: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try json(r.stdout)
        let tokens = try XCTUnwrap(j["tokens"] as? [Int])

        let path = dir.appendingPathComponent("m.gguf").path
        let tokenizer = try Tokenizer.load(path: path)
        let prompt = tokenizer.encode("hello")
        XCTAssertEqual(j["prompt_tokens"] as? Int, prompt.count)
        let session = try InferenceSession(weights: try ModelWeights.load(gguf: path), maxTokens: 32)
        var logits = try session.prefill([prompt[0]])
        for t in prompt.dropFirst() { logits = try session.decode(t) }
        var expected: [Int] = []
        var stop = "max_tokens"
        while expected.count < 8 {
            let next = logits.withUnsafeBufferPointer { Sampler.argmax($0) }
            if tokenizer.endOfGeneration.contains(next) { stop = "end_of_generation"; break }
            expected.append(Int(next))
            logits = try session.decode(next)
        }
        XCTAssertEqual(tokens, expected)
        XCTAssertEqual(j["stop_reason"] as? String, stop)
        XCTAssertEqual(j["text"] as? String, tokenizer.decode(expected.map(Int32.init)))
        XCTAssertGreaterThan(try XCTUnwrap(j["prefill_tokens_per_s"] as? Double), 0)

        // Streaming text prints the same text, and the rates go to standard error.
        let s = try HeadroomCLI.run(["model", "generate", "--model", "m.gguf", "--prompt", "hello", "--max-tokens", "8", "--threads", "1"], cwd: dir)
        XCTAssertEqual(s.status, 0, s.stderr)
        XCTAssertEqual(s.stdout, TerminalText.escape(j["text"] as? String ?? "") + "\n")
        XCTAssertTrue(s.stderr.contains("measured: prefill \(prompt.count) tokens at"), s.stderr)
        // The ChatML text has no pieces of its own in this vocabulary: it tokenizes byte by byte (54 tokens).
        let chat = try HeadroomCLI.run(["model", "generate", "m.gguf", "--prompt", "hello", "--max-tokens", "2", "--chat", "--json"], cwd: dir)
        XCTAssertEqual(chat.status, 0, chat.stderr)
        XCTAssertGreaterThan(try json(chat.stdout)["prompt_tokens"] as? Int ?? 0, prompt.count)
    }

    func testAFileWithoutARealTokenizerIsRefused() throws {
        let dir = try workspace()
        try GGUFModelExport.write(try ModelWeights.synthetic(ModelConfig(name: "x", layers: 1, dim: 64, heads: 4, kvHeads: 2, ffnDim: 64, vocab: 300, context: 16), type: .f32),
                                  to: dir.appendingPathComponent("x.gguf").path)
        let r = try HeadroomCLI.run(["model", "generate", "x.gguf", "--prompt", "hi"], cwd: dir)
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.hasPrefix("headroom: x.gguf: the file has no usable tokenizer"), r.stderr)
        XCTAssertEqual(r.stdout, "")
    }
}
