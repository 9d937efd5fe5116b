// The planner: for a model, a demand and an SLO, evaluates every hardware × precision × tensor-parallel
// candidate (memory, latency against load, capacity, replicas, cost), ranks those that meet the SLO,
// and finds the Pareto set of cost against latency. It never runs a kernel: it reads the catalog and a
// calibration, and everything it returns is predicted.
import Foundation
import HeadroomScheduling

/// Service-level objective: p95 time to first token and p95 time per output token, seconds.
public struct SLO: Codable, Equatable, Sendable {
    public var ttftP95: Double
    public var tpotP95: Double
    public init(ttftP95: Double, tpotP95: Double) { self.ttftP95 = ttftP95; self.tpotP95 = tpotP95 }
}

public struct FineTuneSettings: Codable, Equatable, Sendable {
    public var method: MemoryModel.Method
    public var rank: Int
    public var documents: Int
    public var tokensPerDocument: Int
    public var epochs: Double
    public var seqLen: Int
    public var microBatch: Int
    public var checkpointing: Bool
    /// Wall-clock hours the fine-tuning may take (nil: no deadline); the recommendation is the cheapest
    /// plan of the requested method that finishes within them.
    public var deadlineHours: Double?
    public init(method: MemoryModel.Method, rank: Int = 8, documents: Int, tokensPerDocument: Int, epochs: Double,
                seqLen: Int = 2048, microBatch: Int = 1, checkpointing: Bool = true, deadlineHours: Double? = nil) {
        self.method = method; self.rank = rank; self.documents = documents; self.tokensPerDocument = tokensPerDocument
        self.epochs = epochs; self.seqLen = seqLen; self.microBatch = microBatch; self.checkpointing = checkpointing
        self.deadlineHours = deadlineHours
    }
    public var tokens: Double { Double(documents) * Double(tokensPerDocument) * epochs }
}

public struct TrainingSettings: Codable, Equatable, Sendable {
    /// Tokens to train on (D in 6·N·D).
    public var tokens: Double
    /// Wall-clock days the run may take.
    public var days: Double
    /// Tokens in one sequence (default 4096) and sequences per device per step (default 1): with the
    /// devices, how many steps the run takes, each paying its communication.
    public var seqLen: Int
    public var microBatch: Int
    public init(tokens: Double, days: Double, seqLen: Int = 4096, microBatch: Int = 1) {
        self.tokens = tokens; self.days = days; self.seqLen = seqLen; self.microBatch = microBatch
    }
}

/// Everything a plan needs.
public struct PlanInput: Sendable {
    public var model: ModelShape
    public var demand: Demand
    public var slo: SLO
    public var hardware: [HardwareProfile]
    public var precisions: [Precision]
    public var tensorParallel: [Int]
    public var minReplicas: Int
    public var pricing: PricingMode
    public var prices: PriceSheet?
    /// Prefill chunk (tokens) the workspace is sized for.
    public var chunkTokens: Int
    public var finetune: FineTuneSettings?
    public var training: TrainingSettings?
    /// The calibration the local profile used (nil when there was no run to fit).
    public var calibration: CalibrationResult?

    public init(model: ModelShape, demand: Demand, slo: SLO, hardware: [HardwareProfile], precisions: [Precision],
                tensorParallel: [Int] = [1, 2, 4, 8], minReplicas: Int = 1, pricing: PricingMode = .onDemand,
                prices: PriceSheet?, chunkTokens: Int = 2048, finetune: FineTuneSettings? = nil,
                training: TrainingSettings? = nil, calibration: CalibrationResult? = nil) {
        self.model = model; self.demand = demand; self.slo = slo; self.hardware = hardware; self.precisions = precisions
        self.tensorParallel = tensorParallel; self.minReplicas = minReplicas; self.pricing = pricing; self.prices = prices
        self.chunkTokens = chunkTokens; self.finetune = finetune; self.training = training; self.calibration = calibration
    }
}

/// One configuration's prediction.
public struct Candidate: Codable, Equatable, Sendable {
    public var hardware: String
    public var hardwareName: String
    public var precision: String
    public var tensorParallel: Int
    /// Replicas deployed: those the peak needs, raised to fill every instance billed (an instance of N
    /// devices runs N/tp replicas).
    public var replicas: Int
    /// Replicas the peak needs (nil when they were not counted).
    public var replicasForPeak: Int?
    public var fits: Bool
    public var whyNot: String?
    public var maxBatch: Int
    public var predictedTtftP95Ms: Double?
    public var predictedTpotP95Ms: Double?
    /// 95 % intervals of those p95s, ms, where the serving model gives them (the simulator's replications).
    public var predictedTtftP95IntervalMs: Estimate?
    public var predictedTpotP95IntervalMs: Estimate?
    /// Latency alone: one request, empty server.
    public var predictedTtftUnloadedMs: Double?
    public var predictedTpotBatch1Ms: Double?
    public var capacityRpsPerReplica: Double
    public var monthlyCostUsd: MonthlyCost?
    public var usdPerMillionOutputTokens: Double?
    public var cost: CostEstimate?
    public var memory: MemoryModel.Serving
    public var calibration: String
    public var meetsSlo: Bool
    public var pareto: Bool = false
    /// The serving model whose figures these are (the simulator refines only the leading candidates; the
    /// others keep the queueing approximation's, and say so).
    public var servingModel: String?

    public struct MonthlyCost: Codable, Equatable, Sendable {
        public var alwaysOn: Double
        public var autoscaled: Double
    }

    public var id: String { "\(hardware)/\(precision)/tp\(tensorParallel)" }
    public var devices: Int { replicas * tensorParallel }
}

public struct FineTunePlanRow: Codable, Equatable, Sendable {
    public var hardware: String
    public var method: String
    public var flops: Double
    /// Devices the job runs on (data parallel, ZeRO-3 when the model does not fit on one).
    public var devices: Int?
    public var zeroStage: Int
    public var memoryPerDevice: MemoryModel.Training?
    public var hours: Double?
    public var usd: Double?
    public var provider: String?
    public var whyNot: String?
    /// Devices paid for: the instances rented (equal to `devices` unless `note` says why not).
    public var billedDevices: Int?
    /// Optimizer steps of `devices` × micro-batch sequences.
    public var steps: Int?
    /// Of `hours`, the time spent communicating (gradient all-reduce, ZeRO-3 gathers).
    public var communicationHours: Double?
    /// The link the devices communicate over.
    public var link: String?
    /// Why this plan does not apply to the hardware at all (then no figures).
    public var notApplicable: String?
    /// Whether it finishes by the scenario's `deadline_hours` (nil: no deadline).
    public var meetsDeadline: Bool?
    /// Why fewer devices are used than billed.
    public var note: String?

    public init(hardware: String, method: String, flops: Double, devices: Int? = nil, zeroStage: Int = 0) {
        self.hardware = hardware; self.method = method; self.flops = flops; self.devices = devices; self.zeroStage = zeroStage
    }
}

public struct TrainingPlanRow: Codable, Equatable, Sendable {
    public var hardware: String
    public var flops: Double
    /// Devices the run uses to finish in the requested days (nil, with `whyNot` or `notApplicable`, when none can).
    public var devices: Int?
    public var days: Double?
    public var usd: Double?
    public var provider: String?
    public var whyNot: String?
    /// Devices paid for (whole instances; equal to `devices` unless `note` says why not).
    public var billedDevices: Int?
    public var zeroStage: Int?
    /// Of `days`, the time spent communicating.
    public var communicationDays: Double?
    public var link: String?
    /// Why pre-training does not apply to this hardware at all (then no figures).
    public var notApplicable: String?
    public var note: String?

    public init(hardware: String, flops: Double, devices: Int?, days: Double?, usd: Double? = nil, provider: String? = nil,
                whyNot: String? = nil) {
        self.hardware = hardware; self.flops = flops; self.devices = devices; self.days = days; self.usd = usd
        self.provider = provider; self.whyNot = whyNot
    }
}

/// The fine-tuning plan to run: the cheapest of the requested method that finishes by the deadline.
public struct FineTuneRecommendation: Codable, Equatable, Sendable {
    public var row: FineTunePlanRow
    public var reason: String
}

public struct Recommendation: Codable, Equatable, Sendable {
    public var candidate: Candidate
    public var reason: String
}

/// Cost of the cheapest configuration per hardware at a range of user counts (for the report).
public struct CostCurve: Codable, Equatable, Sendable {
    public var hardware: String
    public var points: [Point]
    public struct Point: Codable, Equatable, Sendable {
        public var users: Int
        public var monthlyUsd: Double
        public var configuration: String
    }
}

/// Predicted decode step and prefill time against batch size for one configuration.
public struct BatchCurve: Codable, Equatable, Sendable {
    public var configuration: String
    public var points: [Point]
    public struct Point: Codable, Equatable, Sendable {
        public var batch: Int
        public var decodeStepMs: Double
        public var decodeTokensPerSecond: Double
        /// Prefill of `batch` prompts together.
        public var prefillMs: Double
    }
}

/// Predicted latency against load for one configuration (for the report).
public struct LatencyCurve: Codable, Equatable, Sendable {
    public var configuration: String
    public var points: [LoadPoint]
}

public struct PlanResult: Codable, Equatable, Sendable {
    public var kind = "predicted"
    public var model: String
    public var modelName: String
    public var parameters: Double
    public var demand: Demand
    public var peakRequestsPerSecond: Double
    public var outputTokensPerMonth: Double
    public var slo: SLO
    public var servingModel: String
    public var pricing: String
    public var priceSheet: String?
    public var calibration: CalibrationResult?
    public var candidates: [Candidate]
    public var recommendation: Recommendation?
    public var finetune: [FineTunePlanRow]
    /// The cheapest fine-tuning plan of the requested method that finishes by the deadline (nil: none).
    public var finetuneRecommendation: FineTuneRecommendation?
    public var training: [TrainingPlanRow]
    public var costCurves: [CostCurve]
    public var latencyCurves: [LatencyCurve]
    public var batchCurves: [BatchCurve] = []
    public var local: HardwareProfile?
    /// Hardware the plan asked for but could not consider, and why (e.g. `local` before any probe).
    public var skipped: [String: String] = [:]
    /// The catalog files the plan read, in the order they were applied (built-in first, then overrides).
    public var catalogFiles: [String] = []
    /// Catalog hardware whose efficiencies `plan`/`whatif` fitted to an endpoint's load run (nil: none).
    public var endpointCalibrations: [EndpointCalibration]?
    /// Why hardware that an endpoint's load run names kept its catalog efficiencies (nil: none).
    public var calibrationNotes: [String]?
    /// The local profile's per-regime execution-time model and its leave-one-out checks (nil: no run to fit).
    public var regimeCalibration: RegimeCalibration?
    /// Catalog GPUs whose efficiencies were fitted to published measurements (published.yaml; nil: none);
    /// an endpoint calibration of the same GPU takes precedence over its published fit.
    public var publishedCalibrations: [PublishedFit]?

    /// Candidates meeting the SLO with a price, cheapest first.
    public var ranked: [Candidate] {
        candidates.filter { $0.meetsSlo && $0.monthlyCostUsd != nil }
            .sorted(by: Planner.ranksBefore)
    }
}

public struct Planner: Sendable {
    public var servingModel: any ServingModel

    public init(servingModel: any ServingModel = Planner.defaultServingModel) { self.servingModel = servingModel }

    /// The serving model a plan uses unless told otherwise.
    public static var defaultServingModel: any ServingModel { try! SimulatorServingModel(requests: 300, replications: 3, capacityProbes: 6) }

    /// The stated order of candidates: autoscaled monthly cost, then p95 TTFT, then p95 TPOT at the
    /// planned load, then the configuration's id (hardware/precision/tp) so equal figures keep one order.
    static func rankKey(_ c: Candidate) -> (Double, Double, Double, String) {
        (c.monthlyCostUsd?.autoscaled ?? .infinity, c.predictedTtftP95Ms ?? .infinity, c.predictedTpotP95Ms ?? .infinity, c.id)
    }

    /// Whether `a` ranks before `b` (`rankKey`).
    public static func ranksBefore(_ a: Candidate, _ b: Candidate) -> Bool { rankKey(a) < rankKey(b) }

    /// The replica of one configuration: its memory (KV-limited batch, KV blocks) and its step times, with
    /// the scheduler a server runs on it (vLLM's defaults on catalog hardware; `headroom serve`'s on `local`).
    /// With `stages` > 1, a pipelined replica (the simulator's): each stage's devices hold 1/stages of the layers, so
    /// the KV pool has about `stages` times the blocks; the step time is the whole model's (the simulator splits it).
    public func replica(_ input: PlanInput, _ h: HardwareProfile, _ p: Precision, tp: Int, stages: Int = 1) -> (MemoryModel.Serving, ReplicaSpec) {
        let m = input.model, d = input.demand
        let context = d.promptTokens + d.outputTokens
        let mem = MemoryModel.serving(m, p, deviceBytes: h.memoryBytes, tp: tp, stages: stages, contextTokens: context,
                                      chunkTokens: input.chunkTokens, kvElementBytes: h.kvElementBytes(p))
        let predictor: any ExecutionTimePredictor = RegimeExecutionTime(model: m, precision: p, tensorParallel: tp, hardware: h)
            ?? RooflineExecutionTime(model: m, precision: p, tensorParallel: tp, hardware: h)
        let scheduler = Self.schedulerConfig(input, h, mem, kvBytesPerToken: MemoryModel.kvBytesPerTokenPerDevice(m, p, tp: tp, stages: stages,
                                                                                                                 element: h.kvElementBytes(p)))
        return (mem, ReplicaSpec(predictor: predictor, scheduler: scheduler, maxBatch: mem.maxBatch))
    }

    /// The scheduler of a replica: `headroom serve`'s defaults on `local` (32 sequences, 512 tokens a step),
    /// vLLM's elsewhere (256 sequences, the plan's chunk); KV blocks of 16 positions from the memory model's
    /// KV budget. Chunked prefill on, as both default.
    static func schedulerConfig(_ input: PlanInput, _ h: HardwareProfile, _ mem: MemoryModel.Serving,
                                kvBytesPerToken: Double) -> SchedulerConfig {
        let seqs = h.kind == .local ? 32 : MemoryModel.maxBatchCap
        let tokens = max(seqs, h.kind == .local ? 512 : input.chunkTokens)
        let blockSize = EngineBytes.kvBlockSize
        let blocks = kvBytesPerToken > 0 ? mem.kvBudgetBytes / (kvBytesPerToken * Double(blockSize)) : 0
        let total = Int(saturating: blocks, rounding: .down, into: 1...Int(Int32.max))
        return SchedulerConfig(maxNumSeqs: seqs, maxBatchedTokens: tokens, chunkedPrefill: true, blockSize: blockSize,
                               totalBlocks: total)
    }

    /// Evaluates one candidate for `input.demand`.
    public func evaluate(_ input: PlanInput, _ h: HardwareProfile, _ p: Precision, tp: Int) -> Candidate {
        evaluate(input, h, p, tp: tp, with: servingModel)
    }

    /// Evaluates one candidate with `model` (the plan's serving model, or the approximation that brackets it).
    func evaluate(_ input: PlanInput, _ h: HardwareProfile, _ p: Precision, tp: Int, with servingModel: any ServingModel) -> Candidate {
        let (mem, spec) = replica(input, h, p, tp: tp)
        let work = ServingWorkload(promptTokens: input.demand.promptTokens, outputTokens: input.demand.outputTokens)
        var c = Candidate(hardware: h.id, hardwareName: h.name, precision: p.rawValue, tensorParallel: tp, replicas: 0, fits: false,
                          whyNot: nil, maxBatch: mem.maxBatch, capacityRpsPerReplica: 0, memory: mem, calibration: h.calibration(p),
                          meetsSlo: false)
        c.servingModel = servingModel.name
        if let why = h.unsupported(p) { c.whyNot = why; return c }
        if tp > h.devicesPerNode { c.whyNot = "tp=\(tp) exceeds the \(h.devicesPerNode) devices of one \(h.name) node"; return c }
        if input.model.heads % tp != 0 { c.whyNot = "\(input.model.heads) attention heads do not divide by tp=\(tp)"; return c }
        if let why = mem.whyNot { c.whyNot = why; return c }
        c.fits = true
        let served = servingModel.served(spec, work)
        let alone = served.load(requestsPerSecond: 1e-9)
        c.predictedTtftUnloadedMs = alone.map { $0.ttftP95Seconds * 1000 }
        c.predictedTpotBatch1Ms = spec.decodeStepSeconds(batch: 1, context: work.promptTokens + work.outputTokens / 2) * 1000
        let cap = served.capacity(slo: input.slo)
        c.capacityRpsPerReplica = cap
        guard cap > 0 else {
            c.fits = false
            c.whyNot = String(format: "misses the SLO even unloaded: TTFT %.0f ms (SLO %.0f), TPOT %.1f ms (SLO %.0f)",
                              (alone?.ttftP95Seconds ?? .infinity) * 1000, input.slo.ttftP95 * 1000,
                              (alone?.tpotP95Seconds ?? .infinity) * 1000, input.slo.tpotP95 * 1000)
            return c
        }
        let peak = input.demand.peakRequestsPerSecond
        let forPeak = peak / cap * (1 - 1e-9)
        guard let replicas = Int(checking: forPeak, rounding: .up, within: 0...PlanLimits.replicas) else {
            c.fits = false
            c.whyNot = String(format: "needs %.3g replicas for the peak of %.3g req/s at %.3g req/s each, more than the %@ the planner sizes",
                              forPeak, peak, cap, String(PlanLimits.replicas))
            return c
        }
        let needed = max(input.minReplicas, replicas)
        c.replicasForPeak = needed
        c.replicas = needed
        if h.kind == .local && needed > 1 {
            c.fits = false
            c.whyNot = "not applicable: `local` is this one machine; the peak of \(HumanNumber.count(peak)) req/s needs \(HumanNumber.count(Double(needed))) replicas at \(HumanNumber.count(cap)) req/s each"
            return c
        }
        c.meetsSlo = true
        if let sheet = input.prices,
           let cost = CostModel.estimate(demand: input.demand, capacityRPS: cap, replicas: needed, minReplicas: input.minReplicas,
                                         devicesPerReplica: tp, hardware: h, sheet: sheet, mode: input.pricing) {
            c.cost = cost
            c.monthlyCostUsd = .init(alwaysOn: cost.alwaysOnUSD, autoscaled: cost.autoscaledUSD)
            c.usdPerMillionOutputTokens = cost.usdPerMillionOutputTokens
            // Devices billed are devices used: the instances the peak pays for run as many replicas as they hold.
            let perInstance = max(1, cost.instanceDevices / tp)
            c.replicas = (needed + perInstance - 1) / perInstance * perInstance
        }
        if let at = served.load(requestsPerSecond: peak / Double(c.replicas)) {
            c.predictedTtftP95Ms = at.ttftP95Seconds * 1000
            c.predictedTpotP95Ms = at.tpotP95Seconds * 1000
            func ms(_ e: Estimate?) -> Estimate? { e.map { Estimate($0.value * 1000, low: $0.low.map { $0 * 1000 }, high: $0.high.map { $0 * 1000 }) } }
            c.predictedTtftP95IntervalMs = ms(at.ttftP95Interval)
            c.predictedTpotP95IntervalMs = ms(at.tpotP95Interval)
        }
        return c
    }

    /// The whole plan.
    public func plan(_ input: PlanInput, curves: Bool = true) -> PlanResult {
        // Every configuration is independent: evaluated across the cores, kept in the order of the loops.
        var configurations: [(HardwareProfile, Precision, Int)] = []
        for h in input.hardware {
            for p in input.precisions {
                for tp in input.tensorParallel.sorted() { configurations.append((h, p, tp)) }
            }
        }
        var candidates = rankedEvaluation(input, configurations)
        // Pareto set of (autoscaled monthly cost, p95 TPOT at the planned load) among priced candidates that meet the SLO.
        let priced = candidates.indices.filter { candidates[$0].meetsSlo && candidates[$0].monthlyCostUsd != nil }
        for i in priced {
            let a = candidates[i]
            let dominated = priced.contains { j in
                let b = candidates[j]
                let (ca, cb) = (a.monthlyCostUsd!.autoscaled, b.monthlyCostUsd!.autoscaled)
                let (la, lb) = (a.predictedTpotP95Ms ?? .infinity, b.predictedTpotP95Ms ?? .infinity)
                return j != i && cb <= ca && lb <= la && (cb < ca || lb < la)
            }
            candidates[i].pareto = !dominated
        }
        var result = PlanResult(model: input.model.id, modelName: input.model.name, parameters: input.model.parameters.total,
                                demand: input.demand, peakRequestsPerSecond: input.demand.peakRequestsPerSecond,
                                outputTokensPerMonth: input.demand.outputTokensPerMonth(hoursPerMonth: input.prices?.hoursPerMonth ?? 730),
                                slo: input.slo, servingModel: servingModel.name, pricing: input.pricing.rawValue,
                                priceSheet: input.prices?.file, calibration: input.calibration, candidates: candidates,
                                recommendation: nil, finetune: [], finetuneRecommendation: nil, training: [], costCurves: [], latencyCurves: [],
                                local: input.hardware.first { $0.kind == .local })
        let ranked = result.ranked
        if let best = ranked.first {
            var reason = String(format: "cheapest configuration that meets p95 TTFT ≤ %.0f ms and p95 TPOT ≤ %.0f ms at the peak of %.2f req/s: %@/month autoscaled",
                                input.slo.ttftP95 * 1000, input.slo.tpotP95 * 1000, input.demand.peakRequestsPerSecond,
                                HumanNumber.money(best.monthlyCostUsd!.autoscaled))
            if let second = ranked.dropFirst().first {
                let (a, b) = (best.monthlyCostUsd!.autoscaled, second.monthlyCostUsd!.autoscaled)
                if a < b {
                    reason += String(format: ", %.0f%% less than the runner-up %@ (%@)", (1 - a / b) * 100, second.id, HumanNumber.money(b))
                } else {
                    reason += ", the same cost as the runner-up \(second.id), ahead on the tie-break (p95 TTFT, then p95 TPOT, then name)"
                }
            }
            result.recommendation = Recommendation(candidate: best, reason: reason)
        }
        if let ft = input.finetune {
            result.finetune = finetunePlan(input, ft)
            result.finetuneRecommendation = Self.finetuneRecommendation(result.finetune, ft)
        }
        if let tr = input.training { result.training = trainingPlan(input, tr) }
        if curves {
            result.costCurves = costCurves(input)
            result.latencyCurves = latencyCurves(input, ranked: ranked)
            result.batchCurves = batchCurves(input, ranked: ranked)
        }
        return result
    }

    /// Candidates the plan's serving model refines: the leading ones by rank, as many as a table shows
    /// (`plan` 12, `whatif` 8).
    public var refinedCandidates = 12

    /// Every configuration with the queueing approximation (fast); then, when the plan's model is another
    /// (the simulator), the leading candidates again with it, round after round until the leaders are all
    /// refined — a refined candidate's capacity, replicas and cost can move it down the ranking and bring
    /// another up. The rest keep the approximation's figures and its name.
    func rankedEvaluation(_ input: PlanInput, _ configurations: [(HardwareProfile, Precision, Int)]) -> [Candidate] {
        let approximation = QueueingServingModel()
        var candidates = ParallelMap.map(configurations) { evaluate(input, $0.0, $0.1, tp: $0.2, with: approximation) }
        guard servingModel.name != approximation.name else { return candidates }
        var refined = Set<Int>()
        for _ in 0..<8 {
            let leaders = candidates.indices.filter { candidates[$0].meetsSlo && candidates[$0].monthlyCostUsd != nil }
                .sorted { Self.rankKey(candidates[$0]) < Self.rankKey(candidates[$1]) }
                .prefix(refinedCandidates)
            // Unpriced candidates are never ranked; the simulator refines them only when nothing is priced.
            let pick = leaders.isEmpty ? Array(candidates.indices.filter { candidates[$0].fits }.prefix(refinedCandidates)) : Array(leaders)
            let todo = pick.filter { !refined.contains($0) }
            refined.formUnion(todo)
            let affordable = todo.filter { i in
                let (h, p, tp) = configurations[i]
                let (_, spec) = replica(input, h, p, tp: tp)
                return servingModel.affords(spec, ServingWorkload(promptTokens: input.demand.promptTokens, outputTokens: input.demand.outputTokens))
            }
            if todo.isEmpty { break }
            let fresh = ParallelMap.map(affordable) { i in evaluate(input, configurations[i].0, configurations[i].1, tp: configurations[i].2) }
            for (i, c) in zip(affordable, fresh) { candidates[i] = c }
        }
        return candidates
    }

    // MARK: curves for the report

    /// The cheapest configuration per hardware at a range of user counts: every precision and degree with
    /// the queueing approximation, the three cheapest again with the plan's serving model.
    func costCurves(_ input: PlanInput) -> [CostCurve] {
        let factors = [0.25, 0.5, 1, 2, 4, 8]
        let approximation = QueueingServingModel()
        let refine = servingModel.name != approximation.name
        let jobs = input.hardware.flatMap { h in factors.map { (h, $0) } }
        let bests = ParallelMap.map(jobs) { job -> (String, CostCurve.Point)? in
            let (h, f) = job
            var scaled = input
            scaled.demand.users = Int(saturating: Double(input.demand.users) * f, rounding: .toNearestOrAwayFromZero,
                                      into: 1...PlanLimits.users * 8)
            func cost(_ c: Candidate) -> Double { c.meetsSlo ? c.monthlyCostUsd?.autoscaled ?? .infinity : .infinity }
            var options: [Candidate] = []
            for p in input.precisions {
                for tp in input.tensorParallel { options.append(evaluate(scaled, h, p, tp: tp, with: approximation)) }
            }
            options = options.filter { cost($0).isFinite }.sorted { cost($0) < cost($1) }
            if refine {
                let work = ServingWorkload(promptTokens: scaled.demand.promptTokens, outputTokens: scaled.demand.outputTokens)
                options = options.prefix(3).map { c in
                    let p = Precision(rawValue: c.precision)!
                    return servingModel.affords(replica(scaled, h, p, tp: c.tensorParallel).1, work) ? evaluate(scaled, h, p, tp: c.tensorParallel) : c
                }.filter { cost($0).isFinite }.sorted { cost($0) < cost($1) }
            }
            guard let best = options.first else { return nil }
            return (h.id, .init(users: scaled.demand.users, monthlyUsd: cost(best), configuration: best.id))
        }
        return input.hardware.compactMap { h in
            let points = bests.compactMap { $0 }.filter { $0.0 == h.id }.map(\.1)
            return points.isEmpty ? nil : CostCurve(hardware: h.id, points: points)
        }
    }

    /// TPOT and prefill time as a function of batch, for the recommendation.
    func batchCurves(_ input: PlanInput, ranked: [Candidate]) -> [BatchCurve] {
        guard let c = ranked.first, let h = input.hardware.first(where: { $0.id == c.hardware }),
              let p = Precision(rawValue: c.precision) else { return [] }
        let (_, spec) = replica(input, h, p, tp: c.tensorParallel)
        let perf = ReplicaPerformance(spec, ServingWorkload(promptTokens: input.demand.promptTokens, outputTokens: input.demand.outputTokens))
        var batches: [Int] = []
        var b = 1
        while b < c.maxBatch { batches.append(b); b *= 2 }
        batches.append(c.maxBatch)
        let points = batches.map { b -> BatchCurve.Point in
            let step = perf.decodeStepSeconds(b)
            let prefill = spec.predictor.iterationSeconds(.uniform(sequences: b, newTokens: input.demand.promptTokens, pastTokens: 0))
            return .init(batch: b, decodeStepMs: step * 1000, decodeTokensPerSecond: Double(b) / step, prefillMs: prefill * 1000)
        }
        return [BatchCurve(configuration: c.id, points: points)]
    }

    func latencyCurves(_ input: PlanInput, ranked: [Candidate]) -> [LatencyCurve] {
        var seen = Set<String>()
        var picks: [Candidate] = []
        for c in ranked where !seen.contains(c.hardware) && picks.count < 4 { seen.insert(c.hardware); picks.append(c) }
        return picks.compactMap { c in
            guard let h = input.hardware.first(where: { $0.id == c.hardware }), let p = Precision(rawValue: c.precision) else { return nil }
            let (_, spec) = replica(input, h, p, tp: c.tensorParallel)
            let work = ServingWorkload(promptTokens: input.demand.promptTokens, outputTokens: input.demand.outputTokens)
            let top = c.capacityRpsPerReplica * 1.3
            let served = servingModel.served(spec, work)
            let points = ParallelMap.map(Array(1...16)) { i in
                served.load(requestsPerSecond: top * Double(i) / 16)
            }.compactMap { $0 }
            return LatencyCurve(configuration: c.id, points: points)
        }
    }
}

/// `map` across the cores for independent, pure work, results in input order.
enum ParallelMap {
    static func map<T, R>(_ items: [T], _ transform: (T) -> R) -> [R] {
        guard items.count > 1 else { return items.map(transform) }
        var results = [R?](repeating: nil, count: items.count)
        results.withUnsafeMutableBufferPointer { out in
            // Each index is written by exactly one iteration, so the writes never overlap.
            nonisolated(unsafe) let slots = out
            withoutActuallyEscaping(transform) { work in
                nonisolated(unsafe) let work = work
                DispatchQueue.concurrentPerform(iterations: items.count) { i in slots[i] = work(items[i]) }
            }
        }
        return results.map { $0! }
    }
}

/// Decode step times already computed, by batch size (used from one thread at a time).
final class StepMemo: @unchecked Sendable {
    private var values: [Double]
    init(count: Int) { values = Array(repeating: -1, count: count) }
    func value(_ b: Int, _ compute: () -> Double) -> Double {
        guard b >= 0 && b < values.count else { return compute() }
        if values[b] < 0 { values[b] = compute() }
        return values[b]
    }
}
