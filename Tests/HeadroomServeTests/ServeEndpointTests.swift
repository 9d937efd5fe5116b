// The endpoints over loopback: OpenAI's schema whole and streamed, tokens equal to greedy generation,
// and every error path with its status and the field it names.
import AsyncHTTPClient
import Foundation
import HeadroomEngine
import HeadroomOpenAI
@testable import HeadroomServe
import XCTest

final class ServeEndpointTests: XCTestCase {
    static var shared: TestServer?

    /// One server for the tests that do not change its settings.
    func server() async throws -> TestServer {
        if let s = Self.shared { return s }
        let s = try await TestServer.start()
        Self.shared = s
        return s
    }

    override class func tearDown() {
        if let s = shared {
            let done = DispatchSemaphore(value: 0)
            Task { try? await s.stop(); done.signal() }
            done.wait()
            shared = nil
        }
        super.tearDown()
    }

    let prompt: [Int32] = [1, 15043, 29892, 920, 526, 366]

    func testWholeCompletionIsOpenAIsSchemaAndGreedy() async throws {
        let s = try await server()
        let r = try await s.post("/v1/completions", body(["model": "tiny", "prompt": prompt.map(Int.init), "max_tokens": 8, "temperature": 0]))
        XCTAssertEqual(r.status, 200, r.text)
        let c = try JSONDecoder().decode(CompletionResponse.self, from: r.body)
        XCTAssertEqual(c.object, "text_completion")
        XCTAssertEqual(c.model, "tiny")
        XCTAssertTrue(c.id.hasPrefix("cmpl-"))
        XCTAssertEqual(c.choices.count, 1)
        XCTAssertEqual(c.choices[0].finishReason, "length")
        XCTAssertEqual(c.usage, Usage(promptTokens: prompt.count, completionTokens: 8))
        XCTAssertEqual(tokenIDs(c.choices[0].text), try Tiny.greedy(prompt, count: 8))
    }

    func testStreamedCompletionEqualsGreedyAndEndsWithUsageAndDone() async throws {
        let s = try await server()
        let (status, events) = try await s.stream("/v1/completions", body([
            "model": "tiny", "prompt": prompt.map(Int.init), "max_tokens": 6, "temperature": 0, "stream": true,
            "stream_options": ["include_usage": true],
        ]))
        XCTAssertEqual(status, 200)
        XCTAssertEqual(events.last, "[DONE]")
        let chunks = try events.dropLast().map { try JSONDecoder().decode(CompletionResponse.self, from: Data($0.utf8)) }
        // One chunk per token, the finish chunk, the usage chunk.
        XCTAssertEqual(chunks.count, 6 + 2)
        let text = chunks.flatMap(\.choices).map(\.text).joined()
        XCTAssertEqual(tokenIDs(text), try Tiny.greedy(prompt, count: 6))
        XCTAssertEqual(chunks[chunks.count - 2].choices.first?.finishReason, "length")
        XCTAssertTrue(chunks.dropLast(2).allSatisfy { $0.choices.first?.finishReason == nil && $0.usageNull })
        XCTAssertEqual(chunks.last?.choices, [])
        XCTAssertEqual(chunks.last?.usage, Usage(promptTokens: prompt.count, completionTokens: 6))
        XCTAssertEqual(Set(chunks.map(\.id)).count, 1)
    }

    func testSeededSamplingRepeats() async throws {
        let s = try await server()
        let request = body(["prompt": prompt.map(Int.init), "max_tokens": 6, "temperature": 0.9, "top_p": 0.9, "seed": 42])
        let a = try await s.post("/v1/completions", request), b = try await s.post("/v1/completions", request)
        XCTAssertEqual(try JSONDecoder().decode(CompletionResponse.self, from: a.body).choices[0].text,
                       try JSONDecoder().decode(CompletionResponse.self, from: b.body).choices[0].text)
    }

    func testStopStringEndsTheTextBeforeIt() async throws {
        let s = try await server()
        let greedy = try Tiny.greedy(prompt, count: 6)
        // Stop at the fourth token's text: the answer is the first three, finish "stop".
        let stop = "<tok_\(greedy[3])>"
        guard !greedy[..<3].contains(greedy[3]) else { throw XCTSkip("the stop token repeats earlier") }
        let r = try await s.post("/v1/completions", body(["prompt": prompt.map(Int.init), "max_tokens": 6, "temperature": 0, "stop": stop]))
        let c = try JSONDecoder().decode(CompletionResponse.self, from: r.body)
        XCTAssertEqual(tokenIDs(c.choices[0].text), Array(greedy[..<3]))
        XCTAssertEqual(c.choices[0].finishReason, "stop")
        let (_, events) = try await s.stream("/v1/completions", body([
            "prompt": prompt.map(Int.init), "max_tokens": 6, "temperature": 0, "stop": [stop], "stream": true,
        ]))
        let chunks = try events.dropLast().map { try JSONDecoder().decode(CompletionResponse.self, from: Data($0.utf8)) }
        XCTAssertEqual(tokenIDs(chunks.flatMap(\.choices).map(\.text).joined()), Array(greedy[..<3]))
        XCTAssertEqual(chunks.last?.choices.first?.finishReason, "stop")
        try await s.waitForMetric("headroom_kv_blocks_used", 0)
    }

    func testStopTokenIDsEndWithStop() async throws {
        let s = try await server()
        let greedy = try Tiny.greedy(prompt, count: 5)
        let r = try await s.post("/v1/completions", body(["prompt": prompt.map(Int.init), "max_tokens": 5, "temperature": 0,
                                                         "stop_token_ids": [Int(greedy[1])]]))
        let c = try JSONDecoder().decode(CompletionResponse.self, from: r.body)
        // The stop token is generated (it ends the request) and appears, as vLLM does with stop_token_ids.
        XCTAssertEqual(tokenIDs(c.choices[0].text), Array(greedy[...1]))
        XCTAssertEqual(c.choices[0].finishReason, "stop")
    }

    func testModelsHealthAndMetrics() async throws {
        let s = try await server()
        let models = try JSONDecoder().decode(ModelList.self, from: try await s.get("/v1/models").body)
        XCTAssertEqual(models.data.map(\.id), ["tiny"])
        let health = try await s.get("/health")
        XCTAssertEqual(health.status, 200)
        let metrics = try await s.get("/metrics").text
        for name in ["headroom_requests_running", "headroom_requests_waiting", "headroom_kv_blocks_used", "headroom_kv_blocks_free",
                     "headroom_preemptions_total", "headroom_prompt_tokens_total", "headroom_generation_tokens_total",
                     "headroom_step_seconds_bucket", "headroom_step_batch_size_bucket", "headroom_time_to_first_token_seconds_bucket",
                     "headroom_inter_token_latency_seconds_bucket"] {
            XCTAssertTrue(metrics.contains(name), "/metrics lacks \(name)")
        }
        let total = try await s.metric("headroom_kv_blocks_total")
        XCTAssertEqual(total, 4096 / 16)
    }

    func testBadRequestsNameTheField() async throws {
        let s = try await server()
        func check(_ json: String, _ status: Int, param: String?, contains: String, path: String = "/v1/completions",
                   line: UInt = #line) async throws {
            let r = try await s.post(path, json: json)
            XCTAssertEqual(r.status, status, r.text, line: line)
            guard let e = APIError(jsonBody: r.body, status: r.status) else { return XCTFail("not an OpenAI error: \(r.text)", line: line) }
            XCTAssertEqual(e.param, param, line: line)
            XCTAssertTrue(e.message.contains(contains), "\(e.message) lacks \(contains)", line: line)
        }
        try await check("{", 400, param: nil, contains: "JSON")
        try await check(#"{"prompt": [1, 2], "max_tokens": "ten"}"#, 400, param: "max_tokens", contains: "max_tokens")
        try await check(#"{"prompt": [1, 2], "max_tokens": 5000}"#, 400, param: "max_tokens", contains: "context")
        try await check(#"{"prompt": [1, 32000]}"#, 400, param: "prompt", contains: "vocabulary")
        try await check(#"{"prompt": "text"}"#, 400, param: "prompt", contains: "tokenizer")
        try await check(#"{"messages": [{"role": "user", "content": "hi"}]}"#, 400, param: "messages", contains: "tokenizer",
                        path: "/v1/chat/completions")
        try await check(#"{"model": "gpt-4", "prompt": [1]}"#, 404, param: "model", contains: "gpt-4")
        try await check(#"{"prompt": [1], "temperature": 1e999}"#, 400, param: "temperature", contains: "temperature")
        try await check(#"{"prompt": [1], "stop_token_ids": [99999]}"#, 400, param: "stop_token_ids", contains: "vocabulary")
        let huge = Data(("{\"prompt\": \"" + String(repeating: "a", count: 5 << 20) + "\"}").utf8)
        let r = try await s.post("/v1/completions", huge)
        XCTAssertEqual(r.status, 413)
        try await s.waitForMetric("headroom_kv_blocks_used", 0)
    }
}
