import Foundation
import HeadroomScheduling
import XCTest
@testable import HeadroomCore

/// The simulator as the planner's serving model, against the queueing approximation and by hand; and the
/// benchmark the CLI runs.
final class SimulatorServingModelTests: XCTestCase {
    /// 5 ms a step plus 0.1 ms a token: a lone 256-token prefill takes 30.6 ms, a lone decode 5.1 ms.
    let spec = replicaSpec(StepTimes { 0.005 + 0.0001 * Double($0.tokens) }, maxNumSeqs: 64, budget: 512, blocks: 4096)
    let work = ServingWorkload(promptTokens: 256, outputTokens: 16)
    let slo = SLO(ttftP95: 0.25, tpotP95: 0.02)

    func model() throws -> SimulatorServingModel { try SimulatorServingModel(requests: 200, replications: 2) }

    func testAtNearZeroLoadBothModelsGiveThePrefillTime() throws {
        let prefill = spec.prefillSeconds(promptTokens: 256)
        XCTAssertEqual(prefill, 0.0306, accuracy: 1e-12)
        let simulated = try XCTUnwrap(try model().load(spec, work, requestsPerSecond: SimulatorServingModel.loneRate))
        XCTAssertEqual(simulated.ttftP95Seconds, prefill, accuracy: 1e-9, "alone, the first token comes with the prefill step")
        XCTAssertEqual(try XCTUnwrap(simulated.ttftP50Seconds), prefill, accuracy: 1e-9)
        XCTAssertEqual(simulated.tpotP95Seconds, 0.0051, accuracy: 1e-9, "one decode at a time")
        let queueing = try XCTUnwrap(QueueingServingModel().load(spec, work, requestsPerSecond: SimulatorServingModel.loneRate))
        XCTAssertEqual(queueing.ttftP95Seconds, prefill + 0.0051, accuracy: 1e-6, "the approximation adds one decode step")
        XCTAssertEqual(simulated.concurrency, 0, accuracy: 1e-6)
    }

    func testCapacityIsPositiveBelowPrefillSaturationAndMeetsTheSLO() throws {
        let m = try model()
        let cap = m.capacity(spec, work, slo: slo)
        let queueing = QueueingServingModel().capacity(spec, work, slo: slo)
        XCTAssertGreaterThan(cap, 0)
        XCTAssertLessThan(cap, 1 / spec.prefillSeconds(promptTokens: 256), "below back-to-back lone prefills")
        XCTAssertEqual(cap / queueing, 1, accuracy: 0.5, "the approximation is the simulator's starting bracket")
        let at = try XCTUnwrap(m.load(spec, work, requestsPerSecond: cap))
        XCTAssertLessThanOrEqual(at.ttftP95Seconds, slo.ttftP95)
        XCTAssertLessThanOrEqual(at.tpotP95Seconds, slo.tpotP95)
        let interval = try XCTUnwrap(at.tpotP95Interval)
        XCTAssertLessThanOrEqual(interval.low!, at.tpotP95Seconds)
        XCTAssertGreaterThanOrEqual(interval.high!, at.tpotP95Seconds)
        XCTAssertGreaterThan(at.prefillUtilization, 0)
        XCTAssertLessThan(at.prefillUtilization, 1)
        XCTAssertEqual(m.capacity(spec, work, slo: slo), cap, "fixed seeds: the same answer every time")
    }

    /// The planner asks a replica for its capacity, then its latency at the peak: through `served` the
    /// saturation run behind both is simulated once, and the answers are those asked one by one.
    func testAServedReplicaSimulatesItsSaturationOnce() throws {
        let m = try model()
        let steps = Counter()
        let counted = replicaSpec(StepTimes { steps.add(); return 0.005 + 0.0001 * Double($0.tokens) }, maxNumSeqs: 64, budget: 512, blocks: 4096)
        let cap = m.capacity(counted, work, slo: slo)
        let at = m.load(counted, work, requestsPerSecond: cap)
        let apart = steps.value
        steps.reset()
        let served = m.served(counted, work)
        XCTAssertEqual(served.capacity(slo: slo), cap)
        XCTAssertEqual(served.load(requestsPerSecond: cap), at)
        let together = steps.value
        steps.reset()
        _ = m.saturation(counted, work)
        XCTAssertEqual(together, apart - steps.value, "one saturation run fewer")
        XCTAssertGreaterThan(steps.value, 0)
    }

    func testPastSaturationThereIsNoLoadPoint() throws {
        // Every request needs 256 + 15 tokens at 0.1 ms: beyond 1 / 27.1 ms = 36.9 req/s the backlog grows.
        XCTAssertNil(try model().load(spec, work, requestsPerSecond: 45))
        XCTAssertNotNil(try model().load(spec, work, requestsPerSecond: 10))
    }

    func testARequestTheKVCacheCannotHoldHasNoLoadPoint() throws {
        let small = replicaSpec(StepTimes { 0.005 + 0.0001 * Double($0.tokens) }, maxNumSeqs: 64, budget: 512, blocks: 10)
        XCTAssertNil(try model().load(small, work, requestsPerSecond: 1), "271 positions need 17 blocks of 16")
        XCTAssertEqual(try model().capacity(small, work, slo: slo), 0)
    }

    func testTheNameSaysWhatItSimulates() {
        XCTAssertEqual(SimulatorServingModel().name,
                       "discrete-event simulator (HeadroomScheduling's scheduler, 1000 requests × 5 replications, Poisson)")
    }

    func testTheBenchmarkRunsAtTheFractionOfSaturationItWasGiven() throws {
        let result = try SimulatorBenchmark.run(spec, workload: ServingWorkload(promptTokens: 64, outputTokens: 8), requests: 100,
                                                load: 0.7, repeats: 2)
        XCTAssertEqual(result.rate, 0.7 * result.saturationRate, accuracy: 1e-12)
        XCTAssertEqual(result.events, 100 + result.steps, "an arrival per request and an end per step")
        XCTAssertEqual(result.samples.count, 2)
        XCTAssertEqual(result.seconds, result.samples.min())
    }

    /// The planner's replica of a catalog GPU drives the simulator end to end.
    func testACatalogReplicaSimulates() throws {
        let c = try repoCatalog()
        let input = PlanInput(model: c.models["llama-3.1-8b"]!,
                              demand: Demand(users: 100, requestsPerUserPerDay: 40, peakToMean: 3, promptTokens: 512, outputTokens: 32),
                              slo: SLO(ttftP95: 1, tpotP95: 0.06), hardware: [try c.hardware("h100-sxm")], precisions: [.bf16],
                              prices: nil)
        let (_, h100) = Planner().replica(input, input.hardware[0], .bf16, tp: 1)
        let run = try Simulation.run(SimulationConfig(replicas: [.init(h100)], arrivals: .poisson(rate: 20), promptLengths: .fixed(512),
                                                      outputLengths: .fixed(32), requests: 50))
        XCTAssertEqual(run.requests.count, 50)
        let lone = h100.prefillSeconds(promptTokens: 512)
        XCTAssertGreaterThanOrEqual(run.requests.map(\.ttft).min()!, lone * 0.999, "no request beats a lone prefill")
    }

    /// Worked by hand: every step takes 10 ms whatever it holds; a request is one prefill step (which samples
    /// its first token) and 9 decode steps, so each of the 4 running slots frees every 10 steps: 4 requests
    /// per 100 ms, 40 req/s — however many requests the run has, once past the first batch.
    func testSaturationIsTheSteadyCompletionRate() throws {
        let constant = replicaSpec(StepTimes { _ in 0.01 }, maxNumSeqs: 4, budget: 256, blocks: 1000)
        let w = ServingWorkload(promptTokens: 16, outputTokens: 10)
        for n in [100, 400] {
            let sat = try XCTUnwrap(try SimulatorServingModel(requests: n, replications: 1).saturation(constant, w))
            XCTAssertEqual(sat, 40, accuracy: 40 * 0.03, "\(n) requests")
        }
        // With a batch as wide as the run (every request starts together) the rate is still the steady one,
        // not the spread of the first batch's finishes: the run grows to four batches.
        let wide = replicaSpec(StepTimes { _ in 0.01 }, maxNumSeqs: 256, budget: 4096, blocks: 100_000)
        let sat = try XCTUnwrap(try SimulatorServingModel(requests: 100, replications: 1).saturation(wide, w))
        XCTAssertEqual(sat, 256 / 0.1, accuracy: 256 / 0.1 * 0.05)
    }

    func testCapacityEndsWithManyProbes() throws {
        let m = try SimulatorServingModel(requests: 100, replications: 1, capacityProbes: 200)
        let cap = m.capacity(spec, work, slo: slo)
        XCTAssertGreaterThan(cap, 0, "the bisection stops when the bracket can no longer halve")
    }
}

/// Step predictions made, from any thread.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.lock(); n += 1; lock.unlock() }
    func reset() { lock.lock(); n = 0; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}
