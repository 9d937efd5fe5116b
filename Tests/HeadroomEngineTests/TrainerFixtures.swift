// What the trainer's tests share: the tiny shapes they train, adapters made non-zero, the gradient check
// against central finite differences, and the 100-step learning check run in f32 and on quantized bases.
import XCTest
@testable import HeadroomEngine
import HeadroomKernels

enum TrainerFixtures {
    /// A model small enough for finite differences in a debug build: 2 layers, grouped-query (4 heads, 2 kv heads).
    static let tiny = ModelConfig(name: "tiny", layers: 2, dim: 16, heads: 4, kvHeads: 2, ffnDim: 24, vocab: 11, context: 8)

    /// The batches the gradient checks run on (vocabulary 11, like `tiny`).
    static let gradientTask = SyntheticPatternTask(vocab: 11, period: 7, seed: 3)
}

/// Sets every LoRA B (zero at the start) to fixed non-zero values, so every adapter gradient (and the input
/// gradients through them) is exercised.
func makeAdapterBsNonZero(_ trainer: Trainer) {
    for e in trainer.adapterTable.entries where e.name.hasSuffix(".B") {
        for i in 0..<e.count { trainer.trainedValues[e.offset + i] = Float((i * 37 + e.offset) % 13) / 13 - 0.5 }
    }
}

/// Central finite differences of the loss for some elements of every named slice of what is trained;
/// returns the worst slice's ‖analytic − numeric‖ / ‖numeric‖, so no tensor hides behind a larger one.
func gradientCheck(_ trainer: Trainer, batch: TokenBatch, perEntry: Int, eps: Float = 1e-2) -> (worst: Double, name: String) {
    trainer.computeGradients(batch)
    let values = trainer.trainedValues, grads = trainer.gradients
    var worst = (0.0, "")
    for e in trainer.trainedTable.entries {
        var diff = 0.0, norm = 0.0
        for i in stride(from: 0, to: e.count, by: max(1, e.count / perEntry)).map({ e.offset + $0 }) {
            let saved = values[i]
            values[i] = saved + eps
            let plus = trainer.loss(batch)
            values[i] = saved - eps
            let minus = trainer.loss(batch)
            values[i] = saved
            let numeric = (plus - minus) / (2 * Double(eps))
            diff += (Double(grads[i]) - numeric) * (Double(grads[i]) - numeric)
            norm += numeric * numeric
        }
        XCTAssertGreaterThan(norm, 1e-14, "\(e.name): the gradients checked are all zero, so the check would prove nothing")
        let err = (diff / max(norm, 1e-30)).squareRoot()
        if err > worst.0 { worst = (err, e.name) }
    }
    return worst
}

/// 100 LoRA steps on a base in `precision` halve the loss on the synthetic task. The shape is shrunk from `tiny`
/// (768 wide, 12 layers, 32000 tokens) to 2 layers of width 32 and 32 tokens so a debug build runs it in seconds.
func assertLoRAHalvesTheLossInAHundredSteps(precision: QuantType, file: StaticString = #filePath, line: UInt = #line) throws {
    let config = ModelConfig(name: "learn", layers: 2, dim: 32, heads: 4, kvHeads: 2, ffnDim: 64, vocab: 32, context: 64)
    let lora = LoRAConfig(rank: 4, alpha: 8, dropout: 0, targets: TrainProjection.allCases)
    var options = TrainOptions(batch: 4, seqLen: 16, seed: 1, precision: precision)
    options.optimizer = AdamWSettings(learningRate: 1e-2, weightDecay: 0)
    let trainer = try Trainer(config: config, method: .lora(lora), options: options, initStd: 0.1)
    let task = SyntheticPatternTask(vocab: 32, period: 12, seed: 1)
    var losses: [Double] = []
    for s in 0..<100 { losses.append(trainer.trainStep(task.batch(step: s, B: 4, T: 16))) }
    let first = losses[0], last = losses.suffix(5).reduce(0, +) / 5
    XCTAssertTrue(losses.allSatisfy(\.isFinite), "\(precision)", file: file, line: line)
    XCTAssertLessThan(last, first / 2, "\(precision): loss went from \(first) to \(last)", file: file, line: line)
}
