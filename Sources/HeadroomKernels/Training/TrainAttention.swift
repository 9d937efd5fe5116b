// Causal grouped-query self-attention for training: scores, softmax and the weighted sum per head
// through OpenBLAS sgemm, the softmax probabilities kept for backward. A naive loop version is the reference.
import CBLAS
import Foundation

public enum TrainAttention {
    /// out (B,T,NH·hd) = softmax(q·kᵀ/√hd, causal)·v per head; probs (B,NH,T,T) keeps the probabilities
    /// (zero above the diagonal). q is (B,T,NH·hd); k and v are (B,T,NKV·hd), head h reading kv head h/(NH/NKV).
    public static func forward(out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                               q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                               B: Int, T: Int, NH: Int, NKV: Int, hd: Int, threads: Int = 1) {
        precondition(NH % NKV == 0, "kv heads must divide heads")
        let C = NH * hd, CKV = NKV * hd, group = NH / NKV
        let scale = 1 / Float(hd).squareRoot()
        for b in 0..<B {
            for h in 0..<NH {
                let kvh = h / group
                let P = probs + (b * NH + h) * T * T
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(T), Int32(hd),
                            scale, q + b * T * C + h * hd, Int32(C), k + b * T * CKV + kvh * hd, Int32(CKV),
                            0, P, Int32(T))
            }
        }
        // Causal softmax over every row of every head, rows split across threads.
        forRows(B * NH * T, threads: threads) { lo, hi in
            for row in lo..<hi {
                let t = row % T
                let p = probs + row * T
                var mx = -Float.infinity
                for j in 0...t { mx = max(mx, p[j]) }
                var sum: Float = 0
                for j in 0...t { let e = expf(p[j] - mx); p[j] = e; sum += e }
                let inv = 1 / sum
                for j in 0...t { p[j] *= inv }
                for j in (t + 1)..<T { p[j] = 0 }
            }
        }
        for b in 0..<B {
            for h in 0..<NH {
                let kvh = h / group
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(hd), Int32(T),
                            1, probs + (b * NH + h) * T * T, Int32(T), v + b * T * CKV + kvh * hd, Int32(CKV),
                            0, out + b * T * C + h * hd, Int32(C))
            }
        }
    }

    /// dq (B,T,NH·hd), dk and dv (B,T,NKV·hd) += the gradients of `forward` given dout (B,T,NH·hd) and the
    /// kept probs. dprobs (B,NH,T,T) is scratch.
    public static func backward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                                dprobs: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, probs: UnsafePointer<Float>,
                                q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                B: Int, T: Int, NH: Int, NKV: Int, hd: Int, threads: Int = 1) {
        let C = NH * hd, CKV = NKV * hd, group = NH / NKV
        let scale = 1 / Float(hd).squareRoot()
        for b in 0..<B {
            for h in 0..<NH {
                let kvh = h / group
                let P = probs + (b * NH + h) * T * T, dP = dprobs + (b * NH + h) * T * T
                let dO = dout + b * T * C + h * hd
                // dP = dO·vᵀ; dv += Pᵀ·dO.
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(T), Int32(hd),
                            1, dO, Int32(C), v + b * T * CKV + kvh * hd, Int32(CKV), 0, dP, Int32(T))
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(T), Int32(hd), Int32(T),
                            1, P, Int32(T), dO, Int32(C), 1, dv + b * T * CKV + kvh * hd, Int32(CKV))
            }
        }
        // Softmax backward in place: dS = P ⊙ (dP − Σ_j P·dP), zero above the diagonal since P is.
        forRows(B * NH * T, threads: threads) { lo, hi in
            for row in lo..<hi {
                let t = row % T
                let p = probs + row * T, d = dprobs + row * T
                var dot: Float = 0
                for j in 0...t { dot += p[j] * d[j] }
                for j in 0...t { d[j] = p[j] * (d[j] - dot) }
                for j in (t + 1)..<T { d[j] = 0 }
            }
        }
        for b in 0..<B {
            for h in 0..<NH {
                let kvh = h / group
                let dS = dprobs + (b * NH + h) * T * T
                // dq += scale·dS·k; dk += scale·dSᵀ·q.
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(hd), Int32(T),
                            scale, dS, Int32(T), k + b * T * CKV + kvh * hd, Int32(CKV), 1, dq + b * T * C + h * hd, Int32(C))
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(T), Int32(hd), Int32(T),
                            scale, dS, Int32(T), q + b * T * C + h * hd, Int32(C), 1, dk + b * T * CKV + kvh * hd, Int32(CKV))
            }
        }
    }

    /// Reference forward: loops in double, no sgemm. Tests only. Returns out (B,T,NH·hd).
    public static func naiveForward(q: [Float], k: [Float], v: [Float], B: Int, T: Int, NH: Int, NKV: Int, hd: Int) -> [Float] {
        let C = NH * hd, CKV = NKV * hd, group = NH / NKV
        var out = [Float](repeating: 0, count: B * T * C)
        let scale = 1 / Double(hd).squareRoot()
        for b in 0..<B {
            for h in 0..<NH {
                let kvh = h / group
                for t in 0..<T {
                    var s = [Double](repeating: 0, count: t + 1)
                    for j in 0...t {
                        var dot = 0.0
                        for d in 0..<hd { dot += Double(q[(b * T + t) * C + h * hd + d]) * Double(k[(b * T + j) * CKV + kvh * hd + d]) }
                        s[j] = dot * scale
                    }
                    let mx = s.max()!
                    let e = s.map { Foundation.exp($0 - mx) }
                    let sum = e.reduce(0, +)
                    for d in 0..<hd {
                        var acc = 0.0
                        for j in 0...t { acc += e[j] / sum * Double(v[(b * T + j) * CKV + kvh * hd + d]) }
                        out[(b * T + t) * C + h * hd + d] = Float(acc)
                    }
                }
            }
        }
        return out
    }
}
