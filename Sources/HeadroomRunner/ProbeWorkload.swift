// `headroom probe`: this machine's memory bandwidth (one stream, several rows, the decode kernels' own
// prefetched walk, triad) and sgemm throughput, for each thread count. The best of several repetitions is
// the machine's limit. A closing probe reads again after a run's workloads, so drift over the run shows.
import Dispatch
import Foundation
import HeadroomCore
import HeadroomKernels

public struct ProbeWorkload: SingleCaseWorkload {
    public var settings: ProbeSettings
    public var threads: [Int]
    /// Rows read side by side per thread in the multi-row pattern.
    public var rows: Int = 8
    /// Row width, in floats, of the prefetched pattern: 2048, the width of three quarters of `small`'s weight
    /// bytes (every matrix but the FFN's down projection, and the output head).
    public var prefetchRowFloats: Int = 2048
    /// A closing probe measures the read patterns only (its cases marked `ProbeFigures.closingStage`): cheap
    /// enough to follow a run's workloads, and what shows the machine changing under them.
    public var closing: Bool = false

    public func cases() -> [CaseSpec] {
        let reps = settings.repetitions + 1 // one warm-up
        let bytes = String(settings.readMiB * 1 << 20)
        let stage = closing ? [ProbeFigures.stageParam: ProbeFigures.closingStage] : [:]
        return threads.flatMap { t in
            var specs = [
                CaseSpec(kind: .probe, name: "read_stream", threads: t, params: ["bytes": bytes].merging(stage) { $1 }, steps: reps),
                CaseSpec(kind: .probe, name: "read_rows", threads: t,
                         params: ["bytes": bytes, "rows_per_thread": String(rows)].merging(stage) { $1 }, steps: reps),
                CaseSpec(kind: .probe, name: "read_prefetch", threads: t,
                         params: ["bytes": bytes, "row_floats": String(prefetchRowFloats)].merging(stage) { $1 }, steps: reps),
            ]
            if !closing {
                specs.append(CaseSpec(kind: .probe, name: "triad", threads: t, params: ["bytes": bytes], steps: reps))
                specs.append(CaseSpec(kind: .probe, name: "sgemm", threads: t, params: ["size": String(settings.gemmSize)], steps: reps))
            }
            return specs
        }
    }

    /// What a probe case records about itself: the ISA the read kernels dispatch to, or the OpenBLAS core.
    func facts(of name: String) -> [String: String] {
        switch name {
        case "sgemm": return [CaseFacts.openblasCore: BLASThreads.coreName]
        case "read_prefetch": return [CaseFacts.isa: Bandwidth.isa(of: .prefetched(rowFloats: prefetchRowFloats))]
        default: return [CaseFacts.isa: Bandwidth.isa]
        }
    }

    /// Arrays are allocated when a case first needs them, reused by the cases that follow, and freed after the
    /// workload's last case: the probe's gigabyte or two never counts in a later workload's peak RSS.
    final class Arrays {
        let settings: ProbeSettings
        private var readBuffer: FloatBuffer?
        private var triadBuffers: (FloatBuffer, FloatBuffer, FloatBuffer)?
        init(settings: ProbeSettings) { self.settings = settings }

        var read: FloatBuffer {
            if let readBuffer { return readBuffer }
            let b = FloatBuffer.filled(count: settings.readMiB * (1 << 20) / 4)
            readBuffer = b
            return b
        }
        var triad: (FloatBuffer, FloatBuffer, FloatBuffer) {
            if let triadBuffers { return triadBuffers }
            let n = settings.readMiB * (1 << 20) / 4 / 3 & ~15
            let t = (FloatBuffer(count: n), FloatBuffer.filled(count: n), FloatBuffer.filled(count: n))
            triadBuffers = t
            return t
        }
        var isEmpty: Bool { readBuffer == nil && triadBuffers == nil }
        func release() { readBuffer = nil; triadBuffers = nil }
    }
    private let arrays: Arrays

    public init(settings: ProbeSettings, threads: [Int], rows: Int = 8, closing: Bool = false) {
        self.settings = settings
        self.threads = threads
        self.rows = rows
        self.closing = closing
        arrays = Arrays(settings: settings)
    }

    /// Whether the arrays are allocated now (for tests: they are freed after the last case).
    var holdsArrays: Bool { !arrays.isEmpty }

    public func measure(_ spec: CaseSpec, step: () throws -> Void) throws -> MeasuredCase {
        var samples: [MeasuredCase.Sample] = []
        let reps = settings.repetitions
        for rep in -1..<reps {  // rep -1 is the warm-up, not recorded
            try checkInterrupt()
            let (seconds, bytes, flops): (Double, Double, Double)
            switch spec.name {
            case "read_stream", "read_rows", "read_prefetch":
                let buf = arrays.read
                let pattern: Bandwidth.ReadPattern = spec.name == "read_stream" ? .stream
                    : spec.name == "read_rows" ? .rows(rows) : .prefetched(rowFloats: prefetchRowFloats)
                let r = Bandwidth.timeRead(buf, threads: spec.threads, pattern: pattern)
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
        if let last = cases().last, last.name == spec.name, last.threads == spec.threads, last.params == spec.params { arrays.release() }
        return MeasuredCase(kind: spec.kind, name: spec.name, threads: spec.threads, params: spec.params, facts: facts(of: spec.name),
                            samples: samples)
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
