// Fine-tuning and pre-training plans: the fewest devices the job fits on (memory), the instances it
// pays for filled with data parallelism (or why not), each step's compute and communication over the
// profile's links, the hours and the cost — or "not applicable" with the reason when the job needs
// more devices than the profile can hold together.
import Foundation

/// One way to run a training job: devices used and billed, steps, time, and what it costs.
struct TrainingOption {
    var devices: Int
    var billed: Int
    var zeroStage: Int
    var memory: MemoryModel.Training
    var steps: Int
    var seconds: Double
    var communicationSeconds: Double
    var link: String
    var usd: Double?
    var provider: String?
    var note: String?
}

/// A training job as the planner sizes it: FLOPs per token, tokens, sequences, and its memory per device.
struct TrainingJob {
    var model: ModelShape
    var method: MemoryModel.Method
    var rank: Int
    var flopsPerToken: Double
    var tokens: Double
    var seqLen: Int
    var microBatch: Int
    var checkpointing: Bool

    func memory(devices: Int, zeroStage: Int) -> MemoryModel.Training {
        MemoryModel.training(model, method: method, rank: rank, seqLen: seqLen, microBatch: microBatch, checkpointing: checkpointing,
                             devices: devices, zeroStage: zeroStage)
    }

    /// The ZeRO stage on `devices` devices, the least communication that fits: plain data parallelism (0)
    /// when a whole copy fits on one device; else ZeRO-2 (optimizer states and gradients sharded, the
    /// same traffic as 0); else ZeRO-3 (the parameters sharded too, gathered every step). nil when
    /// not even ZeRO-3 fits.
    func stage(on h: HardwareProfile, devices: Int) -> (Int, MemoryModel.Training)? {
        let usable = h.memoryBytes * MemoryModel.servingUtilization
        let whole = memory(devices: 1, zeroStage: 0)
        if whole.total <= usable { return (0, whole) }
        guard devices > 1 else { return nil }
        for stage in [2, 3] {
            let sharded = memory(devices: devices, zeroStage: stage)
            if sharded.total <= usable { return (stage, sharded) }
        }
        return nil
    }

    /// Sequences in the whole job: the most devices data parallelism can keep busy in one step.
    var sequences: Double { (tokens / Double(seqLen)).rounded(.up) }

    /// Steps, seconds and communication seconds on `devices` devices at stage `zeroStage`: each step
    /// runs `devices` × micro-batch sequences, computes at the training MFU and then communicates.
    func time(on h: HardwareProfile, peak: Double, devices: Int, zeroStage: Int, memory m: MemoryModel.Training,
              link: Interconnect) -> (steps: Int, seconds: Double, communication: Double) {
        let perStep = Double(devices * microBatch * seqLen)
        let steps = Int(saturating: tokens / perStep, rounding: .up, into: 1...Int.max)
        let compute = flopsPerToken * Double(microBatch * seqLen) / (peak * h.trainingMFU)
        let n = Double(devices)
        // Gradients in bf16, of the trained parameters; the parameters gathered are those stored (sharded × n).
        let gradientBytes = (method == .full ? model.parameters.total : MemoryModel.loraParameters(model, rank: rank)) * 2
        let comm = DataParallel.stepSeconds(gradientBytes: gradientBytes, parameterBytes: (m.weights + m.adapters) * (zeroStage >= 3 ? n : 1),
                                            devices: devices, zeroStage: zeroStage, link: link)
        return (steps, Double(steps) * (compute + comm), Double(steps) * comm)
    }

    /// The run on `devices` devices, `billed` paid for: nil when it does not fit or cannot communicate.
    func option(on h: HardwareProfile, peak: Double, devices: Int, billed: Int, usdPerHour: Double?, provider: String?,
                note: String?) -> TrainingOption? {
        guard let (stage, mem) = stage(on: h, devices: devices), let link = DataParallel.link(h, devices: devices) else { return nil }
        let t = time(on: h, peak: peak, devices: devices, zeroStage: stage, memory: mem, link: link)
        return TrainingOption(devices: devices, billed: billed, zeroStage: stage, memory: mem, steps: t.steps, seconds: t.seconds,
                              communicationSeconds: t.communication, link: devices > 1 ? link.kind : "none (one device)",
                              usd: usdPerHour.map { $0 * t.seconds / 3600 }, provider: provider, note: note)
    }

    /// Devices one option runs on when `billed` are paid for: all of them, unless one job cannot hold
    /// them together (more than a node without a network) or there are fewer sequences than devices.
    func used(billed: Int, on h: HardwareProfile, minimum: Int) -> (Int, String?) {
        var n = billed
        var why: String?
        if n > h.maxDevices {
            n = h.maxDevices
            why = "uses \(n) of the \(billed) devices billed: \(h.notApplicable(devices: billed) ?? "")"
        }
        let busy = Int(saturating: sequences / Double(microBatch), rounding: .up, into: 1...Int.max)
        if n > busy {
            n = max(minimum, busy)
            why = "uses \(n) of the \(billed) devices billed: the whole job is \(HumanNumber.count(sequences)) sequences, one step on \(busy)"
        }
        return (n, why)
    }
}

extension Planner {
    /// Devices fine-tuning is sized on: 1, 2, 4, … 256.
    static let deviceCounts = [1, 2, 4, 8, 16, 32, 64, 128, 256]

    /// For each hardware and method (the requested one first, then the other two for comparison).
    public func finetunePlan(_ input: PlanInput, _ ft: FineTuneSettings) -> [FineTunePlanRow] {
        let methods = [ft.method] + MemoryModel.Method.allCases.filter { $0 != ft.method }
        return methods.flatMap { method -> [FineTunePlanRow] in
            var settings = ft
            settings.method = method
            return input.hardware.map { finetuneRow(input, settings, $0) }
        }
    }

    /// One hardware and method: the fewest devices it fits on; then, for each offer, whole instances from
    /// there up (doubling, to 256 devices), every device billed used by data parallelism; the cheapest
    /// that finishes by the deadline (when there is one; else the cheapest), ties to fewer hours.
    func finetuneRow(_ input: PlanInput, _ ft: FineTuneSettings, _ h: HardwareProfile) -> FineTunePlanRow {
        let m = input.model
        let job = TrainingJob(model: m, method: ft.method, rank: ft.rank,
                              flopsPerToken: MemoryModel.trainingFLOPsPerToken(m, method: ft.method, seqLen: ft.seqLen, checkpointing: ft.checkpointing),
                              tokens: ft.tokens, seqLen: ft.seqLen, microBatch: ft.microBatch, checkpointing: ft.checkpointing)
        var row = FineTunePlanRow(hardware: h.id, method: ft.method.rawValue, flops: job.flopsPerToken * ft.tokens)
        guard let peak = h.peakFLOPs(.bf16) ?? h.peakFLOPs(.fp16) else { row.whyNot = "no 16-bit peak for \(h.name)"; return row }
        guard let minimum = Self.deviceCounts.first(where: { job.stage(on: h, devices: $0) != nil }) else {
            row.whyNot = "does not fit on \(Self.deviceCounts.last!) devices"; return row
        }
        if let why = h.notApplicable(devices: minimum) { row.notApplicable = why; return row }
        let limit = Self.deviceCounts.last!
        var options: [TrainingOption] = []
        let offers = input.prices?.offers.filter { $0.hardware == h.id && $0.rate(input.pricing) != nil } ?? []
        if offers.isEmpty {
            var n = minimum
            while n <= min(limit, h.maxDevices) {
                if let o = job.option(on: h, peak: peak, devices: n, billed: n, usdPerHour: nil, provider: nil, note: nil) { options.append(o) }
                n *= 2
            }
        }
        for offer in offers {
            var instances = (minimum + offer.devices - 1) / offer.devices
            while instances * offer.devices <= max(limit, offer.devices) {
                let billed = instances * offer.devices
                let (n, note) = job.used(billed: billed, on: h, minimum: minimum)
                if let o = job.option(on: h, peak: peak, devices: n, billed: billed, usdPerHour: Double(instances) * offer.rate(input.pricing)!,
                                      provider: offer.provider, note: note) {
                    options.append(o)
                }
                instances *= 2
            }
        }
        let hours = { (o: TrainingOption) in o.seconds / 3600 }
        let inTime = ft.deadlineHours.map { d in options.filter { hours($0) <= d } } ?? options
        let pool = inTime.isEmpty ? options : inTime
        guard let best = pool.min(by: { a, b in
            (a.usd ?? Double(a.devices), hours(a), a.devices) < (b.usd ?? Double(b.devices), hours(b), b.devices)
        }) else {
            row.whyNot = "cannot run on \(minimum)+ devices of \(h.name)"; return row
        }
        row.devices = best.devices; row.billedDevices = best.billed; row.zeroStage = best.zeroStage; row.memoryPerDevice = best.memory
        row.steps = best.steps; row.hours = hours(best); row.communicationHours = best.communicationSeconds / 3600; row.link = best.link
        row.usd = best.usd; row.provider = best.provider; row.note = best.note
        row.meetsDeadline = ft.deadlineHours.map { hours(best) <= $0 }
        return row
    }

    /// The cheapest plan of the requested method that finishes by the deadline (any time without one);
    /// ties to fewer hours, then the hardware's name.
    static func finetuneRecommendation(_ rows: [FineTunePlanRow], _ ft: FineTuneSettings) -> FineTuneRecommendation? {
        let mine = rows.filter { $0.method == ft.method.rawValue && $0.usd != nil && $0.meetsDeadline != false }
        guard let best = mine.min(by: { ($0.usd!, $0.hours ?? .infinity, $0.hardware) < ($1.usd!, $1.hours ?? .infinity, $1.hardware) })
        else { return nil }
        var reason = "the cheapest \(ft.method.rawValue) plan"
            + (ft.deadlineHours.map { " that finishes within the \(HumanNumber.count($0)) h deadline" } ?? " (no deadline set)")
        if let next = mine.filter({ $0.hardware != best.hardware }).min(by: { $0.usd! < $1.usd! }) {
            reason += "; the runner-up \(next.hardware) costs \(HumanNumber.money(next.usd!))"
        }
        let others = rows.filter { $0.hardware == best.hardware && $0.method != best.method && $0.usd != nil }
        for o in others { reason += "; \(o.method) on the same hardware: \(HumanNumber.money(o.usd!))" }
        return FineTuneRecommendation(row: best, reason: reason)
    }

    /// Pre-training: 6·N·D FLOPs for N active parameters and D tokens (attention not included), full
    /// training in mixed precision (ZeRO-3 once a copy does not fit on one device), `seqLen` ×
    /// `microBatch` tokens per device per step, each step paying its communication. A device count that
    /// finishes in the requested days — doubling, then bisection between the last count that does not and the
    /// first that does; the time is not strictly monotone in devices (the ZeRO stage and the ring's latency
    /// change with the count), so this is the smallest found, not proven the fewest — then each offer's whole
    /// instances filled; the cheapest.
    public func trainingPlan(_ input: PlanInput, _ tr: TrainingSettings) -> [TrainingPlanRow] {
        let m = input.model
        let job = TrainingJob(model: m, method: .full, rank: 0, flopsPerToken: 6 * m.parameters.activePerToken, tokens: tr.tokens,
                              seqLen: tr.seqLen, microBatch: tr.microBatch, checkpointing: false)
        let flops = job.flopsPerToken * tr.tokens
        return input.hardware.compactMap { h -> TrainingPlanRow? in
            guard let peak = h.peakFLOPs(.bf16) ?? h.peakFLOPs(.fp16) else { return nil }
            var row = TrainingPlanRow(hardware: h.id, flops: flops, devices: nil, days: nil)
            let target = tr.days * 86_400
            func days(_ n: Int) -> Double? {
                job.option(on: h, peak: peak, devices: n, billed: n, usdPerHour: nil, provider: nil, note: nil).map(\.seconds)
            }
            // Without communication, the devices would be at least this many.
            let linear = flops / (peak * h.trainingMFU * target)
            let floor = Int(saturating: linear, rounding: .up, into: 1...PlanLimits.devices)
            // Doubling up to the most devices the profile can hold together, then bisection within the bracket.
            let cap = min(h.maxDevices, PlanLimits.devices)
            var lo = 0, hi = 1, found = false
            while true {
                if let s = days(hi), s <= target { found = true; break }
                if hi >= cap { break }
                lo = hi
                hi = min(hi * 2, cap)
            }
            if !found {
                if cap < PlanLimits.devices, let why = h.notApplicable(devices: max(floor, cap + 1)) {
                    row.notApplicable = why
                } else if linear > Double(cap) {
                    row.whyNot = "needs \(HumanNumber.count(linear)) devices to finish in \(HumanNumber.count(tr.days)) days (before communication), "
                        + "more than the \(HumanNumber.count(Double(cap))) the planner sizes"
                } else {
                    row.whyNot = String(format: "cannot finish in %g days on up to %@ devices: communication per step does not shrink with more devices",
                                        tr.days, HumanNumber.count(Double(cap)))
                }
                return row
            }
            // More devices finish sooner until communication dominates.
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2
                if let s = days(mid), s <= target { hi = mid } else { lo = mid }
            }
            let needed = hi
            var best = job.option(on: h, peak: peak, devices: needed, billed: needed, usdPerHour: nil, provider: nil, note: nil)
            let offers = input.prices?.offers.filter { $0.hardware == h.id && $0.rate(input.pricing) != nil } ?? []
            var priced: [TrainingOption] = []
            for offer in offers {
                let instances = (needed + offer.devices - 1) / offer.devices
                let billed = instances * offer.devices
                let (n, note) = job.used(billed: billed, on: h, minimum: needed)
                if let o = job.option(on: h, peak: peak, devices: n, billed: billed, usdPerHour: Double(instances) * offer.rate(input.pricing)!,
                                      provider: offer.provider, note: note) {
                    priced.append(o)
                }
            }
            if let cheapest = priced.min(by: { ($0.usd!, $0.seconds) < ($1.usd!, $1.seconds) }) { best = cheapest }
            guard let b = best else { row.whyNot = "does not fit"; return row }
            row.devices = b.devices; row.billedDevices = b.billed; row.zeroStage = b.zeroStage
            row.days = b.seconds / 86_400; row.communicationDays = b.communicationSeconds / 86_400; row.link = b.link
            row.usd = b.usd; row.provider = b.provider; row.note = b.note
            return row
        }
    }
}
