// The trainer's frozen base loaded from a GGUF file: a model written from the trainer's own synthetic weights
// trains to bit-identical losses in f32 and q4_0, full fine-tuning on a quantized file starts from its
// dequantized weights, and the trainer's forward over a file computes the engine's next-token probabilities.
import Foundation
import XCTest
@testable import HeadroomEngine
import HeadroomKernels

final class TrainerGGUFBaseTests: XCTestCase {
    /// Vocabulary 300: the minimal tokenizer in the file's metadata needs 259 entries. Width 64 for whole q4_0 blocks.
    let config = ModelConfig(name: "t", layers: 2, dim: 64, heads: 4, kvHeads: 2, ffnDim: 96, vocab: 300, context: 16)
    let lora = TrainMethod.lora(LoRAConfig(rank: 4, alpha: 8, targets: [.q, .v, .down]))

    func options(_ p: QuantType) -> TrainOptions { TrainOptions(batch: 2, seqLen: 8, threads: 2, seed: 7, precision: p) }
    func batches() -> [TokenBatch] {
        let task = SyntheticPatternTask(vocab: config.vocab, period: 16, seed: 3)
        return (0..<3).map { task.batch(step: $0, B: 2, T: 8) }
    }

    /// Writes trainer `a`'s base to a GGUF file and maps it back.
    func roundTrip(_ a: Trainer, _ dir: GGUFScratchDirectory, _ name: String) throws -> ModelWeights {
        let path = dir.file(name)
        try GGUFModelExport.write(a.baseWeights(name: "t"), to: path)
        return try ModelWeights.load(gguf: path)
    }

    func testLoRAStepsOnAFileEqualTheSameStepsOnTheSyntheticWeights() throws {
        let dir = try GGUFScratchDirectory()
        defer { dir.remove() }
        for p in [QuantType.f32, .q4_0] {
            let synthetic = try Trainer(config: config, method: lora, options: options(p))
            let weights = try roundTrip(synthetic, dir, "m-\(p).gguf")
            XCTAssertEqual(weights.layers[0].wq.type, p)
            let fromFile = try Trainer(config: config, method: lora, options: options(p), base: weights)
            XCTAssertEqual(fromFile.memory, synthetic.memory, "\(p): the same buffers")
            for (i, b) in batches().enumerated() {
                let l1 = synthetic.trainStep(b), l2 = fromFile.trainStep(b)
                XCTAssertTrue(l1.isFinite)
                XCTAssertEqual(l1, l2, accuracy: 1e-6 * abs(l1), "\(p) step \(i)")
            }
        }
    }

    func testFullFineTuningStepsOnAnF32FileEqualTheSameStepsOnTheSyntheticWeights() throws {
        let dir = try GGUFScratchDirectory()
        defer { dir.remove() }
        let synthetic = try Trainer(config: config, method: .full, options: options(.f32))
        let fromFile = try Trainer(config: config, method: .full, options: options(.f32), base: try roundTrip(synthetic, dir, "full.gguf"))
        for (i, b) in batches().enumerated() {
            let l1 = synthetic.trainStep(b), l2 = fromFile.trainStep(b)
            XCTAssertEqual(l1, l2, accuracy: 1e-6 * abs(l1), "full step \(i)")
        }
    }

    func testFullFineTuningOnAQuantizedFileStartsFromItsDequantizedWeights() throws {
        let dir = try GGUFScratchDirectory()
        defer { dir.remove() }
        let q = try Trainer(config: config, method: lora, options: options(.q4_0))
        let weights = try roundTrip(q, dir, "q.gguf")
        let full = try Trainer(config: config, method: .full, options: options(.f32), base: weights)
        XCTAssertEqual(full.parameterTable.entry("l0.q")?.count, config.dim * config.dim, "f32 master weights")
        let b = batches()[0]
        // LoRA's B starts at zero, so the first loss is the base model's: the q4_0 base, and its dequantized copy.
        let lq = q.loss(b), lf = full.loss(b)
        XCTAssertEqual(lq, lf, accuracy: 1e-5 * abs(lq))
        var oneLayer = config
        oneLayer.layers = 1
        XCTAssertThrowsError(try Trainer(config: oneLayer, method: lora, options: options(.q4_0), base: weights)) { e in
            XCTAssertTrue("\(e)".contains("differs from the trainer's"), "\(e)")
        }
    }

    /// The trainer and the inference engine compute the same model from the same file (f32, the last position's next-token probabilities).
    func testTrainerForwardOnAFileMatchesTheEngine() throws {
        let dir = try GGUFScratchDirectory()
        defer { dir.remove() }
        let path = dir.file("e.gguf")
        try GGUFModelExport.writeSynthetic(config, type: .f32, to: path)
        let weights = try ModelWeights.load(gguf: path)
        let opts = TrainOptions(batch: 1, seqLen: 8, threads: 1, seed: 7, precision: .f32)
        let trainer = try Trainer(config: config, method: lora, options: opts, base: weights)
        let tokens: [Int32] = [1, 2, 3, 100, 200, 299, 7, 8]
        _ = trainer.loss(TokenBatch(inputs: tokens, targets: Array(tokens.dropFirst()) + [0]))
        // The loss leaves softmax probabilities in the logits buffer: compare them with the engine's logits' softmax.
        let probs = trainer.activations.pointer + trainer.activationTable.offset("logits") + 7 * config.vocab
        let engine = try InferenceSession(weights: weights, maxTokens: 9, threads: 1).prefill(tokens).map(Double.init)
        let mx = engine.max()!, sum = engine.reduce(0) { $0 + exp($1 - mx) }
        var maxDiff = 0.0, maxAbs = 0.0
        for i in 0..<config.vocab {
            let p = exp(engine[i] - mx) / sum
            maxDiff = max(maxDiff, abs(Double(probs[i]) - p)); maxAbs = max(maxAbs, p)
        }
        XCTAssertGreaterThan(engine.map(abs).max()!, 0.1)
        XCTAssertLessThan(maxDiff, 1e-5 * maxAbs, "trainer vs engine: next-token probabilities")
    }
}
