// The non-matmul operations of a LLaMA block — RMSNorm, rotary embedding, softmax, SwiGLU, causal
// grouped-query attention over a KV cache — each with the naive reference the tests hold it to.
// Layouts: activations are (T, C) row-major, one row per token; a KV cache is (positions, kvHeads·headDim).
import CBLAS
import CKernels
import Foundation

public enum RMSNorm {
    /// out (T, C) = inp (T, C) / sqrt(mean(inp²) + eps) · weight (C). `out` may be `inp`.
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               T: Int, C: Int, eps: Float) {
        for t in 0..<T {
            let x = inp + t * C, o = out + t * C
            var ss: Float = 0
            for i in 0..<C { ss += x[i] * x[i] }
            let r = 1 / (ss / Float(C) + eps).squareRoot()
            for i in 0..<C { o[i] = x[i] * r * weight[i] }
        }
    }

    public static func naiveForward(inp: [Float], weight: [Float], T: Int, C: Int, eps: Float) -> [Float] {
        var out = inp
        for t in 0..<T {
            let row = inp[t * C..<(t + 1) * C].map(Double.init)
            let r = 1 / (row.reduce(0) { $0 + $1 * $1 } / Double(C) + Double(eps)).squareRoot()
            for i in 0..<C { out[t * C + i] = Float(row[i] * r * Double(weight[i])) }
        }
        return out
    }
}

/// Rotary position embedding as llama.cpp computes it (`ggml_rope_ext`). Within each head the first `dims`
/// values rotate (partial rotary leaves the rest as they are), pair i by the angle
/// pos · scale · base^(-2i/dims) / factor[i]. Two orderings pair them differently: `normal` (llama, mistral) rotates
/// adjacent values (2i, 2i+1), as GGUF stores llama's Q and K; `neox` (qwen2) rotates value i with value i + dims/2.
public enum RoPE {
    public enum Ordering: String, Sendable, Equatable {
        /// Adjacent pairs (2i, 2i+1): llama.cpp's LLAMA_ROPE_TYPE_NORM.
        case normal
        /// Halves (i, i + dims/2): llama.cpp's LLAMA_ROPE_TYPE_NEOX.
        case neox
    }

    /// A model's rotation frequencies, built once from its settings and used at every position: the inverse
    /// frequency of each rotated pair (dims/2 of them), the ordering, and the head width.
    public struct Frequencies: Sendable, Equatable {
        public let headDim: Int
        /// Values rotated per head (even, at most headDim).
        public let dims: Int
        public let ordering: Ordering
        /// Angle per position of pair i: scale · base^(-2i/dims) / factor[i].
        public let inverse: [Double]

        /// `scale` multiplies positions (1 / the linear scaling factor); `factors` (dims/2 of them, from a
        /// `rope_freqs.weight` tensor) divide each pair's frequency, as llama.cpp's freq_factors.
        public init(headDim: Int, dims: Int? = nil, base: Double, scale: Double = 1, factors: [Float]? = nil, ordering: Ordering = .normal) {
            let n = dims ?? headDim
            precondition(n % 2 == 0 && n >= 2 && n <= headDim, "rotated dims \(n) must be even and within the head (\(headDim))")
            precondition(factors == nil || factors!.count == n / 2, "one frequency factor per rotated pair")
            self.headDim = headDim; self.dims = n; self.ordering = ordering
            inverse = (0..<n / 2).map { i in scale * pow(base, -2 * Double(i) / Double(n)) / Double(factors?[i] ?? 1) }
        }
    }

    /// Rotates x (T, heads·headDim) in place; row t is at position pos0 + t.
    public static func forward(x: UnsafeMutablePointer<Float>, T: Int, heads: Int, pos0: Int, _ f: Frequencies) {
        for t in 0..<T { apply(x: x + t * heads * f.headDim, heads: heads, Table(position: pos0 + t, f)) }
    }

    /// Whole-head, adjacent-pair rotation with base `theta` (llama's default).
    public static func forward(x: UnsafeMutablePointer<Float>, T: Int, heads: Int, headDim: Int, pos0: Int, theta: Double) {
        forward(x: x, T: T, heads: heads, pos0: pos0, Frequencies(headDim: headDim, base: theta))
    }

    /// The cosines and sines of one position's rotation angles (dims / 2 of each). Decode computes it once
    /// per sequence and step and applies it to q and k of every layer.
    public struct Table: Sendable {
        public let cos: [Float], sin: [Float]
        public let headDim: Int
        public let ordering: Ordering
        public init(position: Int, _ f: Frequencies) {
            let angles = f.inverse.map { Double(position) * $0 }
            cos = angles.map { Float(Foundation.cos($0)) }
            sin = angles.map { Float(Foundation.sin($0)) }
            headDim = f.headDim; ordering = f.ordering
        }
        public init(position: Int, headDim: Int, theta: Double) { self.init(position: position, Frequencies(headDim: headDim, base: theta)) }
    }

    /// Rotates one row x (heads·headDim) in place by `table`'s angles.
    public static func apply(x: UnsafeMutablePointer<Float>, heads: Int, _ table: Table) {
        let half = table.cos.count, hd = table.headDim
        // normal: pair i is (2i, 2i+1); neox: (i, i+half).
        let (stride, partner) = table.ordering == .normal ? (2, 1) : (1, half)
        table.cos.withUnsafeBufferPointer { cs in
            table.sin.withUnsafeBufferPointer { sn in
                for h in 0..<heads {
                    let p = x + h * hd
                    for i in 0..<half {
                        let j = i * stride, a = p[j], b = p[j + partner]
                        p[j] = a * cs[i] - b * sn[i]
                        p[j + partner] = a * sn[i] + b * cs[i]
                    }
                }
            }
        }
    }

    /// The reference: loops in double over x (T, heads·f.headDim), straight from the definition.
    public static func naiveForward(_ x: [Float], T: Int, heads: Int, pos0: Int, _ f: Frequencies) -> [Float] {
        var out = x
        let half = f.dims / 2
        for t in 0..<T {
            for h in 0..<heads {
                for i in 0..<half {
                    let angle = Double(pos0 + t) * f.inverse[i]
                    let row = t * heads * f.headDim + h * f.headDim
                    let (j0, j1) = f.ordering == .normal ? (row + 2 * i, row + 2 * i + 1) : (row + i, row + i + half)
                    let a = Double(x[j0]), b = Double(x[j1])
                    out[j0] = Float(a * cos(angle) - b * sin(angle))
                    out[j1] = Float(a * sin(angle) + b * cos(angle))
                }
            }
        }
        return out
    }

    public static func naiveForward(_ x: [Float], T: Int, heads: Int, headDim: Int, pos0: Int, theta: Double) -> [Float] {
        naiveForward(x, T: T, heads: heads, pos0: pos0, Frequencies(headDim: headDim, base: theta))
    }
}

public enum Softmax {
    /// In place over x[0..<n], max-subtracted (vectorised in C, `hr_softmax`).
    public static func forward(_ x: UnsafeMutablePointer<Float>, n: Int) {
        hr_softmax(x, n)
    }

    public static func naiveForward(_ x: [Float]) -> [Float] {
        let e = x.map { Foundation.exp(Double($0)) }
        let s = e.reduce(0, +)
        return e.map { Float($0 / s) }
    }
}

public enum SwiGLU {
    /// out (n) = silu(gate) · up, where silu(g) = g / (1 + e^-g). `out` may alias `gate`. Vectorised in C
    /// (`hr_swiglu`), split across `threads` when n is large.
    public static func forward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, n: Int,
                               threads: Int = 1) {
        hr_swiglu(out, gate, up, n, Int32(threads))
    }

    public static func naiveForward(gate: [Float], up: [Float]) -> [Float] {
        zip(gate, up).map { g, u in Float(Double(g) / (1 + Foundation.exp(-Double(g))) * Double(u)) }
    }
}

/// Causal grouped-query attention: query head h reads KV head h / (heads / kvHeads); scores scaled by 1/sqrt(headDim).
public enum Attention {
    /// The shapes of one attention call.
    public struct Shape: Sendable {
        public var heads: Int, kvHeads: Int, headDim: Int
        public init(heads: Int, kvHeads: Int, headDim: Int) { self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim }
        public var dim: Int { heads * headDim }
        public var kvDim: Int { kvHeads * headDim }
    }

    /// Decode: one query q (heads·headDim) at position npos-1 against cache positions 0..<npos; out (heads·headDim).
    public static func decode(q: UnsafePointer<Float>, kCache: UnsafePointer<Float>, vCache: UnsafePointer<Float>, npos: Int,
                              shape: Shape, out: UnsafeMutablePointer<Float>, threads: Int) {
        hr_attention_decode(q, kCache, vCache, npos, shape.kvDim, Int32(shape.heads), Int32(shape.kvHeads), Int32(shape.headDim),
                            out, Int32(threads))
    }

    /// Decode for `q.count / shape.dim` sequences at once: query b (row b of q) against its own cache
    /// (kCaches[b], vCaches[b], npos[b] positions); out row b. One pool dispatch for every (sequence, head).
    public static func decodeBatch(q: UnsafePointer<Float>, kCaches: [UnsafePointer<Float>], vCaches: [UnsafePointer<Float>],
                                   npos: [Int], shape: Shape, out: UnsafeMutablePointer<Float>, threads: Int) {
        precondition(kCaches.count == npos.count && vCaches.count == npos.count)
        let ks = kCaches.map { Optional($0) }, vs = vCaches.map { Optional($0) }
        hr_attention_decode_batch(Int32(npos.count), q, ks, vs, npos, shape.kvDim, Int32(shape.heads), Int32(shape.kvHeads),
                                  Int32(shape.headDim), out, Int32(threads))
    }

    /// Attention over a paged KV cache: `npos.count` query rows (row r of q, out), row r against positions
    /// 0..<npos[r] of the sequence whose block table is `tables[r]`. `kPool`/`vPool` are one layer's blocks,
    /// `blockSize` rows of `shape.kvDim` floats each; position p is row p % blockSize of block
    /// table[p / blockSize]. The rows of a prefill chunk share their sequence's table, with npos growing by
    /// one per row (causal). One pool dispatch for every (row, head group).
    public static func paged(q: UnsafePointer<Float>, kPool: UnsafePointer<Float>, vPool: UnsafePointer<Float>,
                             tables: [UnsafePointer<Int32>], npos: [Int], blockSize: Int, shape: Shape,
                             out: UnsafeMutablePointer<Float>, threads: Int) {
        precondition(tables.count == npos.count)
        let ts = tables.map { Optional($0) }
        hr_attention_paged(Int32(npos.count), q, kPool, vPool, ts, npos, blockSize, shape.kvDim, Int32(shape.heads),
                           Int32(shape.kvHeads), Int32(shape.headDim), out, Int32(threads))
    }

    /// Prefill: queries q (T, heads·headDim) at positions pos0..<pos0+T against cache positions 0..<pos0+T
    /// (the new keys and values already written); out (T, heads·headDim). Scores and weighted sums go
    /// through sgemm per head; `scores` must hold T·(pos0+T) floats. OpenBLAS must be set to `threads`.
    public static func prefill(q: UnsafePointer<Float>, kCache: UnsafePointer<Float>, vCache: UnsafePointer<Float>, pos0: Int, T: Int,
                               shape: Shape, out: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>, threads: Int) {
        let L = pos0 + T, hd = shape.headDim, group = shape.heads / shape.kvHeads
        let scale = 1 / Float(hd).squareRoot()
        for h in 0..<shape.heads {
            let g = h / group
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(L), Int32(hd), scale,
                        q + h * hd, Int32(shape.dim), kCache + g * hd, Int32(shape.kvDim), 0, scores, Int32(L))
            ThreadPool.run(threads) { t in
                for i in T * t / threads..<T * (t + 1) / threads {
                    let row = scores + i * L, valid = pos0 + i + 1
                    Softmax.forward(row, n: valid)
                    for j in valid..<L { row[j] = 0 }
                }
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(hd), Int32(L), 1,
                        scores, Int32(L), vCache + g * hd, Int32(shape.kvDim), 0, out + h * hd, Int32(shape.dim))
        }
    }

    /// The reference: loops in double. q (T, dim) at positions pos0..<pos0+T; k, v (pos0+T, kvDim).
    public static func naiveForward(q: [Float], k: [Float], v: [Float], pos0: Int, T: Int, shape: Shape) -> [Float] {
        let hd = shape.headDim, group = shape.heads / shape.kvHeads
        var out = [Float](repeating: 0, count: T * shape.dim)
        for t in 0..<T {
            for h in 0..<shape.heads {
                let g = h / group, n = pos0 + t + 1
                var s = [Double](repeating: 0, count: n)
                for j in 0..<n {
                    var acc = 0.0
                    for i in 0..<hd { acc += Double(q[t * shape.dim + h * hd + i]) * Double(k[j * shape.kvDim + g * hd + i]) }
                    s[j] = acc / Double(hd).squareRoot()
                }
                let mx = s.max()!
                let e = s.map { Foundation.exp($0 - mx) }
                let sum = e.reduce(0, +)
                for i in 0..<hd {
                    var acc = 0.0
                    for j in 0..<n { acc += e[j] / sum * Double(v[j * shape.kvDim + g * hd + i]) }
                    out[t * shape.dim + h * hd + i] = Float(acc)
                }
            }
        }
        return out
    }
}
