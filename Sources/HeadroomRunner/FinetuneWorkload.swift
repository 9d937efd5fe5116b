// The fine-tuning measurements of a scenario (`measure.finetune`): one case per method, checkpointing
// setting and thread count, each a real training run whose every step time and loss is stored.
import HeadroomCore
import HeadroomEngine

public struct FinetuneWorkload: SingleCaseWorkload {
    public var model: ModelShape
    public var settings: FinetuneSettings
    public var threads: [Int]
    /// A GGUF file whose tensors are the frozen base (kept as stored for LoRA, dequantized to f32 for full).
    public var modelFile: ModelFile?

    public init(model: ModelShape, settings: FinetuneSettings, threads: [Int], modelFile: ModelFile? = nil) {
        self.model = model; self.settings = settings; self.threads = threads; self.modelFile = modelFile
    }

    /// The workload of a scenario, nil when it has no `measure.finetune`.
    public init?(_ m: MeasureSettings) {
        guard let f = m.finetune else { return nil }
        self.init(model: m.model, settings: f, threads: m.threads, modelFile: m.modelFile)
    }

    public func cases() -> [CaseSpec] {
        var specs: [CaseSpec] = []
        for t in threads {
            // Full fine-tuning trains every weight in f32, so it is measured only at f32 (a model file's tensors dequantized).
            let combos = settings.methods.flatMap { m in
                (m == "full" && modelFile != nil ? ["f32"] : settings.precisions.filter { m == "lora" || $0 == "f32" })
                    .flatMap { p in settings.checkpointing.map { (m, p, $0) } }
            }
            for (method, precision, ckpt) in combos {
                var params = ["model": model.id, "method": method, "precision": precision,
                              "seq_len": String(settings.seqLen), "batch": String(settings.batch),
                              "checkpointing": String(ckpt), "steps": String(settings.steps), "warmup": String(settings.warmup)]
                if let f = modelFile {
                    params["model_file"] = f.path
                    params["model_file_bytes"] = String(f.bytes)
                }
                if method == "lora" {
                    params["rank"] = String(settings.rank)
                    params["alpha"] = String(settings.alpha)
                    params["dropout"] = String(settings.dropout)
                    params["targets"] = settings.targets.joined(separator: ",")
                }
                let name = method + (precision == "f32" ? "" : "-\(precision)") + (ckpt ? "+ckpt" : "")
                specs.append(CaseSpec(kind: .finetune, name: name, threads: t, params: params,
                                      steps: settings.warmup + settings.steps))
            }
        }
        return specs
    }

    public func measure(_ spec: CaseSpec, step: () throws -> Void) throws -> MeasuredCase {
        var c = FinetuneCase(model: model, settings: settings, method: spec.params["method"] ?? "lora",
                             precision: spec.params["precision"] ?? "f32", checkpointing: spec.params["checkpointing"] == "true", threads: spec.threads)
        c.modelFile = modelFile?.path
        let r = try FinetuneBench.run(c, step: step)
        return MeasuredCase(kind: spec.kind, name: spec.name, threads: spec.threads, params: spec.params, samples: r.samples)
    }
}

extension FinetuneResult {
    /// Raw samples as the store keeps them: per timed step its seconds and tokens/s, per step (warm-up
    /// included) its loss, and the case's memory figures once (repetition 0).
    public var samples: [MeasuredCase.Sample] {
        var out: [MeasuredCase.Sample] = []
        for (i, s) in stepSeconds.enumerated() {
            out.append(.init(metric: "step_seconds", unit: "s", repetition: i, value: s))
            out.append(.init(metric: "tokens_per_s", unit: "tokens/s", repetition: i, value: Double(tokensPerStep) / s))
            out.append(.init(metric: "gflops", unit: "GFLOP/s", repetition: i, value: flopsPerToken * Double(tokensPerStep) / s / 1e9))
        }
        for (i, l) in losses.enumerated() { out.append(.init(metric: "loss", unit: "nats", repetition: i, value: l)) }
        let once: [(String, String, Double)] = [
            ("weights_bytes", "B", Double(memory.weightsBytes)), ("adapter_bytes", "B", Double(memory.adapterBytes)),
            ("gradient_bytes", "B", Double(memory.gradientBytes)), ("optimizer_bytes", "B", Double(memory.optimizerBytes)),
            ("activation_bytes", "B", Double(memory.activationBytes)), ("peak_rss_bytes", "B", Double(peakRSSBytes)),
            ("rss_above_baseline_bytes", "B", Double(measuredBytes)), ("trainable_params", "count", Double(trainableParams)),
            ("total_params", "count", Double(totalParams)), ("flops_per_token", "FLOP", flopsPerToken),
        ]
        for (m, u, v) in once { out.append(.init(metric: m, unit: u, repetition: 0, value: v)) }
        return out
    }
}
