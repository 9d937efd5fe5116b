// The serving engine: the paged model step gives InferenceSession's logits.
import HeadroomKernels
import XCTest
@testable import HeadroomEngine

private let micro = ModelConfig(name: "serving-micro", layers: 2, dim: 64, heads: 4, kvHeads: 2, ffnDim: 96, vocab: 101, context: 96)

private func assertClose(_ a: [Float], _ b: [Float], tol: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, what, file: file, line: line)
    let scale = max(b.map { abs($0) }.max() ?? 1, 1)
    for i in 0..<min(a.count, b.count) where abs(a[i] - b[i]) > tol * scale {
        XCTFail("\(what): at \(i) \(a[i]) vs \(b[i])", file: file, line: line); return
    }
}

/// `count` prompts of 3 to 40 tokens from a seeded stream.
private func prompts(_ count: Int, seed: UInt64 = 11) -> [[Int32]] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in (0..<3 + Int(rng.next() % 38)).map { _ in Int32(rng.next() % UInt64(micro.vocab)) } }
}

final class ServingTests: XCTestCase {
    private static var cache: [QuantType: ModelWeights] = [:]
    private func weights(_ type: QuantType) throws -> ModelWeights {
        if let w = Self.cache[type] { return w }
        let w = try ModelWeights.synthetic(micro, type: type, threads: 2)
        Self.cache[type] = w
        return w
    }

    func testKVBudgetSizesThePool() throws {
        let perBlock = PagedKVCache.bytesPerBlock(micro)
        XCTAssertEqual(perBlock, 2 * 2 * 16 * 32 * 4)
        XCTAssertEqual(KVCacheBudget.bytes(10 * perBlock + perBlock - 1).blocks(for: micro), 10)
        XCTAssertEqual(KVCacheBudget.tokens(33).blocks(for: micro), 3)
        let cache = try PagedKVCache(config: micro, budget: .bytes(5 * perBlock))
        XCTAssertEqual(cache.totalBlocks, 5)
        XCTAssertEqual(cache.bytes, 5 * perBlock)
        XCTAssertThrowsError(try PagedKVCache(config: micro, budget: .bytes(perBlock - 1)))
    }

    /// Prefill whole, prefill in chunks beside decodes, and batched decodes through scattered block tables
    /// give InferenceSession's logits.
    func testPagedStepMatchesInferenceSession() throws {
        for type in [QuantType.f32, .q4_0] {
            let w = try weights(type)
            let prompt = prompts(1, seed: 3)[0] + prompts(1, seed: 4)[0]
            let decodes: [Int32] = [7, 64, 33]
            let ref = try InferenceSession(weights: w, maxTokens: 96, threads: 2)
            let refPrefill = try ref.prefill(prompt)
            let refDecode = try decodes.map { try ref.decode($0) }

            let session = try ServingSession(weights: w, cache: PagedKVCache(config: micro, totalBlocks: 12), threads: 2)
            let tableA: [Int32] = [9, 2, 11, 0, 5], tableB: [Int32] = [3, 10, 1, 7, 4]
            let n = prompt.count, c1 = n / 3, c2 = 2 * n / 3
            func work(_ table: [Int32], _ tokens: ArraySlice<Int32>, _ start: Int, _ logits: Bool = true) -> SequenceWork {
                SequenceWork(sequence: Int(table[0]), blockTable: table, tokens: Array(tokens), start: start, wantsLogits: logits)
            }
            // q4_0's batched decode quantizes activations to q8_0 where prefill multiplies in f32, and the
            // reference decodes one sequence through the single-row kernel: about one quantization step apart.
            let tol: Float = type == .f32 ? 1e-4 : 0.05
            var out = try session.stepLogits([work(tableA, prompt[...], 0)])
            assertClose(out[0], refPrefill, tol: tol, "\(type) whole prefill")
            out = try session.stepLogits([work(tableB, prompt[..<c1], 0, false)])
            XCTAssertTrue(out.isEmpty)
            out = try session.stepLogits([work(tableA, decodes[0...0], n), work(tableB, prompt[c1..<c2], c1, false)])
            assertClose(out[0], refDecode[0], tol: tol, "\(type) decode beside a chunk")
            out = try session.stepLogits([work(tableB, prompt[c2...], c2), work(tableA, decodes[1...1], n + 1)])
            assertClose(out[0], refPrefill, tol: tol, "\(type) last chunk")
            assertClose(out[1], refDecode[1], tol: tol, "\(type) second decode")
            out = try session.stepLogits([work(tableA, decodes[2...2], n + 2), work(tableB, decodes[0...0], n)])
            assertClose(out[0], refDecode[2], tol: tol, "\(type) batched decode A")
            assertClose(out[1], refDecode[0], tol: tol, "\(type) batched decode B")
            // The cache holds, through the tables, what the reference computed.
            XCTAssertEqual(session.cache.read(layer: 1, table: tableA, from: 0, count: n).k.count, n * micro.kvDim)
        }
    }

    func testStepRefusesBadWork() throws {
        let session = try ServingSession(weights: weights(.f32), cache: PagedKVCache(config: micro, totalBlocks: 2), threads: 1)
        XCTAssertThrowsError(try session.step([SequenceWork(sequence: 0, blockTable: [0], tokens: Array(repeating: 1, count: 17), start: 0)]))
        XCTAssertThrowsError(try session.step([SequenceWork(sequence: 0, blockTable: [0], tokens: [101], start: 0)]))
        XCTAssertThrowsError(try session.step([SequenceWork(sequence: 0, blockTable: [2], tokens: [1], start: 0)]))
    }
}
