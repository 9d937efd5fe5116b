// The scenario's `plan:` section: which model, what demand and SLO, which hardware and precisions to
// consider, and optionally a fine-tuning and a training plan. Validated strictly like the rest.
import Foundation

public struct PlanSettings: Sendable {
    public var model: ModelShape
    public var demand: Demand
    public var slo: SLO
    /// Hardware ids from the catalog (`local` is resolved from the probe when the plan runs).
    public var hardware: [String]
    public var precisions: [Precision]
    public var tensorParallel: [Int]
    public var minReplicas: Int
    /// nil: the price sheet's own default.
    public var pricing: PricingMode?
    public var chunkTokens: Int
    public var finetune: FineTuneSettings?
    public var training: TrainingSettings?

    public static let keys = ["model", "demand", "slo", "hardware", "precisions", "tensor_parallel", "min_replicas", "pricing",
                              "prefill_chunk_tokens", "finetune", "training"]

    public static func read(_ field: YAMLField, catalog: Catalog) throws -> PlanSettings {
        let m = try field.mapping(allowed: keys)
        let modelField = try m.required("model")
        let model = try catalog.model(modelField.string(), field: modelField)

        let d = try m.required("demand").mapping(allowed: ["users", "requests_per_user_per_day", "peak_to_mean", "hourly_profile",
                                                            "prompt_tokens", "output_tokens"])
        // Every bound is in PlanLimits, with why it is safe.
        var demand = Demand(users: try d.required("users").int(min: 1, max: PlanLimits.users),
                            requestsPerUserPerDay: try d.required("requests_per_user_per_day")
                                .double(min: 0, exclusiveMin: true, max: PlanLimits.requestsPerUserPerDay),
                            peakToMean: try d.optional("peak_to_mean")?.double(min: 1, max: PlanLimits.peakToMean) ?? 1,
                            promptTokens: try d.required("prompt_tokens").int(min: 1, max: PlanLimits.tokensPerRequest),
                            outputTokens: try d.required("output_tokens").int(min: 1, max: PlanLimits.tokensPerRequest))
        if let f = d.optional("hourly_profile") {
            let profile = try f.list { try $0.double(min: 0, max: PlanLimits.hourlyWeight) }
            if profile.count != 24 { throw f.fail("a list of 24 non-negative numbers (one per hour)") }
            if profile.reduce(0, +) <= 0 { throw f.fail("at least one hour with a positive weight") }
            if d.has("peak_to_mean") { throw f.error("give either hourly_profile or peak_to_mean, not both") }
            demand.hourlyProfile = profile
        }
        if demand.promptTokens + demand.outputTokens > model.context {
            throw try d.required("output_tokens").fail("prompt_tokens + output_tokens within \(model.id)'s context of \(model.context) tokens")
        }

        let s = try m.required("slo").mapping(allowed: ["ttft_p95_ms", "tpot_p95_ms"])
        let slo = SLO(ttftP95: try s.required("ttft_p95_ms").double(min: 0, exclusiveMin: true, max: PlanLimits.sloMs) / 1000,
                      tpotP95: try s.required("tpot_p95_ms").double(min: 0, exclusiveMin: true, max: PlanLimits.sloMs) / 1000)

        let hwField = try m.required("hardware")
        if catalog.hardware.isEmpty {
            throw hwField.error("the catalog in \(catalog.directory) has no hardware.yaml")
        }
        let hardware = try hwField.list { f -> String in
            let id = try f.string()
            _ = try catalog.hardware(id, field: f)
            return id
        }
        if Set(hardware).count != hardware.count { throw hwField.error("lists a hardware id twice") }
        let precField = try m.required("precisions")
        let precisions = try precField.list { f -> Precision in
            let p: Precision
            switch PrecisionNames.plannerPrecision(try f.string()) {
            case .success(let found): p = found
            case .failure(let refusal): throw f.fail(refusal.expected)
            }
            return p
        }
        if Set(precisions).count != precisions.count { throw precField.error("lists a precision twice") }
        let tp = try m.optional("tensor_parallel")?.list { try $0.oneOf(["1", "2", "4", "8"]) }.map { Int($0)! } ?? [1, 2, 4, 8]
        let pricing = try m.optional("pricing").map { PricingMode(rawValue: try $0.oneOf(PricingMode.allCases.map(\.rawValue)))! }

        var finetune: FineTuneSettings?
        if let f = m.optional("finetune") {
            let ft = try f.mapping(allowed: ["method", "rank", "documents", "tokens_per_document", "epochs", "seq_len", "micro_batch",
                                             "checkpointing", "deadline_hours"])
            let method = MemoryModel.Method(rawValue: try ft.required("method").oneOf(MemoryModel.Method.allCases.map(\.rawValue)))!
            let tpd = try ft.required("tokens_per_document").int(min: 1, max: PlanLimits.tokensPerRequest)
            finetune = FineTuneSettings(method: method, rank: try ft.optional("rank")?.int(min: 1, max: 1024) ?? 8,
                                        documents: try ft.required("documents").int(min: 1, max: PlanLimits.documents),
                                        tokensPerDocument: tpd,
                                        epochs: try ft.required("epochs").double(min: 0, exclusiveMin: true, max: PlanLimits.epochs),
                                        seqLen: try ft.optional("seq_len")?.int(min: 1, max: model.context) ?? min(tpd, model.context),
                                        microBatch: try ft.optional("micro_batch")?.int(min: 1, max: 1024) ?? 1,
                                        checkpointing: try ft.optional("checkpointing")?.bool() ?? true,
                                        deadlineHours: try ft.optional("deadline_hours")?.double(min: PlanLimits.deadlineHoursMin,
                                                                                                  max: PlanLimits.deadlineHours))
        }
        var training: TrainingSettings?
        if let f = m.optional("training") {
            let t = try f.mapping(allowed: ["tokens", "days", "seq_len", "micro_batch"])
            training = TrainingSettings(tokens: try t.required("tokens").double(min: 0, exclusiveMin: true, max: PlanLimits.trainingTokens),
                                        days: try t.required("days").double(min: PlanLimits.trainingDaysMin, max: PlanLimits.trainingDays),
                                        seqLen: try t.optional("seq_len")?.int(min: 1, max: model.context) ?? min(4096, model.context),
                                        microBatch: try t.optional("micro_batch")?.int(min: 1, max: 1024) ?? 1)
        }
        return PlanSettings(model: model, demand: demand, slo: slo, hardware: hardware, precisions: precisions, tensorParallel: tp,
                            minReplicas: try m.optional("min_replicas")?.int(min: 0, max: 10_000) ?? 1, pricing: pricing,
                            chunkTokens: try m.optional("prefill_chunk_tokens")?.int(min: 16, max: 1_048_576) ?? 2048,
                            finetune: finetune, training: training)
    }

    /// The plan's input: `local` becomes the probe-built profile when one is given, and is left out (with
    /// the reason returned) when this machine has not been probed.
    public func input(catalog: Catalog, prices: PriceSheet?, local: HardwareProfile?,
                      calibration: CalibrationResult?) throws -> (PlanInput, skipped: [String: String]) {
        var hw: [HardwareProfile] = []
        var skipped: [String: String] = [:]
        for id in hardware {
            let h = try catalog.hardware(id)
            if h.kind == .local {
                if let local { hw.append(local) } else { skipped[id] = "no probe figures for this machine: run `headroom run` or `headroom probe` first" }
            } else {
                hw.append(h)
            }
        }
        let input = PlanInput(model: model, demand: demand, slo: slo, hardware: hw, precisions: precisions, tensorParallel: tensorParallel,
                              minReplicas: minReplicas, pricing: pricing ?? prices?.pricing ?? .onDemand, prices: prices,
                              chunkTokens: chunkTokens, finetune: finetune, training: training, calibration: calibration)
        return (input, skipped)
    }
}
