// The scheduler against the fixture: the open loop keeps its schedule, bounds and warm-up hold, and a point
// becomes the contract's case; sweep and slo-search choose their points from what they measured.
import Foundation
import HeadroomCore
@testable import HeadroomLoad
import XCTest

final class LoadSchedulerTests: XCTestCase {
    var server: FixtureServer!

    override func setUp() async throws { server = try await FixtureServer.start() }
    override func tearDown() async throws { await server.stop() }

    /// The schedule check: 200 requests/s held on this 2-core machine for 2 s. The machine is shared
    /// with other builds and test runs, whose bursts can stall any process for 100 ms or more (the run then
    /// says `fell_behind`, as it should); so the check is tried up to three times and one clean run passes it.
    /// Every attempt's figures are printed.
    func testOpenLoopHolds200RequestsPerSecond() async throws {
        var held = false
        for attempt in 1...3 where !held {
            let client = LoadClient(endpoint: fixtureEndpoint(server.url(ttftMs: 2, itlMs: 2)))
            let prompts = PromptSource(kind: .tokenIDs, promptTokens: 16, outputTokens: 4)
            let result = await LoadScheduler.run(LoadPointPlan(point: "rate:200", arrivals: .constant(rate: 200), bound: .duration(2), warmup: 20),
                                                 client: client, prompts: prompts)
            await client.shutdown()
            let s = LoadAggregation.summary(result, slo: nil)
            let lag = try XCTUnwrap(s.scheduleLag)
            let sendRate = try XCTUnwrap(s.sendRate)
            print(String(format: "schedule at 200/s, attempt %d: %d requests, send rate %.2f/s, lag p50 %.3f ms p99 %.3f ms max %.3f ms, TTFT p50 %.3f ms",
                         attempt, s.requests, sendRate, lag.p50, lag.p99, lag.max, s.ttft?.p50 ?? -1))
            // These hold whatever the machine does: the schedule is fixed in advance and every request is sent.
            XCTAssertEqual(s.requests, 400)
            XCTAssertEqual(s.ok, 400)
            XCTAssertEqual(s.offeredRate, 200)
            XCTAssertEqual(s.fellBehind, lag.p99 > LoadAggregation.fellBehindLagMs)
            held = abs(sendRate - 200) <= 200 * 0.02 && !s.fellBehind
        }
        XCTAssertTrue(held, "the 200/s schedule was not held (lag p99 under 10 ms, send rate within 2 %) in any of 3 attempts")
    }

    /// Open loop means open loop: a server slower than the schedule does not hold the next request back.
    func testOpenLoopDoesNotWaitForASlowServer() async throws {
        let client = LoadClient(endpoint: fixtureEndpoint(server.url(ttftMs: 400, itlMs: 0)))
        let result = await LoadScheduler.run(LoadPointPlan(point: "rate:50", arrivals: .constant(rate: 50), bound: .requests(20)),
                                             client: client, prompts: PromptSource(kind: .tokenIDs, promptTokens: 4, outputTokens: 1))
        await client.shutdown()
        let s = LoadAggregation.summary(result, slo: nil)
        XCTAssertEqual(s.ok, 20)
        // All 20 sent within 0.4 s although each takes 0.4 s: up to 20 in flight.
        XCTAssertLessThan(try XCTUnwrap(result.measured.map(\.sent).max()), 0.45)
        XCTAssertGreaterThan(s.meanInFlight, 8)
    }

    func testPoissonScheduleIsSeededAndHasTheMeanGap() {
        let a = LoadArrivals.poisson(rate: 100, seed: 7).schedule(warmup: 0, bound: .requests(2000))
        let b = LoadArrivals.poisson(rate: 100, seed: 7).schedule(warmup: 0, bound: .requests(2000))
        let c = LoadArrivals.poisson(rate: 100, seed: 8).schedule(warmup: 0, bound: .requests(2000))
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
        XCTAssertEqual(a.count, 2000)
        XCTAssertEqual(a[0], 0)
        XCTAssertEqual(a.last! / 1999, 0.01, accuracy: 0.001)
        // Exponential gaps: about 1 − 1/e of them shorter than the mean.
        let gaps = zip(a.dropFirst(), a).map { $0 - $1 }
        XCTAssertEqual(Double(gaps.filter { $0 < 0.01 }.count) / Double(gaps.count), 1 - exp(-1), accuracy: 0.04)
    }

    func testSchedulesHonourWarmupAndBounds() {
        XCTAssertEqual(LoadArrivals.constant(rate: 4).schedule(warmup: 2, bound: .requests(3)), [0, 0.25, 0.5, 0.75, 1])
        // Duration counts from the first measured request: warm-up at 0 and 0.5, measured 1 ≤ t < 2.
        XCTAssertEqual(LoadArrivals.constant(rate: 2).schedule(warmup: 2, bound: .duration(1)), [0, 0.5, 1, 1.5])
        let trace = [LoadTraceEntry(timestamp: 0, promptTokens: 1, outputTokens: 1), .init(timestamp: 0.5, promptTokens: 2, outputTokens: 2),
                     .init(timestamp: 3, promptTokens: 3, outputTokens: 3)]
        XCTAssertEqual(LoadArrivals.trace(trace).schedule(warmup: 0, bound: .duration(1)), [0, 0.5])
        XCTAssertEqual(LoadArrivals.trace(trace).schedule(warmup: 0, bound: .requests(10)), [0, 0.5, 3])
        XCTAssertEqual(LoadArrivals.trace(trace).offeredRate, 2.0 / 3)
    }

    func testTraceIsReplayedWithItsLengths() async {
        let trace = [LoadTraceEntry(timestamp: 0, promptTokens: 5, outputTokens: 2), .init(timestamp: 0.1, promptTokens: 7, outputTokens: 3)]
        let client = LoadClient(endpoint: fixtureEndpoint(server.url()))
        let result = await LoadScheduler.run(LoadPointPlan(point: "trace", arrivals: .trace(trace), bound: .requests(10)),
                                             client: client, prompts: PromptSource(kind: .tokenIDs, promptTokens: 99, outputTokens: 99))
        await client.shutdown()
        XCTAssertEqual(result.measured.map(\.promptTokens), [5, 7])
        XCTAssertEqual(result.measured.map(\.outputTokens), [2, 3])
        XCTAssertEqual(result.measured[1].due, 0.1)
        XCTAssertEqual(result.measured[1].sent, 0.1, accuracy: 0.01)
    }

    /// Requests still in flight when a duration-bound point ends are awaited for the grace, then are timeouts.
    func testInFlightRequestsAfterTheGraceAreTimeouts() async {
        let client = LoadClient(endpoint: fixtureEndpoint(server.url(ttftMs: 0, itlMs: 200)))
        let start = ContinuousClock.now
        let progress = ProgressLog()
        let result = await LoadScheduler.run(LoadPointPlan(point: "concurrency:2", arrivals: .closed(concurrency: 2), bound: .duration(0.3), grace: 0.2),
                                             client: client, prompts: PromptSource(kind: .tokenIDs, promptTokens: 4, outputTokens: 10),
                                             progress: { progress.add($0) })
        await client.shutdown()
        XCTAssertLessThan(start.duration(to: .now), .seconds(2))
        let s = LoadAggregation.summary(result, slo: nil)
        XCTAssertEqual(s.requests, 2)
        XCTAssertEqual(s.errorsByKind["timeout"], 2)
        XCTAssertEqual(result.measured.first?.errorText, "still in flight 0.2 s after the point's duration ended")
        XCTAssertGreaterThan(result.measured.first?.chunkTimes.count ?? 0, 0, "the partial stream is kept")
        XCTAssertEqual(progress.last?.done, 2)
        XCTAssertEqual(progress.last?.errors, 2)
    }

    func testAPointBecomesTheContractsCase() async throws {
        let client = LoadClient(endpoint: fixtureEndpoint(server.url(ttftMs: 20, itlMs: 5)))
        let prompts = PromptSource(kind: .tokenIDs, promptTokens: 8, outputTokens: 4)
        let result = await LoadScheduler.run(LoadPointPlan(point: "rate:20", arrivals: .constant(rate: 20), bound: .requests(6), warmup: 1),
                                             client: client, prompts: prompts)
        await client.shutdown()
        let slo = try SLOSpec.parse("ttft_p95=10ms")
        let context = LoadCaseContext(endpoint: fixtureEndpoint(server.url()), profile: "rate:20", promptKind: .tokenIDs, promptTokens: 8,
                                      outputTokens: 4, slo: slo, endpointFacts: ["hardware": "h100-sxm"])
        let c = LoadAggregation.pointCase(result, context: context)
        XCTAssertEqual(c.name, "fixture")
        XCTAssertEqual(c.params, ["endpoint": "fixture", "api": "completions", "model": "fixture", "profile": "rate:20", "point": "rate:20",
                                  "prompt_tokens": "8", "output_tokens": "4", "slo": "ttft_p95=10ms"], "the SLO is an input: goodput depends on it")
        XCTAssertEqual(c.facts["hardware"], "h100-sxm")
        XCTAssertEqual(c.facts["prompt_kind"], "token_ids")
        XCTAssertEqual(c.facts["token_counts"], "usage")
        XCTAssertEqual(c.facts["offered_rate"], "20")
        XCTAssertEqual(c.facts["concurrency"], "")
        XCTAssertEqual(c.facts["requests"], "6")
        XCTAssertEqual(c.facts["ok"], "6")
        XCTAssertEqual(c.facts["errors"], "0")
        XCTAssertEqual(c.facts["errors_http_429"], "0")
        XCTAssertEqual(c.facts["fell_behind"], "false")
        XCTAssertEqual(c.facts["slo"], "ttft_p95=10ms")
        XCTAssertEqual(Set(c.facts.keys).isSuperset(of: ["url", "achieved_rate", "duration_s", "schedule_lag_p99_ms", "mean_in_flight"]), true)
        XCTAssertEqual(c.values("status"), Array(repeating: 200, count: 6))
        XCTAssertEqual(c.values("ok"), Array(repeating: 1, count: 6))
        XCTAssertEqual(c.values("output_tokens"), Array(repeating: 4, count: 6))
        XCTAssertEqual(c.values("ttft_ms").count, 6)
        XCTAssertEqual(c.values("tpot_ms").count, 6)
        // TTFT 20 ms misses a 10 ms objective: no request is good.
        XCTAssertEqual(c.values("good"), Array(repeating: 0, count: 6))
        XCTAssertEqual(c.values("itl_ms").count, 18)
        XCTAssertEqual(c.values("itl_position"), Array(repeating: [1.0, 2, 3], count: 6).flatMap { $0 })
        XCTAssertEqual(c.values("itl_request"), (0..<6).flatMap { Array(repeating: Double($0), count: 3) })
        // A period under 10 s: one window per whole second, at least one.
        XCTAssertEqual(c.values("requests_per_s").count, 1)
        XCTAssertEqual(c.values("goodput_per_s"), [0])
        XCTAssertEqual(c.samples.first { $0.metric == "itl_position" }?.unit, "token")
        let s = LoadAggregation.summary(result, slo: slo)
        XCTAssertEqual(s.attainment, 0)
        XCTAssertEqual(s.goodputPerS, 0)
    }

    func testSweepRunsSynchronousThroughputAndRatesBetween() async throws {
        let client = LoadClient(endpoint: fixtureEndpoint(server.url(ttftMs: 10, itlMs: 2)))
        let plan = LoadRunPlan(profile: .sweep(rates: 2), bound: .requests(6))
        let run = try await LoadRunner.run(plan, client: client, prompts: PromptSource(kind: .tokenIDs, promptTokens: 4, outputTokens: 3))
        await client.shutdown()
        XCTAssertEqual(run.points.count, 4)
        XCTAssertEqual(run.points[0].plan.point, "synchronous")
        XCTAssertEqual(run.points[0].plan.arrivals, .closed(concurrency: 1))
        XCTAssertEqual(run.points[1].plan.arrivals, .closed(concurrency: 6))
        let rs = LoadAggregation.summary(run.points[0], slo: nil).achievedRate
        let rt = LoadAggregation.summary(run.points[1], slo: nil).achievedRate
        XCTAssertGreaterThan(rt, rs)
        for (k, p) in run.points.dropFirst(2).enumerated() {
            let r = rs + (rt - rs) * Double(k + 1) / 3
            XCTAssertEqual(p.plan.arrivals, .constant(rate: r))
            XCTAssertEqual(p.plan.point, "rate-\(k + 1)", "labelled by position: the gate matches it across runs")
            XCTAssertEqual(p.measured.filter(\.ok).count, 6)
        }
        XCTAssertNil(run.search)
    }

    func testSLOSearchReportsItsIntervalAndProbes() async throws {
        let client = LoadClient(endpoint: fixtureEndpoint(server.url(ttftMs: 5, itlMs: 1)))
        let prompts = PromptSource(kind: .tokenIDs, promptTokens: 4, outputTokens: 2)
        // Every request meets a lenient SLO: the throughput rate passes and the search stops there.
        let pass = try await LoadRunner.run(LoadRunPlan(profile: .sloSearch(target: 0.9, probes: 4), bound: .requests(5),
                                                        slo: try SLOSpec.parse("ttft_p95=2s")), client: client, prompts: prompts)
        let search = try XCTUnwrap(pass.search)
        XCTAssertEqual(search.probes.count, 2)
        XCTAssertTrue(search.probes.allSatisfy(\.passed))
        XCTAssertEqual(search.highestPassing, search.probes[1].rate)
        XCTAssertNil(search.lowestFailing)
        XCTAssertEqual(pass.points.map(\.plan.point).prefix(2), ["synchronous", "throughput"])
        XCTAssertEqual(pass.points[2].plan.point, "probe-1")
        // No request meets an impossible SLO: the synchronous rate fails and is the lowest failing rate.
        let fail = try await LoadRunner.run(LoadRunPlan(profile: .sloSearch(target: 0.9, probes: 4), bound: .requests(5),
                                                        slo: try SLOSpec.parse("ttft_p50=1ms")), client: client, prompts: prompts)
        await client.shutdown()
        let f = try XCTUnwrap(fail.search)
        XCTAssertEqual(f.probes.count, 1)
        XCTAssertEqual(f.probes[0].attainment, 0)
        XCTAssertNil(f.highestPassing)
        XCTAssertEqual(f.lowestFailing, f.probes[0].rate)
        do {
            _ = try await LoadRunner.run(LoadRunPlan(profile: .sloSearch(target: 0.9, probes: 4), bound: .requests(5)), client: client, prompts: prompts)
            XCTFail("slo-search without an SLO ran")
        } catch {
            XCTAssertEqual("\(error)", "slo-search needs an SLO (--slo)")
        }
    }

    func testBisectionNarrowsToTheHighestPassingRate() async {
        // Attainment 1 up to 7.3 requests/s, 0.5 above: the answer lies between a passing and a failing probe.
        let outcome = await LoadRunner.bisect(from: 1, to: 20, target: 0.9, maxProbes: 10) { $0 <= 7.3 ? 1 : 0.5 }
        let lo = outcome.highestPassing ?? 0, hi = outcome.lowestFailing ?? 0
        XCTAssertEqual(outcome.probes.map(\.rate).prefix(4), [1, 20, 10.5, 5.75])
        XCTAssertLessThanOrEqual(lo, 7.3)
        XCTAssertGreaterThan(hi, 7.3)
        XCTAssertLessThanOrEqual(hi - lo, 0.05 * hi)
        XCTAssertTrue(outcome.probes.allSatisfy { $0.passed == ($0.rate <= 7.3) })
        // The probe budget bounds it.
        let short = await LoadRunner.bisect(from: 1, to: 20, target: 0.9, maxProbes: 3) { $0 <= 7.3 ? 1 : 0 }
        XCTAssertEqual(short.probes.map(\.rate), [1, 20, 10.5])
        XCTAssertEqual(short.highestPassing, 1)
        XCTAssertEqual(short.lowestFailing, 10.5)
    }

    func testPromptsAreSeededAndExact() {
        let source = PromptSource(kind: .tokenIDs, promptTokens: 50, outputTokens: 3, seed: 9)
        guard case .tokenIDs(let ids) = source.request(3).prompt else { return XCTFail("not token ids") }
        XCTAssertEqual(ids.count, 50)
        XCTAssertTrue(ids.allSatisfy { (100..<1000).contains($0) })
        XCTAssertEqual(source.request(3), PromptSource(kind: .tokenIDs, promptTokens: 50, outputTokens: 3, seed: 9).request(3))
        XCTAssertNotEqual(source.request(3), source.request(4))
        guard case .text(let text) = PromptSource(kind: .text, promptTokens: 40, outputTokens: 3).request(0).prompt else { return XCTFail("not text") }
        XCTAssertEqual(text.split(separator: " ").count, 40)
        let dataset = PromptSource(dataset: [.init(prompt: .text("hi"), outputTokens: nil), .init(prompt: .tokens(5), outputTokens: 2)],
                                   outputTokens: 7, lengthsAsText: false)
        XCTAssertEqual(dataset.request(0), LoadRequestSpec(prompt: .text("hi"), promptTokens: 0, outputTokens: 7))
        XCTAssertEqual(dataset.request(1).outputTokens, 2)
        XCTAssertEqual(dataset.request(2).prompt, .text("hi"))
    }
}

/// Progress reports collected from another task.
final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [LoadProgress] = []
    func add(_ p: LoadProgress) { lock.lock(); items.append(p); lock.unlock() }
    var last: LoadProgress? { lock.lock(); defer { lock.unlock() }; return items.last }
}
