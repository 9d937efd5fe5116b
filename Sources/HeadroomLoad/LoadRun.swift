// A whole load run: a profile turned into its points and run one after another. `sweep` and `slo-search` decide
// their later points from the rates their first points achieved (GuideLLM's sweep; bisection for the SLO).
import Foundation
import HeadroomCore

/// What a run sends and how long.
public struct LoadRunPlan: Hashable, Sendable {
    public var profile: LoadProfileSpec
    /// Each point's bound (every point of a sweep or slo-search gets the same).
    public var bound: LoadBound
    /// Warm-up requests at the start of each point.
    public var warmup: Int
    /// The Poisson gaps' seed (point k of a run uses seed + k).
    public var seed: UInt64
    /// How long a duration-bound point awaits requests in flight at its end (seconds).
    public var grace: Double
    /// The concurrency of sweep's and slo-search's throughput point: all requests at once, capped here (and at
    /// the bound's request count).
    public var throughputConcurrency: Int
    /// The trace of a `trace:` profile, read by the caller (`LoadInputFiles.readTrace`).
    public var trace: [LoadTraceEntry]?
    /// The objectives goodput and slo-search are judged by.
    public var slo: SLOSpec?
    /// This client's part of each point's schedule (`headroom load --shard`; open-loop profiles only).
    public var shard: LoadShard?

    /// The default cap of the throughput point's concurrency.
    public static let defaultThroughputConcurrency = 256

    public init(profile: LoadProfileSpec, bound: LoadBound, warmup: Int = 0, seed: UInt64 = 1, grace: Double = 30,
                throughputConcurrency: Int = defaultThroughputConcurrency, trace: [LoadTraceEntry]? = nil, slo: SLOSpec? = nil) {
        self.profile = profile; self.bound = bound; self.warmup = warmup; self.seed = seed; self.grace = grace
        self.throughputConcurrency = throughputConcurrency; self.trace = trace; self.slo = slo
    }
}

/// One probe of an slo-search.
public struct SLOProbe: Hashable, Sendable, Codable {
    /// The Poisson rate offered (requests/s).
    public var rate: Double
    public var attainment: Double
    public var passed: Bool
}

/// The answer of an slo-search: the highest passing rate probed and the lowest failing one (either nil when no
/// probe passed or failed), and every probe in the order run.
public struct SLOSearchOutcome: Hashable, Sendable, Codable {
    public var target: Double
    public var highestPassing: Double?
    public var lowestFailing: Double?
    public var probes: [SLOProbe]
}

/// Every point of a run, in the order run, and the slo-search's answer when the profile was one.
public struct LoadRunResult: Hashable, Sendable {
    public var points: [LoadPointResult]
    public var search: SLOSearchOutcome?
}

/// Why a run cannot start.
public struct LoadRunError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public enum LoadRunner {
    /// Runs `plan`'s points. Single profiles are one point; `sweep` is synchronous (concurrency 1), throughput
    /// (concurrency min(bound's requests, `throughputConcurrency`)), then K constant rates r_s + (r_t − r_s)·i/(K+1),
    /// i = 1…K, between their achieved request rates r_s and r_t; `slo-search` is synchronous, throughput, then
    /// Poisson probes: r_s (stop if it fails), r_t (stop if it passes), then the midpoint of the highest passing
    /// and lowest failing rate until the interval is within 5 % of its upper end or the probes are spent. A
    /// probe passes when its SLO attainment (good / measured requests) reaches the target. Throws only for a
    /// plan that cannot run (a trace profile without its trace, an slo-search without an SLO).
    public static func run(_ plan: LoadRunPlan, client: LoadClient, prompts: PromptSource,
                           progress: LoadProgressHandler? = nil) async throws -> LoadRunResult {
        var points: [LoadPointResult] = []
        var pointSeed = plan.seed
        func point(_ label: String, _ arrivals: LoadArrivals) async -> LoadPointResult {
            // Cancelled (Ctrl-C): no further point starts; an empty result keeps the sweep's arithmetic finite.
            if Task.isCancelled { return LoadPointResult(plan: LoadPointPlan(point: label, arrivals: arrivals, bound: plan.bound), records: [], wallSeconds: 0) }
            let r = await LoadScheduler.run(LoadPointPlan(point: label, arrivals: arrivals, bound: plan.bound, warmup: plan.warmup, grace: plan.grace,
                                                          shard: plan.shard),
                                            client: client, prompts: prompts, progress: progress)
            points.append(r)
            return r
        }
        func nextSeed() -> UInt64 { defer { pointSeed &+= 1 }; return pointSeed }
        switch plan.profile {
        case .concurrency(let n): _ = await point("concurrency:\(n)", .closed(concurrency: n))
        case .rate(let r): _ = await point("rate:\(LoadProfileSpec.formatRate(r))", .constant(rate: r))
        case .poisson(let r): _ = await point("poisson:\(LoadProfileSpec.formatRate(r))", .poisson(rate: r, seed: nextSeed()))
        case .trace:
            guard let trace = plan.trace, !trace.isEmpty else { throw LoadRunError("a trace profile needs its trace read first") }
            _ = await point("trace", .trace(trace))
        case .sweep(let k):
            let (rs, rt) = await endpoints(plan, point)
            for i in 1...k {
                let r = rs + (rt - rs) * Double(i) / Double(k + 1)
                guard r > 0 else { continue }
                // Labelled by position, not by rate: the rates follow what the first two points achieved and differ from
                // run to run, while the gate matches a point with the baseline's of the same label (the rate is a fact).
                _ = await point("rate-\(i)", .constant(rate: r))
            }
        case .sloSearch(let target, let maxProbes):
            guard let slo = plan.slo else { throw LoadRunError("slo-search needs an SLO (--slo)") }
            let (rs, rt) = await endpoints(plan, point)
            var probeNumber = 0
            let outcome = await bisect(from: rs, to: rt, target: target, maxProbes: maxProbes) { rate in
                probeNumber += 1
                let r = await point("probe-\(probeNumber)", .poisson(rate: rate, seed: nextSeed()))
                return LoadAggregation.summary(r, slo: slo).attainment ?? 0
            }
            return LoadRunResult(points: points, search: outcome)
        }
        return LoadRunResult(points: points, search: nil)
    }

    /// slo-search's bisection over Poisson rates in [rs, rt]: probe rs (stop if it fails), rt (stop if it
    /// passes), then the midpoint of the highest passing and lowest failing rate until they are within 5 % of
    /// the failing one or `maxProbes` probes are spent. `probe` runs a point at a rate and returns its attainment.
    public static func bisect(from rs: Double, to rt: Double, target: Double, maxProbes: Int,
                              probe: (Double) async -> Double) async -> SLOSearchOutcome {
        var outcome = SLOSearchOutcome(target: target, highestPassing: nil, lowestFailing: nil, probes: [])
        func run(_ rate: Double) async -> Bool {
            let attainment = await probe(rate)
            let passed = attainment >= target
            outcome.probes.append(SLOProbe(rate: rate, attainment: attainment, passed: passed))
            if passed { outcome.highestPassing = max(outcome.highestPassing ?? rate, rate) } else { outcome.lowestFailing = min(outcome.lowestFailing ?? rate, rate) }
            return passed
        }
        guard rs > 0, maxProbes > 0, await run(rs), maxProbes > 1, rt > rs, !(await run(rt)) else { return outcome }
        while outcome.probes.count < maxProbes, let lo = outcome.highestPassing, let hi = outcome.lowestFailing, hi - lo > 0.05 * hi {
            _ = await run((lo + hi) / 2)
        }
        return outcome
    }

    /// The synchronous and throughput points of a sweep or slo-search, and their achieved request rates.
    static func endpoints(_ plan: LoadRunPlan, _ point: (String, LoadArrivals) async -> LoadPointResult) async -> (Double, Double) {
        let sync = await point("synchronous", .closed(concurrency: 1))
        var cap = plan.throughputConcurrency
        if case .requests(let n) = plan.bound { cap = min(cap, n) }
        let throughput = await point("throughput", .closed(concurrency: max(1, cap)))
        return (LoadAggregation.summary(sync, slo: nil).achievedRate, LoadAggregation.summary(throughput, slo: nil).achievedRate)
    }

    /// Resolves `choice` for this endpoint: text on the chat API; `.auto` sends one probe request with
    /// `promptTokens` token ids and 1 output token (not part of any point) and chooses text when it is answered
    /// 400 or 422, token ids otherwise (a probe that fails for another reason leaves token ids, and the run's requests
    /// show the failure).
    public static func resolvePromptKind(_ choice: PromptChoice, client: LoadClient, promptTokens: Int, seed: UInt64 = 1) async -> PromptKind {
        if client.endpoint.api == .chat { return .text }
        switch choice {
        case .tokenIDs: return .tokenIDs
        case .text: return .text
        case .auto:
            let probe = PromptSource(kind: .tokenIDs, promptTokens: max(1, promptTokens), outputTokens: 1, seed: seed).request(0)
            let r = await client.send(probe, index: 0, warmup: true, due: 0, origin: .now)
            // 400 (vLLM, llama.cpp, headroom serve) or 422 (servers on FastAPI or axum, such as TGI): the prompt's form was refused.
            return r.status == 400 || r.status == 422 ? .text : .tokenIDs
        }
    }
}
