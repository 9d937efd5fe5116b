// Helpers that let a test read a step as a line of text: "1 P16+4*" is request 1 prefilling positions
// 16..<20 and sampling a token (the chunk completes its prompt), "1 P0+8" a chunk that samples nothing,
// "2 D20" request 2 decoding the token at position 20.
import XCTest
@testable import HeadroomScheduling

func describe(_ work: ScheduledWork) -> String {
    switch work.kind {
    case .decode:
        return "\(work.id.rawValue) D\(work.start)"
    case .prefill:
        return "\(work.id.rawValue) P\(work.start)+\(work.tokenCount)\(work.yieldsToken ? "*" : "")"
    }
}

func scheduler(maxNumSeqs: Int = 4, maxBatchedTokens: Int, chunkedPrefill: Bool = true, blockSize: Int = 16,
               totalBlocks: Int, longPrefillTokenThreshold: Int = 0) -> ContinuousBatchingScheduler {
    try! ContinuousBatchingScheduler(config: SchedulerConfig(
        maxNumSeqs: maxNumSeqs, maxBatchedTokens: maxBatchedTokens, chunkedPrefill: chunkedPrefill, blockSize: blockSize,
        totalBlocks: totalBlocks, longPrefillTokenThreshold: longPrefillTokenThreshold))
}

extension ContinuousBatchingScheduler {
    /// Adds requests given as (id, prompt tokens, max output tokens).
    mutating func add(_ requests: (Int, Int, Int)..., file: StaticString = #filePath, line: UInt = #line) {
        for (id, prompt, output) in requests {
            XCTAssertNoThrow(try add(Request(id: RequestID(id), promptTokens: prompt, maxOutputTokens: output)), file: file, line: line)
        }
    }

    /// One schedule-and-complete round: the plan as text, and the ids that finished. `stopping` are requests
    /// whose sampled token ends them this step.
    @discardableResult
    mutating func step(stopping: Set<Int> = [], file: StaticString = #filePath, line: UInt = #line)
        -> (work: [String], finished: [Int])
    {
        let plan = schedule()
        XCTAssertEqual(invariantViolations(), [], "after schedule", file: file, line: line)
        let results = plan.work.map { StepResult(id: $0.id, stopped: stopping.contains($0.id.rawValue)) }
        let finished = complete(step: plan, results: results)
        XCTAssertEqual(invariantViolations(), [], "after complete", file: file, line: line)
        return (plan.work.map(describe), finished.map(\.id.rawValue))
    }
}
