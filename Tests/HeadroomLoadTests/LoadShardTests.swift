// Distributed load (`headroom load --shard I/N`) against the fixture: N clients send the requests i ≡ I (mod N)
// of one schedule at their original due times, together exactly the schedule; their stored points merge
// (`report --sweep`) into one point whose samples are every request's, so its percentiles are the whole run's.
import Foundation
import HeadroomCore
@testable import HeadroomLoad
@testable import HeadroomStore
import XCTest

final class LoadShardTests: XCTestCase {
    var server: FixtureServer!

    override func setUp() async throws { server = try await FixtureServer.start() }
    override func tearDown() async throws { await server.stop() }

    func testThreeClientsSendTheWholeScheduleOnceAndMergeIntoOnePoint() async throws {
        let arrivals = LoadArrivals.poisson(rate: 60, seed: 5)
        let warmup = 2, bound = LoadBound.requests(30)
        let full = arrivals.schedule(warmup: warmup, bound: bound)
        XCTAssertEqual(full.count, 32)
        let prompts = PromptSource(kind: .tokenIDs, promptTokens: 8, outputTokens: 3)
        let context = LoadCaseContext(endpoint: fixtureEndpoint(server.url()), profile: "poisson:60", promptKind: .tokenIDs,
                                      promptTokens: 8, outputTokens: 3)
        var results: [LoadPointResult] = []
        for i in 0..<3 {
            let client = LoadClient(endpoint: fixtureEndpoint(server.url(ttftMs: 3, itlMs: 1)))
            let r = await LoadScheduler.run(LoadPointPlan(point: "poisson:60", arrivals: arrivals, bound: bound, warmup: warmup,
                                                          shard: LoadShard(index: i, count: 3)), client: client, prompts: prompts)
            await client.shutdown()
            XCTAssertEqual(r.records.map(\.index), Array(stride(from: i, to: 32, by: 3)), "client \(i) sends i ≡ \(i) mod 3")
            XCTAssertEqual(r.records.map(\.due), r.records.map { full[$0.index] }, "at the full schedule's due times")
            XCTAssertEqual(r.records.map(\.warmup), r.records.map { $0.index < warmup }, "the warm-up is the schedule's first requests")
            XCTAssertTrue(r.records.allSatisfy(\.ok))
            results.append(r)
        }

        // Stored as three shards of one sweep, merged: one point holding every measured request.
        let store = try SQLiteStore(path: ":memory:")
        for (i, r) in results.enumerated() {
            var run = RunRecord(scenarioName: "load-fixture", scenarioFile: "(command line)", scenarioHash: "h", scenarioText: "headroom load",
                                gitRevision: "x", machineFingerprint: "fp", machineJson: "{}", headroomVersion: "test", pid: 1,
                                startedAt: Date(timeIntervalSince1970: Double(i)), shard: SweepShard(sweep: "dist", index: i, count: 3))
            run.status = .running
            let id = try store.beginRun(run)
            let c = LoadAggregation.pointCase(r, context: context)
            try store.record(runID: id, MeasuredCase(kind: .load, name: c.name, threads: 0, params: c.params, facts: c.facts, samples: c.samples))
            try store.finish(runID: id, status: .complete)
        }
        let merged = try SweepMerge.merge("dist", in: store)
        XCTAssertEqual(merged.run.cases.count, 1, "one point, not three")
        let point = try XCTUnwrap(merged.run.cases.first)
        let measured = results.flatMap(\.measured)
        XCTAssertEqual(measured.count, 30)
        XCTAssertEqual(point.values("status").count, 30)
        XCTAssertEqual(Set(point.samples.filter { $0.metric == "status" }.map(\.repetition)).count, 30, "every request its own repetition")
        XCTAssertEqual(point.facts["requests"], "30")
        XCTAssertEqual(point.facts["ok"], "30")
        XCTAssertEqual(point.facts[SweepMerge.shardFact], "0,1,2")
        // The merged percentiles are those of every request together.
        XCTAssertEqual(point.values("ttft_ms").sorted(), measured.compactMap(\.ttftMs).sorted())
        XCTAssertEqual(LatencyDistribution(point.values("ttft_ms")), LatencyDistribution(measured.compactMap(\.ttftMs)))
        XCTAssertEqual(point.values("itl_ms").count, measured.reduce(0) { $0 + $1.itlMs.count })
        XCTAssertEqual(Set(point.samples.filter { $0.metric == "itl_request" }.map(\.value)).count, 30, "each gap names its merged request")
        // Windows add up: the clients' requests per second together.
        let perShard = results.map { LoadAggregation.pointCase($0, context: context).values("requests_per_s").reduce(0, +) }
        XCTAssertEqual(point.values("requests_per_s").reduce(0, +), perShard.reduce(0, +), accuracy: 1e-9)
    }
}
