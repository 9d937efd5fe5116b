// The policy step by step on cases small enough to work out by hand: chunked prefill, a shared token
// budget, the sequence cap, whole-prompt admission without chunking, preemption at the block where the
// pool runs dry and the recompute after it, stops and cancellation.
import XCTest
@testable import HeadroomScheduling

final class ContinuousBatchingSchedulerTests: XCTestCase {
    /// A 20-token prompt under an 8-token budget: ceil(20/8) = 3 chunks, the last one sampling the first
    /// token, then one decode per further token.
    func testALoneRequestPrefillsInChunksThenDecodes() {
        var s = scheduler(maxBatchedTokens: 8, totalBlocks: 8)
        s.add((1, 20, 3))
        XCTAssertEqual(s.step().work, ["1 P0+8"])
        XCTAssertEqual(s.blocks.usedBlockCount, 1)
        XCTAssertEqual(s.state(of: 1)?.computedTokens, 8)
        XCTAssertEqual(s.state(of: 1)?.generatedTokens, 0, "a chunk short of the prompt's end samples nothing")
        XCTAssertEqual(s.step().work, ["1 P8+8"])
        XCTAssertEqual(s.blocks.usedBlockCount, 1, "16 positions, one block")

        let third = s.schedule()
        XCTAssertEqual(third.work.map(describe), ["1 P16+4*"])
        XCTAssertEqual(third.work[0].generatedTokens, 0, "this chunk yields the first token")
        XCTAssertEqual(third.scheduledTokens, 4)
        XCTAssertEqual(s.blocks.usedBlockCount, 2, "position 16 opens the second block")
        XCTAssertEqual(s.blockTable(of: 1), [0, 1])
        XCTAssertEqual(s.complete(step: third), [])
        XCTAssertEqual(s.state(of: 1)?.generatedTokens, 1)

        XCTAssertEqual(s.step().work, ["1 D20"])
        let last = s.schedule()
        XCTAssertEqual(last.work.map(describe), ["1 D21"])
        XCTAssertEqual(s.complete(step: last), [FinishedRequest(request: Request(id: 1, promptTokens: 20, maxOutputTokens: 3),
                                                               generatedTokens: 3, reason: .maxTokens, preemptions: 0)])
        XCTAssertEqual(s.blocks.freeBlockCount, 8, "a finished request's blocks go back at once")
        XCTAssertFalse(s.hasUnfinishedRequests)
        XCTAssertNil(s.state(of: 1))
        XCTAssertTrue(s.schedule().isEmpty)
    }

    func testWithoutChunkingALoneRequestPrefillsWhole() {
        var s = scheduler(maxBatchedTokens: 32, chunkedPrefill: false, totalBlocks: 8)
        s.add((1, 20, 3))
        XCTAssertEqual(s.step().work, ["1 P0+20*"])
        XCTAssertEqual(s.step().work, ["1 D20"])
        XCTAssertEqual(s.step().finished, [1])
    }

    /// Budget 10: request 1's whole prompt (6) and 4 of request 2's 7 in the first step; in the second,
    /// 1's first decode and the rest of 2's prompt.
    func testTwoPrefillsShareOneStepsBudget() {
        var s = scheduler(maxNumSeqs: 2, maxBatchedTokens: 10, totalBlocks: 8)
        s.add((1, 6, 3), (2, 7, 2))
        let first = s.schedule()
        XCTAssertEqual(first.work.map(describe), ["1 P0+6*", "2 P0+4"])
        XCTAssertEqual(first.scheduledTokens, 10)
        XCTAssertEqual(first.prefillTokens, 10)
        _ = s.complete(step: first)
        let second = s.schedule()
        XCTAssertEqual(second.work.map(describe), ["1 D6", "2 P4+3*"])
        XCTAssertEqual(second.decodeCount, 1)
        XCTAssertEqual(second.scheduledTokens, 4)
        _ = s.complete(step: second)
        XCTAssertEqual(s.step().work, ["1 D7", "2 D7"])
        XCTAssertFalse(s.hasUnfinishedRequests, "1 made 3 tokens (prefill, D6, D7), 2 made 2 (prefill, D7)")
    }

    func testMaxNumSeqsCapsTheBatchEvenWithBudgetLeft() {
        var s = scheduler(maxNumSeqs: 2, maxBatchedTokens: 100, totalBlocks: 8)
        s.add((1, 4, 2), (2, 4, 2), (3, 4, 2))
        XCTAssertEqual(s.step().work, ["1 P0+4*", "2 P0+4*"])
        XCTAssertEqual(s.runningCount, 2)
        XCTAssertEqual(s.waitingCount, 1)
        // 1 and 2 finish in this step's completion, so 3 is admitted only in the next.
        XCTAssertEqual(s.step().work.count, 2)
        XCTAssertEqual(s.step().work, ["3 P0+4*"])
        XCTAssertEqual(s.step().finished, [3])
    }

    /// Budget 16, chunked prefill off. Two decodes take 2 tokens, so a 15-token prompt (14 left) waits,
    /// and FCFS keeps the 1-token prompt behind it waiting too; when one decoder finishes, 1 + 15 = 16 fits.
    func testWithoutChunkingALongPromptWaitsUntilItFitsWhole() {
        var s = scheduler(maxBatchedTokens: 16, chunkedPrefill: false, totalBlocks: 16)
        s.add((1, 2, 3), (2, 2, 5))
        XCTAssertEqual(s.step().work, ["1 P0+2*", "2 P0+2*"])
        s.add((3, 15, 2), (4, 1, 1))
        XCTAssertEqual(s.step().work, ["1 D2", "2 D2"])
        XCTAssertEqual(s.waitingRequests, [3, 4])
        XCTAssertEqual(s.step().work, ["1 D3", "2 D3"])
        XCTAssertEqual(s.state(of: 1), nil, "1 finished with its third token")
        let fits = s.schedule()
        XCTAssertEqual(fits.work.map(describe), ["2 D4", "3 P0+15*"])
        XCTAssertEqual(fits.scheduledTokens, 16)
        _ = s.complete(step: fits)
        XCTAssertEqual(s.step().work, ["2 D5", "3 D15", "4 P0+1*"])
        XCTAssertFalse(s.hasUnfinishedRequests)
    }

    /// The same arrivals with chunking: the long prompt starts in the first step with budget left.
    func testWithChunkingTheSameLongPromptStartsAtOnce() {
        var s = scheduler(maxBatchedTokens: 16, totalBlocks: 16)
        s.add((1, 2, 3), (2, 2, 5))
        XCTAssertEqual(s.step().work, ["1 P0+2*", "2 P0+2*"])
        s.add((3, 15, 2), (4, 1, 1))
        XCTAssertEqual(s.step().work, ["1 D2", "2 D2", "3 P0+14"])
        XCTAssertEqual(s.step().work, ["1 D3", "2 D3", "3 P14+1*", "4 P0+1*"])
    }

    func testALongPrefillThresholdLeavesBudgetForThePromptsBehind() {
        var s = scheduler(maxBatchedTokens: 32, totalBlocks: 8, longPrefillTokenThreshold: 8)
        s.add((1, 20, 2), (2, 5, 2))
        XCTAssertEqual(s.step().work, ["1 P0+8", "2 P0+5*"])
        XCTAssertEqual(s.step().work, ["1 P8+8", "2 D5"])
    }

    /// 8 blocks of 16 and two requests of 48 prompt tokens: 3 + 3 blocks after the prefill, the fourth
    /// block each at position 48 (step 2) leaves none free. Positions 48...63 fit; at step 18 request 1
    /// needs position 64, a fifth block, so the youngest (2, with 1 + 16 = 17 tokens generated) is
    /// preempted. 2's recompute (48 + 17 = 65 tokens, 5 blocks) waits for 1 to finish at step 60
    /// (decode at position p yields token p - 46; token 60 at p = 106), runs at step 61, and decodes
    /// positions 65...106 in steps 62...103.
    func testKVExhaustionPreemptsTheYoungestAtTheBlockWorkedOutByHand() {
        var s = scheduler(maxBatchedTokens: 256, totalBlocks: 8)
        s.add((1, 48, 60), (2, 48, 60))
        XCTAssertEqual(s.step().work, ["1 P0+48*", "2 P0+48*"])
        XCTAssertEqual(s.blocks.usedBlockCount, 6)
        XCTAssertEqual(s.step().work, ["1 D48", "2 D48"])
        XCTAssertEqual(s.blocks.freeBlockCount, 0)
        for step in 3...17 {
            XCTAssertEqual(s.step().work, ["1 D\(step + 46)", "2 D\(step + 46)"], "step \(step)")
        }
        XCTAssertEqual(s.preemptionCount, 0)

        let preempting = s.schedule()
        XCTAssertEqual(preempting.work.map(describe), ["1 D64"])
        XCTAssertEqual(preempting.preempted, [2])
        XCTAssertEqual(s.blocks.table(of: 1)?.blocks.count, 5)
        XCTAssertEqual(s.blocks.freeBlockCount, 3, "2's four blocks back, one of them to 1")
        XCTAssertNil(s.blockTable(of: 2))
        let victim = s.state(of: 2)
        XCTAssertEqual(victim?.phase, .preempted)
        XCTAssertEqual(victim?.computedTokens, 0)
        XCTAssertEqual(victim?.generatedTokens, 17)
        XCTAssertEqual(victim?.tokensToCompute, 65, "the prompt and the 17 tokens generated, prefilled again")
        _ = s.complete(step: preempting)

        for step in 19...59 {
            XCTAssertEqual(s.step().work, ["1 D\(step + 46)"], "step \(step): 2 needs 5 blocks, 3 or fewer are free")
        }
        let oneDone = s.step()
        XCTAssertEqual(oneDone.work, ["1 D106"])
        XCTAssertEqual(oneDone.finished, [1])

        let recompute = s.schedule()
        XCTAssertEqual(recompute.work.map(describe), ["2 P0+65*"])
        XCTAssertEqual(recompute.work[0].generatedTokens, 17)
        XCTAssertEqual(s.complete(step: recompute), [])
        for step in 62...102 {
            XCTAssertEqual(s.step().work, ["2 D\(step + 3)"], "step \(step)")
        }
        let last = s.schedule()
        XCTAssertEqual(last.work.map(describe), ["2 D106"])
        XCTAssertEqual(s.complete(step: last).first,
                       FinishedRequest(request: Request(id: 2, promptTokens: 48, maxOutputTokens: 60),
                                       generatedTokens: 60, reason: .maxTokens, preemptions: 1))
        XCTAssertFalse(s.hasUnfinishedRequests)
        XCTAssertEqual(s.preemptionCount, 1)
        XCTAssertEqual(s.blocks.freeBlockCount, 8)
    }

    /// When the youngest running request is the one short of a block, it preempts itself rather than an
    /// older request. Request 1 (40 prompt tokens) crosses into its fourth block at position 48 (step 10)
    /// and takes the last free one; request 2 (48) needs its fifth at position 64 (step 18).
    func testTheYoungestPreemptsItselfWhenItIsTheOneShortOfABlock() {
        var s = scheduler(maxBatchedTokens: 256, totalBlocks: 8)
        s.add((1, 40, 60), (2, 48, 60))
        XCTAssertEqual(s.step().work, ["1 P0+40*", "2 P0+48*"])
        for _ in 2...17 { s.step() }
        XCTAssertEqual(s.blocks.freeBlockCount, 0)
        XCTAssertEqual(s.state(of: 2)?.computedTokens, 64)
        let step18 = s.schedule()
        XCTAssertEqual(step18.work.map(describe), ["1 D56"])
        XCTAssertEqual(step18.preempted, [2])
        XCTAssertEqual(s.blocks.freeBlockCount, 4)
        _ = s.complete(step: step18)
        var finished: [FinishedRequest] = []
        var steps = 18
        while s.hasUnfinishedRequests {
            let plan = s.schedule()
            finished += s.complete(step: plan)
            steps += 1
        }
        XCTAssertEqual(finished.map(\.id), [1, 2])
        XCTAssertEqual(finished.map(\.generatedTokens), [60, 60])
        XCTAssertEqual(finished.map(\.preemptions), [0, 1])
        // 1's token 60 comes from its decode at position 98 (step 60); 2 then recomputes 65 tokens (step 61)
        // and decodes positions 65...106.
        XCTAssertEqual(steps, 103)
    }

    /// A step that preempts admits nobody, even when the freed blocks and the budget left would take a
    /// chunk of the victim's recompute: it would only be preempted again. Budget 20, 8 blocks of 16:
    /// request 1 decodes position 64 at step 20 and needs a fifth block while 2 (at position 62, 15 tokens
    /// generated) holds the other four; 2's first 19-token chunk (2 blocks of the 3 free) waits a step.
    func testAStepThatPreemptsAdmitsNobody() {
        var s = scheduler(maxNumSeqs: 2, maxBatchedTokens: 20, totalBlocks: 8)
        s.add((1, 48, 60), (2, 48, 60))
        XCTAssertEqual(s.step().work, ["1 P0+20"])
        XCTAssertEqual(s.step().work, ["1 P20+20"])
        XCTAssertEqual(s.step().work, ["1 P40+8*", "2 P0+12"])
        XCTAssertEqual(s.step().work, ["1 D48", "2 P12+19"])
        XCTAssertEqual(s.step().work, ["1 D49", "2 P31+17*"])
        XCTAssertEqual(s.step().work, ["1 D50", "2 D48"])
        XCTAssertEqual(s.blocks.freeBlockCount, 0)
        for step in 7...19 { XCTAssertEqual(s.step().work, ["1 D\(step + 44)", "2 D\(step + 42)"], "step \(step)") }
        let preempting = s.schedule()
        XCTAssertEqual(preempting.work.map(describe), ["1 D64"])
        XCTAssertEqual(preempting.preempted, [2])
        XCTAssertEqual(s.state(of: 2)?.tokensToCompute, 63)
        XCTAssertEqual(s.blocks.freeBlockCount, 3)
        _ = s.complete(step: preempting)
        XCTAssertEqual(s.step().work, ["1 D65", "2 P0+19"])
    }

    func testAStopEndsARequestWithTheTokenThatStoppedIt() {
        var s = scheduler(maxBatchedTokens: 4, totalBlocks: 8)
        s.add((1, 6, 10))
        XCTAssertEqual(s.step(stopping: [1]).finished, [], "a chunk that samples nothing cannot stop")
        let plan = s.schedule()
        XCTAssertEqual(plan.work.map(describe), ["1 P4+2*"])
        let finished = s.complete(step: plan, results: [StepResult(id: 1, stopped: true)])
        XCTAssertEqual(finished.map(\.reason), [.stopped])
        XCTAssertEqual(finished.map(\.generatedTokens), [1])
        XCTAssertEqual(s.blocks.freeBlockCount, 8)
    }

    func testCancellationReturnsBlocksAtOnceAndDropsTheRequestFromWhereverItIs() {
        var s = scheduler(maxBatchedTokens: 64, totalBlocks: 8)
        s.add((1, 40, 10), (2, 20, 10))
        XCTAssertEqual(s.step().work, ["1 P0+40*", "2 P0+20*"])
        s.add((3, 10, 10))
        XCTAssertEqual(s.blocks.usedBlockCount, 5)
        XCTAssertTrue(s.cancel(1))
        XCTAssertEqual(s.blocks.usedBlockCount, 2, "1's three blocks are free before any step")
        XCTAssertNil(s.state(of: 1))
        XCTAssertFalse(s.cancel(1), "already gone")
        XCTAssertEqual(s.runningRequests, [2])
        XCTAssertTrue(s.cancel(3))
        XCTAssertEqual(s.waitingCount, 0)
        XCTAssertEqual(s.invariantViolations(), [])
        XCTAssertEqual(s.step().work, ["2 D20"])

        // Cancelled while its step runs: the step's completion ignores it, even once a new request has
        // taken its id and its slot.
        let inFlight = s.schedule()
        XCTAssertEqual(inFlight.work.map(describe), ["2 D21"])
        XCTAssertTrue(s.cancel(2))
        XCTAssertEqual(s.blocks.freeBlockCount, 8)
        s.add((2, 5, 1))
        XCTAssertEqual(s.complete(step: inFlight), [])
        XCTAssertEqual(s.state(of: 2)?.generatedTokens, 0)
        XCTAssertEqual(s.state(of: 2)?.phase, .waiting)
        XCTAssertEqual(s.invariantViolations(), [])
        XCTAssertEqual(s.step().work, ["2 P0+5*"])
        XCTAssertFalse(s.hasUnfinishedRequests)
    }
}
