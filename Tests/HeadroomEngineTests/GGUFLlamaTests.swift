// The llama layer over GGUF: a configuration written as llama.cpp metadata with a minimal
// tokenizer reads back equal, its tensors check out by name and shape, and wrong files are refused.
import Foundation
import XCTest
@testable import HeadroomEngine

final class GGUFLlamaTests: XCTestCase {
    var dir: GGUFScratchDirectory!
    override func setUpWithError() throws { dir = try GGUFScratchDirectory() }
    override func tearDown() { dir.remove() }

    let config = GGUFLlamaConfig(blockCount: 2, embeddingLength: 64, headCount: 4, headCountKV: 2, feedForwardLength: 96,
                                 contextLength: 128, vocabSize: 300, ropeFreqBase: 500000, rmsNormEpsilon: 1e-6)

    /// Writes `config` as a llama model with matrices of `type` (norms F32), zero-filled.
    func writeModel(_ config: GGUFLlamaConfig, type: GGMLType, tied: Bool = false, name: String = "model.gguf",
                    edit: (inout GGUFMetadata) -> Void = { _ in }) throws -> String {
        var metadata = try config.metadata(name: "test", weightType: type)
        edit(&metadata)
        var writer = GGUFWriter(metadata: metadata)
        for spec in config.tensorSpecs(tiedOutput: tied) {
            try writer.addTensor(name: spec.name, type: spec.isNorm ? .f32 : type, dims: spec.dims) { _ in }
        }
        let path = dir.file(name)
        try writer.write(to: path)
        return path
    }

    func testConfigRoundTripsThroughMetadata() throws {
        for type in GGMLType.supported where type.blockElements! <= 32 {   // the K-quants need widths of 256
            let file = try GGUFFile(path: writeModel(config, type: type, name: "m-\(type.name).gguf"))
            XCTAssertEqual(try file.llamaConfig(), config)
            XCTAssertFalse(try config.checkTensors(in: file).tiedOutput)
            XCTAssertEqual(file.tensor(named: "blk.1.attn_k.weight")?.dims, [64, 32])
            XCTAssertEqual(file.tensor(named: "blk.0.ffn_down.weight")?.dims, [96, 64])
            XCTAssertEqual(file.tensor(named: "blk.0.ffn_down.weight")?.type, type)
            XCTAssertEqual(file.tensor(named: "output_norm.weight")?.type, .f32)
            XCTAssertEqual(file.metadata.int("general.file_type"), Int(GGUFLlamaConfig.fileType(for: type)))
        }
    }

    func testTokenizerMetadata() throws {
        let file = try GGUFFile(path: writeModel(config, type: .f16))
        let m = file.metadata
        XCTAssertEqual(m.string("tokenizer.ggml.model"), "llama")
        let tokens = try XCTUnwrap(m.strings("tokenizer.ggml.tokens"))
        XCTAssertEqual(tokens.count, 300)
        XCTAssertEqual(Array(tokens.prefix(4)), ["<unk>", "<s>", "</s>", "<0x00>"])
        XCTAssertEqual(tokens[3 + 0x0A], "<0x0A>")
        XCTAssertEqual(tokens[258], "<0xFF>")
        XCTAssertEqual(tokens[259], "<tok_259>")
        XCTAssertEqual(Set(tokens).count, 300, "tokens must be unique")
        XCTAssertEqual(m["tokenizer.ggml.scores"]?.arrayValue?.count, 300)
        guard case .array(.int32, let types)? = m["tokenizer.ggml.token_type"] else { return XCTFail("token_type is not int32[]") }
        XCTAssertEqual(types.prefix(4).map(\.intValue), [2, 3, 3, 6])
        XCTAssertEqual(types[299].intValue, 1)
        XCTAssertEqual(m["tokenizer.ggml.bos_token_id"], .uint32(1))
        XCTAssertEqual(m["tokenizer.ggml.eos_token_id"], .uint32(2))
        // llama.cpp reads these hyperparameters with strict types: uint32 and float32.
        XCTAssertEqual(m["llama.block_count"], .uint32(2))
        XCTAssertEqual(m["llama.rope.dimension_count"], .uint32(16))
        XCTAssertEqual(m["llama.attention.layer_norm_rms_epsilon"], .float32(1e-6))
        XCTAssertEqual(m["llama.rope.freq_base"], .float32(500000))
    }

    func testTiedOutputIsAccepted() throws {
        let file = try GGUFFile(path: writeModel(config, type: .q8_0, tied: true))
        XCTAssertTrue(try config.checkTensors(in: file).tiedOutput)
    }

    func testVocabularyFromEmbeddingWhenNoTokenizer() throws {
        let path = try writeModel(config, type: .f32) { m in
            m["tokenizer.ggml.tokens"] = nil
            m["llama.vocab_size"] = nil
        }
        XCTAssertEqual(try GGUFFile(path: path).llamaConfig().vocabSize, 300)
    }

    func testDefaultsForOptionalKeys() throws {
        let path = try writeModel(config, type: .f32) { m in
            m["llama.attention.head_count_kv"] = nil
            m["llama.rope.freq_base"] = nil
        }
        let read = try GGUFFile(path: path).llamaConfig()
        XCTAssertEqual(read.headCountKV, 4)
        XCTAssertEqual(read.ropeFreqBase, 10000)
    }

    func testWrongFilesAreRefusedWithTheirMessages() throws {
        var path = try writeModel(config, type: .f32, name: "gpt2.gguf") { $0["general.architecture"] = .string("gpt2") }
        let gpt2 = try GGUFFile(path: path)
        assertGGUFError("\(path): general.architecture is \"gpt2\", but Headroom runs only \"llama\", \"mistral\", \"qwen2\"") { _ = try gpt2.llamaConfig() }

        path = try writeModel(config, type: .f32, name: "noctx.gguf") { $0["llama.context_length"] = nil }
        let noContext = try GGUFFile(path: path)
        assertGGUFError("\(path): metadata llama.context_length is missing") { _ = try noContext.llamaConfig() }

        path = try writeModel(config, type: .f32, name: "strblocks.gguf") { $0["llama.block_count"] = .string("2") }
        let stringBlocks = try GGUFFile(path: path)
        assertGGUFError("\(path): metadata llama.block_count is a string, expected an integer") { _ = try stringBlocks.llamaConfig() }

        path = try writeModel(config, type: .f32, name: "vocab.gguf") { $0["llama.vocab_size"] = .uint32(301) }
        let vocab = try GGUFFile(path: path)
        assertGGUFError("\(path): invalid llama configuration: tokenizer.ggml.tokens has 300 entries but llama.vocab_size is 301") {
            _ = try vocab.llamaConfig()
        }

        path = try writeModel(config, type: .f32, name: "heads.gguf") { $0["llama.attention.head_count_kv"] = .uint32(3) }
        let heads = try GGUFFile(path: path)
        assertGGUFError("\(path): invalid llama configuration: llama.attention.head_count 4 is not a multiple of llama.attention.head_count_kv 3") {
            _ = try heads.llamaConfig()
        }

        var other = config
        other.feedForwardLength = 128
        path = try writeModel(config, type: .f32, name: "shape.gguf")
        let shape = try GGUFFile(path: path)
        assertGGUFError("\(path): tensor blk.0.ffn_gate.weight has dims [64, 96], expected [64, 128]") { try other.checkTensors(in: shape) }

        var missing = GGUFWriter(metadata: try config.metadata(name: "x", weightType: .f32))
        try missing.addTensor(name: GGUFLlamaTensorNames.tokenEmbedding, type: .f32, dims: [64, 300]) { _ in }
        path = dir.file("missing.gguf")
        try missing.write(to: path)
        let partial = try GGUFFile(path: path)
        assertGGUFError("\(path): tensor blk.0.attn_norm.weight is missing") { try config.checkTensors(in: partial) }
    }

    func testHugeBlockCountIsRefusedAtTheFirstAbsentLayer() throws {
        // headroom-fuzz found that a file claiming 2^40 blocks was checked by first listing 9 * 2^40 tensor names.
        let path = try writeModel(config, type: .q4_0, name: "blocks.gguf") { $0["llama.block_count"] = .uint64(1 << 40) }
        let file = try GGUFFile(path: path)
        let start = Date()
        assertGGUFError("\(path): tensor blk.2.attn_norm.weight is missing") { try file.llamaConfig().checkTensors(in: file) }
        assertGGUFError("\(path): tensor blk.2.attn_norm.weight is missing") { _ = try ModelWeights(gguf: file) }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1)
    }

    func testMetadataHelperRefusesTinyVocabulary() {
        var small = config
        small.vocabSize = 100
        assertGGUFError("(writer): invalid llama configuration: vocabulary size 100 is too small for the minimal tokenizer: it needs at least 259 tokens") {
            _ = try small.metadata(name: "x", weightType: .f32)
        }
    }

    func testTensorNames() {
        XCTAssertEqual(GGUFLlamaTensorNames.attentionQ(3), "blk.3.attn_q.weight")
        XCTAssertEqual(GGUFLlamaTensorNames.ffnDown(21), "blk.21.ffn_down.weight")
        XCTAssertEqual(config.tensorSpecs().count, 1 + 2 * 9 + 2)
        XCTAssertEqual(config.tensorSpecs().first, GGUFLlamaTensorSpec(name: "token_embd.weight", dims: [64, 300], isNorm: false))
        XCTAssertEqual(config.tensorSpecs().last, GGUFLlamaTensorSpec(name: "output.weight", dims: [64, 300], isNorm: false))
    }
}
