// Hostile requests against one live server: random bytes, valid bodies mutated (HeadroomFuzz's JSON-aware and
// byte mutations), edge numbers, every field with a wrong type, deep nesting, unknown paths and methods. Every
// answer must be one the README documents — 200, 400, 404, 405 or 413, an OpenAI error body for each ≥ 400 on
// /v1 — and afterwards the server is healthy with every KV block back and nothing running.
import AsyncHTTPClient
import Foundation
import HeadroomEngine
@testable import HeadroomFuzz
import HeadroomOpenAI
@testable import HeadroomServe
import NIOCore
import NIOHTTP1
import XCTest

final class ServeFuzzTests: XCTestCase {
    /// Valid bodies for tiny (token ids; no tokenizer), each endpoint, whole and streamed, small max_tokens.
    static let seeds: [String] = [
        #"{"model": "tiny", "prompt": [1, 15043, 29892, 920], "max_tokens": 3, "temperature": 0}"#,
        #"{"prompt": [[1, 2, 3]], "max_tokens": 2, "seed": 7, "temperature": 0.8, "top_p": 0.9, "stop": ["<tok_5>", "x"]}"#,
        #"{"prompt": [1, 450], "max_tokens": 2, "stream": true, "stream_options": {"include_usage": true}, "stop_token_ids": [2]}"#,
        #"{"prompt": [1], "max_tokens": 1, "ignore_eos": true, "user": "u", "n": 1, "logprobs": null, "unknown": {"a": [1]}}"#,
        #"{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}"#,
        #"{"messages": [{"role": "system", "content": [{"type": "text", "text": "s"}]}], "max_completion_tokens": 2, "stream": true}"#,
    ]

    /// The statuses a body may get, and the answer's checks.
    func check(_ r: TestServer.Reply, path: String, method: HTTPMethod, input: String, line: UInt = #line) {
        let completion = method == .POST && (path == "/v1/completions" || path == "/v1/chat/completions")
        let allowed: Set<Int> = completion ? [200, 400, 404, 413] : [404, 405]
        XCTAssertTrue(allowed.contains(r.status), "\(method) \(path) answered \(r.status) \(r.text.prefix(300)) to \(input)", line: line)
        if r.status >= 400 && path.hasPrefix("/v1/") && method != .HEAD {
            let e = APIError(jsonBody: r.body, status: r.status)
            XCTAssertNotNil(e, "\(method) \(path) \(r.status): not an OpenAI error: \(r.text.prefix(300)) to \(input)", line: line)
            XCTAssertEqual(e?.type, "invalid_request_error", "\(r.text.prefix(300))", line: line)
            if r.status == 404 && completion {
                XCTAssertEqual(e?.code, "model_not_found", line: line)
            }
        }
        guard r.status == 200 else { return }
        if r.headers.first(name: "content-type") == "text/event-stream" {
            XCTAssertTrue(r.text.hasSuffix("data: [DONE]\n\n"), "\(r.text.suffix(300)) to \(input)", line: line)
            XCTAssertFalse(r.text.contains(#""error":"#), "\(r.text.suffix(300)) to \(input)", line: line)
        } else if path == "/v1/completions" {
            XCTAssertNoThrow(try JSONDecoder().decode(CompletionResponse.self, from: r.body), "\(r.text.prefix(300))", line: line)
        } else {
            XCTAssertNoThrow(try JSONDecoder().decode(ChatCompletionResponse.self, from: r.body), "\(r.text.prefix(300))", line: line)
        }
    }

    func send(_ s: TestServer, _ method: HTTPMethod, _ path: String, _ body: [UInt8]) async throws -> TestServer.Reply {
        var request = HTTPClientRequest(url: s.base + path)
        request.method = method
        request.headers.add(name: "content-type", value: "application/json")
        if method != .GET && method != .HEAD { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return TestServer.Reply(status: Int(response.status.code), headers: response.headers, body: Data(buffer: bytes))
    }

    /// A body the server would accept keeps it valid but bounded: at most 8 tokens generated from at most 64.
    func bounded(_ body: [UInt8], endpoint: CompletionEndpoint, _ r: inout FuzzRandom) -> [UInt8] {
        guard var request = try? CompletionRequestParser.parse(body, endpoint: endpoint) else { return body }
        if request.maxTokens.map({ $0 > 8 }) ?? true { request.maxTokens = 1 + r.below(8) }
        if case .tokens(let ids) = request.prompt, ids.count > 64 { request.prompt = .tokens(Array(ids.prefix(64))) }
        return [UInt8](request.jsonBody())
    }

    func testHostileBodiesGetDocumentedAnswersAndLeaveTheServerClean() async throws {
        let started = Date()
        let s = try await TestServer.start()
        var r = FuzzRandom(seed: 0x5E4E_F022)
        var statuses: [Int: Int] = [:]
        var sent = 0
        func post(_ path: String, _ body: [UInt8], line: UInt = #line) async throws {
            let reply = try await send(s, .POST, path, body)
            check(reply, path: path, method: .POST, input: String(decoding: body.prefix(300), as: UTF8.self).debugDescription, line: line)
            statuses[reply.status, default: 0] += 1
            sent += 1
        }
        func endpoint(_ path: String) -> CompletionEndpoint { path == "/v1/completions" ? .completions : .chatCompletions }
        let paths = ["/v1/completions", "/v1/chat/completions"]

        // Paths and methods the server does not serve: 405 naming the method the path takes, or 404; both in
        // OpenAI's error schema, on every path.
        let unrouted: [(HTTPMethod, String, Int, String?)] = [
            (.GET, "/v1/completions", 405, "POST"), (.GET, "/v1/chat/completions", 405, "POST"), (.POST, "/health", 405, "GET"),
            (.POST, "/metrics", 405, "GET"), (.POST, "/v1/models", 405, "GET"), (.PUT, "/v1/completions", 405, "POST"),
            (.DELETE, "/v1/chat/completions", 405, "POST"), (.PATCH, "/health", 405, "GET"), (.HEAD, "/v1/completions", 405, "POST"),
            (.POST, "/v1/nope", 404, nil), (.GET, "/v1/nope", 404, nil), (.POST, "/nope", 404, nil),
            (.POST, "/v1/completions/extra", 404, nil), (.POST, "/v1", 404, nil), (.GET, "/", 404, nil),
        ]
        for (method, path, status, allow) in unrouted {
            let reply = try await send(s, method, path, Array(Self.seeds[0].utf8))
            check(reply, path: path, method: method, input: "\(method) \(path)")
            XCTAssertEqual(reply.status, status, "\(method) \(path)")
            XCTAssertEqual(reply.headers.first(name: "allow"), allow, "\(method) \(path)")
            if method != .HEAD {
                let e = APIError(jsonBody: reply.body, status: reply.status)
                XCTAssertEqual(e?.code, status == 405 ? "method_not_allowed" : "not_found", "\(method) \(path): \(reply.text)")
                XCTAssertTrue(e?.message.contains(path) == true, "\(method) \(path): \(reply.text)")
            }
            statuses[reply.status, default: 0] += 1
            sent += 1
        }

        // Numbers at the edges, in every numeric field; max_tokens and token ids out of range.
        let edges = ["1e400", "-1e400", "-1", "0", "9223372036854775808", "-9223372036854775809", "18446744073709551616", "1.5", "-0",
                     "1e2", "NaN", "2147483648", "32000", "99999999999999999999999999"]
        for edge in edges {
            for field in ["max_tokens", "temperature", "top_p", "seed"] {
                try await post("/v1/completions", Array(#"{"prompt": [1, 2], "max_tokens": 2, "\#(field)": \#(edge)}"#.utf8))
            }
            try await post("/v1/completions", Array(#"{"prompt": [1, \#(edge)], "max_tokens": 2}"#.utf8))
            try await post("/v1/completions", Array(#"{"prompt": [1], "max_tokens": 2, "stop_token_ids": [\#(edge)]}"#.utf8))
            try await post("/v1/chat/completions", Array(#"{"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": \#(edge)}"#.utf8))
        }

        // Every field with values of the wrong type (null is absent, so it is left out).
        let wrong = ["true", "\"x\"", "1.5", "[]", "{}", "[[1]]", "[\"a\"]", "{\"a\": 1}", "-3"]
        let fields = ["model", "prompt", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed", "stream",
                      "stream_options", "stop", "stop_token_ids", "ignore_eos", "user"]
        for field in fields {
            for value in wrong where r.oneIn(2) {
                let path = field == "messages" || field == "max_completion_tokens" ? paths[1] : paths[0]
                let base = path == paths[0] ? #""prompt": [1], "max_tokens": 2"# : #""messages": [{"role": "user", "content": "x"}], "max_tokens": 2"#
                let json = field == "prompt" || field == "messages"
                    ? #"{"\#(field)": \#(value), "max_tokens": 2}"#
                    : #"{\#(base), "stream": true, "\#(field)": \#(value)}"#
                try await post(path, Array(json.utf8))
            }
        }

        // Deep nesting, invalid UTF-8, a body just past the limit.
        try await post(paths[0], Array((String(repeating: "[", count: 100_000)).utf8))
        try await post(paths[0], Array(("{\"prompt\": " + String(repeating: "{\"a\": ", count: 40) + "1" + String(repeating: "}", count: 40) + "}").utf8))
        try await post(paths[1], Array(#"{"messages": [{"role": "user", "content": ""#.utf8) + [0xC3, 0x28, 0xED, 0xA0, 0x80, 0xFF] + Array(#""}]}"#.utf8))
        try await post(paths[0], [0xEF, 0xBB, 0xBF] + Array(Self.seeds[0].utf8))
        try await post(paths[0], [])
        try await post(paths[0], Array(repeating: UInt8(ascii: " "), count: (4 << 20) + 1))

        // Random bytes.
        for _ in 0..<30 {
            let body = (0..<r.size(upTo: 512)).map { _ in UInt8(truncatingIfNeeded: r.next()) }
            try await post(r.pick(paths), body)
        }

        // Valid bodies truncated, then mutated: a few stacked mutations each, mostly JSON-aware.
        let seeds = Self.seeds.map { Array($0.utf8) } + RequestBodyFuzzTarget.seeds.map { Array($0.utf8) }
        for seed in seeds {
            for cut in stride(from: 1, to: seed.count, by: max(1, seed.count / 4)) { try await post(r.pick(paths), Array(seed[..<cut])) }
        }
        while sent < 320 && Date().timeIntervalSince(started) < 40 {
            var body = r.pick(seeds)
            for _ in 0..<(1 + r.below(2)) {
                if r.oneIn(8) { ByteMutations.mutate(&body, other: r.pick(seeds), &r) } else { JSONMutations.mutate(&body, &r) }
            }
            let path = r.pick(paths)
            try await post(path, bounded(body, endpoint: endpoint(path), &r))
        }

        print("ServeFuzzTests: \(sent) requests in \(String(format: "%.1f", Date().timeIntervalSince(started))) s, statuses \(statuses.sorted { $0.key < $1.key })")
        XCTAssertGreaterThanOrEqual(sent, 300, "the loop ran out of time: fewer requests than planned")
        XCTAssertGreaterThan(statuses[200] ?? 0, 10, "too few bodies reached the engine to say anything about it")
        let health = try await s.get("/health")
        XCTAssertEqual(health.status, 200)
        try await s.waitForMetric("headroom_kv_blocks_used", 0)
        try await s.waitForMetric("headroom_requests_running", 0)
        try await s.stop()
    }
}
