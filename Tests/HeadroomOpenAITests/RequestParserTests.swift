// The request parser against good and bad bodies: every refusal names the exact field, and types are read from
// the JSON text (no bool/number bridging, no rounding of integers that do not fit).
import Foundation
import XCTest
@testable import HeadroomOpenAI

/// Parses `body` (JSON text).
func parse(_ body: String, _ endpoint: CompletionEndpoint = .completions, limits: RequestLimits = RequestLimits()) throws -> CompletionRequest {
    try CompletionRequestParser.parse(Array(body.utf8), endpoint: endpoint, limits: limits)
}

/// The APIError parsing `body` throws; fails the test when it parses or throws something else.
func refusal(_ body: String, _ endpoint: CompletionEndpoint = .completions, limits: RequestLimits = RequestLimits(),
             file: StaticString = #filePath, line: UInt = #line) -> APIError? {
    do {
        let r = try parse(body, endpoint, limits: limits)
        XCTFail("accepted: \(r)", file: file, line: line)
        return nil
    } catch let e as APIError {
        return e
    } catch {
        XCTFail("not an APIError: \(error)", file: file, line: line)
        return nil
    }
}

/// Asserts a 400 naming `param` whose message contains each of `fragments`.
func assertRefused(_ body: String, _ endpoint: CompletionEndpoint = .completions, param: String?, _ fragments: String...,
                   limits: RequestLimits = RequestLimits(), file: StaticString = #filePath, line: UInt = #line) {
    guard let e = refusal(body, endpoint, limits: limits, file: file, line: line) else { return }
    XCTAssertEqual(e.status, 400, "\(e)", file: file, line: line)
    XCTAssertEqual(e.type, "invalid_request_error", file: file, line: line)
    XCTAssertEqual(e.param, param, e.message, file: file, line: line)
    if let param { XCTAssertTrue(e.message.hasPrefix(param + ": "), e.message, file: file, line: line) }
    for f in fragments { XCTAssertTrue(e.message.contains(f), "\"\(e.message)\" lacks \"\(f)\"", file: file, line: line) }
}

final class RequestParserTests: XCTestCase {
    func testACompletionWithEveryField() throws {
        let r = try parse("""
            {"model": "small", "prompt": "Once upon", "max_tokens": 16, "temperature": 0.7, "top_p": 0.9, "seed": 42,
             "stream": true, "stream_options": {"include_usage": true}, "stop": ["\\n", "END"], "stop_token_ids": [2, 0],
             "ignore_eos": true, "user": "u1", "n": 1, "best_of": 1, "echo": false, "logprobs": null, "suffix": "",
             "presence_penalty": 0, "frequency_penalty": 0.0, "logit_bias": {}, "some_future_field": [1, {"x": null}]}
            """)
        XCTAssertEqual(r, CompletionRequest(endpoint: .completions, model: "small", prompt: .text("Once upon"), maxTokens: 16,
                                            temperature: 0.7, topP: 0.9, seed: 42, stream: true, includeUsage: true,
                                            stop: ["\n", "END"], stopTokenIDs: [2, 0], ignoreEOS: true))
    }

    func testDefaultsAndNullMeansAbsent() throws {
        let r = try parse(#"{"prompt": "x", "max_tokens": null, "temperature": null, "seed": null, "stream": null, "stop": null, "model": null}"#)
        XCTAssertEqual(r, CompletionRequest(endpoint: .completions, prompt: .text("x")))
        XCTAssertEqual(r.temperature, 1)
        XCTAssertEqual(r.topP, 1)
    }

    // MARK: - The body

    func testBodyOverTheLimitIs413() {
        let limits = RequestLimits(maxBodyBytes: 20)
        XCTAssertNoThrow(try parse(#"{"prompt": "abcdef"}"#, limits: limits))
        let e = refusal(#"{"prompt": "abcdefghij"}"#, limits: limits)
        XCTAssertEqual(e?.status, 413)
        XCTAssertEqual(e?.param, nil)
        XCTAssertEqual(e?.message, "the body is 24 bytes; the limit is 20")
    }

    func testNotAJSONObject() {
        for (body, fragment) in [("", "it is empty"), ("  ", "it is empty"), ("[1]", "it is an array"), ("\"x\"", "it is \"x\""),
                                 ("3", "it is 3"), ("null", "it is null"), ("{", "ends inside an object"),
                                 (#"{"prompt": "x",}"#, "expected a key in quotes, got '}'"), (#"{"prompt": 'x'}"#, "unexpected '''"),
                                 (#"{"prompt": "x"} {}"#, "after the value"), (#"{"a": 01}"#, "leading zero"), (#"{"a": 1.}"#, "after '.'"),
                                 (#"{"a": -}"#, "expected a digit"), (#"{"a": tru}"#, "expected true"), (#"{"a": NaN}"#, "unexpected 'N'"),
                                 (#"{"a": "\x"}"#, "unknown escape"), (#"{"a": "\ud800"}"#, "lone surrogate"),
                                 (#"{"a": "\udc00x"}"#, "lone surrogate"), (#"{"a": "\ud800\u0041"}"#, "not followed by a low one"),
                                 ("{\"a\": \"\u{1}\"}", "control character"), (#"{"a": 1, "a": 2}"#, "the key \"a\" appears twice"),
                                 ("\u{FEFF}{}", "unexpected byte 0xEF")] {
            assertRefused(body, param: nil, "the body is not a JSON object: ", fragment)
        }
        let invalidUTF8: [UInt8] = Array(#"{"prompt": "a"#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)
        XCTAssertThrowsError(try CompletionRequestParser.parse(invalidUTF8, endpoint: .completions)) {
            XCTAssertEqual(($0 as? APIError)?.message, "the body is not a JSON object: the string at byte 11 is not valid UTF-8")
        }
    }

    func testEscapesAreResolved() throws {
        let r = try parse(#"{"prompt": "a\"b\\c\/d\b\f\n\r\t\u00e9\uD83D\uDE00\u0000"}"#)
        XCTAssertEqual(r.prompt, .text("a\"b\\c/d\u{8}\u{C}\n\r\té😀\u{0}"))
    }

    func testNestingDeeperThanTheLimitIsRefusedBeforeRecursing() throws {
        let limits = RequestLimits(maxDepth: 4)
        XCTAssertNoThrow(try parse(#"{"x": [[{"y": 1}]], "prompt": "p"}"#, limits: limits))
        assertRefused(#"{"x": [[[{"y": 1}]]], "prompt": "p"}"#, param: nil, "nest deeper than 4 at byte 9", limits: limits)
        // Far past any stack: refused at the 33rd bracket with the default limit.
        let deep = "{\"prompt\": \"p\", \"x\": " + String(repeating: "[", count: 1_000_000) + String(repeating: "]", count: 1_000_000) + "}"
        assertRefused(deep, param: nil, "nest deeper than 32", limits: RequestLimits(maxBodyBytes: 4 << 20))
    }

    // MARK: - Numbers read from their text

    func testIntegerFieldsTakeIntegersOnly() {
        for (value, fragment) in [("true", "got true"), ("1.5", "got 1.5"), ("1.0", "got 1.0"), ("1e2", "got 1e2"), ("\"16\"", "got \"16\""),
                                  ("0", "got 0"), ("-1", "got -1"), ("-0", "got -0"), ("12345678901234567890123", "got 12345678901234567890123"),
                                  ("9223372036854775808", "got 9223372036854775808"), ("1e999", "got 1e999"), ("[]", "got an empty array")] {
            assertRefused(#"{"prompt": "p", "max_tokens": \#(value)}"#, param: "max_tokens", "max_tokens: expected an integer ≥ 1, ", fragment)
        }
        XCTAssertEqual(try parse(#"{"prompt": "p", "max_tokens": 9223372036854775807}"#).maxTokens, Int.max)
    }

    func testNumberFieldsTakeNumbersOnly() throws {
        for value in ["true", "\"0.5\"", "1e999", "-1e999", "2.0000001", "-0.1", "{}"] {
            assertRefused(#"{"prompt": "p", "temperature": \#(value)}"#, param: "temperature", "expected a number from 0 to 2, got")
        }
        for value in ["0", "-0", "0.0", "1.5", "1.0000001", "-1e-300"] {
            assertRefused(#"{"prompt": "p", "top_p": \#(value)}"#, param: "top_p", "top_p: expected a number greater than 0 and at most 1, got \(value)")
        }
        XCTAssertEqual(try parse(#"{"prompt": "p", "temperature": -0}"#).temperature, 0)
        XCTAssertEqual(try parse(#"{"prompt": "p", "temperature": 2, "top_p": 1e-300}"#).topP, 1e-300)
        XCTAssertEqual(try parse(#"{"prompt": "p", "temperature": 0.15E1, "top_p": 1}"#).temperature, 1.5)
    }

    func testBooleanFieldsTakeBooleansOnly() {
        for key in ["stream", "ignore_eos"] {
            for (value, got) in [("1", "1"), ("0", "0"), ("\"true\"", "\"true\""), ("[]", "an empty array"), ("{\"a\": 1}", "an object")] {
                assertRefused(#"{"prompt": "p", "\#(key)": \#(value)}"#, param: key, "\(key): expected true or false, got \(got)")
            }
        }
        assertRefused(#"{"prompt": "p", "stream": true, "stream_options": {"include_usage": 1}}"#, param: "stream_options.include_usage",
                      "stream_options.include_usage: expected true or false, got 1")
    }

    func testSeedTakesTheSigned64BitRangeAndKeepsTheBitPattern() throws {
        XCTAssertEqual(try parse(#"{"prompt": "p", "seed": 0}"#).seed, 0)
        XCTAssertEqual(try parse(#"{"prompt": "p", "seed": 9223372036854775807}"#).seed, UInt64(Int64.max))
        XCTAssertEqual(try parse(#"{"prompt": "p", "seed": -1}"#).seed, UInt64.max)
        XCTAssertEqual(try parse(#"{"prompt": "p", "seed": -9223372036854775808}"#).seed, 1 << 63)
        for value in ["9223372036854775808", "-9223372036854775809", "18446744073709551615", "1.5", "true", "\"1\""] {
            assertRefused(#"{"prompt": "p", "seed": \#(value)}"#, param: "seed",
                          "seed: expected an integer from -9223372036854775808 to 9223372036854775807, got \(value)")
        }
    }

    // MARK: - The prompt

    func testPromptForms() throws {
        XCTAssertEqual(try parse(#"{"prompt": "hi"}"#).prompt, .text("hi"))
        XCTAssertEqual(try parse(#"{"prompt": [1, 2, 2147483647, 0]}"#).prompt, .tokens([1, 2, Int32.max, 0]))
        XCTAssertEqual(try parse(#"{"prompt": ["hi"]}"#).prompt, .text("hi"))
        XCTAssertEqual(try parse(#"{"prompt": [[5, 6]]}"#).prompt, .tokens([5, 6]))
    }

    func testBadPrompts() {
        assertRefused(#"{"model": "m"}"#, param: "prompt", "prompt: required on /v1/completions")
        assertRefused(#"{"prompt": null}"#, param: "prompt", "required")
        assertRefused(#"{"prompt": ""}"#, param: "prompt", "prompt: the prompt is empty")
        assertRefused(#"{"prompt": []}"#, param: "prompt", "prompt: the prompt is empty")
        assertRefused(#"{"prompt": [""]}"#, param: "prompt[0]", "prompt[0]: the prompt is empty")
        assertRefused(#"{"prompt": [[]]}"#, param: "prompt[0]", "the prompt is empty")
        assertRefused(#"{"prompt": ["a", "b"]}"#, param: "prompt", "prompt: only one prompt per request is supported, got an array of 2")
        assertRefused(#"{"prompt": [[1], [2]]}"#, param: "prompt", "only one prompt per request is supported")
        assertRefused(#"{"prompt": 5}"#, param: "prompt", "prompt: expected a string or an array of token ids, got 5")
        assertRefused(#"{"prompt": [null]}"#, param: "prompt[0]", "expected a string or an array of token ids, got null")
        assertRefused(#"{"prompt": [1, -1]}"#, param: "prompt[1]", "prompt[1]: expected a token id (an integer from 0 to 2147483647), got -1")
        assertRefused(#"{"prompt": [1, 2147483648]}"#, param: "prompt[1]", "got 2147483648")
        assertRefused(#"{"prompt": [1, 2.0]}"#, param: "prompt[1]", "got 2.0")
        assertRefused(#"{"prompt": [1, true]}"#, param: "prompt[1]", "got true")
        assertRefused(#"{"prompt": [1, "a"]}"#, param: "prompt[1]", "got \"a\"")
        assertRefused(#"{"prompt": [[1, 2], [3, "x"]]}"#, param: "prompt", "only one prompt")
        assertRefused(#"{"prompt": [[1, "x"]]}"#, param: "prompt[0][1]", "prompt[0][1]: expected a token id")
        assertRefused(#"{"prompt": [["x"]]}"#, param: "prompt[0][0]", "got \"x\"")
        assertRefused(#"{"prompt": {"text": "x"}}"#, param: "prompt", "got an object")
    }

    func testPromptLengthLimit() throws {
        let limits = RequestLimits(maxPromptLength: 3)
        XCTAssertEqual(try parse(#"{"prompt": "é😀x"}"#, limits: limits).prompt, .text("é😀x"))
        assertRefused(#"{"prompt": "abcd"}"#, param: "prompt", "prompt: the prompt is 4 characters; the limit is 3", limits: limits)
        XCTAssertEqual(try parse(#"{"prompt": [1, 2, 3]}"#, limits: limits).prompt, .tokens([1, 2, 3]))
        assertRefused(#"{"prompt": [1, 2, 3, 4]}"#, param: "prompt", "the prompt is 4 token ids; the limit is 3", limits: limits)
        assertRefused(#"{"prompt": [[1, 2, 3, 4]]}"#, param: "prompt[0]", "the prompt is 4 token ids", limits: limits)
        assertRefused(#"{"messages": [{"role": "user", "content": "ab"}, {"role": "user", "content": "cd"}]}"#, .chatCompletions,
                      param: "messages", "messages: the messages' contents are more than 3 characters together", limits: limits)
    }

    // MARK: - Chat

    func testChatMessages() throws {
        let r = try parse("""
            {"model": "m", "messages": [{"role": "system", "content": "Be brief."},
              {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}], "name": "bob"},
              {"role": "assistant", "content": ""}, {"role": "developer", "content": "d"}, {"role": "tool", "content": "t", "tool_call_id": "1"}],
             "prompt": 5, "max_completion_tokens": 8}
            """, .chatCompletions)
        XCTAssertEqual(r.prompt, .messages([ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "Hi\nthere"),
                                            ChatMessage(role: "assistant", content: ""), ChatMessage(role: "developer", content: "d"),
                                            ChatMessage(role: "tool", content: "t")]))
        XCTAssertEqual(r.maxTokens, 8)
        XCTAssertEqual(r.endpoint, .chatCompletions)
    }

    func testBadMessages() {
        let c = CompletionEndpoint.chatCompletions
        assertRefused(#"{"prompt": "x"}"#, c, param: "messages", "messages: required on /v1/chat/completions")
        assertRefused(#"{"messages": []}"#, c, param: "messages", "messages: expected a non-empty array of messages, got an empty array")
        assertRefused(#"{"messages": "hi"}"#, c, param: "messages", "got \"hi\"")
        assertRefused(#"{"messages": [{"role": "user", "content": "a"}, 3]}"#, c, param: "messages[1]", "messages[1]: expected an object")
        assertRefused(#"{"messages": [{"content": "a"}]}"#, c, param: "messages[0].role", "messages[0].role: required, one of assistant, developer, system, tool, user")
        assertRefused(#"{"messages": [{"role": "bot", "content": "a"}]}"#, c, param: "messages[0].role", "got \"bot\"")
        assertRefused(#"{"messages": [{"role": 1, "content": "a"}]}"#, c, param: "messages[0].role", "expected a string, got 1")
        assertRefused(#"{"messages": [{"role": "user"}]}"#, c, param: "messages[0].content", "messages[0].content: expected a string or a non-empty array of text parts, got null")
        assertRefused(#"{"messages": [{"role": "user", "content": 7}]}"#, c, param: "messages[0].content", "got 7")
        assertRefused(#"{"messages": [{"role": "user", "content": []}]}"#, c, param: "messages[0].content", "got an empty array")
        assertRefused(#"{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "x"}}]}]}"#,
                      c, param: "messages[1].content[1].type", "messages[1].content[1].type: only \"text\" parts are supported, got \"image_url\"")
        assertRefused(#"{"messages": [{"role": "user", "content": [{"text": "a"}]}]}"#, c, param: "messages[0].content[0].type", "got none")
        assertRefused(#"{"messages": [{"role": "user", "content": [{"type": "text"}]}]}"#, c, param: "messages[0].content[0].text", "required")
        assertRefused(#"{"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]}"#, c, param: "messages[0].content[0].text", "expected a string, got 1")
        assertRefused(#"{"messages": [{"role": "user", "content": ["a"]}]}"#, c, param: "messages[0].content[0]", "got \"a\"")
        assertRefused(#"{"messages": [{"role": "assistant", "content": "", "tool_calls": [{"id": "1"}]}]}"#, c,
                      param: "messages[0].tool_calls", "tool calls are not supported")
        assertRefused(#"{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}"#, c, param: "messages",
                      "messages: at most 1 messages, got 2", limits: RequestLimits(maxMessages: 1))
    }

    func testMaxCompletionTokens() throws {
        let m = #""messages": [{"role": "user", "content": "a"}]"#
        XCTAssertEqual(try parse("{\(m), \"max_tokens\": 5}", .chatCompletions).maxTokens, 5)
        XCTAssertEqual(try parse("{\(m), \"max_tokens\": 5, \"max_completion_tokens\": 5}", .chatCompletions).maxTokens, 5)
        assertRefused("{\(m), \"max_tokens\": 5, \"max_completion_tokens\": 6}", .chatCompletions, param: "max_completion_tokens",
                      "max_completion_tokens: 6 disagrees with max_tokens 5")
        assertRefused("{\(m), \"max_completion_tokens\": 0}", .chatCompletions, param: "max_completion_tokens", "expected an integer ≥ 1, got 0")
        // Not a field of /v1/completions: ignored there, like any unknown field.
        XCTAssertEqual(try parse(#"{"prompt": "p", "max_completion_tokens": 0}"#).maxTokens, nil)
    }

    // MARK: - Streaming and stops

    func testStreamOptionsNeedStream() throws {
        assertRefused(#"{"prompt": "p", "stream_options": {"include_usage": true}}"#, param: "stream_options",
                      "stream_options: only allowed when stream is true")
        assertRefused(#"{"prompt": "p", "stream": false, "stream_options": {}}"#, param: "stream_options", "only allowed when stream is true")
        assertRefused(#"{"prompt": "p", "stream": true, "stream_options": true}"#, param: "stream_options", "expected an object, got true")
        XCTAssertFalse(try parse(#"{"prompt": "p", "stream": true, "stream_options": {}}"#).includeUsage)
        XCTAssertFalse(try parse(#"{"prompt": "p", "stream_options": null}"#).includeUsage)
        XCTAssertTrue(try parse(#"{"prompt": "p", "stream": true, "stream_options": {"include_usage": true, "continuous_usage_stats": false}}"#).includeUsage)
    }

    func testStops() throws {
        XCTAssertEqual(try parse(#"{"prompt": "p", "stop": "\n\n"}"#).stop, ["\n\n"])
        XCTAssertEqual(try parse(#"{"prompt": "p", "stop": []}"#).stop, [])
        assertRefused(#"{"prompt": "p", "stop": ""}"#, param: "stop", "stop: expected a non-empty string, got \"\"")
        assertRefused(#"{"prompt": "p", "stop": ["a", ""]}"#, param: "stop[1]", "stop[1]: expected a non-empty string")
        assertRefused(#"{"prompt": "p", "stop": ["a", 1]}"#, param: "stop[1]", "got 1")
        assertRefused(#"{"prompt": "p", "stop": 1}"#, param: "stop", "stop: expected a string or an array of strings, got 1")
        assertRefused(#"{"prompt": "p", "stop": ["a", "b", "c"]}"#, param: "stop", "stop: at most 2 stop strings, got 3",
                      limits: RequestLimits(maxStops: 2))
        XCTAssertEqual(try parse(#"{"prompt": "p", "stop_token_ids": []}"#).stopTokenIDs, [])
        assertRefused(#"{"prompt": "p", "stop_token_ids": [1, 2, 3]}"#, param: "stop_token_ids", "stop_token_ids: at most 2 token ids, got 3",
                      limits: RequestLimits(maxStops: 2))
        assertRefused(#"{"prompt": "p", "stop_token_ids": [1, -2]}"#, param: "stop_token_ids[1]", "stop_token_ids[1]: expected a token id")
        assertRefused(#"{"prompt": "p", "stop_token_ids": 2}"#, param: "stop_token_ids", "expected an array of token ids, got 2")
    }

    func testModelAndUserMustBeStrings() {
        assertRefused(#"{"prompt": "p", "model": 3}"#, param: "model", "model: expected a string, got 3")
        assertRefused(#"{"prompt": "p", "user": {}}"#, param: "user", "user: expected a string, got an empty object")
    }

    // MARK: - Fields that would change the answer

    func testUnsupportedFieldsAreRefusedUnlessNeutral() throws {
        for (field, value, message) in [
            ("n", "2", "n: only 1 is supported, got 2"), ("n", "1.0", "n: only 1 is supported, got 1.0"), ("n", "\"1\"", "n: only 1 is supported, got \"1\""),
            ("best_of", "3", "best_of: only 1 is supported, got 3"),
            ("echo", "true", "echo: true is not supported; leave it out or send false"), ("echo", "1", "echo: expected true or false, got 1"),
            ("logprobs", "0", "logprobs: 0 is not supported; leave it out or send null or false"), ("logprobs", "true", "logprobs: true is not supported"),
            ("logprobs", "\"x\"", "logprobs: expected an integer or a boolean, got \"x\""),
            ("top_logprobs", "2", "top_logprobs: 2 is not supported; leave it out or send 0"),
            ("suffix", "\"end\"", "suffix: \"end\" is not supported; leave it out or send \"\""), ("suffix", "1", "suffix: expected a string, got 1"),
            ("presence_penalty", "0.5", "presence_penalty: 0.5 is not supported; leave it out or send 0"),
            ("frequency_penalty", "-1", "frequency_penalty: -1 is not supported"), ("frequency_penalty", "true", "frequency_penalty: expected a number, got true"),
            ("repetition_penalty", "1.1", "repetition_penalty: 1.1 is not supported; leave it out or send 1"),
            ("top_k", "40", "top_k: 40 is not supported; leave it out or send -1 or 0"), ("min_p", "0.1", "min_p: 0.1 is not supported"),
            ("min_tokens", "4", "min_tokens: 4 is not supported"),
            ("logit_bias", #"{"50256": -100}"#, "logit_bias: an object is not supported; leave it out or send {}"),
            ("logit_bias", "[]", "logit_bias: expected an object, got an empty array"),
            ("tools", #"[{"type": "function"}]"#, "tools: an array is not supported; leave it out or send []"),
            ("functions", #"[{}]"#, "functions: an array is not supported"),
            ("tool_choice", "\"required\"", "tool_choice: \"required\" is not supported"), ("tool_choice", #"{"type": "function"}"#, "tool_choice: an object is not supported"),
            ("response_format", #"{"type": "json_object"}"#, "response_format: an object is not supported; leave it out or send {\"type\": \"text\"}"),
            ("response_format", "\"text\"", "response_format: expected an object, got \"text\""),
            ("use_beam_search", "true", "use_beam_search: true is not supported"), ("include_stop_str_in_output", "true", "include_stop_str_in_output: true is not supported"),
            ("guided_json", "{}", "guided_json: an empty object is not supported"), ("guided_choice", #"["a"]"#, "guided_choice: an array is not supported"),
            ("allowed_token_ids", "[1]", "allowed_token_ids: an array is not supported"), ("prompt_logprobs", "1", "prompt_logprobs: 1 is not supported"),
        ] {
            assertRefused(#"{"prompt": "p", "\#(field)": \#(value)}"#, param: field, message)
            assertRefused(#"{"messages": [{"role": "user", "content": "c"}], "\#(field)": \#(value)}"#, .chatCompletions, param: field, message)
        }
        let neutral = #"""
            {"prompt": "p", "n": 1, "best_of": 1, "echo": false, "logprobs": false, "top_logprobs": 0, "prompt_logprobs": null, "suffix": "",
             "presence_penalty": 0.0, "frequency_penalty": -0, "repetition_penalty": 1.0, "min_p": 0, "top_k": -1, "min_tokens": 0,
             "logit_bias": {}, "tools": [], "functions": null, "allowed_token_ids": [], "bad_words": [], "tool_choice": "none",
             "function_call": "auto", "response_format": {"type": "text"}, "use_beam_search": false, "include_stop_str_in_output": false,
             "guided_json": null}
            """#
        XCTAssertEqual(try parse(neutral), CompletionRequest(endpoint: .completions, prompt: .text("p")))
    }

    /// Every error names a field or says the body is at fault, so a client can find what to fix.
    func testErrorsAreOpenAIShaped() throws {
        let e = try XCTUnwrap(refusal(#"{"prompt": "p", "max_tokens": true}"#))
        XCTAssertEqual(e, APIError(status: 400, message: "max_tokens: expected an integer ≥ 1, got true", type: "invalid_request_error",
                                   param: "max_tokens"))
    }
}
