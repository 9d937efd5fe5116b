// A scenario's `endpoints:` and `measure.load:` run by the runner against the fixture server: one stored case
// per point with the contract's params and facts, a sweep's points found as it runs, and the gate comparing two
// such runs on the endpoint's own figures (never normalised by this machine's probe).
import Foundation
import HeadroomCore
import HeadroomLoad
import HeadroomRunner
import HeadroomStore
import XCTest

final class LoadScenarioTests: XCTestCase {
    var server: FixtureServer!

    override func setUp() async throws { server = try await FixtureServer.start() }
    override func tearDown() async throws { await server.stop(); Interrupt.reset() }

    func scenario(_ load: String, url: String) throws -> Scenario {
        let text = """
            schema: 1
            name: endpoint-ci
            endpoints:
              - { name: fixture, url: "\(url)", model: fixture, hardware: h100-sxm, devices: 2, precision: bf16, model_shape: small }
            measure:
              load:
            \(load)
            """
        return try Scenario.parse(text, file: "endpoint-ci.yaml", catalog: try Catalog.builtin())
    }

    func run(_ s: Scenario, store: Store) async throws -> StoredRun {
        let runner = Runner(store: store, progress: Progress(enabled: false), version: "test")
        let outcome = try await runner.run(scenario: s, workloads: ScenarioWorkloads.workloads(for: s, machine: .current()), gitRevision: "rev")
        return try XCTUnwrap(try store.load(runID: outcome.runID))
    }

    /// `headroom load --shard` as the runner runs it: each client's workload sends its part of the schedule, its run is
    /// stored as its shard, and the sweep merges into one point of every request.
    func testTwoClientsOfOneLoadAreStoredAsShardsAndMergeIntoOnePoint() async throws {
        let s = try scenario("    - { endpoint: fixture, profile: \"rate:40\", requests: 12, warmup: 0, prompt_tokens: 8, output_tokens: 2 }",
                             url: server.url(ttftMs: 2, itlMs: 1))
        let store = try SQLiteStore(path: ":memory:")
        let runner = Runner(store: store, progress: Progress(enabled: false), version: "test")
        for i in 0..<2 {
            let load = ScenarioWorkloads.LoadContext(shard: LoadShard(index: i, count: 2))
            let outcome = try await runner.run(scenario: s, workloads: ScenarioWorkloads.workloads(for: s, machine: .current(), load: load),
                                               gitRevision: "rev", shard: SweepShard(sweep: "two", index: i, count: 2))
            let c = try XCTUnwrap(try store.load(runID: outcome.runID).cases.first)
            XCTAssertEqual(c.facts["requests"], "6", "client \(i): every other request of 12")
        }
        let merged = try SweepMerge.merge("two", in: store)
        XCTAssertEqual(merged.run.cases.count, 1)
        XCTAssertEqual(merged.run.cases[0].facts["requests"], "12")
        XCTAssertEqual(merged.run.cases[0].values("ttft_ms").count, 12)
    }

    func testALoadOnlyScenarioStoresOneCasePerPointWithTheContractsParamsAndFacts() async throws {
        let s = try scenario("    - { endpoint: fixture, profile: \"concurrency:2\", prompt_tokens: 16, output_tokens: 4, requests: 6, warmup: 1 }",
                             url: server.url(ttftMs: 5, itlMs: 2))
        XCTAssertNil(s.measure, "nothing is measured on this machine")
        XCTAssertEqual(ScenarioWorkloads.workloads(for: s, machine: .current()).map(\.label), ["load fixture concurrency:2"], "no probe")
        let stored = try await run(s, store: try SQLiteStore(path: ":memory:"))
        XCTAssertEqual(stored.run.status, .complete)
        let c = try XCTUnwrap(stored.cases.first)
        XCTAssertEqual(stored.cases.count, 1)
        XCTAssertEqual(c.kind, .load)
        XCTAssertEqual(c.threads, 0)
        XCTAssertEqual(c.params, ["endpoint": "fixture", "api": "completions", "model": "fixture", "profile": "concurrency:2",
                                  "point": "concurrency:2", "prompt_tokens": "16", "output_tokens": "4"])
        XCTAssertEqual(c.facts["hardware"], "h100-sxm")
        XCTAssertEqual(c.facts["devices"], "2")
        XCTAssertEqual(c.facts["precision"], "bf16")
        XCTAssertEqual(c.facts["model_shape"], "small")
        XCTAssertEqual(c.facts["prompt_kind"], "token_ids")
        XCTAssertEqual(c.facts["requests"], "6")
        XCTAssertEqual(c.facts["ok"], "6")
        XCTAssertEqual(c.values("ok"), Array(repeating: 1, count: 6), "every measured request, warm-up left out")
        XCTAssertEqual(c.values("ttft_ms").count, 6)
        XCTAssertEqual(c.values("itl_ms").count, 6 * 3, "4 tokens: 3 gaps each")
        for ttft in c.values("ttft_ms") { XCTAssertGreaterThanOrEqual(ttft, 5, "the fixture holds the first token 5 ms") }
    }

    func testASweepFindsItsPointsAsItRunsAndEachIsStored() async throws {
        let s = try scenario("    - { endpoint: fixture, profile: \"sweep:rates=2\", prompt_tokens: 8, output_tokens: 3, requests: 8, warmup: 0, max_concurrency: 3 }",
                             url: server.url(ttftMs: 2, itlMs: 1))
        let stored = try await run(s, store: try SQLiteStore(path: ":memory:"))
        XCTAssertEqual(stored.cases.map { $0.params["point"] ?? "" }.prefix(2), ["synchronous", "throughput"])
        XCTAssertEqual(stored.cases.count, 4, "synchronous, throughput and 2 rates between")
        XCTAssertEqual(stored.cases[1].facts["concurrency"], "3", "the throughput point at max_concurrency")
        XCTAssertEqual(stored.cases.dropFirst(2).map { $0.params["point"] ?? "" }, ["rate-1", "rate-2"])
        XCTAssertTrue(stored.cases.allSatisfy { $0.params["profile"] == "sweep:rates=2" })
        let rates = stored.cases.dropFirst(2).compactMap { Double($0.facts["offered_rate"] ?? "") }
        XCTAssertEqual(rates.count, 2)
        XCTAssertLessThan(rates[0], rates[1])
    }

    func testTheGateComparesTwoLoadRunsOnTheEndpointsOwnFigures() async throws {
        let s = try scenario("    - { endpoint: fixture, profile: \"concurrency:2\", prompt_tokens: 8, output_tokens: 6, requests: 12, warmup: 1 }",
                             url: server.url(ttftMs: 4, itlMs: 2))
        let store = try SQLiteStore(path: ":memory:")
        let baseline = try await run(s, store: store)
        let current = try await run(s, store: store)
        let outcome = try Gate.evaluate(baseline: baseline.cases, current: current.cases, options: GateOptions())
        let metrics = Set(outcome.rows.map(\.metric))
        XCTAssertTrue(metrics.isSuperset(of: ["ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"]), "\(metrics)")
        XCTAssertTrue(outcome.rows.allSatisfy { $0.normalisation == nil }, "an endpoint is not this machine: nothing normalised by its probe")
        XCTAssertFalse(metrics.contains("status") || metrics.contains("itl_position"), "bookkeeping is not gated")
        // With the normalised-only option nothing of an endpoint is gated (it has no machine-normalised figure): said, not passed.
        XCTAssertThrowsError(try Gate.evaluate(baseline: baseline.cases, current: current.cases, options: GateOptions(normalisedOnly: true))) { e in
            XCTAssertTrue("\(e)".hasPrefix("nothing to gate"), "\(e)")
        }
    }

    /// Ctrl-C stops a point at once: no request is sent after it, no later point of the sweep starts, and the
    /// runner records the run as interrupted (bounded: the point alone would run 30 s).
    func testAnInterruptStopsALoadWithinAFewSeconds() async throws {
        let s = try scenario("    - { endpoint: fixture, profile: \"sweep\", prompt_tokens: 8, output_tokens: 4, duration: 30s, warmup: 0 }",
                             url: server.url(ttftMs: 1, itlMs: 20))
        let store = try SQLiteStore(path: ":memory:")
        let runner = Runner(store: store, progress: Progress(enabled: false), version: "test")
        let stopper = Task { try await Task.sleep(for: .milliseconds(500)); Interrupt.request() }
        let start = ContinuousClock.now
        do {
            _ = try await runner.run(scenario: s, workloads: ScenarioWorkloads.workloads(for: s, machine: .current()), gitRevision: "rev")
            XCTFail("an interrupted run does not complete")
        } catch is RunInterrupted {}
        stopper.cancel()
        let took = start.duration(to: .now)
        XCTAssertLessThan(took, .seconds(5), "stopped in \(took), not after the 30 s point and the rest of the sweep")
        XCTAssertEqual(try store.runs().first?.status, .interrupted)
    }

    func testAScenarioNamingAnUndeclaredEndpointOrAnUnsetKeyIsBadInput() throws {
        XCTAssertThrowsError(try scenario("    - { endpoint: elsewhere, profile: \"rate:1\" }", url: "http://127.0.0.1:9")) { e in
            XCTAssertEqual("\(e)", "endpoint-ci.yaml: measure.load[0].endpoint: expected an endpoint declared in endpoints: (fixture), got \"elsewhere\"")
        }
        XCTAssertThrowsError(try scenario("    - { endpoint: fixture, profile: \"slo-search\" }", url: "http://127.0.0.1:9")) { e in
            XCTAssertTrue("\(e)".hasPrefix("endpoint-ci.yaml: measure.load[0].profile: slo-search needs an slo"), "\(e)")
        }
        XCTAssertThrowsError(try scenario("    - { endpoint: fixture, profile: \"warp:9\" }", url: "http://127.0.0.1:9")) { e in
            XCTAssertTrue("\(e)".hasPrefix("endpoint-ci.yaml: measure.load[0].profile: "), "\(e)")
        }
        for (entry, message) in [
            ("duration: 5s, requests: 3", "measure.load[0].duration: give either duration or requests, not both"),
            ("timeout: soon", "measure.load[0].timeout: expected a duration such as 300s"),
            ("max_concurrency: 0", "measure.load[0].max_concurrency: expected an integer from 1 to 4096"),
            ("prompt_kind: ids", "measure.load[0].prompt_kind: expected"),
            ("output_tokens: 0", "measure.load[0].output_tokens: expected an integer from 1"),
            ("dataset: /nonexistent/d.jsonl", "measure.load[0].dataset: the dataset does not read"),
            ("slo: \"ttft=fast\"", "measure.load[0].slo: "),
        ] {
            XCTAssertThrowsError(try scenario("    - { endpoint: fixture, profile: \"rate:1\", \(entry) }", url: "http://127.0.0.1:9"), entry) { e in
                XCTAssertTrue("\(e)".hasPrefix("endpoint-ci.yaml: " + message), "\(entry): \(e)")
            }
        }
        XCTAssertThrowsError(try scenario("    - { endpoint: fixture, profile: \"rate:1000\", duration: 2h }", url: "http://127.0.0.1:9")) { e in
            XCTAssertTrue("\(e)".contains("would send 7200000 requests in one point"), "\(e)")
        }
        var s = try scenario("    - { endpoint: fixture, profile: \"rate:1\" }", url: "http://127.0.0.1:9")
        s.endpoints[0].apiKeyEnv = "HEADROOM_TEST_UNSET_KEY"
        XCTAssertThrowsError(try ScenarioWorkloads.apiKeys(for: s, environment: [:])) { e in
            XCTAssertEqual("\(e)", "endpoint-ci.yaml: the environment variable HEADROOM_TEST_UNSET_KEY (the API key of endpoint fixture) is not set or empty")
        }
        XCTAssertEqual(try ScenarioWorkloads.apiKeys(for: s, environment: ["HEADROOM_TEST_UNSET_KEY": "k"]), ["fixture": "k"])
    }
}
