// `headroom probe`: this machine's memory bandwidth (one stream, several rows, triad) and sgemm
// throughput, for each thread count. The best of several repetitions is the machine's limit.
import Dispatch
import Foundation
import HeadroomCore
import HeadroomKernels

public struct ProbeWorkload: Workload {
    public var settings: ProbeSettings
    public var threads: [Int]
    /// Rows read side by side per thread in the multi-row pattern.
    public var rows: Int = 8

    public func cases() -> [CaseSpec] {
        let reps = settings.repetitions + 1 // one warm-up
        let bytes = String(settings.readMiB * 1 << 20)
        return threads.flatMap { t in [
            CaseSpec(kind: "probe", name: "read_stream", threads: t, params: ["bytes": bytes, "isa": Bandwidth.isa], steps: reps),
            CaseSpec(kind: "probe", name: "read_rows", threads: t,
                     params: ["bytes": bytes, "rows_per_thread": String(rows), "isa": Bandwidth.isa], steps: reps),
            CaseSpec(kind: "probe", name: "triad", threads: t, params: ["bytes": bytes, "isa": Bandwidth.isa], steps: reps),
            CaseSpec(kind: "probe", name: "sgemm", threads: t,
                     params: ["size": String(settings.gemmSize), "openblas_core": BLASThreads.coreName], steps: reps),
        ] }
    }

    /// Arrays are allocated once per probe and reused by every case.
    final class Arrays {
        let settings: ProbeSettings
        lazy var read = FloatBuffer.filled(count: settings.readMiB * (1 << 20) / 4)
        lazy var triad: (FloatBuffer, FloatBuffer, FloatBuffer) = {
            let n = settings.readMiB * (1 << 20) / 4 / 3 & ~15
            return (FloatBuffer(count: n), FloatBuffer.filled(count: n), FloatBuffer.filled(count: n))
        }()
        init(settings: ProbeSettings) { self.settings = settings }
    }
    private let arrays: Arrays

    public init(settings: ProbeSettings, threads: [Int], rows: Int = 8) {
        self.settings = settings
        self.threads = threads
        self.rows = rows
        arrays = Arrays(settings: settings)
    }

    public func measure(_ spec: CaseSpec, step: () throws -> Void) throws -> MeasuredCase {
        var samples: [MeasuredCase.Sample] = []
        let reps = settings.repetitions
        for rep in -1..<reps {  // rep -1 is the warm-up, not recorded
            try checkInterrupt()
            let (seconds, bytes, flops): (Double, Double, Double)
            switch spec.name {
            case "read_stream", "read_rows":
                let buf = arrays.read
                let r = Bandwidth.timeRead(buf, threads: spec.threads, pattern: spec.name == "read_rows" ? .rows(rows) : .stream)
                guard r.checksum.isFinite else { fatalError("probe read produced a non-finite checksum") }
                (seconds, bytes, flops) = (r.seconds, Double(buf.bytes), 0)
            case "triad":
                let (a, b, c) = arrays.triad
                (seconds, bytes, flops) = (Bandwidth.timeTriad(a: a, b: b, c: c, threads: spec.threads), Double(3 * a.bytes), 0)
            case "sgemm":
                (seconds, bytes, flops) = (Self.timeSquareGemm(size: settings.gemmSize, threads: spec.threads),
                                           0, Matmul.flops(M: settings.gemmSize, N: settings.gemmSize, K: settings.gemmSize))
            default:
                fatalError("unknown probe case \(spec.name)")
            }
            try step()
            guard rep >= 0 else { continue }
            samples.append(.init(metric: "seconds", unit: "s", repetition: rep, value: seconds))
            if flops > 0 {
                samples.append(.init(metric: "gflops", unit: "GFLOP/s", repetition: rep, value: flops / seconds / 1e9))
            } else {
                samples.append(.init(metric: "gbps", unit: "GB/s", repetition: rep, value: bytes / seconds / 1e9))
            }
        }
        return MeasuredCase(kind: spec.kind, name: spec.name, threads: spec.threads, params: spec.params, samples: samples)
    }

    static func timeSquareGemm(size n: Int, threads: Int) -> Double {
        BLASThreads.set(threads)
        let a = FloatBuffer(count: n * n), b = FloatBuffer(count: n * n), c = FloatBuffer(count: n * n)
        a.fillUniform(seed: 1); b.fillUniform(seed: 2)
        let start = DispatchTime.now().uptimeNanoseconds
        Matmul.forward(out: c.pointer, inp: a.pointer, weight: b.pointer, M: n, N: n, K: n)
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}

extension FloatBuffer {
    /// A buffer of small non-zero values, cheap to fill (the probe only needs the pages touched).
    static func filled(count: Int) -> FloatBuffer {
        let b = FloatBuffer(count: count)
        for i in stride(from: 0, to: count, by: 1024) { b[i] = 1 }
        return b
    }
}
