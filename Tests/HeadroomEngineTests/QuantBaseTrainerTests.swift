// LoRA on a quantized frozen base (f16, q8_0, q4_0 — QLoRA-style): the quantized FrozenLinear against the
// f32 one over the dequantized weights, adapter gradients against finite differences, learning, memory.
import Foundation
import XCTest
@testable import HeadroomEngine
@testable import HeadroomKernels

final class QuantBaseTrainerTests: XCTestCase {
    let formats: [QuantType] = [.f16, .q8_0, .q4_0]

    func seeded(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in (rng.nextUnitFloat() * 2 - 1) * scale }
    }

    func assertClose(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count)
        var diff = 0.0, norm = 0.0
        for i in 0..<a.count { diff += Double(a[i] - b[i]) * Double(a[i] - b[i]); norm += Double(b[i]) * Double(b[i]) }
        XCTAssertGreaterThan(norm, 0, what)
        XCTAssertLessThan((diff / norm).squareRoot(), 1e-5, what, file: file, line: line)
    }

    /// Forward and input gradient of QuantLinear equal F32Linear over its dequantized weights; a small tile
    /// buffer (16 rows) makes 40 rows take three tiles, the last one partial.
    func testQuantizedFrozenLinearMatchesF32OverDequantizedWeights() {
        let N = 40, K = 64, M = 7
        let w = seeded(N * K, seed: 1, scale: 0.5), x = seeded(M * K, seed: 2), dy = seeded(M * N, seed: 3)
        let dinp0 = seeded(M * K, seed: 4)  // backwardInput accumulates: start from non-zero
        for type in formats {
            let scratch = TileScratch(floats: 16 * K)
            let q = w.withUnsafeBufferPointer {
                QuantLinear(quantizing: $0.baseAddress!, outFeatures: N, inFeatures: K, type: type, scratch: scratch, threads: 2)
            }
            XCTAssertEqual(q.bytes, type.rowBytes(K) * N)
            XCTAssertEqual(q.precision, type.description)
            var deq = q.matrix.dequantized()
            if type != .f16 { XCTAssertNotEqual(deq, w, "\(type) should lose precision") }
            var yq = [Float](repeating: 0, count: M * N), yf = yq
            var dq = dinp0, df = dinp0
            deq.withUnsafeMutableBufferPointer { wp in
                let f = F32Linear(weight: wp.baseAddress!, outFeatures: N, inFeatures: K)
                f.forward(out: &yf, inp: x, M: M)
                f.backwardInput(dinp: &df, dout: dy, M: M)
            }
            q.forward(out: &yq, inp: x, M: M)
            q.backwardInput(dinp: &dq, dout: dy, M: M)
            assertClose(yq, yf, "\(type) forward")
            assertClose(dq, df, "\(type) input gradient")
            // And the f32 path against the naive loops, so both sides are anchored.
            let naive = TrainLinear.naiveBackward(dout: dy, inp: x, weight: deq, M: M, N: N, K: K).dinp
            assertClose(zip(dq, dinp0).map { $0 - $1 }, naive, "\(type) input gradient vs naive")
            // One tile buffer of 16 rows, reused; 7 rows padded to 16 through an input (16×64) and an output (16×40).
            XCTAssertEqual(scratch.bytes, 16 * K * 4 + 16 * K * 4 + 16 * N * 4, "tile and padding buffers")
        }
    }

    /// Width 32 so every quantized matrix has whole 32-wide blocks; k/v are 16 rows (grouped-query).
    let config = ModelConfig(name: "quant", layers: 2, dim: 32, heads: 4, kvHeads: 2, ffnDim: 32, vocab: 11, context: 8)

    func testAdapterGradientsMatchFiniteDifferencesOnAQuantizedBase() throws {
        for type in formats {
            let lora = LoRAConfig(rank: 2, alpha: 4, dropout: 0.2, targets: TrainProjection.allCases)
            let trainer = try Trainer(config: config, method: .lora(lora),
                                      options: TrainOptions(batch: 2, seqLen: 5, seed: 7, precision: type), initStd: 0.3)
            makeAdapterBsNonZero(trainer)
            let batch = TrainerFixtures.gradientTask.batch(step: 0, B: 2, T: 5)
            let (err, name) = gradientCheck(trainer, batch: batch, perEntry: 6)
            XCTAssertLessThan(err, 1e-2, "\(type): worst tensor \(name)")
        }
    }

    /// The quantized base keeps the f32 model's weights up to quantization: same seed, close losses.
    func testQuantizedBaseIsTheF32ModelQuantized() throws {
        let lora = LoRAConfig(rank: 2, alpha: 4, targets: [.q, .v])
        let batch = TrainerFixtures.gradientTask.batch(step: 0, B: 2, T: 6)
        let f32 = try Trainer(config: config, method: .lora(lora), options: TrainOptions(batch: 2, seqLen: 6, seed: 5), initStd: 0.3)
        let ref = f32.loss(batch)
        for (type, tol) in [(QuantType.f16, 1e-3), (.q8_0, 2e-2), (.q4_0, 2e-1)] {
            let t = try Trainer(config: config, method: .lora(lora), options: TrainOptions(batch: 2, seqLen: 6, seed: 5, precision: type), initStd: 0.3)
            let l = t.loss(batch)
            XCTAssertEqual(l, ref, accuracy: tol * ref, "\(type)")
            if type != .f16 { XCTAssertNotEqual(l, ref, "\(type) should differ from f32") }
        }
    }

    /// 100 LoRA steps on a q4_0 base halve the loss on the synthetic task (the shape of the f32 test).
    func testLoRAOnAQ4BaseHalvesTheLossInAHundredSteps() throws {
        try assertLoRAHalvesTheLossInAHundredSteps(precision: .q4_0)
    }

    func testMemoryCountsTheQuantizedBytesAndTheTileBuffer() throws {
        let lora = LoRAConfig(rank: 2, alpha: 4, targets: [.q, .v])
        let opts = TrainOptions(batch: 1, seqLen: 4)
        let f32 = try Trainer(config: config, method: .lora(lora), options: opts)
        for type in formats {
            var o = opts; o.precision = type
            let t = try Trainer(config: config, method: .lora(lora), options: o)
            XCTAssertEqual(t.totalParameters, f32.totalParameters)
            // f32 part: emb 11×32, 2 norms per layer, final norm (each padded to 16 floats).
            let f32Part = (352 + 2 * 2 * 32 + 32) * 4
            // Quantized: per layer q,o 32×32, k,v 16×32, gate,up,down 32×32; out 11×32. Tile: the whole of the largest (32×32).
            let rows = 2 * (32 + 32 + 16 + 16 + 32 + 32 + 32) + 11
            XCTAssertEqual(t.memory.weightsBytes, f32Part + rows * type.rowBytes(32) + 32 * 32 * 4, "\(type)")
            XCTAssertEqual(t.parameters.bytes, f32Part)
            XCTAssertLessThan(t.memory.weightsBytes, f32.memory.weightsBytes + 32 * 32 * 4)
            let batch = TrainerFixtures.gradientTask.batch(step: 0, B: 1, T: 4)
            _ = t.trainStep(batch)
            // Tile 32×32, and B·T = 4 rows padded to 16: input 16×32 (widest), output 16×32 (tallest).
            let paddingBytes = 16 * 32 * 4 + 16 * 32 * 4
            XCTAssertEqual(t.tileScratch.bytes, 32 * 32 * 4 + paddingBytes, "the tile and padding buffers grew to what was planned")
            XCTAssertEqual(t.memory.activationBytes, f32.memory.activationBytes + paddingBytes, "\(type) padding counted with the activations")
        }
    }

    func testQuantizedFullFineTuningAndPartialBlocksAreRefused() {
        XCTAssertThrowsError(try Trainer(config: config, method: .full, options: TrainOptions(batch: 1, seqLen: 4, precision: .q4_0))) { e in
            XCTAssertTrue("\(e)".contains("full fine-tuning trains every weight in f32"), "\(e)")
        }
        let narrow = ModelConfig(name: "narrow", layers: 1, dim: 16, heads: 4, kvHeads: 2, ffnDim: 32, vocab: 11, context: 8)
        XCTAssertThrowsError(try Trainer(config: narrow, method: .lora(LoRAConfig(rank: 1, alpha: 1, targets: [.q])),
                                         options: TrainOptions(batch: 1, seqLen: 4, precision: .q8_0))) { e in
            XCTAssertTrue("\(e)".contains("dim (16) to be a multiple of 32"), "\(e)")
        }
    }
}
