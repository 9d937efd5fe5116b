// The inference measurements of a scenario inside `headroom run`: for each precision, thread count,
// prompt length and batch size, one case whose raw samples are the repetitions' decode and prefill
// tokens/s, TTFT and TPOT, with the memory figures beside them.
import HeadroomCore
import HeadroomEngine
import HeadroomKernels

public struct InferenceWorkload: SingleCaseWorkload {
    public var settings: MeasureSettings

    /// Weights are built once per precision and reused by that precision's cases.
    final class Cache {
        var precision: QuantType?
        var weights: ModelWeights?
    }
    private let cache = Cache()

    public init(_ settings: MeasureSettings) { self.settings = settings }

    public func cases() -> [CaseSpec] {
        var specs: [CaseSpec] = []
        for p in settings.precisions {
            for t in settings.threads {
                for prompt in settings.promptTokens {
                    for b in settings.batch {
                        // The model file too (path and size), so runs of different files never match.
                        let params = InferenceParams(model: settings.model.id, precision: p, promptTokens: prompt, batch: b,
                                                     generateTokens: settings.generateTokens, modelFile: settings.modelFile?.path,
                                                     modelFileBytes: settings.modelFile?.bytes)
                        specs.append(CaseSpec(kind: .inference, name: "\(settings.model.id)-\(p)", threads: t, params: params.params,
                                              steps: settings.warmup + settings.repetitions))
                    }
                }
            }
        }
        return specs
    }

    func spec(_ c: CaseSpec) -> InferenceSpec {
        guard let params = InferenceParams(params: c.params), let p = QuantType(name: params.precision) else {
            preconditionFailure("inference case without precision, prompt_tokens, batch")
        }
        var spec = InferenceSpec(model: settings.model, precision: p, threads: c.threads, promptTokens: params.promptTokens,
                                 generateTokens: settings.generateTokens, batch: params.batch, repetitions: settings.repetitions, warmup: settings.warmup)
        spec.modelFile = settings.modelFile?.path  // its weights, mapped, instead of synthetic ones
        return spec
    }

    public func measure(_ c: CaseSpec, step: () throws -> Void) throws -> MeasuredCase {
        let s = spec(c)
        if cache.precision != s.precision {
            cache.weights = nil   // free the previous precision's weights before building the next
            cache.weights = try InferenceBench.weights(s)
            cache.precision = s.precision
        }
        MemoryStats.resetPeak()
        let m = try InferenceBench.measure(s, weights: cache.weights!) { try checkInterrupt(); try step() }
        var samples: [MeasuredCase.Sample] = []
        func add(_ metric: String, _ unit: String, _ values: [Double]) {
            for (i, v) in values.enumerated() { samples.append(.init(metric: metric, unit: unit, repetition: i, value: v)) }
        }
        add("prefill_tokens_per_s", "tokens/s", m.prefillTokensPerS)
        add("decode_tokens_per_s", "tokens/s", m.decodeTokensPerS)
        add("ttft_ms", "ms", m.ttftMs)
        add("tpot_ms", "ms", m.tpotMs)
        add("peak_rss_bytes", "bytes", [Double(m.peakRSSBytes)])
        let facts = InferenceFacts(weightsBytes: m.weightsBytes, kvCacheBytes: m.kvCacheBytes, decodeBytesPerStep: Int(s.decodeBytesPerStep),
                                   prefillFlopsPerToken: Int(s.prefillFlopsPerToken), isa: QMatmul.isa)
        return MeasuredCase(kind: c.kind, name: c.name, threads: c.threads, params: c.params, facts: facts.facts, samples: samples)
    }
}
