// A point's records as the contract stores them (notes/load-contract.md): params (the workload, matched by the
// gate), facts (recorded about the measurement), and samples (every request, every gap, every window), with a
// summary of the same figures for tables and JSON. Metric definitions (GuideLLM/vLLM): TTFT = send → first
// content chunk; ITL = the gaps between content chunks (the first token excluded); TPOT = (e2e − TTFT) /
// (output tokens − 1); goodput = good requests completed per second, a request being good when it meets every
// SLO objective with its own values; percentiles from `LatencyDistribution`.
import Foundation
import HeadroomCore

/// One stored case of a load point; the lead turns it into a `MeasuredCase` (kind `load`, threads 0).
public struct LoadPointCase: Equatable, Sendable {
    /// The endpoint's name (`MeasuredCase.name`).
    public var name: String
    public var params: [String: String]
    public var facts: [String: String]
    public var samples: [MeasuredCase.Sample]

    public init(name: String, params: [String: String], facts: [String: String], samples: [MeasuredCase.Sample]) {
        self.name = name; self.params = params; self.facts = facts; self.samples = samples
    }

    /// The values of one metric, in repetition order.
    public func values(_ metric: String) -> [Double] {
        samples.filter { $0.metric == metric }.sorted { $0.repetition < $1.repetition }.map(\.value)
    }
}

/// What the run knows beyond the records: the endpoint, the profile, the prompts, the SLO.
public struct LoadCaseContext: Hashable, Sendable {
    public var endpoint: LoadEndpoint
    /// The profile's `normalized` text.
    public var profile: String
    public var promptKind: PromptKind
    /// The synthetic lengths asked for (`params.prompt_tokens`, `params.output_tokens`); nil for a trace (its
    /// lengths are per request) and, for prompt_tokens, for a dataset.
    public var promptTokens: Int?
    public var outputTokens: Int?
    /// The dataset's file basename (`params.dataset`).
    public var dataset: String?
    public var slo: SLOSpec?
    /// `hardware`, `devices`, `precision`, `model_shape` when the endpoint declares them; copied into the facts.
    public var endpointFacts: [String: String]

    public init(endpoint: LoadEndpoint, profile: String, promptKind: PromptKind, promptTokens: Int?, outputTokens: Int?,
                dataset: String? = nil, slo: SLOSpec? = nil, endpointFacts: [String: String] = [:]) {
        self.endpoint = endpoint; self.profile = profile; self.promptKind = promptKind; self.promptTokens = promptTokens
        self.outputTokens = outputTokens; self.dataset = dataset; self.slo = slo; self.endpointFacts = endpointFacts
    }
}

/// A point's aggregates: what tables, JSON and the progress of a sweep show.
public struct LoadPointSummary: Hashable, Sendable, Codable {
    public var point: String
    /// Requests/s offered (open loop); nil for a closed loop.
    public var offeredRate: Double?
    /// N of a closed loop; nil for an open loop.
    public var concurrency: Int?
    /// Measured requests sent, and how many succeeded.
    public var requests: Int
    public var ok: Int
    /// Failed requests by kind (the contract's names); every kind present, 0 when none.
    public var errorsByKind: [String: Int]
    public var errors: Int { errorsByKind.values.reduce(0, +) }
    /// The measured period: the first measured send to the last measured response (seconds).
    public var durationS: Double
    /// Successful requests completed per second over the measured period.
    public var achievedRate: Double
    /// Measured requests sent per second between the first and last send (an open loop's achieved offer).
    public var sendRate: Double?
    /// Output tokens of successful requests per second over the measured period.
    public var outputTokensPerS: Double
    public var ttft: LatencyDistribution?
    public var tpot: LatencyDistribution?
    public var itl: LatencyDistribution?
    public var e2e: LatencyDistribution?
    /// Actual send − due (ms) of an open loop's measured requests; nil for a closed loop.
    public var scheduleLag: LatencyDistribution?
    /// Schedule lag p99 above `LoadAggregation.fellBehindLagMs`: the client did not keep the schedule.
    public var fellBehind: Bool
    /// The time-averaged number of measured requests in flight.
    public var meanInFlight: Double
    /// `usage`, `stream` or `mixed` over the successful requests ("" when none).
    public var tokenCounts: String
    /// With an SLO: good requests completed per second, and good / measured requests.
    public var goodputPerS: Double?
    public var attainment: Double?
}

/// Turns point results into contract cases and summaries.
public enum LoadAggregation {
    /// An open-loop point whose schedule lag p99 exceeds this (ms) is flagged `fell_behind`: at 10 ms the client
    /// shifted requests by more than a typical decode step, so latencies measured under the offered rate are
    /// no longer that rate's.
    public static let fellBehindLagMs = 10.0
    /// The measured period is cut into this many windows, or into whole seconds when shorter than this many.
    public static let windows = 10

    /// The summary of `result` (warm-up requests left out).
    public static func summary(_ result: LoadPointResult, slo: SLOSpec?) -> LoadPointSummary {
        let measured = result.measured
        let isOpen = result.plan.arrivals.isOpen
        let ok = measured.filter(\.ok)
        var byKind = Dictionary(uniqueKeysWithValues: LoadErrorKind.allCases.map { ($0.rawValue, 0) })
        for r in measured { if let e = r.error { byKind[e.rawValue, default: 0] += 1 } }
        let (start, end) = period(measured)
        let duration = max(end - start, 1e-9)
        let outputTokens = ok.reduce(0) { $0 + $1.outputTokens }
        let lag = isOpen ? LatencyDistribution(measured.map(\.scheduleLagMs)) : nil
        let sends = measured.map(\.sent)
        var sendRate: Double?
        if isOpen, sends.count > 1, let lo = sends.min(), let hi = sends.max(), hi > lo { sendRate = Double(sends.count - 1) / (hi - lo) }
        let busy = measured.reduce(0.0) { $0 + max(0, $1.end - $1.sent) }
        let sources = Set(ok.map(\.tokenCounts))
        var goodput: Double?, attainment: Double?
        if let slo {
            let good = ok.filter { isGood($0, slo) }.count
            goodput = Double(good) / duration
            attainment = measured.isEmpty ? 0 : Double(good) / Double(measured.count)
        }
        var concurrency: Int?
        if case .closed(let n) = result.plan.arrivals { concurrency = n }
        return LoadPointSummary(
            point: result.plan.point, offeredRate: result.plan.arrivals.offeredRate, concurrency: concurrency,
            requests: measured.count, ok: ok.count, errorsByKind: byKind, durationS: end - start,
            achievedRate: Double(ok.count) / duration, sendRate: sendRate, outputTokensPerS: Double(outputTokens) / duration,
            ttft: LatencyDistribution(ok.compactMap(\.ttftMs)), tpot: LatencyDistribution(ok.compactMap(\.tpotMs)),
            itl: LatencyDistribution(ok.flatMap(\.itlMs)), e2e: LatencyDistribution(ok.map(\.e2eMs)),
            scheduleLag: lag, fellBehind: (lag?.p99 ?? 0) > fellBehindLagMs, meanInFlight: busy / duration,
            tokenCounts: sources.count > 1 ? "mixed" : sources.first?.rawValue ?? "", goodputPerS: goodput, attainment: attainment)
    }

    static func isGood(_ r: LoadRequestRecord, _ slo: SLOSpec) -> Bool {
        guard r.ok, let ttft = r.ttftMs else { return false }
        return slo.isGood(ttftMs: ttft, tpotMs: r.tpotMs, itlMs: r.itlMs, e2eMs: r.e2eMs)
    }

    /// The first measured send and the last measured end (seconds since origin).
    static func period(_ measured: [LoadRequestRecord]) -> (Double, Double) {
        guard let start = measured.map(\.sent).min(), let end = measured.map(\.end).max() else { return (0, 0) }
        return (start, max(start, end))
    }

    /// The contract's case of `result`: params, facts and samples.
    public static func pointCase(_ result: LoadPointResult, context: LoadCaseContext) -> LoadPointCase {
        let s = summary(result, slo: context.slo)
        let e = context.endpoint
        var params = ["endpoint": e.name, "api": e.api.rawValue, "model": e.model, "profile": context.profile, "point": result.plan.point]
        if let d = context.dataset { params["dataset"] = d } else if let p = context.promptTokens { params["prompt_tokens"] = String(p) }
        if let o = context.outputTokens { params["output_tokens"] = String(o) }
        // The SLO is an input of goodput and attainment: points judged by different objectives are different workloads.
        if let slo = context.slo { params["slo"] = slo.text }

        var facts = context.endpointFacts
        facts["url"] = e.url
        facts["prompt_kind"] = context.promptKind.rawValue
        facts["token_counts"] = s.tokenCounts
        facts["offered_rate"] = s.offeredRate.map(number) ?? ""
        facts["achieved_rate"] = number(s.achievedRate)
        facts["concurrency"] = s.concurrency.map(String.init) ?? ""
        facts["duration_s"] = number(s.durationS)
        facts["requests"] = String(s.requests)
        facts["ok"] = String(s.ok)
        facts["errors"] = String(s.errors)
        for (kind, n) in s.errorsByKind { facts["errors_\(kind)"] = String(n) }
        // The first failed request's text of each kind (cut to 300 characters): what the server or the client said.
        for r in result.measured {
            guard let kind = r.error, facts["error_text_\(kind.rawValue)"] == nil else { continue }
            facts["error_text_\(kind.rawValue)"] = String(r.errorText.prefix(300))
        }
        facts["schedule_lag_p99_ms"] = number(s.scheduleLag?.p99 ?? 0)
        facts["fell_behind"] = s.fellBehind ? "true" : "false"
        facts["mean_in_flight"] = number(s.meanInFlight)
        facts["slo"] = context.slo?.text ?? ""

        var samples: [MeasuredCase.Sample] = []
        let measured = result.measured
        let closed = !result.plan.arrivals.isOpen
        var gap = 0
        for (i, r) in measured.enumerated() {
            samples.append(.init(metric: "status", unit: "code", repetition: i, value: Double(r.status)))
            samples.append(.init(metric: "ok", unit: "bool", repetition: i, value: r.ok ? 1 : 0))
            samples.append(.init(metric: "schedule_lag_ms", unit: "ms", repetition: i, value: closed ? 0 : r.scheduleLagMs))
            samples.append(.init(metric: "prompt_tokens", unit: "tokens", repetition: i, value: Double(r.promptTokens)))
            samples.append(.init(metric: "output_tokens", unit: "tokens", repetition: i, value: Double(r.outputTokens)))
            guard r.ok else { continue }
            if let t = r.ttftMs { samples.append(.init(metric: "ttft_ms", unit: "ms", repetition: i, value: t)) }
            samples.append(.init(metric: "e2e_ms", unit: "ms", repetition: i, value: r.e2eMs))
            if let t = r.tpotMs { samples.append(.init(metric: "tpot_ms", unit: "ms", repetition: i, value: t)) }
            if let slo = context.slo { samples.append(.init(metric: "good", unit: "bool", repetition: i, value: isGood(r, slo) ? 1 : 0)) }
            for (k, g) in r.itlMs.enumerated() {
                samples.append(.init(metric: "itl_ms", unit: "ms", repetition: gap, value: g))
                samples.append(.init(metric: "itl_position", unit: "token", repetition: gap, value: Double(k + 1)))
                samples.append(.init(metric: "itl_request", unit: "index", repetition: gap, value: Double(i)))
                gap += 1
            }
        }
        samples += windowSamples(measured, slo: context.slo)
        return LoadPointCase(name: e.name, params: params, facts: facts, samples: samples)
    }

    /// Per window of the measured period: output tokens/s (each content chunk counted where it arrived, scaled
    /// to the request's output tokens when `usage` counted differently), requests/s and goodput/s (by completion
    /// time). 10 equal windows, or one per whole second when the period is shorter than 10 s (at least one).
    static func windowSamples(_ measured: [LoadRequestRecord], slo: SLOSpec?) -> [MeasuredCase.Sample] {
        let (start, end) = period(measured)
        let length = end - start
        guard length > 0 else { return [] }
        let n = max(1, min(windows, Int(length)))
        let width = length / Double(n)
        func window(_ t: Double) -> Int { min(n - 1, max(0, Int((t - start) / width))) }
        var tokens = [Double](repeating: 0, count: n), requests = [Double](repeating: 0, count: n), good = [Double](repeating: 0, count: n)
        for r in measured where r.ok {
            let weight = r.chunkTimes.isEmpty ? 0 : Double(r.outputTokens) / Double(r.chunkTimes.count)
            for t in r.chunkTimes { tokens[window(t)] += weight }
            requests[window(r.end)] += 1
            if let slo, isGood(r, slo) { good[window(r.end)] += 1 }
        }
        var out: [MeasuredCase.Sample] = []
        for w in 0..<n {
            out.append(.init(metric: "output_tokens_per_s", unit: "tokens/s", repetition: w, value: tokens[w] / width))
            out.append(.init(metric: "requests_per_s", unit: "requests/s", repetition: w, value: requests[w] / width))
            if slo != nil { out.append(.init(metric: "goodput_per_s", unit: "requests/s", repetition: w, value: good[w] / width)) }
        }
        return out
    }

    /// A fact's number: up to 6 significant digits.
    static func number(_ d: Double) -> String { String(format: "%g", d) }
}
