// GGUF files through the engine: a synthetic model exported as GGUF and loaded back (mapped, not copied)
// computes the same logits as the in-memory model, in every precision; tied output and refusals.
import Foundation
import XCTest
@testable import HeadroomEngine
import HeadroomKernels

final class GGUFModelTests: XCTestCase {
    /// 2 layers, dim 64, GQA 4/2 heads, vocab 300 (the minimal tokenizer needs 259).
    let config = ModelConfig(name: "gguf-test", layers: 2, dim: 64, heads: 4, kvHeads: 2, ffnDim: 96, vocab: 300, context: 64)
    let tokens: [Int32] = [1, 17, 259, 42, 299, 5, 0, 128]
    /// Widths that the K-quants' 256-element super-blocks divide.
    let wide = ModelConfig(name: "gguf-test-k", layers: 2, dim: 256, heads: 4, kvHeads: 2, ffnDim: 512, vocab: 300, context: 64)

    func temporaryPath(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-model-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir.appendingPathComponent(name).path
    }

    func logits(_ w: ModelWeights) throws -> [Float] {
        let s = try InferenceSession(weights: w, maxTokens: tokens.count)
        return try s.prefill(tokens)
    }

    func testExportThenLoadGivesTheSyntheticModelsLogits() throws {
        for type in QuantType.allCases {
            let config = type.blockSize > config.dim ? wide : config
            let path = temporaryPath("m-\(type).gguf")
            try GGUFModelExport.writeSynthetic(config, type: type, seed: 7, to: path)
            let memory = try ModelWeights.synthetic(config, type: type, seed: 7)
            let file = try GGUFFile(path: path)
            let loaded = try ModelWeights(gguf: file)
            XCTAssertEqual(loaded.config.layers, config.layers)
            XCTAssertEqual(loaded.config.kvHeads, config.kvHeads)
            XCTAssertEqual(loaded.config.vocab, config.vocab)
            XCTAssertEqual(loaded.type, type)
            // The matrices point into the mapping, not a copy.
            let embd = try file.requireTensor("token_embd.weight")
            XCTAssertEqual(loaded.tokenEmbedding.data, embd.data, "\(type): token embedding was copied")
            XCTAssertEqual(loaded.layers[1].down.data, try file.requireTensor("blk.1.ffn_down.weight").data)
            // Same bytes tensor by tensor.
            for ((n1, m1), (n2, m2)) in zip(memory.namedTensors, loaded.namedTensors) {
                XCTAssertEqual(n1, n2)
                XCTAssertEqual(m1.type, m2.type, n1)
                XCTAssertTrue(memcmp(m1.data, m2.data, m1.bytes) == 0, "\(type): \(n1) differs")
            }
            let a = try logits(memory), b = try logits(loaded)
            XCTAssertEqual(a.count, config.vocab)
            XCTAssertTrue(a.allSatisfy { $0.isFinite })
            XCTAssertEqual(a, b, "\(type): logits differ after the GGUF round trip")
        }
    }

    func testMixedFormatsLoadAndRunAsInMemory() throws {
        // Tensor i in format i mod 13, as real files mix formats across tensors (Q4_K_M: q4_K, q6_K, …).
        let types = QuantType.allCases
        let models = try types.map { try ModelWeights.synthetic(wide, type: $0, seed: 11) }
        var pick: [String: WeightMatrix] = [:], i = 0
        for t in models[0].namedTensors where !t.name.contains("norm") {
            pick[t.name] = models[i % types.count].namedTensors.first { $0.name == t.name }!.matrix
            i += 1
        }
        let memory = try ModelWeights(config: wide) { name in pick[name] ?? models[0].namedTensors.first { $0.name == name }?.matrix }
        XCTAssertEqual(Set(memory.namedTensors.map(\.matrix.type)).count, types.count)
        var writer = GGUFWriter(metadata: try wide.gguf.metadata(name: "mixed", weightType: .q4_K))
        for (name, m) in memory.namedTensors {
            let bytes = Array(UnsafeRawBufferPointer(start: m.data, count: m.bytes))
            let dims = m.rows == 1 && m.type == .f32 && name.contains("norm") ? [m.cols] : [m.cols, m.rows]
            try writer.addTensor(name: name, type: GGMLType(m.type), dims: dims, bytes: bytes)
        }
        let path = temporaryPath("mixed.gguf")
        try writer.write(to: path)
        let loaded = try ModelWeights.load(gguf: path)
        for ((n1, m1), (_, m2)) in zip(memory.namedTensors, loaded.namedTensors) { XCTAssertEqual(m1.type, m2.type, n1) }
        XCTAssertEqual(try logits(loaded), try logits(memory), "prefill")
        // Decode (the matrix-vector kernels, each format's own) and batched decode, against the in-memory model.
        let a = try InferenceSession(weights: memory, maxTokens: 4, maxBatch: 2), b = try InferenceSession(weights: loaded, maxTokens: 4, maxBatch: 2)
        for s in [a, b] { _ = try s.prefill([1, 2], sequence: 0); _ = try s.prefill([3, 4], sequence: 1) }
        let da = try a.decode(7), db = try b.decode(7)
        XCTAssertTrue(da.allSatisfy(\.isFinite))
        XCTAssertEqual(da, db, "decode")
        XCTAssertEqual(try a.decodeBatch([5, 6]), try b.decodeBatch([5, 6]), "batched decode")
    }

    func testKQuantWidthsAreCheckedAgainstTheirBlock() {
        XCTAssertThrowsError(try ModelWeights.synthetic(config, type: .q4_K)) { e in
            XCTAssertTrue("\(e)".contains("must be multiples of 256 for q4_k"), "\(e)")
        }
        XCTAssertNoThrow(try ModelWeights.synthetic(config, type: .q4_0))
    }

    func testTiedOutputUsesTheTokenEmbedding() throws {
        let memory = try ModelWeights.synthetic(config, type: .q8_0, seed: 3)
        var writer = GGUFWriter(metadata: try config.gguf.metadata(name: "tied", weightType: .q8_0))
        for (name, m) in memory.namedTensors where name != "output.weight" {
            let bytes = Array(UnsafeRawBufferPointer(start: m.data, count: m.bytes))
            let dims = m.rows == 1 && m.type == .f32 && name.contains("norm") ? [m.cols] : [m.cols, m.rows]
            try writer.addTensor(name: name, type: GGMLType(m.type), dims: dims, bytes: bytes)
        }
        let path = temporaryPath("tied.gguf")
        try writer.write(to: path)
        let loaded = try ModelWeights.load(gguf: path)
        XCTAssertEqual(loaded.output.data, loaded.tokenEmbedding.data)
        // Reference: the in-memory model with its output head replaced by the embedding.
        let tied = try ModelWeights(config: config) { name in
            let t = memory.namedTensors.first { $0.name == (name == "output.weight" ? "token_embd.weight" : name) }
            return t?.matrix
        }
        XCTAssertEqual(try logits(loaded), try logits(tied))
    }

    func testTruncatedModelIsRefusedWithItsName() throws {
        let path = temporaryPath("cut.gguf")
        try GGUFModelExport.writeSynthetic(config, type: .q4_0, to: path)
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        XCTAssertEqual(truncate(path, off_t(size - 100)), 0)
        XCTAssertThrowsError(try ModelWeights.load(gguf: path)) { error in
            let e = error as? GGUFError
            XCTAssertNotNil(e)
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
    }

    func testNonLlamaShapeIsRefused() throws {
        // Heads 3 in dim 64: not a whole head dim; the writer's metadata refuses it before any bytes are written.
        let bad = ModelConfig(name: "bad", layers: 1, dim: 64, heads: 3, kvHeads: 1, ffnDim: 64, vocab: 300, context: 8)
        XCTAssertThrowsError(try GGUFModelExport.writeSynthetic(bad, type: .f32, to: temporaryPath("bad.gguf")))
        // A vocabulary too small for the minimal tokenizer: refused, naming the file it was to write.
        let small = ModelConfig(name: "v200", layers: 1, dim: 64, heads: 4, kvHeads: 4, ffnDim: 64, vocab: 200, context: 8)
        let path = temporaryPath("v200.gguf")
        XCTAssertThrowsError(try GGUFModelExport.writeSynthetic(small, type: .f32, to: path)) { error in
            XCTAssertTrue("\(error)".hasPrefix(path + ": "), "\(error)")
            XCTAssertTrue("\(error)".contains("259"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }
}
