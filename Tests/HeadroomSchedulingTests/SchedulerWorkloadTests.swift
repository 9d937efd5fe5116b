// Seeded random workloads (arrivals, cancellations, stops) against a model of each request kept here: every
// plan within the budget and the sequence cap, every chunk starting where the last one ended (or at 0
// after a preemption), no step empty while anything is held, every request finished or cancelled exactly
// once within a bound; and 2,000 requests of 512 in / 128 out run to completion.
import XCTest
@testable import HeadroomScheduling

final class SchedulerWorkloadTests: XCTestCase {
    struct Expected {
        let request: Request
        var computed = 0
        var generated = 0
        var tokens: Int { request.promptTokens + generated }
    }

    struct Tally { var preemptions = 0, cancellations = 0, stops = 0, finished = 0 }

    /// Runs `arrivalSteps` steps of random arrivals (prompt in 1...maxPrompt, output in 1...maxOutput) and
    /// cancellations, then until the scheduler is empty, checking everything after every step.
    @discardableResult
    func runRandomWorkload(_ config: SchedulerConfig, seed: UInt64, arrivalSteps: Int, maxPrompt: Int, maxOutput: Int,
                           file: StaticString = #filePath, line: UInt = #line) -> Tally {
        var rng = SplitMix64(seed: seed)
        var s = try! ContinuousBatchingScheduler(config: config)
        var live: [RequestID: Expected] = [:]
        var gone = Set<RequestID>()
        var tally = Tally()
        var added = 0, bound = arrivalSteps, step = 0
        func check(_ what: String) {
            let problems = s.invariantViolations()
            if !problems.isEmpty { XCTFail("step \(step) \(what): \(problems)", file: file, line: line) }
        }

        while step < arrivalSteps || s.hasUnfinishedRequests {
            if step < arrivalSteps {
                for _ in 0..<Int.random(in: 0...1, using: &rng) {
                    let request = Request(id: RequestID(added), promptTokens: .random(in: 1...maxPrompt, using: &rng),
                                          maxOutputTokens: .random(in: 1...maxOutput, using: &rng))
                    XCTAssertNoThrow(try s.add(request), file: file, line: line)
                    live[request.id] = Expected(request: request)
                    added += 1
                    // The oldest running request is never preempted and gets at least one token a step.
                    bound += request.promptTokens + request.maxOutputTokens
                }
                if Int.random(in: 0..<12, using: &rng) == 0, let victim = live.keys.sorted().randomElement(using: &rng) {
                    XCTAssertTrue(s.cancel(victim), file: file, line: line)
                    live[victim] = nil
                    gone.insert(victim)
                    tally.cancellations += 1
                }
                if let old = gone.randomElement(using: &rng) {
                    XCTAssertFalse(s.cancel(old), "\(old) is no longer held", file: file, line: line)
                }
                check("after arrivals")
            }

            let plan = s.schedule()
            check("after schedule")
            XCTAssertEqual(plan.isEmpty, live.isEmpty, "step \(step): progress whenever anything is held", file: file, line: line)
            XCTAssertLessThanOrEqual(plan.scheduledTokens, config.maxBatchedTokens, file: file, line: line)
            XCTAssertEqual(plan.work.reduce(0) { $0 + $1.tokenCount }, plan.scheduledTokens, file: file, line: line)
            XCTAssertLessThanOrEqual(plan.work.count, config.maxNumSeqs, file: file, line: line)
            XCTAssertLessThanOrEqual(s.runningCount, config.maxNumSeqs, file: file, line: line)
            XCTAssertEqual(Set(plan.work.map(\.id)).count, plan.work.count, "step \(step): a request twice in one plan", file: file, line: line)
            for id in plan.preempted {
                live[id]!.computed = 0
                tally.preemptions += 1
                XCTAssertFalse(plan.work.contains { $0.id == id }, "step \(step): \(id) preempted and planned", file: file, line: line)
            }
            for work in plan.work {
                var e = live[work.id]!
                XCTAssertEqual(work.start, e.computed, "step \(step): \(work.id) resumes where it stopped", file: file, line: line)
                XCTAssertEqual(work.generatedTokens, e.generated, file: file, line: line)
                XCTAssertGreaterThan(work.tokenCount, 0, file: file, line: line)
                e.computed += work.tokenCount
                XCTAssertLessThanOrEqual(e.computed, e.tokens, "step \(step): \(work.id) computes past its tokens", file: file, line: line)
                XCTAssertEqual(work.yieldsToken, e.computed == e.tokens, file: file, line: line)
                let isDecode = work.tokenCount == 1 && e.generated > 0 && work.start == e.tokens - 1
                XCTAssertEqual(work.kind, isDecode ? .decode : .prefill, file: file, line: line)
                if work.kind == .prefill && !config.chunkedPrefill {
                    XCTAssertEqual(work.start, 0, "step \(step): without chunking a prefill is whole", file: file, line: line)
                    XCTAssertTrue(work.yieldsToken, file: file, line: line)
                }
                if work.kind == .prefill && config.chunkedPrefill && config.longPrefillTokenThreshold > 0 {
                    XCTAssertLessThanOrEqual(work.tokenCount, config.longPrefillTokenThreshold, file: file, line: line)
                }
                XCTAssertEqual(s.state(of: work.id)?.computedTokens, e.computed, file: file, line: line)
                live[work.id] = e
            }

            // The engine stops some requests early; a "stop" on a chunk that samples nothing is ignored.
            let results = plan.work.map { StepResult(id: $0.id, stopped: Int.random(in: 0..<25, using: &rng) == 0) }
            var expected: [FinishedRequest] = []
            for (work, result) in zip(plan.work, results) where work.yieldsToken {
                live[work.id]!.generated += 1
                let e = live[work.id]!
                if result.stopped || e.generated == e.request.maxOutputTokens {
                    expected.append(FinishedRequest(request: e.request, generatedTokens: e.generated,
                                                    reason: result.stopped ? .stopped : .maxTokens, preemptions: 0))
                }
            }
            let finished = s.complete(step: plan, results: results)
            check("after complete")
            XCTAssertEqual(finished.map(\.id), expected.map(\.id), "step \(step)", file: file, line: line)
            XCTAssertEqual(finished.map(\.generatedTokens), expected.map(\.generatedTokens), file: file, line: line)
            XCTAssertEqual(finished.map(\.reason), expected.map(\.reason), file: file, line: line)
            for f in finished {
                XCTAssertNotNil(live.removeValue(forKey: f.id), "\(f.id) finished twice or after cancellation", file: file, line: line)
                gone.insert(f.id)
                tally.finished += 1
                if f.reason == .stopped { tally.stops += 1 }
            }
            step += 1
            if step > bound {
                XCTFail("not done after \(step) steps; \(live.count) requests left", file: file, line: line)
                break
            }
        }
        XCTAssertEqual(tally.finished + tally.cancellations, added, "every request finished or cancelled", file: file, line: line)
        XCTAssertEqual(gone.count, added, file: file, line: line)
        XCTAssertEqual(s.blocks.freeBlockCount, config.totalBlocks, file: file, line: line)
        XCTAssertEqual(tally.preemptions, s.preemptionCount, file: file, line: line)
        return tally
    }

    /// A pool of 20 blocks of 4 (80 positions) under requests of up to 69: preemption is routine.
    func testChunkedPrefillUnderATightPool() {
        let tally = runRandomWorkload(SchedulerConfig(maxNumSeqs: 4, maxBatchedTokens: 12, blockSize: 4, totalBlocks: 20),
                                      seed: 1, arrivalSteps: 300, maxPrompt: 40, maxOutput: 30)
        XCTAssertGreaterThan(tally.preemptions, 10, "the workload exercises preemption")
        XCTAssertGreaterThan(tally.cancellations, 5)
        XCTAssertGreaterThan(tally.stops, 5)
    }

    func testWholePrefillsWithoutChunking() {
        let tally = runRandomWorkload(SchedulerConfig(maxNumSeqs: 6, maxBatchedTokens: 64, chunkedPrefill: false, blockSize: 4, totalBlocks: 24),
                                      seed: 2, arrivalSteps: 300, maxPrompt: 40, maxOutput: 24)
        XCTAssertGreaterThan(tally.preemptions, 0)
    }

    func testALongPrefillThresholdAndFewSequences() {
        let tally = runRandomWorkload(SchedulerConfig(maxNumSeqs: 3, maxBatchedTokens: 16, blockSize: 16, totalBlocks: 6,
                                                      longPrefillTokenThreshold: 5),
                                      seed: 3, arrivalSteps: 300, maxPrompt: 60, maxOutput: 30)
        XCTAssertGreaterThan(tally.preemptions, 0)
    }

    /// The order of magnitude of a simulator's load: 2,000 requests of 512 prompt and 128 output tokens,
    /// all arrived at once, through a pool of 4,096 blocks (102 requests at full length) with vLLM's
    /// default caps. Checks correctness only; its time is what `swift test` reports.
    func testTwoThousandRequestsRunToCompletion() throws {
        let config = SchedulerConfig(maxNumSeqs: 256, maxBatchedTokens: 2048, totalBlocks: 4096)
        var s = try ContinuousBatchingScheduler(config: config)
        for i in 0..<2_000 { try s.add(Request(id: RequestID(i), promptTokens: 512, maxOutputTokens: 128)) }
        var steps = 0, tokensSampled = 0, finished = 0, overBudget = 0, overCap = 0, empty = 0, wrongLength = 0
        while s.hasUnfinishedRequests {
            let plan = s.schedule()
            if plan.scheduledTokens > 2048 { overBudget += 1 }
            if plan.work.count > 256 { overCap += 1 }
            if plan.isEmpty { empty += 1 }
            for work in plan.work where work.yieldsToken { tokensSampled += 1 }
            for done in s.complete(step: plan) {
                finished += 1
                if done.generatedTokens != 128 || done.reason != .maxTokens { wrongLength += 1 }
            }
            steps += 1
            if steps > 2_000 * 640 { XCTFail("no end in sight"); break }
        }
        XCTAssertEqual([overBudget, overCap, empty, wrongLength], [0, 0, 0, 0])
        XCTAssertEqual(finished, 2_000)
        XCTAssertEqual(tokensSampled, 2_000 * 128, "one sampled token per output token, none lost or repeated")
        XCTAssertEqual(s.blocks.freeBlockCount, 4096)
        XCTAssertEqual(s.invariantViolations(), [])
        print("2,000 requests of 512 in / 128 out: \(steps) steps, \(s.preemptionCount) preemptions")
    }
}
