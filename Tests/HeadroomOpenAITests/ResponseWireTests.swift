// The responses' wire shape, byte for byte (keys sorted, as the server writes them) and as the same JSON as
// OpenAI's documented examples (less `system_fingerprint`, which Headroom does not send); and decode(encode(x)) == x.
import Foundation
import XCTest
@testable import HeadroomOpenAI

final class ResponseWireTests: XCTestCase {
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    /// `data` and `documented` are the same JSON value.
    func assertSameJSON(_ data: Data, _ documented: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let a = try JSONSerialization.jsonObject(with: data) as? NSDictionary
        let b = try JSONSerialization.jsonObject(with: Data(documented.utf8)) as? NSDictionary
        XCTAssertEqual(a, b, text(data), file: file, line: line)
    }

    func roundTrip<T: ResponseBody & Equatable>(_ value: T, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(try JSONDecoder().decode(T.self, from: value.jsonData()), value, file: file, line: line)
    }

    func testCompletionStreamChunks() throws {
        let first = CompletionResponse.chunk(id: "cmpl-7iA7iJjj8V2zOkCGvWF2hAkDWBQZe", created: 1690759702, model: "gpt-3.5-turbo-instruct",
                                             text: "This", includeUsageNull: false)
        XCTAssertEqual(text(first.jsonData()),
                       #"{"choices":[{"finish_reason":null,"index":0,"logprobs":null,"text":"This"}],"created":1690759702,"id":"cmpl-7iA7iJjj8V2zOkCGvWF2hAkDWBQZe","model":"gpt-3.5-turbo-instruct","object":"text_completion"}"#)
        // OpenAI's streaming example for /v1/completions.
        try assertSameJSON(first.jsonData(), """
            {"id": "cmpl-7iA7iJjj8V2zOkCGvWF2hAkDWBQZe", "object": "text_completion", "created": 1690759702,
             "choices": [{"text": "This", "index": 0, "logprobs": null, "finish_reason": null}], "model": "gpt-3.5-turbo-instruct"}
            """)
        let last = CompletionResponse.chunk(id: "c", created: 1, model: "m", text: "", finishReason: "length", includeUsageNull: true)
        XCTAssertEqual(text(last.jsonData()),
                       #"{"choices":[{"finish_reason":"length","index":0,"logprobs":null,"text":""}],"created":1,"id":"c","model":"m","object":"text_completion","usage":null}"#)
        let usage = CompletionResponse.usageChunk(id: "c", created: 1, model: "m", usage: Usage(promptTokens: 5, completionTokens: 7))
        XCTAssertEqual(text(usage.jsonData()),
                       #"{"choices":[],"created":1,"id":"c","model":"m","object":"text_completion","usage":{"completion_tokens":7,"prompt_tokens":5,"total_tokens":12}}"#)
        for value in [first, last, usage] { roundTrip(value) }
        XCTAssertTrue(try JSONDecoder().decode(CompletionResponse.self, from: last.jsonData()).usageNull)
        XCTAssertFalse(try JSONDecoder().decode(CompletionResponse.self, from: first.jsonData()).usageNull)
    }

    func testWholeCompletion() throws {
        let whole = CompletionResponse(id: "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7", created: 1589478378, model: "gpt-3.5-turbo-instruct",
                                       choices: [CompletionChoice(text: "\n\nThis is indeed a test", finishReason: "length")],
                                       usage: Usage(promptTokens: 5, completionTokens: 7))
        // OpenAI's documented completion object.
        try assertSameJSON(whole.jsonData(), """
            {"id": "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7", "object": "text_completion", "created": 1589478378, "model": "gpt-3.5-turbo-instruct",
             "choices": [{"text": "\\n\\nThis is indeed a test", "index": 0, "logprobs": null, "finish_reason": "length"}],
             "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}
            """)
        roundTrip(whole)
    }

    func testChatStreamChunks() throws {
        let id = "chatcmpl-123", created = 1694268190, model = "gpt-4o-mini"
        let first = ChatCompletionChunk.delta(id: id, created: created, model: model, role: "assistant", content: "", includeUsageNull: false)
        XCTAssertEqual(text(first.jsonData()),
                       #"{"choices":[{"delta":{"content":"","role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],"created":1694268190,"id":"chatcmpl-123","model":"gpt-4o-mini","object":"chat.completion.chunk"}"#)
        // OpenAI's documented chunks: the first, one with text, the last.
        try assertSameJSON(first.jsonData(), """
            {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini",
             "choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}
            """)
        let middle = ChatCompletionChunk.delta(id: id, created: created, model: model, content: "Hello", includeUsageNull: false)
        try assertSameJSON(middle.jsonData(), """
            {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini",
             "choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}
            """)
        let last = ChatCompletionChunk.delta(id: id, created: created, model: model, content: nil, finishReason: "stop", includeUsageNull: true)
        XCTAssertEqual(text(last.jsonData()),
                       #"{"choices":[{"delta":{},"finish_reason":"stop","index":0,"logprobs":null}],"created":1694268190,"id":"chatcmpl-123","model":"gpt-4o-mini","object":"chat.completion.chunk","usage":null}"#)
        let usage = ChatCompletionChunk.usageChunk(id: id, created: created, model: model, usage: Usage(promptTokens: 9, completionTokens: 12))
        XCTAssertEqual(text(usage.jsonData()),
                       #"{"choices":[],"created":1694268190,"id":"chatcmpl-123","model":"gpt-4o-mini","object":"chat.completion.chunk","usage":{"completion_tokens":12,"prompt_tokens":9,"total_tokens":21}}"#)
        for value in [first, middle, last, usage] { roundTrip(value) }
    }

    func testWholeChatCompletion() throws {
        let whole = ChatCompletionResponse(id: "chatcmpl-123", created: 1677652288, model: "gpt-4o-mini",
                                           content: "\n\nHello there, how may I assist you today?", finishReason: "stop",
                                           usage: Usage(promptTokens: 9, completionTokens: 12))
        try assertSameJSON(whole.jsonData(), """
            {"id": "chatcmpl-123", "object": "chat.completion", "created": 1677652288, "model": "gpt-4o-mini",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": "\\n\\nHello there, how may I assist you today?"},
                          "logprobs": null, "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}}
            """)
        roundTrip(whole)
    }

    func testModelList() throws {
        let list = ModelList(data: [ModelCard(id: "small", created: 1686935002, ownedBy: "headroom")])
        XCTAssertEqual(text(list.jsonData()), #"{"data":[{"created":1686935002,"id":"small","object":"model","owned_by":"headroom"}],"object":"list"}"#)
        roundTrip(list)
    }

    /// What other servers send decodes too: `system_fingerprint` and `logprobs` ignored, no `usage` key.
    func testDecodingOpenAIsOwnChunk() throws {
        let chunk = try JSONDecoder().decode(ChatCompletionChunk.self, from: Data("""
            {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb",
             "choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":{"content":[]},"finish_reason":null}]}
            """.utf8))
        XCTAssertEqual(chunk, .delta(id: "chatcmpl-123", created: 1694268190, model: "gpt-4o-mini", content: "Hi", includeUsageNull: false))
    }

    func testErrorEnvelope() throws {
        let e = APIError.invalid("max_tokens: expected an integer ≥ 1, got 0", param: "max_tokens")
        XCTAssertEqual(text(e.jsonBody()),
                       #"{"error":{"code":null,"message":"max_tokens: expected an integer ≥ 1, got 0","param":"max_tokens","type":"invalid_request_error"}}"#)
        XCTAssertEqual(APIError(jsonBody: e.jsonBody(), status: 400), e)
        let coded = APIError(status: 429, message: "slow down", type: "rate_limit_error", code: "rate_limit_exceeded")
        XCTAssertEqual(APIError(jsonBody: coded.jsonBody(), status: 429), coded)
        // vLLM writes the status as a numeric code.
        XCTAssertEqual(APIError(jsonBody: Data(#"{"error":{"message":"m","type":"BadRequestError","param":null,"code":400}}"#.utf8), status: 400),
                       APIError(status: 400, message: "m", type: "BadRequestError", code: "400"))
        XCTAssertNil(APIError(jsonBody: Data(#"{"detail":"Not Found"}"#.utf8), status: 404))
        XCTAssertNil(APIError(jsonBody: Data("not json".utf8), status: 500))
    }
}
