// `headroom load`: any OpenAI-compatible endpoint measured under a load profile, every request stored as samples
// in the history, summarised per point and reported. The same workload a scenario's `measure.load` runs.
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomLoad
import HeadroomReport
import HeadroomRunner
import HeadroomStore

struct LoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Measure an OpenAI-compatible endpoint under load: TTFT, ITL, TPOT, throughput, goodput.",
        discussion: """
            Sends streamed requests to ENDPOINT (vLLM, TGI, llama.cpp's server, Ollama, `headroom serve`, …) on a \
            load profile and measures each at the client: time to first token, every inter-token gap, time per \
            output token, end-to-end latency, tokens (from `usage` when the server gives it, else counted), status \
            and error. Every request is stored in the results store as samples of one case per point; the table \
            gives p50/p95 per point (HdrHistogram), and Reports/load-NAME/ the plots.

            Profiles: concurrency:N (closed loop, N in flight); rate:R (open loop, R requests/s); poisson:R (open \
            loop, exponential gaps, seeded); trace:FILE (JSONL of timestamp, prompt_tokens, output_tokens, replayed on \
            its timestamps); sweep[:rates=K] (synchronous, then maximum throughput, then K constant rates between \
            them, as GuideLLM does; K defaults to 5; --max-concurrency caps the throughput point, 256 by default); slo-search[:target=F,probes=N] (the highest Poisson rate whose SLO \
            attainment reaches F, 0.9 by default, by bisection, with its interval). Open loop is open loop: requests \
            leave on their schedule whatever the server does, and a point whose client fell behind its schedule says \
            so (schedule lag p99 over 10 ms).

            Prompts are synthetic token ids of exact length where the endpoint accepts them (vLLM, llama.cpp's \
            server, headroom serve), text of about the length otherwise (--prompt-kind auto tries token ids once), or \
            a --dataset (JSONL of prompt_tokens and output_tokens, or prompt text). Requests ask for exactly \
            --output-tokens with ignore_eos (servers that refuse it: a 400, counted).

            Failed requests are counted by kind (connect, timeout, tls, http_401, http_404, http_429, http_4xx, \
            http_5xx, malformed_stream, incomplete_stream, other), never a crash. Exit codes: 0 when the run \
            completed with at least one successful request, 1 when none succeeded, 2 for bad input, 130 on Ctrl-C \
            (the run is stored as interrupted).
            """)

    @Argument(help: ArgumentHelp("A scenario file that declares --endpoint NAME under endpoints: (needed only for a name).",
                                 valueName: "scenario"))
    var scenario: String?

    @Option(name: .long, help: ArgumentHelp("The server's base URL (http://host:port), or the name of an endpoint the scenario declares.",
                                            valueName: "url|name"))
    var endpoint: String

    @Option(name: .long, help: ArgumentHelp("How cases and reports name the endpoint (default: host:port, or the scenario's name).", valueName: "name"))
    var name: String?

    @Option(name: .long, help: ArgumentHelp("The model sent in requests (default: the first of the server's /v1/models).", valueName: "name"))
    var model: String?

    @Option(name: .customLong("api-key-env"), help: ArgumentHelp("An environment variable holding the API key (sent as a bearer token).", valueName: "var"))
    var apiKeyEnv: String?

    @Option(name: .long, help: ArgumentHelp("completions or chat (default: completions, or the scenario's).", valueName: "api"))
    var api: String?

    @Option(name: .long, help: ArgumentHelp("concurrency:N, rate:R, poisson:R, trace:FILE, sweep[:rates=K] or slo-search[:target=F,probes=N].",
                                            valueName: "profile"))
    var profile: String

    @Option(name: .customLong("prompt-tokens"), help: "Synthetic prompt length in tokens.")
    var promptTokens: Int?

    @Option(name: .long, help: ArgumentHelp("JSONL prompts: prompt_tokens and output_tokens, or prompt text (instead of --prompt-tokens).", valueName: "file"))
    var dataset: String?

    @Option(name: .customLong("output-tokens"), help: "Output tokens requested per request.")
    var outputTokens = LoadSettings.defaultOutputTokens

    @Option(name: .long, help: ArgumentHelp("How long each point sends (60s by default), such as 30s or 2m.", valueName: "duration"))
    var duration: String?

    @Option(name: .long, help: "Measured requests per point (instead of --duration).")
    var requests: Int?

    @Option(name: .long, help: "Requests sent first at each point and left out of its figures.")
    var warmup = LoadSettings.defaultWarmup

    @Option(name: .long, help: ArgumentHelp("Objectives a request must all meet to be good, such as ttft_p95=500ms,tpot_p95=50ms (ttft, tpot, itl, e2e; p50/p90/p95/p99; ms or s).",
                                            valueName: "objectives"))
    var slo: String?

    @Option(name: .customLong("prompt-kind"), help: "auto, token-ids or text.")
    var promptKind = "auto"

    @Option(name: .long, help: "Seed of the prompts and the Poisson gaps.")
    var seed: UInt64 = 1

    @Option(name: .customLong("max-concurrency"), help: "Requests in flight at a sweep's or slo-search's throughput point (every request at once, at most this many; 1 to 4096).")
    var maxConcurrency = LoadSettings.defaultMaxConcurrency

    @Option(name: .long, help: ArgumentHelp("A request with no complete answer this long after it was sent is a timeout.", valueName: "duration"))
    var timeout = "300s"

    @Option(name: .long, help: ArgumentHelp("The catalog hardware the endpoint runs on: its sweeps then calibrate that hardware for plan and whatif.", valueName: "id"))
    var hardware: String?

    @Option(name: .long, help: "Devices the model is spread over (tensor parallel).")
    var devices: Int?

    @Option(name: .long, help: ArgumentHelp("The endpoint's weight precision as the planner names it (bf16, fp8, int8, int4…).", valueName: "precision"))
    var precision: String?

    @Option(name: .customLong("model-shape"), help: ArgumentHelp("The catalog model the endpoint serves (for calibration).", valueName: "id"))
    var modelShape: String?

    @OptionGroup var catalog: CatalogOptions

    @Option(name: .long, help: ArgumentHelp("Folder that receives the report folder.", valueName: "dir"))
    var reports = "Reports"

    @Flag(name: .customLong("no-report"), help: "Measure and store only.")
    var noReport = false

    @OptionGroup var store: StoreOptions

    @Option(name: .long, help: ArgumentHelp(
        "Send shard I of N of the schedule (the requests i with i mod N = I, at their original times), or env/N: I from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID. Open loops only (rate, poisson, trace).",
        discussion: "N clients together send the whole schedule; `headroom report --sweep ID` merges their requests into one set of percentiles (docs/sweeps.md).",
        valueName: "I/N|env/N"))
    var shard: String?

    @Option(name: .long, help: ArgumentHelp("The sweep this shard belongs to (default: load-NAME-Nx-HASH from the endpoint, N and the command line, the same on every shard).", valueName: "id"))
    var sweep: String?

    @Flag(name: .long, help: "Print JSON on standard output instead of tables.")
    var json = false

    func validate() throws {
        if let promptTokens, !(1...PlanLimits.tokensPerRequest).contains(promptTokens) {
            throw ValidationError("--prompt-tokens: expected an integer from 1 to \(PlanLimits.tokensPerRequest)")
        }
        if promptTokens != nil && dataset != nil { throw ValidationError("--prompt-tokens and --dataset: give one, not both") }
        if !(1...PlanLimits.tokensPerRequest).contains(outputTokens) {
            throw ValidationError("--output-tokens: expected an integer from 1 to \(PlanLimits.tokensPerRequest)")
        }
        if duration != nil && requests != nil { throw ValidationError("--duration and --requests: give one, not both") }
        if let requests, !(1...10_000_000).contains(requests) { throw ValidationError("--requests: expected an integer from 1 to 10000000") }
        if !(0...10_000).contains(warmup) { throw ValidationError("--warmup: expected an integer from 0 to 10000") }
        if !LoadSettings.promptKinds.contains(promptKind) {
            throw ValidationError("--prompt-kind: expected one of \(LoadSettings.promptKinds.joined(separator: ", ")), got '\(promptKind)'")
        }
        if let api, EndpointSpec.API(rawValue: api) == nil { throw ValidationError("--api: expected completions or chat, got '\(api)'") }
        if !(1...4096).contains(maxConcurrency) { throw ValidationError("--max-concurrency: expected an integer from 1 to 4096") }
        if let devices, !(1...4096).contains(devices) { throw ValidationError("--devices: expected an integer from 1 to 4096") }
        if let name, name.range(of: "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$", options: .regularExpression) == nil {
            throw ValidationError("--name: expected letters, digits, '.', '_', '-' or ':' (at most 64, starting with a letter or digit), got '\(TerminalText.escape(name, keepNewlines: false))'")
        }
        _ = try seconds(duration, "--duration")
        _ = try seconds(timeout, "--timeout")
        if let shard { do { _ = try ShardOption.parse(shard) } catch let e as InputError { throw ValidationError(e.description) } }
        if let sweep {
            guard shard != nil else { throw ValidationError("--sweep: names the sweep of a shard; give --shard I/N too") }
            guard SweepID.isValid(sweep) else {
                throw ValidationError("--sweep: expected letters, digits, '.', '_' or '-' (at most 128, starting with a letter or digit), got \"\(sweep)\"")
            }
        }
    }

    /// The shard this client sends, its index from the scheduler's variable for env/N; nil without --shard. Only an
    /// open loop has a schedule fixed in advance to split.
    func resolvedShard(_ settings: LoadSettings, scenario: Scenario) throws -> SweepShard? {
        guard let shard else { return nil }
        switch settings.profile {
        case .rate, .poisson, .trace: break
        default:
            throw InputError(file: "--shard", path: "", message: "splits an open loop's schedule (rate:R, poisson:R or trace:FILE), got --profile "
                             + "\(settings.profile.normalized): its requests or points depend on what the others achieved")
        }
        let option = try ShardOption.parse(shard)
        return SweepShard(sweep: sweep ?? SweepID.default(for: scenario, count: option.count), index: try option.index(), count: option.count)
    }

    func seconds(_ text: String?, _ option: String) throws -> Double? {
        guard let text else { return nil }
        switch DurationText.seconds(text) {
        case .success(let s): return s
        case .failure(let r): throw ValidationError("\(option): expected \(r.expected), got '\(text)'")
        }
    }

    func run() throws {
        try reportingErrors {
            let (endpoint, settings) = try resolve()
            let apiKey = try LoadWorkload.apiKey(for: endpoint, source: apiKeyEnv != nil ? "--api-key-env" : (scenario ?? "--endpoint"))
            let name = "load-" + Self.folderName(endpoint.name)
            let scenario = Self.commandLineScenario(name: name, description: "headroom load on \(endpoint.url)", endpoint: endpoint, load: settings)
            let shard = try resolvedShard(settings, scenario: scenario)
            let db = try store.open()
            let line = LoadProgressLine()
            defer { line.clear() }
            let context = ScenarioWorkloads.LoadContext(apiKeys: apiKey.map { [endpoint.name: $0] } ?? [:], progress: line.handler,
                                                        shard: shard.map { LoadShard(index: $0.index, count: $0.count) })
            let outcome = try Self.measure(scenario, store: db, load: context, shard: shard)
            line.clear()
            let stored = try db.load(runID: outcome.runID)
            var reportPath: String?
            if !noReport {
                let folder = (reports as NSString).appendingPathComponent(name + (shard.map { "-shard-\($0.index)-of-\($0.count)" } ?? ""))
                try ReportWriter(builders: ReportWriter.standardBuilders).write(run: stored, folder: folder)
                reportPath = (folder as NSString).appendingPathComponent("index.html")
            }
            let loadCases = stored.cases.filter { $0.kind == .load }
            if json {
                try printJSON(LoadRunJSON(stored, report: reportPath, db: store.shown))
            } else {
                print("Endpoint \(endpoint.name) (\(endpoint.url)): run \(outcome.runID), \(loadCases.count) point(s), "
                      + "\(try db.sampleCount(runID: outcome.runID)) samples in \(store.shown)\n")
                if let tables = LoadNotes.tables(stored) { print(tables) }
                if let reportPath { print("Report: \(reportPath)") }
            }
            let ok = loadCases.reduce(0) { $0 + ($1.values("ok").filter { $0 == 1 }.count) }
            if ok == 0 {
                warn("no request succeeded: see the errors by kind above (or in --json)")
                throw ExitCode(Exit.failure)
            }
        }
    }

    /// The endpoint and the load settings from the options, over the scenario's declaration when --endpoint names one.
    func resolve() throws -> (EndpointSpec, LoadSettings) {
        let catalog = try self.catalog.load(forScenario: scenario)
        var spec: EndpointSpec
        if endpoint.contains("://") {
            let url: String
            switch EndpointSpec.normaliseURL(endpoint) {
            case .success(let u): url = u
            case .failure(let r): throw InputError(file: "--endpoint", path: "", message: "expected \(r.expected), got '\(endpoint)'")
            }
            spec = EndpointSpec(name: name ?? LoadEndpoint.defaultName(url: url), url: url)
        } else {
            guard let scenario else {
                throw InputError(file: "--endpoint", path: "", message: "'\(endpoint)' is not a URL (http://host:port); an endpoint name needs the scenario that declares it")
            }
            let s = try self.catalog.scenario(scenario)
            guard let declared = s.endpoints.first(where: { $0.name == endpoint }) else {
                let known = s.endpoints.map(\.name)
                throw InputError(file: scenario, path: "endpoints", message: "no endpoint named '\(endpoint)'"
                                 + (known.isEmpty ? "; the scenario declares none" : "; it declares \(known.joined(separator: ", "))"))
            }
            spec = declared
            if let name { spec.name = name }
        }
        if let model { spec.model = model }
        if let apiKeyEnv {
            guard EndpointSpec.isEnvironmentName(apiKeyEnv) else {
                throw InputError(file: "--api-key-env", path: "", message: "expected an environment variable name, got '\(apiKeyEnv)'")
            }
            spec.apiKeyEnv = apiKeyEnv
        }
        if let api { spec.api = EndpointSpec.API(rawValue: api)! }
        if let hardware {
            guard catalog.hardware.contains(where: { $0.id == hardware }) else {
                throw InputError(file: "--hardware", path: "", message: "expected a hardware id of the catalog (\(catalog.hardware.map(\.id).joined(separator: ", "))), got '\(hardware)'")
            }
            spec.hardware = hardware
        }
        if let devices { spec.devices = devices }
        if let precision {
            switch PrecisionNames.plannerPrecision(precision) {
            case .success(let p): spec.precision = p.rawValue
            case .failure(let r): throw InputError(file: "--precision", path: "", message: "expected \(r.expected), got '\(precision)'")
            }
        }
        if let modelShape {
            guard catalog.models[modelShape] != nil else {
                throw InputError(file: "--model-shape", path: "", message: "expected a model of the catalog (\(catalog.models.keys.sorted().joined(separator: ", "))), got '\(modelShape)'")
            }
            spec.modelShape = modelShape
        }

        var profile = try LoadProfileSpec.parse(profile)
        if case .trace(let path) = profile {
            _ = try LoadInputFiles.readTrace(path: path)
            profile = .trace(path)
        }
        var settings = LoadSettings(endpoint: spec.name, profile: profile)
        if let dataset {
            _ = try LoadInputFiles.readDataset(path: dataset)
            settings.dataset = dataset; settings.promptTokens = nil
        } else if let promptTokens {
            settings.promptTokens = promptTokens
        }
        settings.outputTokens = outputTokens
        if let requests { settings.requests = requests; settings.durationSeconds = nil }
        if let d = try seconds(duration, "--duration") { settings.durationSeconds = d }
        settings.warmup = warmup
        if let slo { settings.slo = try SLOSpec.parse(slo) }
        if let problem = settings.sizeProblem { throw InputError(file: "--profile", path: "", message: problem) }
        if case .sloSearch = profile, settings.slo == nil {
            throw InputError(file: "--profile", path: "", message: "slo-search needs --slo (such as --slo ttft_p95=500ms,tpot_p95=50ms)")
        }
        settings.promptKind = promptKind
        settings.seed = seed
        if let t = try seconds(timeout, "--timeout") { settings.timeoutSeconds = t }
        settings.maxConcurrency = maxConcurrency
        return (spec, settings)
    }

    /// A report folder's name from an endpoint name (which may hold ':' from host:port).
    static func folderName(_ s: String) -> String {
        String(s.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" ? $0 : "-" }.prefix(59))
    }
}

extension LoadCommand {
    /// The one-endpoint, load-only scenario a command line describes (`headroom load`, `bench load`); the run stores
    /// the command line as its scenario text.
    static func commandLineScenario(name: String, description: String, endpoint: EndpointSpec, load: LoadSettings) -> Scenario {
        let text = (["headroom"] + shardNeutral(Array(CommandLine.arguments.dropFirst()))).joined(separator: " ")
        var scenario = Scenario(name: name, description: description, file: "(command line)", text: text,
                                hash: fnv1a64Hex(text), probe: ProbeSettings(), measure: nil)
        scenario.endpoints = [endpoint]
        scenario.load = [load]
        return scenario
    }

    /// The arguments with --shard's index written as `*` (`--shard */4`): every shard of one launch stores the same
    /// command line, so they agree on its hash (the default sweep id, and the merge's check that all ran one thing).
    static func shardNeutral(_ args: [String]) -> [String] {
        func neutral(_ v: String) -> String { v.split(separator: "/", omittingEmptySubsequences: false).count == 2 ? "*/" + v.split(separator: "/")[1] : v }
        var out: [String] = []
        var valueNext = false
        for a in args {
            if valueNext { out.append(neutral(a)); valueNext = false; continue }
            if a == "--shard" { valueNext = true; out.append(a); continue }
            out.append(a.hasPrefix("--shard=") ? "--shard=" + neutral(String(a.dropFirst(8))) : a)
        }
        return out
    }

    /// Measures `scenario` under one run record in `db` (as `shard` of its sweep when given); Ctrl-C is exit 130, the
    /// run stored as interrupted.
    static func measure(_ scenario: Scenario, store db: Store, load: ScenarioWorkloads.LoadContext, shard: SweepShard? = nil) throws -> RunOutcome {
        Interrupt.install()
        let machine = MachineInfo.current()
        let runner = Runner(store: db, progress: Progress(), version: Headroom.version)
        do {
            return try ServeCommand.runBlocking {
                try await runner.run(scenario: scenario, workloads: ScenarioWorkloads.workloads(for: scenario, machine: machine, load: load),
                                     machine: machine, shard: shard)
            }
        } catch is RunInterrupted {
            throw ExitCode(130)
        }
    }
}

/// The progress line on standard error while a point runs (only when standard error is a terminal).
final class LoadProgressLine: @unchecked Sendable {
    let enabled = isatty(STDERR_FILENO) == 1
    private let lock = NSLock()
    private var last = Date.distantPast
    private var drawn = false

    var handler: LoadProgressHandler? {
        guard enabled else { return nil }
        return { [self] p in draw(p) }
    }

    func draw(_ p: LoadProgress) {
        lock.lock(); defer { lock.unlock() }
        let now = Date()
        guard now.timeIntervalSince(last) > 0.2 else { return }
        last = now
        let ttft = p.ttftP50Ms.map { String(format: "%.0f ms", $0) } ?? "—"
        let text = String(format: "%@ %.1f s: sent %d, done %d, in flight %d, errors %d, TTFT p50 %@",
                          p.point, p.elapsed, p.sent, p.done, p.inFlight, p.errors, ttft)
        FileHandle.standardError.write(Data("\r\u{1B}[2K\(TerminalText.escape(text, keepNewlines: false))".utf8))
        drawn = true
    }

    func clear() {
        lock.lock(); defer { lock.unlock() }
        if drawn { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
        drawn = false
    }
}

/// What the table leaves out, in lines under it: errors by kind, how prompts were sent and tokens counted, the
/// slo-search's answer, and points whose client fell behind.
enum LoadNotes {
    /// Each endpoint's table of points (measured at this client) and the notes under it; nil without load cases.
    static func tables(_ run: StoredRun) -> String? {
        let byEndpoint = LoadCasePoint.all(run)
        guard !byEndpoint.isEmpty else { return nil }
        return byEndpoint.keys.sorted().map { name in
            let points = byEndpoint[name]!
            let head = "Endpoint \(TerminalText.escape(name, keepNewlines: false)) (measured at this client):\n"
            return ([head + LoadSection.table(points).rendered] + lines(points.map(\.c))).joined(separator: "\n")
        }.joined(separator: "\n\n")
    }

    static func lines(_ cases: [MeasuredCase]) -> [String] {
        var out: [String] = []
        var errors: [String: Int] = [:]
        for c in cases {
            for (k, v) in c.facts where k.hasPrefix("errors_") { errors[String(k.dropFirst(7)), default: 0] += Int(v) ?? 0 }
        }
        let nonzero = errors.filter { $0.value > 0 }.sorted { $0.key < $1.key }
        if !nonzero.isEmpty { out.append("Errors by kind: " + nonzero.map { "\($0.key) \($0.value)" }.joined(separator: ", ")) }
        for (kind, _) in nonzero {
            if let text = cases.lazy.compactMap({ $0.facts["error_text_\(kind)"] }).first(where: { !$0.isEmpty }) {
                out.append("  first \(kind): \(TerminalText.escape(text, keepNewlines: false))")
            }
        }
        if let lookup = cases.lazy.compactMap({ $0.facts["model_lookup_error"] }).first {
            out.append("Model: none given and the server named none (\(TerminalText.escape(lookup, keepNewlines: false))); requests were sent as model \"unknown\" (give --model)")
        }
        let kinds = Set(cases.compactMap { $0.facts["prompt_kind"] }), counts = Set(cases.compactMap { $0.facts["token_counts"] }.filter { !$0.isEmpty })
        if !kinds.isEmpty {
            let described = kinds.sorted().map { $0 == "token_ids" ? "token ids of exact length" : $0 == "text" ? "text of about the length" : "a dataset" }
            out.append("Prompts: \(described.joined(separator: ", ")); output tokens counted from \(counts.sorted().map { $0 == "usage" ? "the server's usage" : $0 == "stream" ? "the stream's chunks" : $0 }.joined(separator: " and ").ifEmpty("nothing (no successful request)"))")
        }
        if let c = cases.first(where: { $0.facts["slo_search_target"] != nil }) {
            let target = Double(c.facts["slo_search_target"] ?? "") ?? 0
            let pass = Double(c.facts["slo_search_highest_passing"] ?? ""), fail = Double(c.facts["slo_search_lowest_failing"] ?? "")
            let slo = c.facts["slo"] ?? ""
            switch (pass, fail) {
            case let (p?, f?):
                out.append("SLO search (\(slo), attainment ≥ \(Fmt.percent(target))): highest passing Poisson rate \(Fmt.sig(p)) req/s; the answer lies in [\(Fmt.sig(p)), \(Fmt.sig(f))) req/s (measured)")
            case let (p?, nil):
                out.append("SLO search (\(slo), attainment ≥ \(Fmt.percent(target))): every probed rate passed, the highest \(Fmt.sig(p)) req/s; no higher rate was probed")
            case let (nil, f?):
                out.append("SLO search (\(slo), attainment ≥ \(Fmt.percent(target))): no probed rate passed, down to \(Fmt.sig(f)) req/s (the synchronous rate)")
            case (nil, nil):
                out.append("SLO search: no Poisson point was probed (the synchronous or throughput point achieved no rate)")
            }
        }
        let behind = cases.filter { $0.facts["fell_behind"] == "true" }.map { $0.params["point"] ?? "?" }
        if !behind.isEmpty {
            out.append("The client fell behind its schedule at \(behind.joined(separator: ", ")): those rates were not fully offered (this machine, not the endpoint, was the limit)")
        }
        return out
    }
}

private extension String {
    func ifEmpty(_ other: String) -> String { isEmpty ? other : self }
}

/// `headroom load --json`: the run and, per point, its inputs, facts and aggregates (all measured at this client).
struct LoadRunJSON: Encodable {
    var runId: Int64
    var status: String
    var store: String
    var report: String?
    var points: [Point]

    struct Point: Encodable {
        var endpoint: String
        var params: [String: String]
        var facts: [String: String]
        var requests: Int
        var ok: Int
        var ttftMs: LatencyDistribution?
        var tpotMs: LatencyDistribution?
        var itlMs: LatencyDistribution?
        var e2eMs: LatencyDistribution?
        var scheduleLagMs: LatencyDistribution?
        var outputTokensPerS: Double?
        var requestsPerS: Double?
        var goodputPerS: Double?
        var sloAttainment: Double?
    }

    init(_ s: StoredRun, report: String?, db: String) {
        runId = s.run.id ?? 0; status = s.run.status.rawValue; store = db; self.report = report
        // The same distribution as the table's and the report's (non-finite or negative values have none).
        func distribution(_ values: [Double]) -> LatencyDistribution? { LatencyDistribution(values.filter { $0.isFinite && $0 >= 0 }) }
        points = s.cases.filter { $0.kind == .load }.map { c in
            let p = LoadCasePoint(c)
            return Point(endpoint: c.name, params: c.params, facts: c.facts, requests: p.sent, ok: c.values("ok").filter { $0 == 1 }.count,
                         ttftMs: distribution(c.values("ttft_ms")), tpotMs: distribution(c.values("tpot_ms")),
                         itlMs: distribution(c.values("itl_ms")), e2eMs: distribution(c.values("e2e_ms")),
                         scheduleLagMs: distribution(c.values("schedule_lag_ms")),
                         outputTokensPerS: p.outputTokensPerSecond, requestsPerS: p.windowMean("requests_per_s"),
                         goodputPerS: p.goodput, sloAttainment: p.sloAttainment)
        }
    }
}
