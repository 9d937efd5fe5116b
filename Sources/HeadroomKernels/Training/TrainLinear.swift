// Training kernels for linear layers through OpenBLAS sgemm: the two backward GEMMs of y = x·Wᵀ,
// and LoRA adapters (y += (alpha/r)·dropout(x)·Aᵀ·Bᵀ) with their forward, backward and dropout mask.
// Naive loop references live beside them for the tests.
import CBLAS

public enum TrainLinear {
    /// out (M,N) = inp (M,K) · weightᵀ; weight is (N,K). `accumulate` adds to out.
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               M: Int, N: Int, K: Int, accumulate: Bool = false) {
        Matmul.forward(out: out, inp: inp, weight: weight, M: M, N: N, K: K, accumulate: accumulate)
    }

    /// dinp (M,K) += dout (M,N) · weight; weight is (N,K).
    public static func backwardInput(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                     M: Int, N: Int, K: Int) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(M), Int32(K), Int32(N),
                    1, dout, Int32(N), weight, Int32(K), 1, dinp, Int32(K))
    }

    /// dweight (N,K) += doutᵀ (N,M) · inp (M,K).
    public static func backwardWeight(dweight: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                                      M: Int, N: Int, K: Int) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(N), Int32(K), Int32(M),
                    1, dout, Int32(N), inp, Int32(K), 1, dweight, Int32(K))
    }

    /// Reference for `backwardInput` and `backwardWeight`: plain loops in double. Tests only.
    public static func naiveBackward(dout: [Float], inp: [Float], weight: [Float], M: Int, N: Int, K: Int)
        -> (dinp: [Float], dweight: [Float]) {
        var dinp = [Float](repeating: 0, count: M * K), dweight = [Float](repeating: 0, count: N * K)
        for m in 0..<M {
            for k in 0..<K {
                var acc = 0.0
                for n in 0..<N { acc += Double(dout[m * N + n]) * Double(weight[n * K + k]) }
                dinp[m * K + k] = Float(acc)
            }
        }
        for n in 0..<N {
            for k in 0..<K {
                var acc = 0.0
                for m in 0..<M { acc += Double(dout[m * N + n]) * Double(inp[m * K + k]) }
                dweight[n * K + k] = Float(acc)
            }
        }
        return (dinp, dweight)
    }
}

public enum TrainLoRA {
    /// Kaiming-uniform A (r,K) as PEFT initialises it (bound 1/√K), seeded; B (N,r) starts at zero so the
    /// adapted layer starts equal to the frozen one.
    public static func initialize(A: UnsafeMutablePointer<Float>, B: UnsafeMutablePointer<Float>, r: Int, N: Int, K: Int, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let bound = 1 / Float(K).squareRoot()
        for i in 0..<(r * K) { A[i] = (rng.nextUnitFloat() * 2 - 1) * bound }
        B.update(repeating: 0, count: N * r)
    }

    /// mask (count) = 0 with probability p, else 1/(1−p) (inverted dropout), from `seed`: the same seed
    /// gives the same mask, which is what lets a recomputed (checkpointed) forward match the first.
    public static func dropoutMask(_ mask: UnsafeMutablePointer<Float>, count: Int, p: Float, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let keep = 1 / (1 - p)
        for i in 0..<count { mask[i] = rng.nextUnitFloat() < p ? 0 : keep }
    }

    /// out (M,N) += scale · (mask ⊙ inp) · Aᵀ · Bᵀ, keeping u (M,r) = (mask ⊙ inp)·Aᵀ for backward.
    /// inp is (M,K), A (r,K), B (N,r); mask (M,K) or nil for no dropout; xd (M,K) is scratch (unused without mask).
    public static func forward(out: UnsafeMutablePointer<Float>, u: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                               mask: UnsafePointer<Float>?, xd: UnsafeMutablePointer<Float>,
                               A: UnsafePointer<Float>, B: UnsafePointer<Float>, scale: Float, M: Int, N: Int, K: Int, r: Int) {
        var x = inp
        if let mask {
            for i in 0..<(M * K) { xd[i] = inp[i] * mask[i] }
            x = UnsafePointer(xd)
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(M), Int32(r), Int32(K),
                    1, x, Int32(K), A, Int32(K), 0, u, Int32(r))
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(M), Int32(N), Int32(r),
                    scale, u, Int32(r), B, Int32(r), 1, out, Int32(N))
    }

    /// dA (r,K) += scale·(dout·B)ᵀ·(mask⊙inp), dB (N,r) += scale·doutᵀ·u, and, when dinp is given,
    /// dinp (M,K) += mask ⊙ (scale·dout·B·A). dout is (M,N); g (M,r) and xd (M,K) are scratch.
    public static func backward(dinp: UnsafeMutablePointer<Float>?, dA: UnsafeMutablePointer<Float>, dB: UnsafeMutablePointer<Float>,
                                dout: UnsafePointer<Float>, u: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                                mask: UnsafePointer<Float>?, A: UnsafePointer<Float>, B: UnsafePointer<Float>,
                                g: UnsafeMutablePointer<Float>, xd: UnsafeMutablePointer<Float>,
                                scale: Float, M: Int, N: Int, K: Int, r: Int) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(N), Int32(r), Int32(M),
                    scale, dout, Int32(N), u, Int32(r), 1, dB, Int32(r))
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(M), Int32(r), Int32(N),
                    scale, dout, Int32(N), B, Int32(r), 0, g, Int32(r))
        var x = inp
        if let mask {
            for i in 0..<(M * K) { xd[i] = inp[i] * mask[i] }
            x = UnsafePointer(xd)
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(r), Int32(K), Int32(M),
                    1, g, Int32(r), x, Int32(K), 1, dA, Int32(K))
        guard let dinp else { return }
        if let mask {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(M), Int32(K), Int32(r),
                        1, g, Int32(r), A, Int32(K), 0, xd, Int32(K))
            for i in 0..<(M * K) { dinp[i] += mask[i] * xd[i] }
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(M), Int32(K), Int32(r),
                        1, g, Int32(r), A, Int32(K), 1, dinp, Int32(K))
        }
    }

    /// Reference for `forward`: the adapter's contribution scale·(mask⊙inp)·Aᵀ·Bᵀ (M,N), in double loops. Tests only.
    public static func naiveForward(inp: [Float], mask: [Float]?, A: [Float], B: [Float], scale: Float,
                                    M: Int, N: Int, K: Int, r: Int) -> [Float] {
        var out = [Float](repeating: 0, count: M * N)
        for m in 0..<M {
            var u = [Double](repeating: 0, count: r)
            for j in 0..<r {
                for k in 0..<K { u[j] += Double(inp[m * K + k] * (mask?[m * K + k] ?? 1)) * Double(A[j * K + k]) }
            }
            for n in 0..<N {
                var acc = 0.0
                for j in 0..<r { acc += u[j] * Double(B[n * r + j]) }
                out[m * N + n] = Float(Double(scale) * acc)
            }
        }
        return out
    }
}
