// Every training kernel's backward against central finite differences of its forward (relative error
// < 1e-2 in f32, tiny shapes), and every fast kernel against its naive reference.
import XCTest
@testable import HeadroomKernels

/// Central finite differences of a scalar loss with respect to every element of `x`.
/// The loss is Σ out⊙w for fixed random w, so dout = w; sums are taken in double.
func finiteDifferences(_ x: FloatBuffer, eps: Float = 1e-2, indices: [Int]? = nil, loss: () -> Double) -> [Int: Double] {
    var out: [Int: Double] = [:]
    for i in indices ?? Array(0..<x.count) {
        let saved = x[i]
        x[i] = saved + eps
        let plus = loss()
        x[i] = saved - eps
        let minus = loss()
        x[i] = saved
        out[i] = (plus - minus) / (2 * Double(eps))
    }
    return out
}

/// ‖analytic − numeric‖ / ‖numeric‖ over the checked elements.
func relativeError(_ analytic: FloatBuffer, _ numeric: [Int: Double]) -> Double {
    var diff = 0.0, norm = 0.0
    for (i, n) in numeric {
        diff += (Double(analytic[i]) - n) * (Double(analytic[i]) - n)
        norm += n * n
    }
    return (diff / max(norm, 1e-30)).squareRoot()
}

func weightedSum(_ out: FloatBuffer, _ w: FloatBuffer) -> Double {
    var s = 0.0
    for i in 0..<out.count { s += Double(out[i]) * Double(w[i]) }
    return s
}

func buffer(_ count: Int, seed: UInt64, scale: Float = 1) -> FloatBuffer {
    let b = FloatBuffer(count: count)
    b.fillUniform(seed: seed, scale: scale)
    return b
}

final class TrainLayerGradientTests: XCTestCase {
    let tol = 1e-2

    func testEmbeddingBackwardScattersIntoTheTable() {
        let V = 5, C = 3, BT = 6
        let table = buffer(V * C, seed: 1), out = FloatBuffer(count: BT * C), w = buffer(BT * C, seed: 2)
        let tokens: [Int32] = [0, 3, 3, 1, 4, 0]
        tokens.withUnsafeBufferPointer { tok in
            TrainEmbedding.forward(out: out.pointer, tokens: tok.baseAddress!, table: table.pointer, BT: BT, C: C)
            XCTAssertEqual(out[1 * C + 2], table[3 * C + 2])
            let dtable = FloatBuffer(count: V * C)
            TrainEmbedding.backward(dtable: dtable.pointer, dout: w.pointer, tokens: tok.baseAddress!, BT: BT, C: C)
            let fd = finiteDifferences(table) {
                TrainEmbedding.forward(out: out.pointer, tokens: tok.baseAddress!, table: table.pointer, BT: BT, C: C)
                return weightedSum(out, w)
            }
            XCTAssertLessThan(relativeError(dtable, fd), tol)
            XCTAssertEqual(dtable[2 * C], 0) // token 2 never appears
        }
    }

    func testRMSNormBackward() {
        let N = 4, C = 8
        let inp = buffer(N * C, seed: 3), weight = buffer(C, seed: 4), w = buffer(N * C, seed: 5)
        let out = FloatBuffer(count: N * C), rstd = FloatBuffer(count: N)
        func loss() -> Double {
            TrainRMSNorm.forward(out: out.pointer, rstd: rstd.pointer, inp: inp.pointer, weight: weight.pointer, N: N, C: C, eps: 1e-5)
            return weightedSum(out, w)
        }
        _ = loss()
        // Reference value of one output by hand.
        var ss = 0.0
        for c in 0..<C { ss += Double(inp[c] * inp[c]) }
        XCTAssertEqual(Double(out[2]), Double(inp[2]) / (ss / Double(C) + 1e-5).squareRoot() * Double(weight[2]), accuracy: 1e-5)
        let dinp = FloatBuffer(count: N * C), dweight = FloatBuffer(count: C)
        for threads in [1, 2] {
            memset(dinp.pointer, 0, dinp.bytes); memset(dweight.pointer, 0, dweight.bytes)
            TrainRMSNorm.backward(dinp: dinp.pointer, dweight: dweight.pointer, dout: w.pointer, inp: inp.pointer,
                                  weight: weight.pointer, rstd: rstd.pointer, N: N, C: C, threads: threads)
            XCTAssertLessThan(relativeError(dinp, finiteDifferences(inp, loss: loss)), tol)
            XCTAssertLessThan(relativeError(dweight, finiteDifferences(weight, loss: loss)), tol)
        }
        // Gradients accumulate: a second call doubles them.
        let once = dinp.array
        TrainRMSNorm.backward(dinp: dinp.pointer, dweight: nil, dout: w.pointer, inp: inp.pointer,
                              weight: weight.pointer, rstd: rstd.pointer, N: N, C: C)
        for i in 0..<once.count { XCTAssertEqual(dinp[i], 2 * once[i], accuracy: 1e-5) }
    }

    func testRoPEMatchesHandRotationAndBackward() {
        let B = 2, T = 3, NH = 2, hd = 4
        let n = B * T * NH * hd
        let inp = buffer(n, seed: 6), out = FloatBuffer(count: n), w = buffer(n, seed: 7)
        let cos = FloatBuffer(count: T * hd / 2), sin = FloatBuffer(count: T * hd / 2)
        TrainRoPE.tables(cos: cos.pointer, sin: sin.pointer, T: T, headDim: hd, theta: 10_000)
        func loss() -> Double {
            TrainRoPE.forward(out: out.pointer, inp: inp.pointer, cos: cos.pointer, sin: sin.pointer, B: B, T: T, NH: NH, hd: hd)
            return weightedSum(out, w)
        }
        _ = loss()
        // Batch 1, position 2, head 1, pair i=1 (dims 2,3): angle 2·10000^(−2/4) = 0.02.
        let base = (1 * T + 2) * NH * hd + 1 * hd
        let a = 2 * Foundation.pow(10_000.0, -0.5)
        XCTAssertEqual(Double(out[base + 2]), Double(inp[base + 2]) * Foundation.cos(a) - Double(inp[base + 3]) * Foundation.sin(a), accuracy: 1e-6)
        XCTAssertEqual(Double(out[base + 3]), Double(inp[base + 2]) * Foundation.sin(a) + Double(inp[base + 3]) * Foundation.cos(a), accuracy: 1e-6)
        // Position 0 is the identity.
        XCTAssertEqual(out[0], inp[0]); XCTAssertEqual(out[1], inp[1])
        let dinp = FloatBuffer(count: n)
        TrainRoPE.backward(dinp: dinp.pointer, dout: w.pointer, cos: cos.pointer, sin: sin.pointer, B: B, T: T, NH: NH, hd: hd)
        XCTAssertLessThan(relativeError(dinp, finiteDifferences(inp, loss: loss)), tol)
    }

    func testSwiGLUBackward() {
        let N = 3, F = 5
        let gate = buffer(N * F, seed: 8, scale: 2), up = buffer(N * F, seed: 9), w = buffer(N * F, seed: 10)
        let out = FloatBuffer(count: N * F)
        func loss() -> Double {
            TrainSwiGLU.forward(out: out.pointer, gate: gate.pointer, up: up.pointer, N: N, F: F)
            return weightedSum(out, w)
        }
        _ = loss()
        let g = Double(gate[4])
        XCTAssertEqual(Double(out[4]), g / (1 + Foundation.exp(-g)) * Double(up[4]), accuracy: 1e-6)
        let dgate = FloatBuffer(count: N * F), dup = FloatBuffer(count: N * F)
        TrainSwiGLU.backward(dgate: dgate.pointer, dup: dup.pointer, dout: w.pointer, gate: gate.pointer, up: up.pointer, N: N, F: F, threads: 2)
        XCTAssertLessThan(relativeError(dgate, finiteDifferences(gate, loss: loss)), tol)
        XCTAssertLessThan(relativeError(dup, finiteDifferences(up, loss: loss)), tol)
    }

    func testAttentionMatchesNaiveAndBackward() {
        // Grouped-query: 4 heads share 2 kv heads.
        let B = 2, T = 5, NH = 4, NKV = 2, hd = 4
        let C = NH * hd, CKV = NKV * hd
        let q = buffer(B * T * C, seed: 11), k = buffer(B * T * CKV, seed: 12), v = buffer(B * T * CKV, seed: 13)
        let out = FloatBuffer(count: B * T * C), probs = FloatBuffer(count: B * NH * T * T), w = buffer(B * T * C, seed: 14)
        func loss() -> Double {
            TrainAttention.forward(out: out.pointer, probs: probs.pointer, q: q.pointer, k: k.pointer, v: v.pointer,
                                   B: B, T: T, NH: NH, NKV: NKV, hd: hd)
            return weightedSum(out, w)
        }
        _ = loss()
        let ref = TrainAttention.naiveForward(q: q.array, k: k.array, v: v.array, B: B, T: T, NH: NH, NKV: NKV, hd: hd)
        for i in 0..<ref.count { XCTAssertEqual(out[i], ref[i], accuracy: 1e-5) }
        // Causal: row 0 attends only to itself; every row sums to 1.
        XCTAssertEqual(probs[0], 1, accuracy: 1e-6)
        XCTAssertEqual(probs[1], 0)
        let dq = FloatBuffer(count: q.count), dk = FloatBuffer(count: k.count), dv = FloatBuffer(count: v.count)
        let dprobs = FloatBuffer(count: probs.count)
        TrainAttention.backward(dq: dq.pointer, dk: dk.pointer, dv: dv.pointer, dprobs: dprobs.pointer, dout: w.pointer,
                                probs: probs.pointer, q: q.pointer, k: k.pointer, v: v.pointer,
                                B: B, T: T, NH: NH, NKV: NKV, hd: hd, threads: 2)
        XCTAssertLessThan(relativeError(dq, finiteDifferences(q, loss: loss)), tol)
        XCTAssertLessThan(relativeError(dk, finiteDifferences(k, loss: loss)), tol)
        XCTAssertLessThan(relativeError(dv, finiteDifferences(v, loss: loss)), tol)
    }

    func testLinearBackwardMatchesNaiveAndFiniteDifferences() {
        let M = 3, N = 4, K = 5
        let inp = buffer(M * K, seed: 15), weight = buffer(N * K, seed: 16), w = buffer(M * N, seed: 17)
        let out = FloatBuffer(count: M * N)
        func loss() -> Double {
            TrainLinear.forward(out: out.pointer, inp: inp.pointer, weight: weight.pointer, M: M, N: N, K: K)
            return weightedSum(out, w)
        }
        _ = loss()
        let dinp = FloatBuffer(count: M * K), dweight = FloatBuffer(count: N * K)
        TrainLinear.backwardInput(dinp: dinp.pointer, dout: w.pointer, weight: weight.pointer, M: M, N: N, K: K)
        TrainLinear.backwardWeight(dweight: dweight.pointer, dout: w.pointer, inp: inp.pointer, M: M, N: N, K: K)
        let ref = TrainLinear.naiveBackward(dout: w.array, inp: inp.array, weight: weight.array, M: M, N: N, K: K)
        for i in 0..<ref.dinp.count { XCTAssertEqual(dinp[i], ref.dinp[i], accuracy: 1e-5) }
        for i in 0..<ref.dweight.count { XCTAssertEqual(dweight[i], ref.dweight[i], accuracy: 1e-5) }
        XCTAssertLessThan(relativeError(dinp, finiteDifferences(inp, loss: loss)), tol)
        XCTAssertLessThan(relativeError(dweight, finiteDifferences(weight, loss: loss)), tol)
    }

    func testLoRAMatchesNaiveAndBackwardWithAndWithoutDropout() {
        let M = 4, N = 6, K = 5, r = 2
        let scale: Float = 16.0 / Float(r)
        for p: Float in [0, 0.25] {
            let inp = buffer(M * K, seed: 18), A = FloatBuffer(count: r * K), B = FloatBuffer(count: N * r)
            TrainLoRA.initialize(A: A.pointer, B: B.pointer, r: r, N: N, K: K, seed: 19)
            XCTAssertTrue(B.array.allSatisfy { $0 == 0 }, "B starts at zero")
            XCTAssertTrue(A.array.allSatisfy { abs($0) <= 1 / Float(K).squareRoot() })
            B.fillUniform(seed: 20) // non-zero B, so dA is not trivially zero
            let mask: FloatBuffer? = p > 0 ? FloatBuffer(count: M * K) : nil
            if let mask {
                TrainLoRA.dropoutMask(mask.pointer, count: M * K, p: p, seed: 21)
                XCTAssertTrue(mask.array.contains(0) && mask.array.contains(1 / (1 - p)))
                let again = FloatBuffer(count: M * K)
                TrainLoRA.dropoutMask(again.pointer, count: M * K, p: p, seed: 21)
                XCTAssertEqual(mask.array, again.array, "the same seed gives the same mask")
            }
            let out = FloatBuffer(count: M * N), u = FloatBuffer(count: M * r), xd = FloatBuffer(count: M * K), w = buffer(M * N, seed: 22)
            func loss() -> Double {
                memset(out.pointer, 0, out.bytes)
                TrainLoRA.forward(out: out.pointer, u: u.pointer, inp: inp.pointer, mask: mask.map { UnsafePointer($0.pointer) }, xd: xd.pointer,
                                  A: A.pointer, B: B.pointer, scale: scale, M: M, N: N, K: K, r: r)
                return weightedSum(out, w)
            }
            _ = loss()
            let ref = TrainLoRA.naiveForward(inp: inp.array, mask: mask?.array, A: A.array, B: B.array, scale: scale, M: M, N: N, K: K, r: r)
            for i in 0..<ref.count { XCTAssertEqual(out[i], ref[i], accuracy: 1e-4) }
            let dinp = FloatBuffer(count: M * K), dA = FloatBuffer(count: r * K), dB = FloatBuffer(count: N * r), g = FloatBuffer(count: M * r)
            TrainLoRA.backward(dinp: dinp.pointer, dA: dA.pointer, dB: dB.pointer, dout: w.pointer, u: u.pointer, inp: inp.pointer,
                               mask: mask.map { UnsafePointer($0.pointer) }, A: A.pointer, B: B.pointer, g: g.pointer, xd: xd.pointer,
                               scale: scale, M: M, N: N, K: K, r: r)
            XCTAssertLessThan(relativeError(dA, finiteDifferences(A, loss: loss)), tol, "dA, dropout \(p)")
            XCTAssertLessThan(relativeError(dB, finiteDifferences(B, loss: loss)), tol, "dB, dropout \(p)")
            XCTAssertLessThan(relativeError(dinp, finiteDifferences(inp, loss: loss)), tol, "dinp, dropout \(p)")
        }
    }

    func testCrossEntropyBackwardAndInPlaceVariant() {
        let N = 3, V = 7
        let logits = buffer(N * V, seed: 23, scale: 3), work = FloatBuffer(count: N * V), losses = FloatBuffer(count: N)
        let targets: [Int32] = [2, 6, 0]
        targets.withUnsafeBufferPointer { tg in
            func loss() -> Double {
                work.pointer.update(from: logits.pointer, count: N * V)
                return TrainCrossEntropy.forward(losses: losses.pointer, logits: work.pointer, targets: tg.baseAddress!, N: N, V: V, threads: 2)
            }
            let mean = loss()
            // By hand: −log softmax(row)[target], averaged.
            var expected = 0.0
            for n in 0..<N {
                let row = (0..<V).map { Double(logits[n * V + $0]) }
                let lse = Foundation.log(row.map { Foundation.exp($0) }.reduce(0, +))
                expected += lse - row[Int(targets[n])]
            }
            XCTAssertEqual(mean, expected / Double(N), accuracy: 1e-5)
            let dlogits = FloatBuffer(count: N * V)
            TrainCrossEntropy.backward(dlogits: dlogits.pointer, probs: work.pointer, targets: tg.baseAddress!, N: N, V: V, dloss: 1 / Float(N))
            XCTAssertLessThan(relativeError(dlogits, finiteDifferences(logits, loss: loss)), tol)
            _ = loss()
            TrainCrossEntropy.backwardInPlace(probs: work.pointer, targets: tg.baseAddress!, N: N, V: V, dloss: 1 / Float(N), threads: 2)
            for i in 0..<(N * V) { XCTAssertEqual(work[i], dlogits[i], accuracy: 1e-7) }
        }
    }

    func testAdamWMatchesHandWorkedSteps() {
        let s = AdamWSettings(learningRate: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01)
        let p = FloatBuffer([1.0, -2.0]), g = FloatBuffer([0.5, 0.0]), m = FloatBuffer(count: 2), v = FloatBuffer(count: 2)
        TrainAdamW.update(params: p.pointer, grads: g.pointer, m: m.pointer, v: v.pointer, N: 2, step: 1, settings: s)
        // Step 1: m̂ = g, v̂ = g², so the step is lr·sign(g) (+ decay): 1 − 0.1·(1 + 0.01·1).
        XCTAssertEqual(p[0], 1 - 0.1 * (0.5 / (0.5 + 1e-8) + 0.01), accuracy: 1e-6)
        // Zero gradient: only the decoupled decay moves it.
        XCTAssertEqual(p[1], -2 - 0.1 * (0.01 * -2), accuracy: 1e-6)
        XCTAssertEqual(m[0], 0.05, accuracy: 1e-7)
        XCTAssertEqual(v[0], 0.00025, accuracy: 1e-8)
        // Step 2 with gradient 0.25, worked in double.
        g[0] = 0.25
        let p1 = Double(p[0])
        TrainAdamW.update(params: p.pointer, grads: g.pointer, m: m.pointer, v: v.pointer, N: 2, step: 2, settings: s)
        let m2 = 0.9 * 0.05 + 0.1 * 0.25, v2 = 0.999 * 0.00025 + 0.001 * 0.0625
        let mhat = m2 / (1 - 0.81), vhat = v2 / (1 - 0.999 * 0.999)
        XCTAssertEqual(Double(p[0]), p1 - 0.1 * (mhat / (vhat.squareRoot() + 1e-8) + 0.01 * p1), accuracy: 1e-5)
    }
}
