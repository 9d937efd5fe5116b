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
    /// Untimed calls, this long, before the first timed GEMM at a thread count: OpenBLAS's threads take a
    /// while to settle on their cores after the count changes (measured 2026-12-01: the first 2-thread GEMMs
    /// after 1-thread ones ran up to 2× slower for ~0.1 s — `qkv` at M = 16 in 4.1 ms, against 2.1 ms once
    /// settled), which would time the switch, not the kernel.
    public static let settleSeconds = 0.3

    /// The seconds of every case of a thread count, measured together when the first of them is asked for.
    final class State: @unchecked Sendable { var seconds: [String: [Double]] = [:] }
    private let state = State()

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

    /// A case's samples. The cases of one thread count are timed together, in interleaved rounds (each round
    /// calls every case's GEMM once, the warm-ups in the first rounds), when the first of them is asked for: a
    /// slow spell of this shared machine (memory bandwidth taken by a neighbour for a few hundred milliseconds)
    /// then lands on one or two repetitions of many cases, which their medians shrug off, instead of on every
    /// repetition of the one case that ran through it (run 65: `gate_up` M = 1, 1 thread, all 9 calls at 16.5 ms
    /// against 12.5 ms in the runs before and after). Under `--shard` a shard times its thread count's other
    /// cases too (milliseconds each) and keeps its own.
    public func measure(_ spec: CaseSpec, step: () throws -> Void) throws -> MeasuredCase {
        guard let params = GemmParams(params: spec.params) else { preconditionFailure("gemm case without M, N, K") }
        let key = Self.key(spec)
        if state.seconds[key] == nil { try measureTogether(threads: spec.threads) }
        guard let seconds = state.seconds.removeValue(forKey: key) else { preconditionFailure("gemm case \(key) not measured") }
        for _ in 0..<(warmup + repetitions) {
            try checkInterrupt()
            try step()
        }
        let flops = Matmul.flops(M: params.m, N: params.n, K: params.k)
        let weightBytes = Double(params.n * params.k * MemoryLayout<Float>.size)
        var samples: [MeasuredCase.Sample] = []
        for (rep, s) in seconds.enumerated() {
            samples.append(.init(metric: "seconds", unit: "s", repetition: rep, value: s))
            samples.append(.init(metric: "gflops", unit: "GFLOP/s", repetition: rep, value: flops / s / 1e9))
            // Bytes the weight matrix streams per call: what bounds the decode shapes.
            samples.append(.init(metric: "weight_gbps", unit: "GB/s", repetition: rep, value: weightBytes / s / 1e9))
        }
        return MeasuredCase(kind: spec.kind, name: spec.name, threads: spec.threads, params: spec.params, samples: samples)
    }

    static func key(_ spec: CaseSpec) -> String {
        "\(spec.name)|\(spec.threads)|" + spec.params.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    /// Times every case at `threads` in interleaved rounds, after `settleSeconds` of untimed calls.
    func measureTogether(threads: Int) throws {
        struct Item { var key: String; var m: Int; var n: Int; var k: Int; var weight: Int; var inp: FloatBuffer; var out: FloatBuffer }
        BLASThreads.set(threads)
        var weights: [FloatBuffer] = [], weightIndex: [String: Int] = [:]
        var items: [Item] = []
        for spec in cases() where spec.threads == threads {
            guard let p = GemmParams(params: spec.params) else { preconditionFailure("gemm case without M, N, K") }
            let wk = "\(p.n)x\(p.k)"
            if weightIndex[wk] == nil {
                let w = FloatBuffer(count: p.n * p.k)
                w.fillUniform(seed: 12, scale: 0.02)
                weightIndex[wk] = weights.count
                weights.append(w)
            }
            let inp = FloatBuffer(count: p.m * p.k)
            inp.fillUniform(seed: 11)
            items.append(Item(key: Self.key(spec), m: p.m, n: p.n, k: p.k, weight: weightIndex[wk]!, inp: inp, out: FloatBuffer(count: p.m * p.n)))
        }
        guard let first = items.first else { return }
        func call(_ it: Item) {
            Matmul.forward(out: it.out.pointer, inp: it.inp.pointer, weight: weights[it.weight].pointer, M: it.m, N: it.n, K: it.k)
        }
        let settleStart = DispatchTime.now().uptimeNanoseconds
        repeat {
            try checkInterrupt()
            call(first)
        } while Double(DispatchTime.now().uptimeNanoseconds - settleStart) / 1e9 < Self.settleSeconds
        var seconds = [[Double]](repeating: [], count: items.count)
        for rep in -warmup..<repetitions {
            try checkInterrupt()
            for (i, it) in items.enumerated() {
                let start = DispatchTime.now().uptimeNanoseconds
                call(it)
                let s = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                if rep >= 0 { seconds[i].append(s) }
            }
        }
        for (i, it) in items.enumerated() {
            guard it.out[0].isFinite else { throw GemmError.nonFinite(it.key) }
            state.seconds[it.key] = seconds[i]
        }
    }
}

enum GemmError: Error, CustomStringConvertible {
    case nonFinite(String)
    var description: String {
        switch self { case .nonFinite(let n): return "gemm \(n) produced a non-finite result" }
    }
}
