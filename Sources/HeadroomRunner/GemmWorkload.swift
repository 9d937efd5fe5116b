// The GEMM shapes of one transformer layer of the scenario's model (QKV, output, gate/up, down),
// at prefill token counts and decode batch sizes, timed through OpenBLAS.
import Dispatch
import HeadroomCore
import HeadroomKernels

public struct GemmWorkload: SingleCaseWorkload {
    public var model: ModelShape
    public var threads: [Int]
    public var promptTokens: [Int]
    public var batch: [Int]
    public var repetitions: Int
    public var warmup: Int

    public init(_ m: MeasureSettings) {
        model = m.model; threads = m.threads; promptTokens = m.promptTokens; batch = m.batch
        repetitions = m.gemmRepetitions; warmup = m.gemmWarmup
    }

    public func cases() -> [CaseSpec] {
        var specs: [CaseSpec] = []
        let rows: [(phase: String, m: Int)] = promptTokens.map { ("prefill", $0) } + batch.map { ("decode", $0) }
        for t in threads {
            for (phase, m) in rows {
                for p in model.layerProjections {
                    specs.append(CaseSpec(
                        kind: .gemm, name: p.name, threads: t,
                        params: GemmParams(model: model.id, phase: phase, m: m, n: p.n, k: p.k).params,
                        steps: warmup + repetitions))
                }
            }
        }
        return specs
    }

    public func measure(_ spec: CaseSpec, step: () throws -> Void) throws -> MeasuredCase {
        guard let (m, n, k) = GemmParams(params: spec.params).map({ ($0.m, $0.n, $0.k) }) else {
            preconditionFailure("gemm case without M, N, K")
        }
        BLASThreads.set(spec.threads)
        let inp = FloatBuffer(count: m * k), weight = FloatBuffer(count: n * k), out = FloatBuffer(count: m * n)
        inp.fillUniform(seed: 11)
        weight.fillUniform(seed: 12, scale: 0.02)
        let flops = Matmul.flops(M: m, N: n, K: k)
        var samples: [MeasuredCase.Sample] = []
        for rep in -warmup..<repetitions {
            try checkInterrupt()
            let start = DispatchTime.now().uptimeNanoseconds
            Matmul.forward(out: out.pointer, inp: inp.pointer, weight: weight.pointer, M: m, N: n, K: k)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            try step()
            guard rep >= 0 else { continue }
            samples.append(.init(metric: "seconds", unit: "s", repetition: rep, value: seconds))
            samples.append(.init(metric: "gflops", unit: "GFLOP/s", repetition: rep, value: flops / seconds / 1e9))
            // Bytes the weight matrix streams per call: what bounds the decode shapes.
            samples.append(.init(metric: "weight_gbps", unit: "GB/s", repetition: rep, value: Double(weight.bytes) / seconds / 1e9))
        }
        guard out[0].isFinite else { throw GemmError.nonFinite(spec.name) }
        return MeasuredCase(kind: spec.kind, name: spec.name, threads: spec.threads, params: spec.params, samples: samples)
    }
}

enum GemmError: Error, CustomStringConvertible {
    case nonFinite(String)
    var description: String {
        switch self { case .nonFinite(let n): return "gemm \(n) produced a non-finite result" }
    }
}
