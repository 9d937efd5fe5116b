// Bad configurations are refused with an error that names the field: each one out of range, and the two
// cross-field rules vLLM also enforces.
import XCTest
@testable import HeadroomScheduling

final class SchedulerConfigTests: XCTestCase {
    func failure(_ config: SchedulerConfig) -> SchedulerConfigError? {
        do { try config.validate(); return nil } catch { return error }
    }

    func testEachFieldOutOfRangeIsNamed() {
        let good = SchedulerConfig(maxNumSeqs: 4, maxBatchedTokens: 64, totalBlocks: 8)
        XCTAssertNil(failure(good))
        var c = good; c.maxNumSeqs = 0
        XCTAssertEqual(failure(c), SchedulerConfigError(field: .maxNumSeqs, value: 0, requirement: "must be at least 1"))
        c = good; c.maxBatchedTokens = 0
        XCTAssertEqual(failure(c)?.field, .maxBatchedTokens)
        c = good; c.blockSize = 0
        XCTAssertEqual(failure(c)?.field, .blockSize)
        c = good; c.totalBlocks = -1
        XCTAssertEqual(failure(c)?.field, .totalBlocks)
        c = good; c.totalBlocks = Int(Int32.max) + 1
        XCTAssertEqual(failure(c)?.field, .totalBlocks, "block numbers are stored as Int32")
        c = good; c.maxModelLength = 0
        XCTAssertEqual(failure(c)?.field, .maxModelLength)
        c = good; c.longPrefillTokenThreshold = -1
        XCTAssertEqual(failure(c)?.field, .longPrefillTokenThreshold)
        XCTAssertEqual(failure(c)?.description, "longPrefillTokenThreshold must be at least 0, got -1")
    }

    func testCrossFieldRules() {
        let narrow = SchedulerConfig(maxNumSeqs: 8, maxBatchedTokens: 4, totalBlocks: 8)
        XCTAssertEqual(failure(narrow)?.description, "maxBatchedTokens must be at least maxNumSeqs (8), got 4")
        var unchunked = SchedulerConfig(maxNumSeqs: 4, maxBatchedTokens: 512, chunkedPrefill: false, totalBlocks: 8, maxModelLength: 1024)
        XCTAssertEqual(failure(unchunked)?.field, .maxBatchedTokens)
        unchunked.chunkedPrefill = true
        XCTAssertNil(failure(unchunked), "with chunking a prompt longer than the budget is prefilled over several steps")
    }
}
