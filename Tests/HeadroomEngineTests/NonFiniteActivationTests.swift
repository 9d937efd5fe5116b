// A model whose activations turn NaN or infinite is refused by prefill, decode and batched decode alike,
// naming the first layer where it happened; the sequence is left as it was.
import Foundation
import HeadroomKernels
import XCTest
@testable import HeadroomEngine

final class NonFiniteActivationTests: XCTestCase {
    /// 4 layers so that the layer named is not simply the first or the last.
    let config = ModelConfig(name: "poison", layers: 4, dim: 64, heads: 4, kvHeads: 2, ffnDim: 96, vocab: 300, context: 32)
    let tokens: [Int32] = [1, 17, 42, 5]

    /// The synthetic f32 model with one value of one tensor replaced, written as GGUF and loaded back from the file.
    func poisoned(_ tensor: String, at index: Int, _ value: Float) throws -> (ModelWeights, path: String) {
        try poisoned(tensor) { $0[index] = value }
    }

    func poisoned(_ tensor: String, _ edit: (inout [Float]) -> Void) throws -> (ModelWeights, path: String) {
        let base = try ModelWeights.synthetic(config, type: .f32, seed: 11)
        let named = Dictionary(uniqueKeysWithValues: base.namedTensors.map { ($0.name, $0.matrix) })
        let weights = try ModelWeights(config: config) { name in
            guard let m = named[name] else { return nil }
            guard name == tensor else { return m }
            var values = m.dequantized()
            edit(&values)
            return WeightMatrix.quantized(values, type: .f32, rows: m.rows, cols: m.cols)
        }
        let dir = try GGUFScratchDirectory()
        addTeardownBlock { dir.remove() }
        let path = dir.file("model.gguf")
        try GGUFModelExport.write(weights, to: path)
        return (try ModelWeights.load(gguf: path), path)
    }

    func assertRefused(_ body: @autoclosure () throws -> Any, _ expected: NonFiniteActivations,
                       file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { e in
            XCTAssertEqual(e as? NonFiniteActivations, expected, "\(e)", file: file, line: line)
        }
    }

    func testANaNWeightIsRefusedInEveryPathNamingItsLayer() throws {
        let (w, path) = try poisoned(ModelWeights.Name.block(2, "attn_output"), at: 5, .nan)
        let expected = NonFiniteActivations(model: path, site: .layer(2))
        XCTAssertEqual(expected.description, "\(path): the activations became non-finite (NaN or infinity) in layer 2 (blk.2)")
        let s = try InferenceSession(weights: w, maxTokens: 16, maxBatch: 2)
        assertRefused(try s.prefill(tokens), expected)
        XCTAssertEqual(s.positions, [0, 0], "a refused prefill leaves the sequence as it was")
        assertRefused(try s.decode(tokens[0]), expected)
        assertRefused(try s.decodeBatch([3, 4]), expected)
        XCTAssertEqual(s.positions, [0, 0])
    }

    func testHugeWeightsThatOverflowAreNamedToo() throws {
        // Every scale of layer 1's attention norm at Float's largest value: the normalised row has RMS 1, so its
        // largest element (above 1 unless all are equal) times the scale overflows to infinity.
        let (w, path) = try poisoned(ModelWeights.Name.block(1, "attn_norm")) { $0 = $0.map { _ in .greatestFiniteMagnitude } }
        assertRefused(try InferenceSession(weights: w, maxTokens: 16).prefill(tokens), NonFiniteActivations(model: path, site: .layer(1)))
        assertRefused(try InferenceSession(weights: w, maxTokens: 16).decode(9), NonFiniteActivations(model: path, site: .layer(1)))
    }

    func testTheEmbeddingAndTheOutputHeadAreNamed() throws {
        // Token 17's embedding row.
        let (e, ePath) = try poisoned(ModelWeights.Name.tokenEmbedding, at: 17 * config.dim + 3, .infinity)
        assertRefused(try InferenceSession(weights: e, maxTokens: 16).prefill(tokens), NonFiniteActivations(model: ePath, site: .embedding))
        assertRefused(try InferenceSession(weights: e, maxTokens: 16).decode(17), NonFiniteActivations(model: ePath, site: .embedding))
        let (o, oPath) = try poisoned(ModelWeights.Name.output, at: 7 * config.dim, .nan)
        let expected = NonFiniteActivations(model: oPath, site: .output)
        XCTAssertEqual(expected.description, "\(oPath): the activations became non-finite (NaN or infinity) in the output head (output_norm, output)")
        assertRefused(try InferenceSession(weights: o, maxTokens: 16).prefill(tokens), expected)
        assertRefused(try InferenceSession(weights: o, maxTokens: 16).decode(1), expected)
    }

    func testAnUnusedBadRowIsNoError() throws {
        // Token 250's embedding row is never read by these tokens.
        let (w, _) = try poisoned(ModelWeights.Name.tokenEmbedding, at: 250 * config.dim, .nan)
        let s = try InferenceSession(weights: w, maxTokens: 16)
        XCTAssertTrue(try s.prefill(tokens).allSatisfy(\.isFinite))
        XCTAssertTrue(try s.decode(3).allSatisfy(\.isFinite))
        XCTAssertEqual(s.positions, [5])
    }

    func testSyntheticWeightsAreNamedByTheirModel() throws {
        XCTAssertEqual(NonFiniteActivations(model: "model poison", site: .layer(1)).description,
                       "model poison: the activations became non-finite (NaN or infinity) in layer 1 (blk.1)")
        XCTAssertNil(try ModelWeights.synthetic(config, type: .f32).file)
    }

    func testTheFiniteCheckSeesEveryPosition() {
        for n in [1, 15, 16, 17, 100] {
            for bad in [Float.nan, .infinity, -.infinity] {
                for i in [0, n / 2, n - 1] {
                    var v = [Float](repeating: 1e30, count: n)
                    XCTAssertTrue(v.withUnsafeBufferPointer { InferenceSession.allFinite($0.baseAddress!, count: n) })
                    v[i] = bad
                    XCTAssertFalse(v.withUnsafeBufferPointer { InferenceSession.allFinite($0.baseAddress!, count: n) }, "\(n) \(i) \(bad)")
                }
            }
        }
    }
}
