// The trainer as a whole: adapter and full-model gradients against central finite differences (TrainerFixtures),
// checkpointing giving the same gradients, LoRA learning the synthetic task, data validation, memory.
import Foundation
import XCTest
@testable import HeadroomEngine
@testable import HeadroomKernels

final class TrainerTests: XCTestCase {

    func testAdapterGradientsMatchFiniteDifferences() throws {
        let lora = LoRAConfig(rank: 2, alpha: 4, dropout: 0.2, targets: TrainProjection.allCases)
        let trainer = try Trainer(config: TrainerFixtures.tiny, method: .lora(lora), options: TrainOptions(batch: 2, seqLen: 5, seed: 7), initStd: 0.3)
        makeAdapterBsNonZero(trainer)
        let batch = TrainerFixtures.gradientTask.batch(step: 0, B: 2, T: 5)
        let (err, name) = gradientCheck(trainer, batch: batch, perEntry: 12)
        XCTAssertLessThan(err, 1e-2, "worst tensor: \(name)")
    }

    func testFullFineTuningGradientsMatchFiniteDifferences() throws {
        let trainer = try Trainer(config: TrainerFixtures.tiny, method: .full, options: TrainOptions(batch: 2, seqLen: 5, seed: 9), initStd: 0.3)
        let batch = SyntheticPatternTask(vocab: 11, period: 5, seed: 4).batch(step: 1, B: 2, T: 5)
        let (err, name) = gradientCheck(trainer, batch: batch, perEntry: 6)
        XCTAssertLessThan(err, 1e-2, "worst tensor: \(name)")
    }

    func testCheckpointingGivesTheSameGradients() throws {
        let lora = LoRAConfig(rank: 3, alpha: 6, dropout: 0.1, targets: [.q, .v, .gate, .down])
        for method in [TrainMethod.lora(lora), .full] {
            let plain = try Trainer(config: TrainerFixtures.tiny, method: method, options: TrainOptions(batch: 2, seqLen: 6, seed: 5), initStd: 0.3)
            let ckpt = try Trainer(config: TrainerFixtures.tiny, method: method, options: TrainOptions(batch: 2, seqLen: 6, checkpointing: true, seed: 5), initStd: 0.3)
            let task = SyntheticPatternTask(vocab: 11, period: 6, seed: 2)
            for s in 0..<3 { // a few steps, so B is non-zero and the dropout masks change
                let batch = task.batch(step: s, B: 2, T: 6)
                let l1 = plain.computeGradients(batch), l2 = ckpt.computeGradients(batch)
                XCTAssertEqual(l1, l2, "\(method.name) step \(s): loss")
                XCTAssertEqual(plain.gradients.array, ckpt.gradients.array, "\(method.name) step \(s): gradients")
                plain.update(); ckpt.update()
            }
            XCTAssertLessThan(ckpt.memory.activationBytes, plain.memory.activationBytes)
        }
    }

    /// 100 LoRA steps halve the loss on the synthetic task (see the fixture for the shape).
    func testLoRAHalvesTheLossInAHundredSteps() throws {
        try assertLoRAHalvesTheLossInAHundredSteps(precision: .f32)
    }

    func testMemoryIsCountedFromTheLayouts() throws {
        let lora = LoRAConfig(rank: 2, alpha: 4, targets: [.q, .v])
        let t = try Trainer(config: TrainerFixtures.tiny, method: .lora(lora), options: TrainOptions(batch: 1, seqLen: 4))
        let m = t.memory
        // Adapters: per layer q (A 2×16, B 16×2) and v (A 2×16, B 8×2) = 64 + 48 floats, 2 layers.
        XCTAssertEqual(t.trainableParameters, 2 * (64 + 48))
        XCTAssertEqual(m.gradientBytes, 4 * t.trainableParameters)
        XCTAssertEqual(m.optimizerBytes, 8 * t.trainableParameters)
        // Base: emb 11×16, per layer 2 norms + q,o 16×16 + k,v 8×16 + gate,up 24×16 + down 16×24, final norm, out 11×16.
        let perLayer = 2 * 16 + 2 * 256 + 2 * 128 + 3 * 384
        XCTAssertEqual(t.totalParameters, 176 + 2 * perLayer + 16 + 176 + t.trainableParameters)
        XCTAssertGreaterThanOrEqual(m.weightsBytes, 4 * (t.totalParameters - t.trainableParameters))
        XCTAssertEqual(t.parameters.bytes, m.weightsBytes)
        XCTAssertEqual(t.activations.bytes, t.activationTable.bytes)
        let full = try Trainer(config: TrainerFixtures.tiny, method: .full, options: TrainOptions(batch: 1, seqLen: 4))
        XCTAssertEqual(full.memory.gradientBytes, full.memory.weightsBytes)
        XCTAssertEqual(full.memory.optimizerBytes, 2 * full.memory.weightsBytes)
    }

    func testFlopsPerTokenMatchesAHandCount() throws {
        // One layer, dim 4, 1 head, ffn 8, vocab 5, T 3. Matrices: q,k,v,o 16 each, gate/up 32 each, down 32: 160; out 20.
        let c = ModelConfig(name: "hand", layers: 1, dim: 4, heads: 1, kvHeads: 1, ffnDim: 8, vocab: 5, context: 3)
        let full = try Trainer(config: c, method: .full, options: TrainOptions(batch: 1, seqLen: 3))
        // Full: 6 per weight, attention 6·C·(T+1) = 96.
        let fullExpected: Double = 6 * 160 + 96 + 6 * 20
        XCTAssertEqual(full.flopsPerToken, fullExpected)
        // LoRA on q, rank 1: base forward 2·160, input gradients 2·(160 − 48) (layer 0 needs none for q,k,v),
        // attention 96, output 4·20; adapter: forward 2·(4+4), backward 2·(2·4 + 4), no input gradient at layer 0.
        let lora = try Trainer(config: c, method: .lora(LoRAConfig(rank: 1, alpha: 1, targets: [.q])), options: TrainOptions(batch: 1, seqLen: 3))
        let base: Double = 2 * 160 + 2 * 112 + 96 + 80
        let adapter: Double = 16 + 24
        XCTAssertEqual(lora.flopsPerToken, base + adapter)
    }

    func testBadConfigurationsAreRefused() {
        let opts = TrainOptions(batch: 1, seqLen: 4)
        XCTAssertThrowsError(try Trainer(config: ModelConfig(name: "bad", layers: 1, dim: 16, heads: 3, kvHeads: 1, ffnDim: 8, vocab: 5, context: 8),
                                         method: .full, options: opts))
        XCTAssertThrowsError(try Trainer(config: TrainerFixtures.tiny, method: .full, options: TrainOptions(batch: 1, seqLen: 9))) // > context
        XCTAssertThrowsError(try TrainProjection.parseList("q,x")) { e in
            XCTAssertTrue("\(e)".contains("\"x\""))
        }
        XCTAssertEqual(try TrainProjection.parseList("v,q"), [.q, .v])
    }

    func testSyntheticTaskIsDeterministicAndPredictable() {
        let task = SyntheticPatternTask(vocab: 50, period: 9, seed: 11)
        XCTAssertEqual(Set(task.pattern).count, 9)
        let a = task.batch(step: 3, B: 2, T: 20), b = task.batch(step: 3, B: 2, T: 20)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, task.batch(step: 4, B: 2, T: 20))
        // Each target is the input one position later, and the sequence repeats with the period.
        for i in 0..<19 { XCTAssertEqual(a.targets[i], a.inputs[i + 1]) }
        for i in 0..<11 { XCTAssertEqual(a.inputs[i], a.inputs[i + 9]) }
    }

    func testTokenFileIsValidated() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tokens-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(_ name: String, _ ids: [UInt32], extra: [UInt8] = []) throws -> String {
            var data = Data()
            for id in ids { withUnsafeBytes(of: id.littleEndian) { data.append(contentsOf: $0) } }
            data.append(contentsOf: extra)
            let path = dir.appendingPathComponent(name).path
            try data.write(to: URL(fileURLWithPath: path))
            return path
        }
        let good = try write("good.bin", (0..<20).map { UInt32($0 % 7) })
        let src = try TokenFileSource(path: good, vocab: 7, seqLen: 4)
        let batch = src.batch(step: 1, B: 2, T: 4)
        XCTAssertEqual(batch.inputs, [1, 2, 3, 4, 5, 6, 0, 1])  // windows 2 and 3: tokens 8..<12 and 12..<16
        XCTAssertEqual(batch.targets, [2, 3, 4, 5, 6, 0, 1, 2])

        let odd = try write("odd.bin", [1, 2, 3], extra: [9])
        XCTAssertThrowsError(try TokenFileSource(path: odd, vocab: 7, seqLen: 2)) { e in
            XCTAssertTrue("\(e)".hasPrefix(odd) && "\(e)".contains("multiple of 4"), "\(e)")
        }
        let big = try write("big.bin", [1, 2, 70000, 3])
        XCTAssertThrowsError(try TokenFileSource(path: big, vocab: 32000, seqLen: 2)) { e in
            XCTAssertTrue("\(e)".contains(big) && "\(e)".contains("token 2") && "\(e)".contains("70000"), "\(e)")
        }
        XCTAssertThrowsError(try TokenFileSource(path: good, vocab: 7, seqLen: 20)) { e in XCTAssertTrue("\(e)".contains("20 tokens")) }
        XCTAssertThrowsError(try TokenFileSource(path: dir.appendingPathComponent("missing.bin").path, vocab: 7, seqLen: 2))
    }
}
