import Foundation
import HeadroomScheduling
import XCTest
@testable import HeadroomCore

/// A predictor whose step time is a function of the shape the test chooses, so every time is known by hand.
struct StepTimes: ExecutionTimePredictor {
    var basis = "test step times"
    let seconds: @Sendable (BatchShape) -> Double
    init(_ seconds: @escaping @Sendable (BatchShape) -> Double) { self.seconds = seconds }
    func iterationSeconds(_ batch: BatchShape) -> Double { seconds(batch) }
}

func replicaSpec(_ predictor: StepTimes, maxNumSeqs: Int = 8, budget: Int = 256, chunked: Bool = true, blockSize: Int = 16,
                 blocks: Int = 1000) -> ReplicaSpec {
    ReplicaSpec(predictor: predictor,
                scheduler: SchedulerConfig(maxNumSeqs: maxNumSeqs, maxBatchedTokens: budget, chunkedPrefill: chunked,
                                           blockSize: blockSize, totalBlocks: blocks),
                maxBatch: maxNumSeqs)
}

func simulation(_ spec: ReplicaSpec, replicas: Int = 1, stages: Int = 1, router: SimulationConfig.Router = .roundRobin,
                arrivals: ArrivalProcess, prompt: LengthDistribution = .fixed(32), output: LengthDistribution = .fixed(3),
                requests: Int, seed: UInt64 = 7, gaps: Bool = false) -> SimulationConfig {
    SimulationConfig(replicas: Array(repeating: .init(spec, pipelineStages: stages), count: replicas), router: router,
                     arrivals: arrivals, promptLengths: prompt, outputLengths: output, requests: requests, seed: seed,
                     recordInterTokenGaps: gaps)
}

/// The event loop against schedules worked by hand: one request, chunked prefill, a pattern of arrivals,
/// KV exhaustion, routing, pipeline stages; then the laws and the randomness.
final class SimulatorTests: XCTestCase {
    /// 0.1 s for a step with any prefill, 0.01 s for a decode-only step.
    let prefillOrDecode = StepTimes { $0.prefillTokens > 0 ? 0.1 : 0.01 }

    func testALoneRequestsFirstTokenComesWithItsPrefillStepAndEachLaterOneWithADecodeStep() throws {
        let run = try Simulation.run(simulation(replicaSpec(prefillOrDecode), arrivals: .constant(rate: 1), prompt: .fixed(100),
                                                output: .fixed(5), requests: 1))
        let r = try XCTUnwrap(run.requests.first)
        XCTAssertEqual(r.queueWait, 0)
        XCTAssertEqual(r.ttft, 0.1, accuracy: 1e-12, "the step that completes the prefill samples the first token")
        XCTAssertEqual(r.e2e, 0.1 + 4 * 0.01, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(r.tpot), 0.01, accuracy: 1e-12)
        XCTAssertEqual(run.steps, 5)
        XCTAssertEqual(run.events, 6, "one arrival, five step ends")
        XCTAssertEqual(run.span, r.e2e)
        XCTAssertEqual(run.preemptions, 0)
        XCTAssertEqual(run.meanBatchTokens, (100 + 4) / 5.0, accuracy: 1e-12)
    }

    func testAPromptLongerThanTheBudgetTakesOneStepPerChunkBeforeItsFirstToken() throws {
        // Budget 32: the 100-token prompt goes in chunks of 32, 32, 32, 4, each a 0.1 s prefill step; only
        // the fourth samples a token.
        let spec = replicaSpec(prefillOrDecode, maxNumSeqs: 4, budget: 32)
        let run = try Simulation.run(simulation(spec, arrivals: .constant(rate: 1), prompt: .fixed(100), output: .fixed(5), requests: 1))
        let r = try XCTUnwrap(run.requests.first)
        XCTAssertEqual(r.ttft, 4 * 0.1, accuracy: 1e-12)
        XCTAssertEqual(r.e2e, 4 * 0.1 + 4 * 0.01, accuracy: 1e-12)
        XCTAssertEqual(run.steps, 8)
    }

    /// Step time (32 + tokens)/1024 s; prompts of 32 tokens, outputs of 3, one arrival every 1/16 s. All
    /// times are dyadic, so exact:
    ///
    ///     step  start         requests (tokens)              tokens  seconds       end
    ///     A     0             r0 prefill 32                  32      0.0625        0.0625
    ///     B     0.0625        r0 decode, r1 prefill 32       33      0.0634765625  0.1259765625   (r1 arrived at 0.0625, as A ended: it joins B)
    ///     C     0.1259765625  r0, r1 decode, r2 prefill 32   34      0.064453125   0.1904296875   (r2 arrived at 0.125; r0 finishes)
    ///     D     0.1904296875  r1, r2 decode, r3 prefill 32   34      0.064453125   0.2548828125   (r3 arrived at 0.1875; r1 finishes)
    ///     E     0.2548828125  r2, r3 decode                  2       0.033203125   0.2880859375   (r2 finishes)
    ///     F     0.2880859375  r3 decode                      1       0.0322265625  0.3203125      (r3 finishes)
    func testConstantArrivalsFollowTheScheduleWorkedByHand() throws {
        let spec = replicaSpec(StepTimes { Double(32 + $0.tokens) / 1024 })
        let run = try Simulation.run(simulation(spec, arrivals: .constant(rate: 16), requests: 4))
        XCTAssertEqual(run.requests.map(\.arrival), [0, 0.0625, 0.125, 0.1875])
        XCTAssertEqual(run.requests.map(\.queueWait), [0, 0, 0.1259765625 - 0.125, 0.1904296875 - 0.1875])
        XCTAssertEqual(run.requests.map(\.ttft), [0.0625, 0.1259765625 - 0.0625, 0.1904296875 - 0.125, 0.2548828125 - 0.1875])
        XCTAssertEqual(run.requests.map(\.e2e), [0.1904296875, 0.2548828125 - 0.0625, 0.2880859375 - 0.125, 0.3203125 - 0.1875])
        XCTAssertEqual(run.requests[0].tpot, (0.1904296875 - 0.0625) / 2)
        XCTAssertEqual(run.steps, 6)
        XCTAssertEqual(run.events, 10)
        XCTAssertEqual(run.span, 0.3203125)
        XCTAssertEqual(run.meanBatchTokens, (32 + 33 + 34 + 34 + 2 + 1) / 6.0, accuracy: 1e-12)
        XCTAssertEqual(run.meanBatchSequences, (1 + 2 + 3 + 3 + 2 + 1) / 6.0, accuracy: 1e-12)
        XCTAssertEqual(run.requestThroughput, 4 / 0.3203125, accuracy: 1e-9)
        XCTAssertEqual(run.outputTokenThroughput, 12 / 0.3203125, accuracy: 1e-9)
        // Prefill share: A all of 0.0625; B 32/33, C and D 32/34 of theirs.
        let prefill = 0.0625 + 0.0634765625 * 32 / 33 + 2 * 0.064453125 * 32 / 34
        XCTAssertEqual(run.prefillFraction, prefill / 0.3203125, accuracy: 1e-12)
    }

    /// Blocks of 4 positions, 6 in the pool; two requests of 8 prompt and 8 output tokens (at most 15
    /// positions, 4 blocks, each fits alone). Step 1 prefills both (2 blocks each); step 2 takes a third
    /// block each (position 8): the pool is full. Steps 3–5 stay within those blocks (positions 9–11). In
    /// step 6 the older request needs a fourth block for position 12: the younger is preempted, its 3
    /// blocks freed. It needs 4 blocks to recompute its 13 tokens, so it waits until the older one finishes
    /// in step 8, recomputes in step 9 (sampling its 6th token) and decodes its 7th and 8th in steps 10 and 11.
    func testKVExhaustionPreemptsTheYoungestAtTheStepWorkedByHand() throws {
        let dt = 1.0 / 128
        let spec = replicaSpec(StepTimes { _ in dt }, maxNumSeqs: 2, budget: 64, blockSize: 4, blocks: 6)
        let run = try Simulation.run(simulation(spec, arrivals: .allAtOnce, prompt: .fixed(8), output: .fixed(8), requests: 2, gaps: true))
        XCTAssertEqual(run.rejected, [])
        XCTAssertEqual(run.requests.map(\.preemptions), [0, 1])
        XCTAssertEqual(run.preemptions, 1)
        XCTAssertEqual(run.steps, 11)
        XCTAssertEqual(run.requests.map(\.ttft), [dt, dt])
        XCTAssertEqual(run.requests.map(\.e2e), [8 * dt, 11 * dt])
        XCTAssertEqual(run.peakKVUsage, 1)
        let gaps = try XCTUnwrap(run.interTokenGaps)
        XCTAssertEqual(gaps.count, 14, "7 gaps per request")
        XCTAssertEqual(gaps.max(), 4 * dt, "the younger's 5th to 6th token: steps 5 to 9")
        XCTAssertEqual(gaps.filter { $0 == dt }.count, 13)
    }

    func testARequestTooLongForTheKVCacheIsRejectedWithTheSchedulersReason() throws {
        // 16 positions in the pool; 20 + 2 − 1 = 21 positions need 6 blocks of 4.
        let spec = replicaSpec(StepTimes { _ in 0.01 }, maxNumSeqs: 2, budget: 64, blockSize: 4, blocks: 4)
        let trace = [LoadTraceEntry(timestamp: 0, promptTokens: 8, outputTokens: 2),
                     LoadTraceEntry(timestamp: 0.5, promptTokens: 20, outputTokens: 2)]
        let run = try Simulation.run(simulation(spec, arrivals: .trace(trace), requests: 10))
        XCTAssertEqual(run.requests.map(\.index), [0])
        XCTAssertEqual(run.rejected.map(\.reason), [.exceedsKVCache(RequestID(1), blocksNeeded: 6, totalBlocks: 4)])
        XCTAssertEqual(run.rejected.first?.arrival, 0.5)
    }

    func testATraceGivesTheArrivalTimesAndLengths() throws {
        let trace = [LoadTraceEntry(timestamp: 0, promptTokens: 40, outputTokens: 2),
                     LoadTraceEntry(timestamp: 2, promptTokens: 16, outputTokens: 6),
                     LoadTraceEntry(timestamp: 3, promptTokens: 24, outputTokens: 1)]
        let run = try Simulation.run(simulation(replicaSpec(prefillOrDecode), arrivals: .trace(trace), prompt: .fixed(999),
                                                output: .fixed(999), requests: 2))
        XCTAssertEqual(run.requests.map(\.arrival), [0, 2], "the first two entries: requests caps the replay")
        XCTAssertEqual(run.requests.map(\.promptTokens), [40, 16])
        XCTAssertEqual(run.requests.map(\.outputTokens), [2, 6])
        XCTAssertEqual(run.requests.map(\.e2e), [0.1 + 0.01, 0.1 + 5 * 0.01], "each alone")
    }

    func testLittlesLawHoldsOnALongRun() throws {
        let spec = replicaSpec(StepTimes { 0.002 + 0.00002 * Double($0.tokens) }, maxNumSeqs: 32, budget: 256)
        let run = try Simulation.run(simulation(spec, arrivals: .poisson(rate: 150), prompt: .uniform(min: 16, max: 64),
                                                output: .uniform(min: 4, max: 32), requests: 1000))
        let meanE2E = run.requests.map(\.e2e).reduce(0, +) / Double(run.requests.count)
        XCTAssertGreaterThan(run.meanRequestsInSystem, 2, "a load where requests overlap")
        XCTAssertEqual(run.meanRequestsInSystem / (run.requestThroughput * meanE2E), 1, accuracy: 0.01)
        XCTAssertLessThanOrEqual(run.meanRunning, run.meanRequestsInSystem + 1e-9)
        XCTAssertEqual(run.requests.count, 1000)
        XCTAssertLessThanOrEqual(run.kvUsage.count, SimulationRun.kvUsageSamples)
        XCTAssertGreaterThanOrEqual(run.peakKVUsage, run.kvUsage.map(\.fraction).max()!)
        XCTAssertGreaterThan(run.meanKVUsage, 0)
    }

    func testRoundRobinAlternatesAndLeastOutstandingPicksTheEmptierReplica() throws {
        // Request 0 runs 100 steps of 0.01 s on replica 0; the others take one step each, so replica 1 is
        // empty again when requests 2 and 3 arrive.
        let trace = [LoadTraceEntry(timestamp: 0, promptTokens: 8, outputTokens: 100),
                     LoadTraceEntry(timestamp: 0.1, promptTokens: 8, outputTokens: 1),
                     LoadTraceEntry(timestamp: 0.5, promptTokens: 8, outputTokens: 1),
                     LoadTraceEntry(timestamp: 0.6, promptTokens: 8, outputTokens: 1)]
        let spec = replicaSpec(StepTimes { _ in 0.01 })
        let turns = try Simulation.run(simulation(spec, replicas: 2, router: .roundRobin, arrivals: .trace(trace), requests: 4))
        XCTAssertEqual(turns.requests.map(\.replica), [0, 1, 0, 1])
        let least = try Simulation.run(simulation(spec, replicas: 2, router: .leastOutstanding, arrivals: .trace(trace), requests: 4))
        XCTAssertEqual(least.requests.map(\.replica), [0, 1, 1, 1])
        XCTAssertEqual(least.requests[2].e2e, 0.01, accuracy: 1e-12, "alone on replica 1")
    }

    /// Two stages, 0.125 s a step (0.0625 per stage); two requests at once go to the two virtual engines.
    /// Engine 0's steps: [0, 0.125], then from 0.125 (stage 0 free since 0.125) to 0.25 … Engine 1's first
    /// step waits for stage 0 until 0.0625 and leaves stage 1 at 0.1875; each later step starts when its
    /// previous one ends, half a step behind engine 0's.
    func testPipelineStagesKeepTwoStepsInFlight() throws {
        let spec = replicaSpec(StepTimes { _ in 0.125 }, blocks: 10)
        let run = try Simulation.run(simulation(spec, stages: 2, arrivals: .allAtOnce, prompt: .fixed(8), output: .fixed(3), requests: 2))
        XCTAssertEqual(run.requests.map(\.queueWait), [0, 0.0625])
        XCTAssertEqual(run.requests.map(\.ttft), [0.125, 0.1875])
        XCTAssertEqual(run.requests.map(\.e2e), [0.375, 0.4375])
        XCTAssertEqual(run.requests.map { $0.tpot! }, [0.125, 0.125])
        XCTAssertEqual(run.steps, 6)
        // One stage: both requests in every step, the same latency as the first engine's above.
        let flat = try Simulation.run(simulation(spec, arrivals: .allAtOnce, prompt: .fixed(8), output: .fixed(3), requests: 2))
        XCTAssertEqual(flat.requests.map(\.e2e), [0.375, 0.375])
        XCTAssertEqual(flat.steps, 3)
    }

    // MARK: randomness

    func testSimulationRandomIsSplitMix64() {
        // The reference outputs of SplitMix64 seeded with 0 (Vigna's splitmix64.c).
        var r = SimulationRandom(seed: 0)
        XCTAssertEqual([r.next(), r.next(), r.next()], [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F])
    }

    func testPoissonAndGammaGapsHaveTheRequestedMeanAndCV() {
        func gaps(_ p: ArrivalProcess, _ n: Int = 50_000) -> (mean: Double, cv: Double) {
            let t = p.times(count: n + 1, seed: 42)
            let g = zip(t.dropFirst(), t).map { $0 - $1 }
            let mean = g.reduce(0, +) / Double(n)
            let sd = (g.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n - 1)).squareRoot()
            return (mean, sd / mean)
        }
        let poisson = gaps(.poisson(rate: 5))
        XCTAssertEqual(poisson.mean, 0.2, accuracy: 0.2 * 0.02)
        XCTAssertEqual(poisson.cv, 1, accuracy: 0.03)
        let regular = gaps(.gamma(rate: 5, cv: 0.5))
        XCTAssertEqual(regular.mean, 0.2, accuracy: 0.2 * 0.02)
        XCTAssertEqual(regular.cv, 0.5, accuracy: 0.5 * 0.03)
        let bursty = gaps(.gamma(rate: 5, cv: 2))
        XCTAssertEqual(bursty.mean, 0.2, accuracy: 0.2 * 0.04)
        XCTAssertEqual(bursty.cv, 2, accuracy: 2 * 0.05)
        XCTAssertEqual(ArrivalProcess.constant(rate: 4).times(count: 3, seed: 1), [0, 0.25, 0.5])
        XCTAssertEqual(ArrivalProcess.allAtOnce.times(count: 2, seed: 1), [0, 0])
    }

    func testLengthsStayInTheirRanges() {
        var r = SimulationRandom(seed: 3)
        let uniform = (0..<2000).map { _ in LengthDistribution.uniform(min: 3, max: 6).sample(&r) }
        XCTAssertEqual(Set(uniform), [3, 4, 5, 6])
        let lognormal = (0..<4001).map { _ in LengthDistribution.lognormal(median: 200, sigma: 1).sample(&r) }.sorted()
        XCTAssertEqual(Double(lognormal[2000]), 200, accuracy: 20, "the median")
        XCTAssertGreaterThanOrEqual(lognormal.first!, 1)
        let wide = (0..<200).map { _ in LengthDistribution.lognormal(median: 1, sigma: 30).sample(&r) }
        XCTAssertEqual(wide.min(), 1, "clamped below")
        XCTAssertEqual(wide.max(), LengthDistribution.maxLength, "clamped above")
        let listed = (0..<200).map { _ in LengthDistribution.values([7, 9]).sample(&r) }
        XCTAssertEqual(Set(listed), [7, 9])
    }

    func testTheSameSeedGivesTheSameRunAndAnotherSeedAnother() throws {
        let spec = replicaSpec(StepTimes { 0.002 + 0.00002 * Double($0.tokens) }, maxNumSeqs: 32, budget: 256)
        let config = simulation(spec, arrivals: .gamma(rate: 100, cv: 2), prompt: .lognormal(median: 40, sigma: 0.5),
                                output: .uniform(min: 2, max: 20), requests: 200, seed: 11)
        let a = try Simulation.run(config), b = try Simulation.run(config)
        XCTAssertEqual(a.requests, b.requests)
        XCTAssertEqual(a.kvUsage, b.kvUsage)
        var other = config
        other.seed = 12
        let c = try Simulation.run(other)
        XCTAssertNotEqual(a.requests.map(\.arrival), c.requests.map(\.arrival))
        XCTAssertNotEqual(a.requests.map(\.promptTokens), c.requests.map(\.promptTokens))
    }

    // MARK: replications

    func testReplicationIntervalsContainTheMeanAndNarrowWithMoreReplications() throws {
        let spec = replicaSpec(StepTimes { 0.002 + 0.00002 * Double($0.tokens) }, maxNumSeqs: 32, budget: 256)
        let config = simulation(spec, arrivals: .poisson(rate: 150), prompt: .uniform(min: 16, max: 64), output: .fixed(8), requests: 150)
        let one = try Simulation.replicate(config, replications: 1)
        XCTAssertEqual(one.runs[0].requests, try Simulation.run(config).requests, "replication 0 is the config's own seed")
        XCTAssertNil(one.ttft?.p95.low)
        XCTAssertNil(one.requestThroughput.high)
        let four = try Simulation.replicate(config, replications: 4)
        let sixteen = try Simulation.replicate(config, replications: 16)
        XCTAssertEqual(Set(sixteen.runs.map { $0.requests[1].arrival }).count, 16, "each replication its own arrivals")
        func width(_ e: Estimate) -> Double { e.high! - e.low! }
        for s in [four, sixteen] {
            for e in [s.ttft!.p95, s.tpot!.p50, s.e2e!.p99, s.requestThroughput] {
                XCTAssertLessThanOrEqual(e.low!, e.value)
                XCTAssertGreaterThanOrEqual(e.high!, e.value)
            }
        }
        XCTAssertLessThan(width(sixteen.ttft!.p95), width(four.ttft!.p95))
        XCTAssertLessThan(width(sixteen.requestThroughput), width(four.requestThroughput))
        let serial = try Simulation.replicate(config, replications: 4, parallel: false)
        XCTAssertEqual(serial.runs.map(\.requests), four.runs.map(\.requests), "threads change nothing")
    }

    func testTheTQuantileMatchesTheTables() {
        XCTAssertEqual(StudentT.quantile975(degreesOfFreedom: 1), 12.7062)
        XCTAssertEqual(StudentT.quantile975(degreesOfFreedom: 4), 2.7764)
        XCTAssertEqual(StudentT.quantile975(degreesOfFreedom: 40), 2.0211, accuracy: 1e-4)
        XCTAssertEqual(StudentT.quantile975(degreesOfFreedom: 120), 1.9799, accuracy: 1e-4)
        // Samples 1, 2, 3: mean 2, s = 1, half-width 4.3027 / √3.
        let e = Estimate(replicated: [1, 2, 3])
        XCTAssertEqual(e.value, 2)
        XCTAssertEqual(e.high! - 2, 4.3027 / 3.0.squareRoot(), accuracy: 1e-12)
    }

    func testTheKVSeriesIsDecimatedToItsCapacityAndKeepsThePeak() {
        var recorder = KVUsageRecorder(capacity: 1000)
        for i in 0..<10_000 { recorder.record(time: Double(i), fraction: i == 7777 ? 0.9 : 0.5) }
        XCTAssertLessThanOrEqual(recorder.samples.count, 1000)
        XCTAssertGreaterThanOrEqual(recorder.samples.count, 500)
        XCTAssertEqual(recorder.samples.first?.time, 0)
        let times = recorder.samples.map(\.time)
        XCTAssertEqual(Set(zip(times.dropFirst(), times).map { $0 - $1 }), [16], "every 16th record of 10,000")
        XCTAssertEqual(recorder.peak, 0.9)
    }
}
