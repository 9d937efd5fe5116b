// A scenario's `measure.load:` entries and `headroom load`'s options, as one value: which declared endpoint,
// which profile, which prompts, how long, and the SLO. Validated when the scenario is read, files included
// (a trace or dataset that does not parse stops the run before anything is measured, exit 2).
import Foundation

/// One load measurement of a declared endpoint.
public struct LoadSettings: Equatable, Sendable {
    /// The endpoint's name in the scenario's `endpoints:`.
    public var endpoint: String
    public var profile: LoadProfileSpec
    /// Synthetic prompt length in tokens (nil with a dataset).
    public var promptTokens: Int?
    /// Output tokens requested per request (a dataset line may give its own).
    public var outputTokens: Int
    /// A dataset file (JSONL), relative paths resolved against the scenario's folder.
    public var dataset: String?
    /// How long each point runs (seconds), or how many measured requests it sends; exactly one is set.
    public var durationSeconds: Double?
    public var requests: Int?
    /// Requests sent first at each point and left out of its samples.
    public var warmup: Int
    public var slo: SLOSpec?
    /// `auto`, `token-ids` or `text`: what synthetic prompts are sent as.
    public var promptKind: String
    public var seed: UInt64
    /// A request with no complete answer this long after it was sent is a `timeout` error; a duration-bound point
    /// also waits this long for its requests in flight at its end (none is cut short sooner).
    public var timeoutSeconds: Double = LoadSettings.defaultTimeoutSeconds
    /// The concurrency of a sweep's or slo-search's throughput point (every request at once, at most this many).
    public var maxConcurrency: Int = LoadSettings.defaultMaxConcurrency

    public static let defaultPromptTokens = 128
    public static let defaultOutputTokens = 128
    public static let defaultDurationSeconds = 60.0
    public static let defaultWarmup = 2
    public static let defaultTimeoutSeconds = 300.0
    public static let defaultMaxConcurrency = 256
    public static let promptKinds = ["auto", "token-ids", "text"]

    public init(endpoint: String, profile: LoadProfileSpec, promptTokens: Int? = LoadSettings.defaultPromptTokens,
                outputTokens: Int = LoadSettings.defaultOutputTokens, dataset: String? = nil,
                durationSeconds: Double? = LoadSettings.defaultDurationSeconds, requests: Int? = nil,
                warmup: Int = LoadSettings.defaultWarmup, slo: SLOSpec? = nil, promptKind: String = "auto", seed: UInt64 = 1) {
        self.endpoint = endpoint; self.profile = profile; self.promptTokens = promptTokens; self.outputTokens = outputTokens
        self.dataset = dataset; self.durationSeconds = durationSeconds; self.requests = requests; self.warmup = warmup
        self.slo = slo; self.promptKind = promptKind; self.seed = seed
    }

    /// The most requests one open-loop point may be scheduled to send: every request is kept (its chunk times
    /// and gaps become samples), so the bound keeps a point's memory in hand.
    public static let maxRequestsPerPoint = 1_000_000

    /// Why this load cannot run as given (an open-loop point scheduled past `maxRequestsPerPoint`), or nil.
    public var sizeProblem: String? {
        let rate: Double
        switch profile {
        case .rate(let r), .poisson(let r): rate = r
        default: return nil
        }
        let planned = requests.map(Double.init) ?? rate * (durationSeconds ?? Self.defaultDurationSeconds)
        guard planned + Double(warmup) > Double(Self.maxRequestsPerPoint) else { return nil }
        return "\(profile.normalized) for \(requests.map { "\($0) requests" } ?? "\(durationSeconds ?? Self.defaultDurationSeconds) s") would send "
            + "\(Int(min(planned, 9e15))) requests in one point; at most \(Self.maxRequestsPerPoint) (shorten the duration)"
    }

    public static let keys = ["endpoint", "profile", "prompt_tokens", "output_tokens", "dataset", "duration", "requests",
                              "warmup", "slo", "prompt_kind", "seed", "timeout", "max_concurrency"]

    /// Reads `measure.load` (a list); endpoints must be declared in `endpoints`, files are read and checked.
    public static func readList(_ field: YAMLField, endpoints: [EndpointSpec], directory: String) throws -> [LoadSettings] {
        try field.list { try read($0, endpoints: endpoints, directory: directory) }
    }

    static func read(_ field: YAMLField, endpoints: [EndpointSpec], directory: String) throws -> LoadSettings {
        let m = try field.mapping(allowed: keys)
        let endpointField = try m.required("endpoint")
        let name = try endpointField.string()
        guard endpoints.contains(where: { $0.name == name }) else {
            let known = endpoints.map(\.name)
            throw endpointField.fail(known.isEmpty ? "an endpoint declared in endpoints: (the scenario declares none)"
                                                   : "an endpoint declared in endpoints: (\(known.joined(separator: ", ")))")
        }
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") || directory.isEmpty ? path : (directory as NSString).appendingPathComponent(path)
        }
        let profileField = try m.required("profile")
        var profile = try LoadProfileSpec.parse(try profileField.string(), file: field.file, path: profileField.path)
        if case .trace(let path) = profile {
            profile = .trace(resolve(path))
            do { _ = try LoadInputFiles.readTrace(path: resolve(path)) } catch let e as InputError {
                throw profileField.error("the trace does not read: \(e)")
            }
        }
        var s = LoadSettings(endpoint: name, profile: profile)
        if let f = m.optional("dataset") {
            if m.has("prompt_tokens") { throw f.error("give either dataset or prompt_tokens, not both") }
            let path = resolve(try f.string())
            do { _ = try LoadInputFiles.readDataset(path: path) } catch let e as InputError {
                throw f.error("the dataset does not read: \(e)")
            }
            s.dataset = path; s.promptTokens = nil
        }
        if let f = m.optional("prompt_tokens") { s.promptTokens = try f.int(min: 1, max: PlanLimits.tokensPerRequest) }
        if let f = m.optional("output_tokens") { s.outputTokens = try f.int(min: 1, max: PlanLimits.tokensPerRequest) }
        if let f = m.optional("duration") {
            if m.has("requests") { throw f.error("give either duration or requests, not both") }
            switch DurationText.seconds(try f.string()) {
            case .success(let v): s.durationSeconds = v
            case .failure(let r): throw f.fail(r.expected)
            }
        }
        if let f = m.optional("requests") { s.requests = try f.int(min: 1, max: 10_000_000); s.durationSeconds = nil }
        if let f = m.optional("warmup") { s.warmup = try f.int(min: 0, max: 10_000) }
        if let f = m.optional("slo") { s.slo = try SLOSpec.parse(try f.string(), file: field.file, path: f.path) }
        if case .sloSearch = s.profile, s.slo == nil {
            throw profileField.error("slo-search needs an slo (such as slo: \"ttft_p95=500ms,tpot_p95=50ms\")")
        }
        if let problem = s.sizeProblem { throw field.error(problem) }
        if let f = m.optional("prompt_kind") { s.promptKind = try f.oneOf(promptKinds) }
        if let f = m.optional("seed") { s.seed = UInt64(try f.int(min: 0, max: Int.max)) }
        if let f = m.optional("max_concurrency") { s.maxConcurrency = try f.int(min: 1, max: 4096) }
        if let f = m.optional("timeout") {
            switch DurationText.seconds(try f.string()) {
            case .success(let v): s.timeoutSeconds = v
            case .failure(let r): throw f.fail(r.expected)
            }
        }
        return s
    }
}

/// Durations as options and scenario files write them: "300s", "5m", "1h", "250ms" or plain seconds.
public enum DurationText {
    public struct Refusal: Error, Equatable, Sendable { public var expected: String }

    /// Seconds, counted in whole milliseconds (a positive value that rounds to none is refused), at most 7 days.
    public static func seconds(_ text: String) -> Result<Double, Refusal> {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var number = t, scale = 1.0
        for (suffix, s) in units where t.hasSuffix(suffix) {
            number = String(t.dropLast(suffix.count)); scale = s
            break
        }
        guard let v = Double(number), v.isFinite, v > 0, v * scale <= 7 * 86400, (v * scale * 1000).rounded() >= 1 else {
            return .failure(Refusal(expected: "a duration such as 300s, 5m or 250ms (at least 1ms, at most 7 days)"))
        }
        return .success((v * scale * 1000).rounded() / 1000)
    }
}
