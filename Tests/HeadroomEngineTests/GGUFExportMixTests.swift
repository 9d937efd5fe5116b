// `model export`'s precisions: llama-quantize's K-quant mixtures tensor by tensor (hand-computed from llama.cpp's
// llama_tensor_get_type rules), the fallback for rows a 256-element block does not divide, and a Q4_K_M file that
// loads with exactly that mix and computes logits close to the f32 model's.
import Foundation
import XCTest
@testable import HeadroomEngine
import HeadroomKernels

final class GGUFExportMixTests: XCTestCase {
    /// 8 layers (llama.cpp's use_more_bits picks layers 0, 3, 6, 7), widths that 256 divides, GQA 4/2, vocab 512.
    let config = ModelConfig(name: "mix-test", layers: 8, dim: 256, heads: 4, kvHeads: 2, ffnDim: 512, vocab: 512, context: 64)

    func temporaryPath(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-mix-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir.appendingPathComponent(name).path
    }

    /// The format of every matrix of `c` under `p`, by name.
    func types(_ p: GGUFExportPrecision, _ c: ModelConfig) -> [String: QuantType] {
        Dictionary(uniqueKeysWithValues: ModelWeights.syntheticPlan(c).filter { !$0.isNorm }.map { ($0.name, p.type(of: $0.name, cols: $0.cols, config: c).type) })
    }

    func layersOf(_ t: [String: QuantType], _ part: String, _ type: QuantType, layers: Int) -> [Int] {
        (0..<layers).filter { t["blk.\($0).\(part).weight"] == type }
    }

    func testUseMoreBitsIsLlamaCpps() {
        // i < n/8 || i >= 7n/8 || (i − n/8) % 3 == 2, worked by hand.
        XCTAssertEqual((0..<8).filter { GGUFExportPrecision.useMoreBits($0, of: 8) }, [0, 3, 6, 7])
        XCTAssertEqual((0..<12).filter { GGUFExportPrecision.useMoreBits($0, of: 12) }, [0, 3, 6, 9, 10, 11])
        // TinyLlama's 22 layers: the attn_v layers its published Q4_K_M files hold in q6_K.
        XCTAssertEqual((0..<22).filter { GGUFExportPrecision.useMoreBits($0, of: 22) }, [0, 1, 4, 7, 10, 13, 16, 19, 20, 21])
    }

    func testMixturesTensorByTensor() throws {
        let q4km = types(GGUFExportPrecision(.q4_k_m), config)
        XCTAssertEqual(q4km["output.weight"], .q6_K)
        XCTAssertEqual(q4km["token_embd.weight"], .q4_K)
        XCTAssertEqual(layersOf(q4km, "attn_v", .q6_K, layers: 8), [0, 3, 6, 7])
        XCTAssertEqual(layersOf(q4km, "ffn_down", .q6_K, layers: 8), [0, 3, 6, 7])
        for part in ["attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"] {
            XCTAssertEqual(layersOf(q4km, part, .q4_K, layers: 8), Array(0..<8), part)
        }
        XCTAssertEqual(q4km.values.filter { $0 == .q6_K }.count, 9)

        let q5km = types(GGUFExportPrecision(.q5_k_m), config)
        XCTAssertEqual(layersOf(q5km, "ffn_down", .q6_K, layers: 8), [0, 3, 6, 7])
        XCTAssertEqual(layersOf(q5km, "ffn_down", .q5_K, layers: 8), [1, 2, 4, 5])

        let q4ks = types(GGUFExportPrecision(.q4_k_s), config)
        XCTAssertEqual(layersOf(q4ks, "attn_v", .q5_K, layers: 8), [0, 1, 2, 3])
        XCTAssertEqual(layersOf(q4ks, "ffn_down", .q5_K, layers: 8), [0])
        XCTAssertEqual(q4ks["output.weight"], .q6_K)

        let q3km = types(GGUFExportPrecision(.q3_k_m), config)
        XCTAssertEqual(layersOf(q3km, "attn_v", .q5_K, layers: 8), [0, 1])
        XCTAssertEqual(layersOf(q3km, "attn_v", .q4_K, layers: 8), [2, 3, 4, 5, 6, 7])
        XCTAssertEqual(layersOf(q3km, "ffn_down", .q4_K, layers: 8), Array(0..<8), "n/16 = 0 layers in q5_K")
        XCTAssertEqual(layersOf(q3km, "attn_output", .q4_K, layers: 8), Array(0..<8))
        XCTAssertEqual(layersOf(q3km, "ffn_up", .q3_K, layers: 8), Array(0..<8))

        let q3kl = types(GGUFExportPrecision(.q3_k_l), config)
        XCTAssertEqual(Set(["attn_v", "ffn_down", "attn_output"].flatMap { p in (0..<8).map { q3kl["blk.\($0).\(p).weight"]! } }), [.q5_K])

        let q5ks = types(GGUFExportPrecision(.q5_k_s), config)
        XCTAssertEqual(Set(q5ks.filter { $0.key != "output.weight" }.values), [.q5_K])

        // A format name is that format throughout, the output head included (llama-quantize --pure).
        XCTAssertEqual(Set(types(GGUFExportPrecision(.q4_K), config).values), [.q4_K])
        XCTAssertEqual(Set(types(GGUFExportPrecision(.q2_K), config).values), [.q2_K])

        // llama.cpp's 70B rule (80 layers, grouped-query attention): q3_K/q4_K attn_v become q5_K.
        let big = ModelConfig(name: "70b", layers: 80, dim: 256, heads: 8, kvHeads: 1, ffnDim: 512, vocab: 512, context: 64)
        XCTAssertEqual(GGUFExportPrecision(.q4_k_s).type(of: "blk.10.attn_v.weight", cols: 256, config: big).type, .q5_K)
        XCTAssertEqual(GGUFExportPrecision(.q4_k_s).type(of: "blk.10.attn_q.weight", cols: 256, config: big).type, .q4_K)

        // A tied embedding is the output head, and gets its format.
        var tied = config
        tied.tiedEmbeddings = true
        XCTAssertEqual(types(GGUFExportPrecision(.q4_k_m), tied)["token_embd.weight"], .q6_K)
    }

    func testFileTypesAreLlamaCpps() {
        // llama.h's LLAMA_FTYPE_MOSTLY_*.
        let want: [(String, UInt32)] = [("q3_k_s", 11), ("q3_k_m", 12), ("q3_k_l", 13), ("q4_k_s", 14), ("q4_k_m", 15),
                                        ("q5_k_s", 16), ("q5_k_m", 17), ("q6_k", 18), ("q2_k", 10), ("q4_0", 2), ("f16", 1)]
        for (name, ftype) in want { XCTAssertEqual(GGUFExportPrecision(name: name)?.llamaFileType, ftype, name) }
        XCTAssertNil(GGUFExportPrecision(name: "q4_k_x"))
        XCTAssertEqual(GGUFExportPrecision(name: "Q4_K_M"), GGUFExportPrecision(.q4_k_m))
    }

    func testFallbackForRowsThatAreNotMultiplesOf256() throws {
        // ffn_down rows are 544 wide: q4_K falls back to q5_0, q6_K to q8_0, q5_K to q5_1, q3_K to q4_0.
        let odd = ModelConfig(name: "odd", layers: 8, dim: 256, heads: 4, kvHeads: 2, ffnDim: 544, vocab: 512, context: 64)
        let q4km = types(GGUFExportPrecision(.q4_k_m), odd)
        XCTAssertEqual(layersOf(q4km, "ffn_down", .q8_0, layers: 8), [0, 3, 6, 7])
        XCTAssertEqual(layersOf(q4km, "ffn_down", .q5_0, layers: 8), [1, 2, 4, 5])
        XCTAssertEqual(layersOf(q4km, "ffn_up", .q4_K, layers: 8), Array(0..<8), "rows 256 wide need no fallback")
        XCTAssertEqual(Set((0..<8).map { types(GGUFExportPrecision(.q5_K), odd)["blk.\($0).ffn_down.weight"]! }), [.q5_1])
        XCTAssertEqual(Set((0..<8).map { types(GGUFExportPrecision(.q3_k_s), odd)["blk.\($0).ffn_down.weight"]! }), [.q4_0])
        // Rows 64 wide: the output head is q8_0 by the output rule, every other matrix falls back.
        let narrow = ModelConfig(name: "narrow", layers: 2, dim: 64, heads: 4, kvHeads: 2, ffnDim: 96, vocab: 300, context: 64)
        XCTAssertEqual(GGUFExportPrecision(.q4_k_m).type(of: "output.weight", cols: 64, config: narrow).type, .q8_0)
        XCTAssertEqual(GGUFExportPrecision.fallback(.q6_K, cols: 96).type, .q8_0)
        XCTAssertEqual(GGUFExportPrecision.fallback(.q4_K, cols: 48).type, .f16, "32 does not divide 48 either")

        let path = temporaryPath("odd.gguf")
        let w = try GGUFModelExport.writeSynthetic(odd, precision: GGUFExportPrecision(.q4_k_m), seed: 5, to: path)
        XCTAssertEqual(w.fallbacks, (0..<8).map { "blk.\($0).ffn_down.weight" })
        let loaded = try ModelWeights.load(gguf: path)
        XCTAssertEqual(loaded.layers.map(\.down.type), [.q8_0, .q5_0, .q5_0, .q8_0, .q5_0, .q5_0, .q8_0, .q8_0])
        let logits = try InferenceSession(weights: loaded, maxTokens: 4).prefill([1, 2, 3])
        XCTAssertTrue(logits.allSatisfy(\.isFinite))
    }

    func testQ4KMExportLoadsWithTheMixAndMatchesTheF32Logits() throws {
        let path = temporaryPath("m-q4_k_m.gguf")
        let seed: UInt64 = 9
        let w = try GGUFModelExport.writeSynthetic(config, precision: GGUFExportPrecision(.q4_k_m), seed: seed, threads: 2, to: path)
        XCTAssertEqual(w.fallbacks, [])
        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.metadata.int("general.file_type"), 15, "LLAMA_FTYPE_MOSTLY_Q4_K_M")
        let want = types(GGUFExportPrecision(.q4_k_m), config)
        for (name, type) in want {
            XCTAssertEqual(try file.requireTensor(name).type, GGMLType(type), name)
        }
        let loaded = try ModelWeights(gguf: file)
        XCTAssertEqual(loaded.output.type, .q6_K)
        XCTAssertEqual(loaded.layers.map(\.wv.type), [.q6_K, .q4_K, .q4_K, .q6_K, .q4_K, .q4_K, .q6_K, .q6_K])
        XCTAssertEqual(loaded.layers.map(\.down.type), [.q6_K, .q4_K, .q4_K, .q6_K, .q4_K, .q4_K, .q6_K, .q6_K])
        XCTAssertEqual(Set(loaded.layers.flatMap { [$0.wq.type, $0.wk.type, $0.wo.type, $0.gate.type, $0.up.type] }), [.q4_K])

        // The same floats as the in-memory synthetic model: a tensor in q6_K is the q6_K model's bytes.
        let q6 = try ModelWeights.synthetic(config, type: .q6_K, seed: seed)
        XCTAssertEqual(memcmp(q6.output.data, loaded.output.data, q6.output.bytes), 0, "output.weight")
        XCTAssertEqual(memcmp(q6.layers[3].wv.data, loaded.layers[3].wv.data, q6.layers[3].wv.bytes), 0, "blk.3.attn_v.weight")

        let reference = try ModelWeights.synthetic(config, type: .f32, seed: seed)
        let tokens: [Int32] = [1, 17, 259, 42, 300, 5, 0, 128]
        let a = try InferenceSession(weights: reference, maxTokens: tokens.count).prefill(tokens)
        let b = try InferenceSession(weights: loaded, maxTokens: tokens.count).prefill(tokens)
        let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let na = a.reduce(0.0) { $0 + Double($1) * Double($1) }, nb = b.reduce(0.0) { $0 + Double($1) * Double($1) }
        let cosine = dot / (na * nb).squareRoot()
        XCTAssertGreaterThan(cosine, 0.99, "q4_k_m logits against f32")
        XCTAssertLessThan(cosine, 1, "a quantized model is not the f32 model")
    }
}
