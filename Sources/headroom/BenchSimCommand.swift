// `headroom bench sim`: the serving simulator (and the queueing approximation) held against `headroom serve` as
// `headroom load` measures it, on this machine. For each weight format and prefill mode it starts a server, measures
// its saturation throughput (every request at once) and Poisson points at fractions of it, then predicts the same
// points from the step-time model fitted to `headroom bench steps` — never from the load runs — and prints measured
// against predicted with the errors, the issue's bars, and a plot of both.
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomEngine
import HeadroomKernels
import HeadroomLoad
import HeadroomReport
import HeadroomRunner
import HeadroomScheduling
import HeadroomServe
import HeadroomStore

struct BenchSimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Check the serving simulator and the queueing approximation against `headroom serve` measured by `headroom load`.",
        discussion: """
            For each --precision and each prefill mode (--prefill chunked,whole) starts a `headroom serve` child \
            (--model, --threads, --max-num-seqs, --max-batched-tokens — the model's context for whole prefills —, a KV \
            pool for every request) and measures with \
            `headroom load`: the saturation point (--requests at once) and Poisson points at --fractions of the measured \
            saturation throughput, each --warmup + --requests requests of --prompt-tokens token ids and --output-tokens \
            tokens. Every point is stored (`headroom history`).

            Then predicts each point: the discrete-event simulator runs the server's own scheduler (HeadroomScheduling) \
            with step times from the model fitted to the latest `headroom bench steps` run of the same model, format and \
            threads (--steps-run to choose one) — nothing from the load runs — on the very arrival times the client \
            sent at (its seeded Poisson schedule, regenerated), and over --replications other seeded Poisson schedules \
            of the point's rate and request count (warm-ups simulated and left out, as the client leaves them out); the \
            queueing approximation predicts the p95s from the same step model. Errors are (predicted − measured) / \
            measured. Bars (issue 12), for the simulator on the client's schedule: median over the Poisson points of \
            |error| ≤ 15 % for TTFT and TPOT p50 and ≤ 25 % for their p95, and saturation throughput within 10 %. \
            Exits 1 when one is missed. Each server writes a --step-log; its steps are held against the step model \
            (a diagnostic table), per point and per half-minute: a half-minute whose steps ran over 1.10× the \
            configuration's median one marks its point UNSTEADY (the machine slowed for a while, not the model: \
            where a bar is missed there, rerun on a quiet machine), and a median half-minute over 5 % off the model \
            marks the configuration DRIFT (the machine changed since `bench steps`, or the server runs the shapes \
            differently). Writes REPORTS/bench-sim-MODEL/ with a plot of measured against predicted.
            """)

    @Option(name: .long, help: "A catalog model with synthetic weights.")
    var model = "small"
    @Option(name: .long, parsing: .upToNextOption, help: ArgumentHelp("Weight formats (\(listHelp)).", valueName: "format"))
    var precision: [String] = ["q4_0", "f32"]
    @Option(name: .long, help: "Threads of the server (default: all cores).")
    var threads: Int?
    @Option(name: .customLong("prompt-tokens"), help: "Prompt length in tokens.")
    var promptTokens = 64
    @Option(name: .customLong("output-tokens"), help: "Output tokens per request.")
    var outputTokens = 32
    @Option(name: .long, help: "Measured requests per point.")
    var requests = 40
    @Option(name: .long, help: "Warm-up requests at the start of each point (simulated too, left out of both sides' figures).")
    var warmup = 2
    @Option(name: .long, help: ArgumentHelp("Poisson rates as fractions of the measured saturation throughput (\(listHelp)).", valueName: "f"))
    var fractions: [String] = ["0.3", "0.55", "0.8", "1.05"]
    @Option(name: .long, help: ArgumentHelp("Prefill modes to run (\(listHelp)): chunked, whole.", valueName: "mode"))
    var prefill: [String] = ["chunked", "whole"]
    @Option(name: .customLong("max-num-seqs"), help: "The server's running batch, at most.")
    var maxNumSeqs = 16
    @Option(name: .customLong("max-batched-tokens"), help: "The server's step budget with chunked prefill (whole prefills get the model's context, as the scheduler requires).")
    var maxBatchedTokens = 96
    @Option(name: .long, help: "Seeded Poisson schedules the simulator averages over per point.")
    var replications = 20
    @Option(name: .customLong("steps-run"), help: ArgumentHelp("Fit step times to this stored `bench steps` run (default: the latest that matches).", valueName: "id"))
    var stepsRun: Int64?
    @OptionGroup var catalog: CatalogOptions
    @Option(name: .long, help: ArgumentHelp("Folder that receives the report folder.", valueName: "dir"))
    var reports = "Reports"
    @OptionGroup var store: StoreOptions
    @Flag(name: .long, help: "Print JSON on standard output instead of tables.")
    var json = false

    static let logPath = ".headroom/bench/sim-server.log"
    /// The seed of every point's Poisson schedule (a run of one point uses it as is), which the simulator replays.
    static let loadSeed: UInt64 = 1
    /// Each server's `--step-log`, beside its log.
    static func stepLogPath(type: QuantType, mode: Mode) -> String { ".headroom/bench/sim-steps-\(type)-\(mode.name).csv" }

    struct Mode: Hashable { var chunked: Bool; var name: String { chunked ? "chunked" : "whole" } }

    func parsedFractions() throws -> [Double] {
        let values = try flatList(fractions, option: "--fractions").map { s -> Double in
            guard let f = Double(s), f.isFinite, f > 0, f <= 4 else { throw ValidationError("--fractions: expected numbers in (0, 4], got \(s)") }
            return f
        }
        guard values.count >= 1 else { throw ValidationError("--fractions: expected at least one fraction") }
        return values.sorted()
    }

    func modes() throws -> [Mode] {
        try flatList(prefill, option: "--prefill").map { s in
            switch s {
            case "chunked": return Mode(chunked: true)
            case "whole": return Mode(chunked: false)
            default: throw ValidationError("--prefill: expected chunked or whole, got \(s)")
            }
        }
    }

    func validate() throws {
        for p in try flatList(precision, option: "--precision") { _ = try enginePrecision(p) }
        _ = try threadCount(threads)
        _ = try parsedFractions()
        _ = try modes()
        if !(1...4096).contains(promptTokens) { throw ValidationError("--prompt-tokens: expected 1 to 4096") }
        if !(2...4096).contains(outputTokens) { throw ValidationError("--output-tokens: expected 2 to 4096 (TPOT needs two tokens)") }
        if !(4...1000).contains(requests) { throw ValidationError("--requests: expected 4 to 1000") }
        if !(0...100).contains(warmup) { throw ValidationError("--warmup: expected 0 to 100") }
        if !(1...1000).contains(replications) { throw ValidationError("--replications: expected 1 to 1000") }
        if !(1...4096).contains(maxNumSeqs) { throw ValidationError("--max-num-seqs: expected 1 to 4096") }
        if maxBatchedTokens < maxNumSeqs { throw ValidationError("--max-batched-tokens: expected at least --max-num-seqs (\(maxNumSeqs))") }
    }

    func run() throws {
        try reportingErrors {
            let threads = try threadCount(self.threads)
            let shape = try catalog.load().model(model)
            guard promptTokens + outputTokens + 1 <= shape.context else {
                throw InputError(file: "--prompt-tokens", path: "", message: "prompt \(promptTokens) + output \(outputTokens) exceed the context of \(shape.id) (\(shape.context))")
            }
            let db = try store.open()
            let formats = try flatList(precision, option: "--precision").map { try enginePrecision($0) }
            // Every step model first: a missing `bench steps` run stops here, before any server starts.
            var predictors: [String: MeasuredStepTime] = [:]
            for type in formats {
                predictors[type.description] = try StepTimeSource.load(store: db, model: shape.id, precision: type.description,
                                                                          threads: threads, runID: stepsRun)
            }
            Interrupt.install()
            var points: [SimValidation.Point] = []
            var saturations: [SimValidation.Saturation] = []
            for type in formats {
                for mode in try modes() {
                    let (p, s) = try measureAndPredict(shape: shape, type: type, mode: mode, threads: threads, predictor: predictors[type.description]!, db: db)
                    points += p
                    saturations.append(s)
                }
            }
            var result = SimValidation(model: shape.id, threads: threads, promptTokens: promptTokens, outputTokens: outputTokens,
                                       requests: requests, warmup: warmup, replications: replications,
                                       stepModels: formats.map { predictors[$0.description]!.basis }, points: points, saturations: saturations)
            result.summarise()
            let folder = (reports as NSString).appendingPathComponent("bench-sim-\(shape.id)")
            let plots = SimValidationPlot.plots(result, folder: folder)
            var written: [String] = []
            if Gnuplot.executable() != nil {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                for plot in plots { try Gnuplot.render(plot); written.append(plot.output) }
            }
            result.plots = written
            if json { try printJSON(result) } else { print(result.rendered) }
            if result.bars.contains(where: { !$0.passed }) { throw ExitCode(Exit.failure) }
        }
    }

    /// One format and prefill mode: the server measured, then predicted.
    func measureAndPredict(shape: ModelShape, type: QuantType, mode: Mode, threads: Int, predictor: MeasuredStepTime, db: Store) throws
        -> ([SimValidation.Point], SimValidation.Saturation) {
        let config = "\(type) \(mode.name)"
        let perRequest = promptTokens + outputTokens
        // Room for every request of a point at once: the KV pool never limits what is measured here.
        let kvTokens = (requests + warmup) * perRequest + 64
        // Whole prefills need a budget that holds the longest prompt the model allows (the scheduler's rule, as vLLM's).
        let budget = mode.chunked ? maxBatchedTokens : max(maxBatchedTokens, shape.context)
        var args = ["--max-num-seqs", "\(maxNumSeqs)", "--max-batched-tokens", "\(budget)", "--max-queue", "\(requests + warmup + 16)",
                    "--kv-memory", "\(kvTokens)"]
        if !mode.chunked { args.append("--no-chunked-prefill") }
        let stepLogPath = Self.stepLogPath(type: type, mode: mode)
        args += ["--step-log", stepLogPath]
        var stepsSeen = 0
        // The steps the server logged since the last call, held against the step model.
        func serverSteps() -> StepLogCheck? {
            guard let rows = try? StepLog.read(stepLogPath), rows.count > stepsSeen else { return nil }
            defer { stepsSeen = rows.count }
            return StepLogCheck(Array(rows[stepsSeen...]), predictor: predictor)
        }
        let (server, url) = try ServerProcess.startReady(arguments: args, model: shape.id, precision: type.description, threads: threads,
                                                         logPath: Self.logPath, label: "\(config): ")
        defer { server.stop() }
        let scheduler = SchedulerConfig(maxNumSeqs: maxNumSeqs, maxBatchedTokens: budget, chunkedPrefill: mode.chunked,
                                        blockSize: PagedKVCache.defaultBlockSize,
                                        totalBlocks: KVCacheBudget.tokens(kvTokens).blocks(for: ModelConfig(shape)),
                                        maxModelLength: shape.context)
        let spec = ReplicaSpec(predictor: predictor, scheduler: scheduler, maxBatch: maxNumSeqs)

        // Saturation: every request at once, the server's throughput when it never waits for work.
        warn("\(config): saturation point, \(warmup) + \(requests) requests at once")
        _ = serverSteps()  // the warm-up step
        let burst = try measurePoint(url: url, shape: shape, profile: .concurrency(requests + warmup), name: "\(config) saturation", db: db)
        let measuredSaturation = burst.throughput
        let simulatedSaturation = try SimPrediction.saturation(spec, requests: requests, warmup: warmup, prompt: promptTokens,
                                                               output: outputTokens)
        let saturation = SimValidation.Saturation(config: config, measuredRequestsPerSecond: measuredSaturation,
                                                  simulated: simulatedSaturation, runID: burst.runID, serverSteps: serverSteps())

        var points: [SimValidation.Point] = []
        for (k, f) in try parsedFractions().enumerated() {
            let rate = f * measuredSaturation
            warn(String(format: "\(config): Poisson point %d at %.3f req/s (%.2f × saturation)", k + 1, rate, f))
            let m = try measurePoint(url: url, shape: shape, profile: .poisson(rate), name: "\(config) poisson-\(k + 1)", db: db)
            let steps = serverSteps()
            let simulated = try SimPrediction.poisson(spec, rate: rate, requests: requests, warmup: warmup, prompt: promptTokens,
                                                      output: outputTokens, replications: replications, seed: UInt64(k + 1))
            let replayed = try SimPrediction.replay(spec, rate: rate, seed: Self.loadSeed, requests: requests, warmup: warmup, prompt: promptTokens,
                                                    output: outputTokens)
            let queueing = QueueingServingModel().load(spec, ServingWorkload(promptTokens: promptTokens, outputTokens: outputTokens),
                                                       requestsPerSecond: rate)
            points.append(SimValidation.Point(config: config, point: "poisson-\(k + 1)", fraction: f, offeredRate: rate,
                                              achievedRate: m.achievedRate, measured: m.figures, simulated: simulated,
                                              queueing: queueing.map(SimValidation.Figures.init(queueing:)), replayed: replayed, runID: m.runID,
                                              serverSteps: steps))
        }
        return (points, saturation)
    }

    struct MeasuredPoint { var figures: SimValidation.Figures; var throughput: Double; var achievedRate: Double?; var runID: Int64 }

    /// One load point against the server, stored as a run of its own.
    func measurePoint(url: String, shape: ModelShape, profile: LoadProfileSpec, name: String, db: Store) throws -> MeasuredPoint {
        var endpoint = EndpointSpec(name: "headroom-serve", url: url)
        endpoint.modelShape = shape.id
        var settings = LoadSettings(endpoint: endpoint.name, profile: profile, promptTokens: promptTokens, outputTokens: outputTokens,
                                    durationSeconds: nil, requests: requests, warmup: warmup, promptKind: PromptChoice.tokenIDs.rawValue)
        settings.seed = Self.loadSeed
        let scenario = LoadCommand.commandLineScenario(name: "bench-sim", description: "headroom bench sim: \(name)", endpoint: endpoint, load: settings)
        let outcome = try LoadCommand.measure(scenario, store: db, load: ScenarioWorkloads.LoadContext(progress: { _ in }))
        let stored = try db.load(runID: outcome.runID)
        guard let c = stored.cases.first(where: { $0.kind == .load }) else { throw RunFailure("\(name): the load run stored no point") }
        let ok = c.values("ok").filter { $0 == 1 }.count
        guard ok == c.values("ok").count, ok > 0 else {
            throw RunFailure("\(name): \(c.values("ok").count - ok) of \(c.values("ok").count) requests failed; see \(Self.logPath)")
        }
        let ttft = c.values("ttft_ms"), tpot = c.values("tpot_ms"), e2e = c.values("e2e_ms")
        let figures = SimValidation.Figures(ttftP50Ms: LatencyDistribution(ttft)?.p50, ttftP95Ms: LatencyDistribution(ttft)?.p95,
                                            tpotP50Ms: LatencyDistribution(tpot)?.p50, tpotP95Ms: LatencyDistribution(tpot)?.p95)
        // All sent at once: the point lasts as long as its slowest request.
        let span = (e2e.max() ?? 0) / 1000
        let point = LoadCasePoint(c)
        return MeasuredPoint(figures: figures, throughput: span > 0 ? Double(e2e.count) / span : 0, achievedRate: point.achievedRate,
                             runID: outcome.runID)
    }
}
