// `headroom serve --step-log`: the rows a server writes for its steps, read back, and held against a step model.
import Foundation
import HeadroomCore
@testable import HeadroomServe
import XCTest

final class StepLogTests: XCTestCase {
    func temporaryPath() -> String {
        (NSTemporaryDirectory() as NSString).appendingPathComponent("steplog-\(UUID().uuidString).csv")
    }

    func testARowRoundTripsThroughItsLine() throws {
        var shape = BatchShape()
        shape.addDecode(context: 70)
        shape.addPrefill(tokens: 32, pastTokens: 32, samples: true)
        let row = StepLogRow(startSeconds: 1.25, durationMs: 42.5, heldAfter: 3, shape: shape)
        XCTAssertEqual(row.line, "1.250000,42.500,3,1,32,1,2,1623,135,71,71", "71 keys for the decode, 32 × (32 + 33/2) = 1552 for the chunk")
        XCTAssertEqual(StepLogRow.parse(row.line), row)
        // A row of an older log (nine columns): the decodes' share split by tokens, 1 of 33.
        let old = try XCTUnwrap(StepLogRow.parse("1.250000,42.500,3,1,32,1,2,1623,135"))
        XCTAssertEqual(old.shape.decodeAttendedKeys, 1623.0 / 33, accuracy: 1e-9)
        XCTAssertNil(StepLogRow.parse("1.250000,42.500,3,1,32,1,2,1623,135,1700,71"), "a decodes' share above the whole")
    }

    func testLinesThatAreNotStepsAreRefused() {
        XCTAssertNil(StepLogRow.parse(StepLogRow.header))
        XCTAssertNil(StepLogRow.parse("1,2,3"))
        XCTAssertNil(StepLogRow.parse("0,1,0,0,0,0,0,0,0"), "an empty step")
        XCTAssertNil(StepLogRow.parse("0,1,0,2,0,0,3,4,4"), "three sampled of two sequences")
        XCTAssertNil(StepLogRow.parse("0,-1,0,1,0,0,1,1,1"), "a negative duration")
        XCTAssertNil(StepLogRow.parse("0,nan,0,1,0,0,1,1,1"))
        XCTAssertNil(StepLogRow.parse("0,1,0,1,4,5,1,1,1"), "more chunks than prefill tokens")
    }

    func testReadNamesTheFileAndTheLine() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("start,duration\n".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try StepLog.read(path)) { XCTAssertEqual("\($0)", "\(path): line 1: expected the header \(StepLogRow.header)") }
        try Data("\(StepLogRow.header9)\n0,5,1,1,0,0,1,10,10\n".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try StepLog.read(path).count, 1, "an older log's header and rows")
        try Data("\(StepLogRow.header)\n0,5,1,1,0,0,1,10,10\nzap\n0.1,5,0,1,0,0,1,11,11\n".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try StepLog.read(path)) { XCTAssertEqual("\($0)", "\(path): line 3: expected 11 numbers, got 'zap'") }
        // A server still writing may leave its last line cut short: that line is left out, not an error.
        try Data("\(StepLogRow.header)\n0,5,1,1,0,0,1,10,10\n0.1,5,0,1,0".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try StepLog.read(path).count, 1)
        XCTAssertThrowsError(try StepLog.read(path + ".missing")) { XCTAssertEqual("\($0)", "\(path).missing: cannot read the step log") }
    }

    func testAWriterThatCannotCreateItsFileSaysWhere() {
        XCTAssertThrowsError(try StepLogWriter(path: "/nonexistent-folder/steps.csv")) {
            XCTAssertEqual("\($0)", "/nonexistent-folder/steps.csv: cannot create the step log")
        }
    }

    /// Worked by hand: the model says 10 ms a step, 20 ms with a prefill. Three steps logged: a decode of 12 ms
    /// from 0, a prefill step of 30 ms from 0.015 s (3 ms after the first ended), a decode of 9 ms from 0.050 s
    /// (5 ms after the second), after which nothing is held. Measured 51 ms against 40 predicted: 1.275×; decodes
    /// 21 / 20 = 1.05×, prefill 30 / 20 = 1.5×. Between steps: 3 + 5 ms of the 12 + 3 + 30 + 5 ms from the
    /// first start to the third: 8 / 50 = 16 % (the idle time after the last step does not count).
    func testACheckAgainstAModelWorkedByHand() {
        struct Model: ExecutionTimePredictor {
            var basis = "hand"
            func iterationSeconds(_ b: BatchShape) -> Double { b.prefillTokens > 0 ? 0.020 : 0.010 }
        }
        var decode = BatchShape(); decode.addDecode(context: 10)
        var prefill = BatchShape(); prefill.addPrefill(tokens: 16, pastTokens: 0)
        let rows = [StepLogRow(startSeconds: 0, durationMs: 12, heldAfter: 2, shape: decode),
                    StepLogRow(startSeconds: 0.015, durationMs: 30, heldAfter: 2, shape: prefill),
                    StepLogRow(startSeconds: 0.050, durationMs: 9, heldAfter: 0, shape: decode)]
        let c = StepLogCheck(rows, predictor: Model())
        XCTAssertEqual(c.steps, 3)
        XCTAssertEqual(c.measuredMs, 51, accuracy: 1e-9)
        XCTAssertEqual(c.predictedMs, 40, accuracy: 1e-9)
        XCTAssertEqual(c.ratio!, 1.275, accuracy: 1e-9)
        XCTAssertEqual(c.decodeOnlyRatio!, 1.05, accuracy: 1e-9)
        XCTAssertEqual(c.withPrefillRatio!, 1.5, accuracy: 1e-9)
        XCTAssertEqual(c.betweenStepsFraction!, 0.16, accuracy: 1e-9)
        XCTAssertEqual(c.windowRatios, [], "three steps make no window of five")
    }

    /// Windows worked by hand: 10 ms decodes the model prices at 10 ms. Six steps of 10 ms in the first 30 s, six of
    /// 13 ms from 30 s, four of 20 ms from 60 s (too few: left out), six of 11 ms from 95 s (window 3; window 2 is
    /// left out for its four). Ratios 1.0, 1.3, 1.1 in time order.
    func testWindowsOfHalfAMinuteWorkedByHand() {
        struct Model: ExecutionTimePredictor {
            var basis = "hand"
            func iterationSeconds(_ b: BatchShape) -> Double { 0.010 }
        }
        var decode = BatchShape(); decode.addDecode(context: 10)
        var rows: [StepLogRow] = []
        for (start, ms, count) in [(0.0, 10.0, 6), (30.0, 13.0, 6), (60.0, 20.0, 4), (95.0, 11.0, 6)] {
            for i in 0..<count { rows.append(StepLogRow(startSeconds: start + Double(i) * 2, durationMs: ms, heldAfter: 1, shape: decode)) }
        }
        let w = StepLogCheck(rows, predictor: Model()).windowRatios ?? []
        XCTAssertEqual(w.count, 3)
        for (got, want) in zip(w, [1.0, 1.3, 1.1]) { XCTAssertEqual(got, want, accuracy: 1e-9) }
    }

    /// A server with a step log: one request of 6 prompt tokens and 4 output tokens is the warm-up's steps, then a
    /// prefill step and three decodes, each row's shape as the scheduler planned it.
    func testAServerLogsEveryStepItRuns() async throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try StepLogWriter(path: path)
        let s = try await TestServer.start(weights: Micro.weights, configure: { $0.stepLog = writer })
        let warm = try StepLog.read(path).count
        let prompt = [1, 2, 3, 4, 5, 6]
        let body = try JSONSerialization.data(withJSONObject: ["model": "tiny", "prompt": prompt, "max_tokens": 4, "temperature": 0])
        let r = try await s.post("/v1/completions", body)
        XCTAssertEqual(r.status, 200, r.text)
        try await s.stop()
        let rows = Array(try StepLog.read(path).dropFirst(warm))
        XCTAssertEqual(rows.count, 4, "a prefill step then 3 decodes")
        XCTAssertEqual(rows.first?.shape.prefillTokens, 6)
        XCTAssertEqual(rows.first?.shape.sampledSequences, 1)
        XCTAssertEqual(rows.dropFirst().map(\.shape.decodes), [1, 1, 1])
        XCTAssertEqual(rows.dropFirst().map(\.shape.kvPositionsRead), [7, 8, 9], "contexts 6, 7, 8 plus the new token")
        XCTAssertEqual(rows.last?.heldAfter, 0)
        XCTAssertTrue(rows.allSatisfy { $0.durationMs > 0 })
        XCTAssertEqual(rows.map(\.startSeconds), rows.map(\.startSeconds).sorted())
    }
}
