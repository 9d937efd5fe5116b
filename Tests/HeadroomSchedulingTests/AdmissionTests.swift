// Requests the scheduler could never finish are refused at the door, with an error that says why, and a
// scheduler is never made from a bad configuration.
import XCTest
@testable import HeadroomScheduling

final class AdmissionTests: XCTestCase {
    func testASchedulerIsNotMadeFromABadConfiguration() {
        XCTAssertThrowsError(try ContinuousBatchingScheduler(config: SchedulerConfig(maxNumSeqs: 8, maxBatchedTokens: 4, totalBlocks: 8))) { error in
            XCTAssertEqual((error as? SchedulerConfigError)?.field, .maxBatchedTokens)
        }
    }

    /// 4 blocks of 16 hold 64 positions: a request's prompt and all but its last output token must fit.
    func testAddRefusesRequestsThatCouldNeverFinish() {
        var s = scheduler(maxBatchedTokens: 32, totalBlocks: 4)
        func refusal(_ id: Int, _ prompt: Int, _ output: Int) -> AdmissionError? {
            do { try s.add(Request(id: RequestID(id), promptTokens: prompt, maxOutputTokens: output)); return nil } catch { return error }
        }
        XCTAssertNil(refusal(1, 60, 5), "60 + 5 - 1 = 64 positions: exactly the pool")
        XCTAssertEqual(refusal(2, 60, 6), .exceedsKVCache(2, blocksNeeded: 5, totalBlocks: 4))
        XCTAssertEqual(refusal(1, 3, 3), .duplicateID(1))
        XCTAssertEqual(refusal(3, 0, 3), .emptyPrompt(3))
        XCTAssertEqual(refusal(3, 3, 0), .noOutputTokens(3))
        XCTAssertEqual(s.waitingRequests, [1], "refused requests leave no trace")

        var limited = try! ContinuousBatchingScheduler(config: SchedulerConfig(maxNumSeqs: 4, maxBatchedTokens: 32, totalBlocks: 64, maxModelLength: 100))
        XCTAssertThrowsError(try limited.add(Request(id: 1, promptTokens: 90, maxOutputTokens: 11))) { error in
            XCTAssertEqual(error as? AdmissionError, .exceedsModelLength(1, tokens: 101, maxModelLength: 100))
        }
        XCTAssertNoThrow(try limited.add(Request(id: 1, promptTokens: 90, maxOutputTokens: 10)))

        // Without chunking a preempted request prefills its prompt and output so far in one step.
        var unchunked = scheduler(maxBatchedTokens: 32, chunkedPrefill: false, totalBlocks: 64)
        XCTAssertNoThrow(try unchunked.add(Request(id: 1, promptTokens: 30, maxOutputTokens: 3)))
        XCTAssertThrowsError(try unchunked.add(Request(id: 2, promptTokens: 30, maxOutputTokens: 4))) { error in
            XCTAssertEqual(error as? AdmissionError, .exceedsTokenBudget(2, tokens: 33, maxBatchedTokens: 32))
            XCTAssertEqual("\(error)", "request #2 may need a 33-token prefill, more than the 32-token step budget with chunked prefill off")
        }
    }
}
