// Training kernels for the element-wise layers of a LLaMA-family decoder: token embedding, RMSNorm,
// rotary position embedding and SwiGLU. Forward/backward pairs in the style of llm.c: shapes in the
// signature, a one-line layout comment, and backward passes that accumulate (+=) into their gradients.
import Foundation

/// Splits `count` rows across `threads` and runs `body(lo, hi)` on each slice (the caller's thread takes the first).
@inline(__always)
func forRows(_ count: Int, threads: Int, _ body: (Int, Int) -> Void) {
    let n = max(1, min(threads, count))
    if n == 1 { body(0, count); return }
    let per = (count + n - 1) / n
    parallel(n) { t in
        let lo = t * per, hi = min(count, lo + per)
        if lo < hi { body(lo, hi) }
    }
}

public enum TrainEmbedding {
    /// out (BT,C) = table[tokens[i]] for each of the BT tokens. table is (V,C).
    public static func forward(out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>, table: UnsafePointer<Float>,
                               BT: Int, C: Int) {
        for i in 0..<BT {
            (out + i * C).update(from: table + Int(tokens[i]) * C, count: C)
        }
    }

    /// dtable (V,C) += dout (BT,C) scattered to the rows its tokens name (a token seen twice gets both).
    public static func backward(dtable: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, tokens: UnsafePointer<Int32>,
                                BT: Int, C: Int) {
        for i in 0..<BT {
            let row = dtable + Int(tokens[i]) * C, g = dout + i * C
            for c in 0..<C { row[c] += g[c] }
        }
    }
}

public enum TrainRMSNorm {
    /// out (N,C) = inp · rstd · weight, with rstd (N) = 1/sqrt(mean(inp²) + eps) kept for backward. weight is (C).
    public static func forward(out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>, N: Int, C: Int, eps: Float, threads: Int = 1) {
        forRows(N, threads: threads) { lo, hi in
            for n in lo..<hi {
                let x = inp + n * C, o = out + n * C
                var ss: Float = 0
                for c in 0..<C { ss += x[c] * x[c] }
                let r = 1 / (ss / Float(C) + eps).squareRoot()
                rstd[n] = r
                for c in 0..<C { o[c] = x[c] * r * weight[c] }
            }
        }
    }

    /// dinp (N,C) += ∂L/∂inp and, when given, dweight (C) += ∂L/∂weight, from dout (N,C), inp (N,C) and the kept rstd (N).
    public static func backward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                                inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                N: Int, C: Int, threads: Int = 1) {
        forRows(N, threads: threads) { lo, hi in
            for n in lo..<hi {
                let x = inp + n * C, g = dout + n * C, dx = dinp + n * C
                let r = rstd[n]
                // dx = r·(w⊙g − x̂·mean(x̂⊙w⊙g)), with x̂ = x·r.
                var dot: Float = 0
                for c in 0..<C { dot += g[c] * weight[c] * x[c] * r }
                let m = dot / Float(C)
                for c in 0..<C { dx[c] += r * (g[c] * weight[c] - x[c] * r * m) }
            }
        }
        guard let dweight else { return }
        // Split by channel so no two threads write the same weight gradient.
        forRows(C, threads: threads) { lo, hi in
            for n in 0..<N {
                let x = inp + n * C, g = dout + n * C, r = rstd[n]
                for c in lo..<hi { dweight[c] += g[c] * x[c] * r }
            }
        }
    }
}

public enum TrainRoPE {
    /// The angle tables: cos and sin (T, headDim/2) at position t for pair i, angle t·theta^(−2i/headDim).
    public static func tables(cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>, T: Int, headDim: Int, theta: Double) {
        let half = headDim / 2
        for t in 0..<T {
            for i in 0..<half {
                let angle = Double(t) * Foundation.pow(theta, -2 * Double(i) / Double(headDim))
                cos[t * half + i] = Float(Foundation.cos(angle))
                sin[t * half + i] = Float(Foundation.sin(angle))
            }
        }
    }

    /// out (B,T,NH·hd) = inp rotated per head, adjacent pairs (2i, 2i+1) as GGUF/llama.cpp store Q and K.
    /// cos, sin are (T, hd/2). `out` may be `inp` (in place).
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, cos: UnsafePointer<Float>,
                               sin: UnsafePointer<Float>, B: Int, T: Int, NH: Int, hd: Int) {
        let half = hd / 2, C = NH * hd
        for b in 0..<B {
            for t in 0..<T {
                let cs = cos + t * half, sn = sin + t * half
                let base = (b * T + t) * C
                for h in 0..<NH {
                    let x = inp + base + h * hd, o = out + base + h * hd
                    for i in 0..<half {
                        let x0 = x[2 * i], x1 = x[2 * i + 1], c = cs[i], s = sn[i]
                        o[2 * i] = x0 * c - x1 * s
                        o[2 * i + 1] = x0 * s + x1 * c
                    }
                }
            }
        }
    }

    /// dinp (B,T,NH·hd) += dout rotated back (the rotation's transpose is its inverse).
    public static func backward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, cos: UnsafePointer<Float>,
                                sin: UnsafePointer<Float>, B: Int, T: Int, NH: Int, hd: Int) {
        let half = hd / 2, C = NH * hd
        for b in 0..<B {
            for t in 0..<T {
                let cs = cos + t * half, sn = sin + t * half
                let base = (b * T + t) * C
                for h in 0..<NH {
                    let g = dout + base + h * hd, d = dinp + base + h * hd
                    for i in 0..<half {
                        let g0 = g[2 * i], g1 = g[2 * i + 1], c = cs[i], s = sn[i]
                        d[2 * i] += g0 * c + g1 * s
                        d[2 * i + 1] += -g0 * s + g1 * c
                    }
                }
            }
        }
    }
}

public enum TrainSwiGLU {
    /// out (N,F) = silu(gate) ⊙ up, with silu(g) = g·σ(g). gate and up are (N,F).
    public static func forward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                               N: Int, F: Int, threads: Int = 1) {
        forRows(N, threads: threads) { lo, hi in
            for i in (lo * F)..<(hi * F) {
                let g = gate[i]
                out[i] = g / (1 + expf(-g)) * up[i]
            }
        }
    }

    /// dgate (N,F) += dout ⊙ up ⊙ σ(g)(1 + g(1−σ(g))), dup (N,F) += dout ⊙ silu(g).
    public static func backward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                gate: UnsafePointer<Float>, up: UnsafePointer<Float>, N: Int, F: Int, threads: Int = 1) {
        forRows(N, threads: threads) { lo, hi in
            for i in (lo * F)..<(hi * F) {
                let g = gate[i], s = 1 / (1 + expf(-g)), d = dout[i]
                dup[i] += d * g * s
                dgate[i] += d * up[i] * s * (1 + g * (1 - s))
            }
        }
    }
}

public enum TrainResidual {
    /// out (N) = a + b. `out` may alias either input.
    public static func forward(out: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>, N: Int) {
        for i in 0..<N { out[i] = a[i] + b[i] }
    }
}
