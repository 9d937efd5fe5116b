// A KV pool smaller than the context: a request that could never fit it is a 400 naming the field and the
// pool, a request without max_tokens gets what the pool can hold, and a pool too small for everyone at once
// preempts and recomputes without changing anyone's greedy tokens.
import AsyncHTTPClient
import Foundation
import HeadroomEngine
import HeadroomOpenAI
@testable import HeadroomServe
import XCTest

final class ServeKVPoolTests: XCTestCase {
    let prompt: [Int] = [1, 450, 4996, 17354, 1701, 29892, 920]

    func testRequestsThatCannotFitThePoolAre400sNamingThePool() async throws {
        // 2 blocks of 16: 32 tokens of KV in all, against tiny's 2048-token context.
        let s = try await TestServer.start(kvTokens: 32)
        let total = try await s.metric("headroom_kv_blocks_total")
        XCTAssertEqual(total, 2)
        func refusal(_ json: Data) async throws -> APIError? {
            let r = try await s.post("/v1/completions", json)
            XCTAssertEqual(r.status, 400, r.text)
            return APIError(jsonBody: r.body, status: r.status)
        }
        // 7 + 40 - 1 tokens of KV at the longest: more than 32.
        let tooMany = try await refusal(body(["prompt": prompt, "max_tokens": 40]))
        XCTAssertEqual(tooMany?.param, "max_tokens")
        XCTAssertTrue(tooMany?.message.contains("32") == true && tooMany?.message.contains("KV") == true, tooMany?.message ?? "")
        XCTAssertTrue(tooMany?.message.contains("at most 26") == true, tooMany?.message ?? "")
        // A prompt longer than the pool, whatever max_tokens.
        let long = try await refusal(body(["prompt": Array(repeating: 1, count: 40), "max_tokens": 1]))
        XCTAssertEqual(long?.param, "prompt")
        XCTAssertTrue(long?.message.contains("32") == true && long?.message.contains("KV") == true, long?.message ?? "")
        // Exactly what fits is served: 7 + 26 - 1 = 32.
        let fits = try await s.post("/v1/completions", body(["prompt": prompt, "max_tokens": 26, "ignore_eos": true]))
        XCTAssertEqual(fits.status, 200, fits.text)
        // No max_tokens: as much as the pool holds, not a refusal.
        let open = try await s.post("/v1/completions", body(["prompt": prompt, "ignore_eos": true]))
        XCTAssertEqual(open.status, 200, open.text)
        let c = try JSONDecoder().decode(CompletionResponse.self, from: open.body)
        XCTAssertEqual(c.usage, Usage(promptTokens: prompt.count, completionTokens: 26))
        XCTAssertEqual(c.choices.first?.finishReason, "length")
        try await s.waitForMetric("headroom_kv_blocks_used", 0)
        try await s.stop()
    }

    func testPreemptionUnderASmallPoolKeepsGreedyTokens() async throws {
        // 6 blocks; each request needs up to 3 (7 + 40 - 1 tokens), so four at once cannot all grow: the youngest
        // are preempted and recomputed. Micro's f32, so that batching and recomputing change nothing but rounding.
        let s = try await TestServer.start(model: ServedModel(id: "micro", vocabularySize: Micro.config.vocab, context: Micro.config.context,
                                                              created: 0),
                                           weights: Micro.weights, kvTokens: 96)
        let prompts = (0..<4).map { i in [1] + prompt.dropFirst().map { ($0 + 37 * i) % 32000 } }
        func request(_ p: [Int]) -> Data { body(["prompt": p, "max_tokens": 40, "temperature": 0, "ignore_eos": true]) }
        func tokens(_ r: TestServer.Reply) throws -> [Int32] {
            XCTAssertEqual(r.status, 200, r.text)
            return tokenIDs(try JSONDecoder().decode(CompletionResponse.self, from: r.body).choices[0].text)
        }
        var alone: [[Int32]] = []
        for p in prompts { alone.append(try tokens(try await s.post("/v1/completions", request(p)))) }
        let before = try await s.metric("headroom_preemptions_total") ?? 0
        XCTAssertEqual(before, 0, "one request at a time fits the pool")
        let together = try await withThrowingTaskGroup(of: (Int, [Int32]).self) { group in
            for (i, p) in prompts.enumerated() { group.addTask { (i, try tokens(try await s.post("/v1/completions", request(p)))) } }
            return try await group.reduce(into: [[Int32]](repeating: [], count: prompts.count)) { $0[$1.0] = $1.1 }
        }
        let preemptions = try await s.metric("headroom_preemptions_total") ?? 0
        XCTAssertGreaterThan(preemptions, 0, "the pool was meant to force preemption")
        XCTAssertEqual(together, alone)
        XCTAssertEqual(alone, try prompts.map { try Micro.greedy($0.map(Int32.init), count: 40) })
        try await s.waitForMetric("headroom_kv_blocks_used", 0)
        try await s.waitForMetric("headroom_requests_running", 0)
        try await s.stop()
    }
}
