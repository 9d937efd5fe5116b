// The request-body target's verdicts: what counts as a clear refusal, and that inputs refused by the same
// check share a signature whatever their particulars.
import Foundation
import XCTest
@testable import HeadroomFuzz
import HeadroomOpenAI

final class RequestBodyFuzzTargetTests: XCTestCase {
    func testVerdicts() throws {
        let target = try FuzzTargets.make("request-body", repository: FuzzCorpusTests.repository)
        XCTAssertEqual(target.run(Array(#"{"messages": [{"role": "user", "content": "hi"}]}"#.utf8)), .accepted)
        let zero = target.run(Array(#"{"prompt": "p", "max_tokens": 0}"#.utf8))
        XCTAssertEqual(zero.message, "completions: max_tokens: expected an integer ≥ 1, got 0; chat: messages: required on /v1/chat/completions: an array of {\"role\", \"content\"}")
        XCTAssertEqual(target.run(Array(#"{"prompt": "p", "max_tokens": -1.5e3}"#.utf8)).signature, zero.signature)
        XCTAssertNotEqual(target.run(Array(#"{"prompt": "p", "max_tokens": "0"}"#.utf8)).signature, zero.signature)
        let syntax = target.run(Array(#"{"prompt": 'x'}"#.utf8))
        XCTAssertEqual(syntax.message, "both: the body is not a JSON object: unexpected ''' where a value should start at byte 11")
        XCTAssertEqual(target.run(Array(#"{"model": "m", "prompt": x}"#.utf8)).signature, syntax.signature)
        XCTAssertFalse(target.corpus(in: FuzzCorpusTests.corpusDirectory("request-body")).isEmpty)
    }

    func testWhatIsUnclear() {
        XCTAssertNil(RequestBodyFuzzTarget.unclearness(of: .invalid("stop[1]: expected a non-empty string, got \"\"", param: "stop[1]")))
        XCTAssertNil(RequestBodyFuzzTarget.unclearness(of: APIError(status: 413, message: "the body is 9 bytes; the limit is 8", type: "invalid_request_error")))
        XCTAssertNotNil(RequestBodyFuzzTarget.unclearness(of: .invalid("expected a non-empty string", param: "stop[1]")))
        XCTAssertNotNil(RequestBodyFuzzTarget.unclearness(of: .invalid("something is wrong", param: nil)))
        XCTAssertNotNil(RequestBodyFuzzTarget.unclearness(of: APIError(status: 500, message: "the body crashed", type: "invalid_request_error")))
        XCTAssertNotNil(RequestBodyFuzzTarget.unclearness(of: APIError(status: 400, message: "n: no", type: "server_error", param: "n")))
    }
}
