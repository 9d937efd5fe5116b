// `headroom simulate`: one configuration of a plan under a stream of requests, through the discrete-event
// simulator — the serving scheduler `headroom serve` runs, with step times from the execution-time model — and
// every figure with its interval over seeded replications. Takes whatif's flags for the plan it starts from.
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomEngine
import HeadroomReport
import HeadroomRunner
import HeadroomScheduling
import HeadroomStore

struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Simulate one configuration under load: TTFT, TPOT, ITL, E2E, throughput, goodput, KV use (predicted).",
        discussion: """
            Starts from the scenario's plan: section (default: the built-in default scenario) changed by the flags, as \
            `whatif` does, and simulates one configuration of it: --hardware (default the plan's first), --precision \
            (default its first), --tp. Requests arrive by --arrivals at --rate per second (default: the plan's peak \
            request rate spread over --replicas), --requests of them; lengths are --prompt-tokens and \
            --output-tokens, each a count (512), uniform:MIN-MAX or lognormal:MEDIAN,SIGMA; a trace's own lengths win.

            Each replica runs the serving scheduler of `headroom serve` (HeadroomScheduling: token budget, running \
            cap, chunked prefill, KV blocks from the memory model, preemption) with step times from the roofline and \
            the hardware's efficiencies (on `local`, calibrated like `plan`; --execution-time steps uses the step times \
            measured by `headroom bench steps` instead). Every figure is PREDICTED; percentiles are the mean over \
            --replications seeded runs with a 95 % interval. --benchmark times the simulator itself instead.
            """)

    @OptionGroup var scenario: ScenarioArgument
    @Option(name: .long, help: "Model id from the catalog (`headroom models`).") var model: String?
    @Option(name: .long, help: ArgumentHelp("Hardware id to simulate (`headroom hardware`).", valueName: "id")) var hardware: String?
    @Option(name: .long, help: ArgumentHelp("Precision: \(PrecisionNames.plannerList).", valueName: "p")) var precision: String?
    @Option(name: .long, help: "Tensor-parallel degree of a replica.") var tp = 1
    @Option(name: .customLong("pipeline-stages"), help: "Pipeline stages of a replica.") var pipelineStages = 1
    @Option(name: .customLong("prompt-tokens"), help: ArgumentHelp("Prompt lengths: N, uniform:MIN-MAX or lognormal:MEDIAN,SIGMA (default: the plan's).", valueName: "lengths"))
    var promptTokens: String?
    @Option(name: .customLong("output-tokens"), help: ArgumentHelp("Output lengths: N, uniform:MIN-MAX or lognormal:MEDIAN,SIGMA (default: the plan's).", valueName: "lengths"))
    var outputTokens: String?
    @Option(name: .long, help: ArgumentHelp("Requests per second across the replicas (default: the plan's peak).", valueName: "r")) var rate: Double?
    @Option(name: .long, help: "Requests to simulate (each replication).") var requests = 2000
    @Option(name: .long, help: ArgumentHelp("poisson, gamma:CV (bursty), constant, burst (all at once) or trace:FILE.", valueName: "process"))
    var arrivals = "poisson"
    @Option(name: .long, help: "Replicas behind the router.") var replicas = 1
    @Option(name: .long, help: ArgumentHelp("round-robin or least-outstanding.", valueName: "policy")) var router = "round-robin"
    @Option(name: .long, help: "Seeded runs whose figures are averaged, with 95 % intervals.") var replications = 10
    @Option(name: .long, help: "Seed of the first replication.") var seed: UInt64 = 1
    @Option(name: .customLong("max-num-seqs"), help: "Running sequences per replica at most (default: the planner's for the hardware).") var maxNumSeqs: Int?
    @Option(name: .customLong("max-batched-tokens"), help: "Tokens a step computes at most (default: the planner's for the hardware).") var maxBatchedTokens: Int?
    @Flag(name: .customLong("chunked-prefill"), inversion: .prefixedNo, help: "Split long prompts across steps.") var chunkedPrefill = true
    @Option(name: .customLong("ttft-p95"), help: ArgumentHelp("Goodput counts requests whose time to first token is at most this, ms (default: the plan's p95 SLO).", valueName: "ms")) var ttftP95: Double?
    @Option(name: .customLong("tpot-p95"), help: ArgumentHelp("Goodput counts requests whose time per output token is at most this, ms (default: the plan's p95 SLO).", valueName: "ms")) var tpotP95: Double?
    @Option(name: .customLong("execution-time"), help: ArgumentHelp("roofline, or steps (on local: `headroom bench steps` measurements).", valueName: "model"))
    var executionTime = "roofline"
    @Option(name: .long, help: "Threads of the local engine, for --execution-time steps (default: all cores).") var threads: Int?
    @Option(name: .customLong("run"), help: ArgumentHelp("Calibrate `local` on this stored run instead of the latest complete one.", valueName: "id"))
    var runID: Int64?
    @Option(name: .customLong("set"), help: ArgumentHelp("Any plan key: key.path=value (repeatable).", valueName: "key=value"))
    var sets: [String] = []
    @Flag(name: .long, help: "Time the simulator on 2,000 requests of 512 in / 128 out instead (events per second).") var benchmark = false
    @OptionGroup var catalog: CatalogOptions
    @OptionGroup var store: StoreOptions
    @Flag(name: .long, help: "Print JSON on standard output instead of tables.") var json = false

    func validate() throws {
        if !(1...64).contains(tp) { throw ValidationError("--tp: expected 1 to 64") }
        if !(1...SimulationConfig.maxPipelineStages).contains(pipelineStages) { throw ValidationError("--pipeline-stages: expected 1 to \(SimulationConfig.maxPipelineStages)") }
        if let rate, !(rate.isFinite && rate > 0) { throw ValidationError("--rate: expected a positive number of requests per second") }
        if !(1...1_000_000).contains(requests) { throw ValidationError("--requests: expected 1 to 1000000") }
        if !(1...1024).contains(replicas) { throw ValidationError("--replicas: expected 1 to 1024") }
        if !(1...1000).contains(replications) { throw ValidationError("--replications: expected 1 to 1000") }
        if let n = maxNumSeqs, !(1...65536).contains(n) { throw ValidationError("--max-num-seqs: expected 1 to 65536") }
        if let n = maxBatchedTokens, !(1...1_048_576).contains(n) { throw ValidationError("--max-batched-tokens: expected 1 to 1048576") }
        for (flag, v) in [("--ttft-p95", ttftP95), ("--tpot-p95", tpotP95)] {
            if let v, !(v.isFinite && v > 0) { throw ValidationError("\(flag): expected a positive number of milliseconds") }
        }
        _ = try routerPolicy()
        if !["roofline", "steps"].contains(executionTime) { throw ValidationError("--execution-time: expected roofline or steps, got \(executionTime)") }
        if let p = precision { _ = try plannerPrecisions([p]) }
        _ = try threadCount(threads)
        for (flag, text) in [("--prompt-tokens", promptTokens), ("--output-tokens", outputTokens)] {
            if let text { _ = try Self.lengths(text, flag: flag) }
        }
        if !arrivals.hasPrefix("trace:") { _ = try arrivalProcess(rate: 1) }
    }

    /// Steps (requests × output tokens and prefill chunks, × replications) one command may simulate, counted
    /// as if no two requests shared a step: a minute or so at the worst.
    static let maxWork = 2e8

    /// The mean of a length distribution (a lognormal's is median × e^(σ²/2), clamped like its draws).
    static func mean(_ d: LengthDistribution) -> Double {
        switch d {
        case .fixed(let n): return Double(n)
        case .uniform(let a, let b): return Double(a + b) / 2
        case .lognormal(let m, let sigma): return min(m * exp(sigma * sigma / 2), Double(LengthDistribution.maxLength))
        case .values(let v): return v.isEmpty ? 0 : Double(v.reduce(0, +)) / Double(v.count)
        }
    }

    func routerPolicy() throws -> SimulationConfig.Router {
        switch router {
        case "round-robin": return .roundRobin
        case "least-outstanding": return .leastOutstanding
        default: throw ValidationError("--router: expected round-robin or least-outstanding, got \(router)")
        }
    }

    /// N, uniform:MIN-MAX or lognormal:MEDIAN,SIGMA.
    static func lengths(_ text: String, flag: String) throws -> LengthDistribution {
        func bad() -> ValidationError { ValidationError("\(flag): expected N, uniform:MIN-MAX or lognormal:MEDIAN,SIGMA, got \(text)") }
        let d: LengthDistribution
        if let n = Int(text) {
            d = .fixed(n)
        } else if text.hasPrefix("uniform:") {
            let parts = text.dropFirst(8).split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let a = Int(parts[0]), let b = Int(parts[1]) else { throw bad() }
            d = .uniform(min: a, max: b)
        } else if text.hasPrefix("lognormal:") {
            let parts = text.dropFirst(10).split(separator: ",", omittingEmptySubsequences: false)
            guard parts.count == 2, let m = Double(parts[0]), let s = Double(parts[1]) else { throw bad() }
            d = .lognormal(median: m, sigma: s)
        } else {
            throw bad()
        }
        do { try d.validate(field: flag) } catch { throw ValidationError(error.description) }
        return d
    }

    func arrivalProcess(rate: Double) throws -> ArrivalProcess {
        let p: ArrivalProcess
        switch arrivals {
        case "poisson": p = .poisson(rate: rate)
        case "constant": p = .constant(rate: rate)
        case "burst": p = .allAtOnce
        case let s where s.hasPrefix("gamma:"):
            guard let cv = Double(s.dropFirst(6)) else { throw ValidationError("--arrivals: expected gamma:CV with a number, got \(s)") }
            p = .gamma(rate: rate, cv: cv)
        case let s where s.hasPrefix("trace:"):
            let file = String(s.dropFirst(6))
            p = .trace(try LoadInputFiles.readTrace(path: file))
        default:
            throw ValidationError("--arrivals: expected poisson, gamma:CV, constant, burst or trace:FILE, got \(arrivals)")
        }
        do { try p.validate(field: "--arrivals") } catch { throw ValidationError(error.description) }
        return p
    }

    func overrides() throws -> [PlanOverride] {
        var out: [PlanOverride] = []
        if let model { out.append(PlanOverride(path: ["model"], value: model)) }
        if let hardware { out.append(PlanOverride(path: ["hardware"], value: "[\(hardware)]")) }
        if let precision { out.append(PlanOverride(path: ["precisions"], value: "[\(try plannerPrecisions([precision])[0].rawValue)]")) }
        if let promptTokens, let n = Int(promptTokens) { out.append(PlanOverride(path: ["demand", "prompt_tokens"], value: String(n))) }
        if let outputTokens, let n = Int(outputTokens) { out.append(PlanOverride(path: ["demand", "output_tokens"], value: String(n))) }
        return try out + sets.map(PlanOverride.init)
    }

    func run() throws {
        try reportingErrors {
            let file = scenario.path ?? Scenario.builtinDefaultLabel
            let text = try scenario.path.map { try FileChecks.readText($0, what: "scenario file") } ?? Catalog.builtinDefaultScenario
            let catalog = try self.catalog.load(forScenario: scenario.path)
            let settings = try PlanSettings.read(scenarioText: text, file: file, overrides: try overrides(), catalog: catalog)
            let calibrationRun = settings.hardware.contains("local") || runID != nil
                ? try PlanJob.latestLocalRun(storePath: store.path, runID: runID) : nil
            let input = try PlanJob(settings: settings, catalog: catalog, curves: false).input(calibrationRun: calibrationRun)
            guard let h = input.hardware.first else {
                throw InputError(file: file, path: "plan.hardware", message: "no hardware to simulate (local needs a stored run: `make run` or `headroom probe`)")
            }
            guard let p = input.precisions.first else { throw InputError(file: file, path: "plan.precisions", message: "no precision to simulate") }
            if let why = h.unsupported(p) { throw ValidationError("--precision: \(why)") }
            if tp > h.devicesPerNode { throw ValidationError("--tp: \(h.name) has \(h.devicesPerNode) devices per node") }
            if input.model.heads % tp != 0 { throw ValidationError("--tp: \(input.model.heads) attention heads do not divide by \(tp)") }

            var (memory, spec) = Planner().replica(input, h, p, tp: tp, stages: pipelineStages)
            if let why = memory.whyNot { throw RunFailure("\(h.id)/\(p.rawValue)/tp\(tp) cannot serve \(input.model.id): \(why)") }
            if executionTime == "steps" {
                guard h.kind == .local else { throw ValidationError("--execution-time steps: measured step times exist for local only") }
                let threads = try threadCount(self.threads)
                let db = try store.open()
                spec.predictor = try StepTimeSource.load(store: db, model: input.model.id, precision: PrecisionNames.entries.first { $0.planner == p && $0.engine }?.name ?? p.rawValue, threads: threads, runID: nil)
            }
            if let n = maxNumSeqs { spec.scheduler.maxNumSeqs = n }
            if let n = maxBatchedTokens { spec.scheduler.maxBatchedTokens = n }
            spec.scheduler.chunkedPrefill = chunkedPrefill
            do { try spec.scheduler.validate() } catch { throw ValidationError("scheduler: \(error)") }
            memory.maxBatch = spec.maxBatch

            if benchmark {
                let b = try SimulatorBenchmark.run(spec)
                let out = BenchmarkOutput(configuration: "\(input.model.id) on \(h.id)/\(p.rawValue)/tp\(tp)", result: b)
                if json { try printJSON(out) } else { print(out.rendered) }
                return
            }
            let prompt = try promptTokens.map { try Self.lengths($0, flag: "--prompt-tokens") } ?? .fixed(input.demand.promptTokens)
            let output = try outputTokens.map { try Self.lengths($0, flag: "--output-tokens") } ?? .fixed(input.demand.outputTokens)
            let rate = self.rate ?? input.demand.peakRequestsPerSecond
            let slo = SLO(ttftP95: (ttftP95 ?? input.slo.ttftP95 * 1000) / 1000, tpotP95: (tpotP95 ?? input.slo.tpotP95 * 1000) / 1000)
            var config = SimulationConfig(replicas: Array(repeating: .init(spec, pipelineStages: pipelineStages), count: replicas),
                                          router: try routerPolicy(), arrivals: try arrivalProcess(rate: rate), promptLengths: prompt,
                                          outputLengths: output, requests: requests, seed: seed)
            config.slo = slo
            config.recordInterTokenGaps = true
            do { try config.validate() } catch { throw ValidationError("\(error)") }
            // Every request's tokens are steps the simulator walks: bound the work before starting it.
            let chunk = Double(spec.scheduler.chunkedPrefill ? spec.scheduler.maxBatchedTokens : 1 << 20)
            let perRequest = Self.mean(output) + (Self.mean(prompt) / chunk).rounded(.up)
            let work = Double(config.arrivals.count(requested: requests)) * perRequest * Double(replications)
            guard work <= Self.maxWork else {
                throw ValidationError(String(format: "--requests × --replications × tokens per request: %.3g steps to simulate, more than the %.0e allowed; ask for fewer requests or replications", work, Self.maxWork))
            }
            let started = DispatchTime.now()
            let summary = try Simulation.replicate(config, replications: replications)
            let saturation = try? SimulatorServingModel(requests: max(100, min(requests, 1000)), replications: 1)
                .saturation(spec, ServingWorkload(promptTokens: Int(Self.mean(prompt).rounded()), outputTokens: Int(Self.mean(output).rounded())))
            let wall = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
            let result = SimulateResult(model: input.model.id, configuration: "\(h.id)/\(p.rawValue)/tp\(tp)", config: config, spec: spec,
                                        memory: memory, summary: summary, slo: slo, wallSeconds: wall,
                                        saturationPerReplica: saturation, offeredRate: { if case .trace = config.arrivals { return nil } else { return rate } }())
            if json { try printJSON(result) } else { print(result.rendered) }
        }
    }
}

/// `headroom simulate --benchmark`: the simulator's own speed (measured), on the issue's case.
struct BenchmarkOutput: Encodable {
    var kind = "measured"
    var configuration: String
    var requests: Int, promptTokens = 512, outputTokens = 128, steps: Int, events: Int
    var rate: Double, saturationRate: Double
    /// Best of the repeats, and every repeat, single-threaded.
    var seconds: Double, samples: [Double]
    var eventsPerSecond: Double

    init(configuration: String, result r: SimulatorBenchmark.Result) {
        self.configuration = configuration
        requests = r.requests; steps = r.steps; events = r.events; rate = r.rate; saturationRate = r.saturationRate
        seconds = r.seconds; samples = r.samples; eventsPerSecond = r.eventsPerSecond
    }

    var rendered: String {
        String(format: "MEASURED: %d requests of 512 in / 128 out at %.3g req/s (70 %% of the simulated saturation, %.3g req/s) on %@: "
               + "%d steps, %d events in %.1f ms single-threaded (best of %d; %@), %.3g events/s",
               requests, rate, saturationRate, configuration, steps, events, seconds * 1000, samples.count,
               samples.map { String(format: "%.1f", $0 * 1000) }.joined(separator: ", ") + " ms", eventsPerSecond)
    }
}

/// `headroom simulate`'s answer: the configuration, the figures with their intervals, and what they rest on.
struct SimulateResult: Encodable {
    struct Latency: Encodable { var metric: String; var p50: Estimate; var p90: Estimate; var p95: Estimate; var p99: Estimate }
    var kind = "predicted"
    var model: String
    var configuration: String
    var servingModel = "discrete-event simulator (HeadroomScheduling's scheduler)"
    var executionTime: String
    var arrivals: String, promptLengths: String, outputLengths: String
    var requests: Int, replicas: Int, router: String, replications: Int, seed: UInt64
    var scheduler: [String: String]
    var kvBlocks: Int
    var sloTtftP95Ms: Double, sloTpotP95Ms: Double
    /// Seconds, per metric.
    var latencySeconds: [Latency]
    var requestsPerSecond: Estimate, outputTokensPerSecond: Estimate, goodputPerSecond: Estimate?
    var meanRunning: Estimate, peakKVUsage: Estimate, preemptionsPerRun: Estimate, prefillFraction: Estimate
    var rejectedPerRun: Double
    var eventsPerRun: Double
    var wallSeconds: Double
    /// Completions over arrivals in the second half of the arrival window (below 1: the backlog grows).
    var keepUp: Estimate?
    /// One replica's throughput with every request waiting (the simulator's `saturation`), and the rate asked.
    var saturationPerReplica: Double?
    var offeredRate: Double?

    init(model: String, configuration: String, config: SimulationConfig, spec: ReplicaSpec, memory: MemoryModel.Serving,
         summary: SimulationSummary, slo: SLO, wallSeconds: Double, saturationPerReplica: Double?, offeredRate: Double?) {
        self.model = model; self.configuration = configuration
        executionTime = spec.predictor.basis
        arrivals = config.arrivals.description; promptLengths = config.promptLengths.description; outputLengths = config.outputLengths.description
        requests = config.requests; replicas = config.replicas.count; router = config.router.description
        replications = summary.replications; seed = config.seed
        scheduler = ["max_num_seqs": String(spec.scheduler.maxNumSeqs), "max_batched_tokens": String(spec.scheduler.maxBatchedTokens),
                     "chunked_prefill": String(spec.scheduler.chunkedPrefill), "block_size": String(spec.scheduler.blockSize)]
        kvBlocks = spec.scheduler.totalBlocks
        sloTtftP95Ms = slo.ttftP95 * 1000; sloTpotP95Ms = slo.tpotP95 * 1000
        latencySeconds = LatencyMetric.allCases.compactMap { m in
            summary.latency(m).map { Latency(metric: m.rawValue, p50: $0.p50, p90: $0.p90, p95: $0.p95, p99: $0.p99) }
        }
        requestsPerSecond = summary.requestThroughput; outputTokensPerSecond = summary.outputTokenThroughput
        goodputPerSecond = summary.goodput; meanRunning = summary.meanRunning; peakKVUsage = summary.peakKVUsage
        preemptionsPerRun = summary.preemptions; prefillFraction = summary.prefillFraction
        rejectedPerRun = Double(summary.runs.reduce(0) { $0 + $1.rejected.count }) / Double(summary.runs.count)
        eventsPerRun = Double(summary.runs.reduce(0) { $0 + $1.events }) / Double(summary.runs.count)
        self.wallSeconds = wallSeconds
        keepUp = summary.keepUp; self.saturationPerReplica = saturationPerReplica; self.offeredRate = offeredRate
    }

    /// The rate asked is at or past what the replicas can complete: the figures grow with --requests.
    var overloaded: Bool {
        guard let offeredRate, let saturationPerReplica else { return false }
        return offeredRate >= saturationPerReplica * Double(replicas)
    }

    var rendered: String {
        func ci(_ e: Estimate, scale: Double = 1) -> String {
            let v = Fmt.sig(e.value * scale)
            guard let lo = e.low, let hi = e.high else { return v }
            return "\(v) [\(Fmt.sig(lo * scale)), \(Fmt.sig(hi * scale))]"
        }
        var out = "PREDICTED by the \(servingModel) for \(model) on \(configuration) × \(replicas) replica(s), router \(router)\n"
        out += "  step times: \(executionTime)\n"
        out += "  scheduler: \(scheduler["max_num_seqs"]!) sequences, \(scheduler["max_batched_tokens"]!) tokens a step, chunked prefill \(scheduler["chunked_prefill"]!), \(kvBlocks) KV blocks of \(scheduler["block_size"]!)\n"
        out += "  workload: \(requests) requests, arrivals \(arrivals), prompts \(promptLengths), outputs \(outputLengths); \(replications) replications from seed \(seed) (mean [95 % interval])\n\n"
        var t = TextTable(["ms", "p50", "p90", "p95", "p99"], rightAligned: [1, 2, 3, 4])
        for l in latencySeconds { t.add([l.metric, ci(l.p50, scale: 1000), ci(l.p90, scale: 1000), ci(l.p95, scale: 1000), ci(l.p99, scale: 1000)]) }
        out += t.rendered + "\n\n"
        var s = TextTable(["figure", "value"], rightAligned: [1])
        s.add(["requests/s", ci(requestsPerSecond)])
        s.add(["output tokens/s", ci(outputTokensPerSecond)])
        if let g = goodputPerSecond { s.add(["goodput req/s (requests with TTFT ≤ \(Fmt.sig(sloTtftP95Ms)) ms and TPOT ≤ \(Fmt.sig(sloTpotP95Ms)) ms)", ci(g)]) }
        if let k = keepUp { s.add(["keep-up (completions ÷ arrivals, second half)", ci(k)]) }
        if let sat = saturationPerReplica { s.add(["saturation req/s per replica (every request waiting)", Fmt.sig(sat)]) }
        s.add(["mean running sequences", ci(meanRunning)])
        s.add(["peak KV use", ci(peakKVUsage, scale: 100) + " %"])
        s.add(["time in prefill", ci(prefillFraction, scale: 100) + " %"])
        s.add(["preemptions per run", ci(preemptionsPerRun)])
        s.add(["rejected per run", Fmt.sig(rejectedPerRun)])
        out += s.rendered
        out += String(format: "\n\n%.0f events per run; simulated in %.3f s (%d runs)", eventsPerRun, wallSeconds, replications)
        if overloaded {
            out += "\nWARNING: the rate asked (\(Fmt.sig(offeredRate!)) req/s) is at or past what \(replicas) replica(s) complete (\(Fmt.sig(saturationPerReplica! * Double(replicas))) req/s): the queue grows for as long as requests arrive, so these figures grow with --requests; add --replicas or lower --rate"
        }
        return out
    }
}
