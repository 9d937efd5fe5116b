// Dense matrix multiplication through OpenBLAS, and the naive loop the tests check it against.
import CBLAS
import Foundation
import CKernels

public enum Matmul {
    /// out (M,N) = inp (M,K) · weightᵀ, where weight is (N,K): the layout of a linear layer,
    /// one weight row per output feature. Row-major throughout. `accumulate` adds to `out`.
    public static func forward(
        out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        M: Int, N: Int, K: Int, accumulate: Bool = false
    ) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                    Int32(M), Int32(N), Int32(K),
                    1, inp, Int32(K), weight, Int32(K),
                    accumulate ? 1 : 0, out, Int32(N))
    }

    /// The reference: three loops, double accumulation. Slow on purpose; for tests only.
    public static func naiveForward(inp: [Float], weight: [Float], M: Int, N: Int, K: Int) -> [Float] {
        var out = [Float](repeating: 0, count: M * N)
        for m in 0..<M {
            for n in 0..<N {
                var acc = 0.0
                for k in 0..<K { acc += Double(inp[m * K + k]) * Double(weight[n * K + k]) }
                out[m * N + n] = Float(acc)
            }
        }
        return out
    }

    /// FLOPs of one `forward` call: a multiply and an add per (m, n, k).
    public static func flops(M: Int, N: Int, K: Int) -> Double { 2 * Double(M) * Double(N) * Double(K) }
}

/// OpenBLAS's own worker threads.
public enum BLASThreads {
    public static func set(_ n: Int) { openblas_set_num_threads(Int32(n)) }
    public static var current: Int { Int(openblas_get_num_threads()) }
    /// The kernel family OpenBLAS picked for this CPU (e.g. "SkylakeX", "Cooperlake").
    public static var coreName: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }
    /// The core type that suits this CPU best (see `hr_openblas_coretype_hint`), nil without AVX2.
    public static var preferredCoreType: String? { hr_openblas_coretype_hint().map { String(cString: $0) } }

    /// Whether OpenBLAS settled for a pre-AVX2 kernel family.
    public static func isGenericCore(_ name: String) -> Bool {
        ["prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "katmai", "coppermine", "northwood",
         "banias", "sandybridge", "unknown"].contains(name.lowercased())
    }

    public static var config: String { openblas_get_config().map { String(cString: $0) } ?? "unknown" }

    /// `OPENBLAS_THREAD_TIMEOUT` for the serving engine: OpenBLAS's workers wait 2^4 cycles after a call,
    /// then sleep, and leave the cores to the engine's own pool (see main.swift).
    public static let servingThreadTimeout = "4"

    /// `OPENBLAS_THREAD_TIMEOUT` as this process started with it (nil: OpenBLAS's default, 2^28 cycles).
    public static var threadTimeout: String? { ProcessInfo.processInfo.environment["OPENBLAS_THREAD_TIMEOUT"] }
}
