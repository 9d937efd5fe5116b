// An endpoint measured under load as a workload of the runner: one spec per `measure.load` entry (or per
// `headroom load`), yielding one case per point of its profile — a sweep's later rates depend on what its
// first points achieved, so its cases are known only as it runs. Cases follow docs/load.md's contract.
import Foundation
import HeadroomCore
import HeadroomLoad

public struct LoadWorkload: Workload {
    public var settings: LoadSettings
    public var endpoint: EndpointSpec
    /// The API key, read from `endpoint.apiKeyEnv` by the caller (a missing variable is bad input, exit 2).
    public var apiKey: String?
    /// Reports while each point runs (a line on standard error when it is a terminal).
    public var progress: LoadProgressHandler?
    /// This client's part of the schedule (`headroom load --shard`); nil: all of it.
    public var shard: LoadShard?

    public init(settings: LoadSettings, endpoint: EndpointSpec, apiKey: String?, progress: LoadProgressHandler? = nil) {
        self.settings = settings; self.endpoint = endpoint; self.apiKey = apiKey; self.progress = progress
    }

    /// Reads the key named by `endpoint.apiKeyEnv` from `environment`; an unset or empty variable is an error
    /// naming it (the key itself is never printed).
    public static func apiKey(for endpoint: EndpointSpec, environment: [String: String] = ProcessInfo.processInfo.environment,
                              source: String) throws -> String? {
        guard let name = endpoint.apiKeyEnv else { return nil }
        guard let key = environment[name], !key.isEmpty else {
            throw InputError(file: source, path: "", message: "the environment variable \(name) (the API key of endpoint \(endpoint.name)) is not set or empty")
        }
        return key
    }

    public func cases() -> [CaseSpec] {
        [CaseSpec(kind: .load, name: endpoint.name, threads: 0, params: ["endpoint": endpoint.name, "profile": settings.profile.normalized],
                  steps: 1)]
    }

    public func measureCases(_ spec: CaseSpec, step: () throws -> Void) async throws -> [MeasuredCase] {
        try checkInterrupt()
        Self.raiseOpenFileLimit()
        // An endpoint that cannot name its model (down, or no /v1/models) is measured all the same, with a name that
        // says so: its requests fail and are counted by kind, and the run goes on (a scenario's other workloads too).
        var lookupError: String?
        let model: String
        do { model = try await resolveModel() } catch {
            model = "unknown"; lookupError = "\(error)"
        }
        let loadEndpoint = LoadEndpoint(name: endpoint.name, url: endpoint.url, api: endpoint.api == .chat ? .chat : .completions,
                                        model: model, apiKey: apiKey,
                                        requestTimeout: .milliseconds(Int64((settings.timeoutSeconds * 1000).rounded())))
        let client = LoadClient(endpoint: loadEndpoint)
        do {
            let result = try await run(client, lookupError: lookupError)
            await client.shutdown()
            try step()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }

    func run(_ client: LoadClient, lookupError: String?) async throws -> [MeasuredCase] {
        let choice = PromptChoice(rawValue: settings.promptKind) ?? .auto
        let prompts: PromptSource
        var dataset: String?
        if let path = settings.dataset {
            let entries = try LoadInputFiles.readDataset(path: path)
            let kind = await LoadRunner.resolvePromptKind(choice, client: client, promptTokens: 16, seed: settings.seed)
            prompts = PromptSource(dataset: entries, outputTokens: settings.outputTokens, lengthsAsText: kind != .tokenIDs, seed: settings.seed)
            dataset = (path as NSString).lastPathComponent
        } else {
            let length = settings.promptTokens ?? LoadSettings.defaultPromptTokens
            let kind = await LoadRunner.resolvePromptKind(choice, client: client, promptTokens: length, seed: settings.seed)
            prompts = PromptSource(kind: kind, promptTokens: length, outputTokens: settings.outputTokens, seed: settings.seed)
        }
        var trace: [LoadTraceEntry]?
        if case .trace(let path) = settings.profile { trace = try LoadInputFiles.readTrace(path: path) }
        let bound: LoadBound = settings.requests.map { .requests($0) } ?? .duration(settings.durationSeconds ?? LoadSettings.defaultDurationSeconds)
        // The grace at a duration-bound point's end is the request timeout: a long request sent late in the point
        // is awaited as long as any other, not cut short and counted as an error.
        var sharded = LoadRunPlan(profile: settings.profile, bound: bound, warmup: settings.warmup, seed: settings.seed,
                                  grace: settings.timeoutSeconds, throughputConcurrency: settings.maxConcurrency, trace: trace, slo: settings.slo)
        sharded.shard = shard
        let plan = sharded
        let result = try await withInterruptCancellation { try await LoadRunner.run(plan, client: client, prompts: prompts, progress: progress) }
        try checkInterrupt()
        var facts: [String: String] = ["devices": String(endpoint.devices)]
        if let lookupError { facts["model_lookup_error"] = String(lookupError.prefix(300)) }
        if let h = endpoint.hardware { facts["hardware"] = h }
        if let p = endpoint.precision { facts["precision"] = p }
        if let m = endpoint.modelShape { facts["model_shape"] = m }
        let context = LoadCaseContext(endpoint: client.endpoint, profile: settings.profile.normalized, promptKind: prompts.kind,
                                      promptTokens: dataset == nil && trace == nil ? prompts.promptTokens : nil,
                                      outputTokens: trace == nil ? settings.outputTokens : nil,
                                      dataset: dataset, slo: settings.slo, endpointFacts: facts)
        var cases = result.points.map { LoadAggregation.pointCase($0, context: context).measuredCase }
        if let search = result.search {
            // The search's answer, on every point it measured: the report and `headroom load` read it back from the store.
            for i in cases.indices {
                cases[i].facts["slo_search_target"] = String(search.target)
                cases[i].facts["slo_search_highest_passing"] = search.highestPassing.map { String($0) } ?? ""
                cases[i].facts["slo_search_lowest_failing"] = search.lowestFailing.map { String($0) } ?? ""
            }
        }
        return cases
    }

    /// The endpoint's declared model, or the first that its `GET /v1/models` lists.
    func resolveModel() async throws -> String {
        if let m = endpoint.model { return m }
        do {
            return try await LoadClient.firstModel(url: endpoint.url, apiKey: apiKey)
        } catch {
            throw LoadRunError("endpoint \(endpoint.name) (\(endpoint.url)): no model given and GET /v1/models did not name one: \(error); give --model")
        }
    }
}

extension LoadPointCase {
    /// The runner's case: kind `load`, thread count 0 (an endpoint has none here).
    public var measuredCase: MeasuredCase {
        MeasuredCase(kind: .load, name: name, threads: 0, params: params, facts: facts, samples: samples)
    }
}

extension LoadWorkload {
    /// Raises this process's soft limit of open files to its hard limit: an open loop holds one connection per
    /// request in flight, and the usual soft limit of 1024 would fail requests for the client's own reasons.
    static func raiseOpenFileLimit() {
        var limit = rlimit()
        #if os(Linux)
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(resource, &limit)
    }
}

/// Runs `body`, cancelling it when Ctrl-C sets `Interrupt.requested` (checked every 100 ms), then rethrows
/// `RunInterrupted` so the run is recorded as interrupted.
func withInterruptCancellation<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let work = Task { try await body() }
    let watch = Task {
        while !Task.isCancelled {
            if Interrupt.requested { work.cancel(); return }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
    defer { watch.cancel() }
    let value = try await work.value
    if Interrupt.requested { throw RunInterrupted() }
    return value
}
