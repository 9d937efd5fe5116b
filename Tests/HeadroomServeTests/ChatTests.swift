// Text in, text out over loopback with a real tokenizer: llama.cpp's SPM vocabulary (32000 tokens, tiny's
// vocabulary size) in front of synthetic weights. Text prompts and chat messages are encoded as the server
// encodes them, the greedy tokens computed apart, and the answer's text must be those tokens' text. The weights
// are `Micro`'s f32, not tiny's q4_0: with tiny the 33-token chat prompt's greedy tokens part from
// InferenceSession's at a top-two gap of 0.0095 (a rounding, not a bug), with f32 they agree exactly.
import AsyncHTTPClient
import Foundation
import HeadroomEngine
import HeadroomOpenAI
@testable import HeadroomServe
import XCTest

final class ChatTests: XCTestCase {
    /// Repository root: this file is Tests/HeadroomServeTests/ChatTests.swift.
    static let vocabPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".cache/llama-vocab/ggml-vocab-llama-spm.gguf").path

    private static let loaded = Result { try Tokenizer.load(path: vocabPath) }

    /// llama.cpp's llama-spm vocabulary; skipped with HEADROOM_SKIP_VOCAB=1 when `make vocab-fixtures` has not run.
    static func llamaSPM() throws -> Tokenizer {
        guard FileManager.default.fileExists(atPath: vocabPath) else {
            if ProcessInfo.processInfo.environment["HEADROOM_SKIP_VOCAB"] == "1" {
                throw XCTSkip("HEADROOM_SKIP_VOCAB=1: tests that need llama.cpp's vocabularies skipped")
            }
            XCTFail("\(vocabPath) is missing: run `make vocab-fixtures`, or set HEADROOM_SKIP_VOCAB=1 to skip these tests")
            throw XCTSkip("no vocabulary")
        }
        return try loaded.get()
    }

    /// The vocabulary file has no `tokenizer.chat_template`, so the template is set by hand: llama-2's, the
    /// family of the model the vocabulary comes from.
    static func chatTemplate() throws -> ChatTemplate {
        let file = try GGUFFile(path: vocabPath)
        if let detected = try? ChatTemplate.detect(from: file.metadata.string("tokenizer.chat_template")) { return detected }
        return .llama2
    }

    static var shared: TestServer?
    static let modelID = "micro-llama-spm"

    func server() async throws -> (TestServer, Tokenizer, ChatTemplate) {
        let tokenizer = try Self.llamaSPM()
        let template = try Self.chatTemplate()
        if let s = Self.shared { return (s, tokenizer, template) }
        XCTAssertEqual(tokenizer.vocabularySize, Micro.config.vocab)
        let model = ServedModel(id: Self.modelID, vocabularySize: Micro.config.vocab, context: Micro.config.context,
                                tokenizer: tokenizer, chatTemplate: template, created: 1_700_000_000)
        let s = try await TestServer.start(model: model, weights: Micro.weights)
        Self.shared = s
        return (s, tokenizer, template)
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

    /// Greedy tokens for `prompt`, ending at the first end-of-generation token as the server does (it is counted).
    func greedy(_ prompt: [Int32], count: Int, tokenizer: Tokenizer) throws -> [Int32] {
        let tokens = try Micro.greedy(prompt, count: count)
        guard let end = tokens.firstIndex(where: tokenizer.endOfGeneration.contains) else { return tokens }
        return Array(tokens[...end])
    }

    /// The text `tokens` add after `prompt`: the tokenizer's decoding of both, less the prompt's (its first-piece
    /// space rule applies to the prompt, not to the continuation), special tokens not rendered.
    func continuation(_ tokens: [Int32], after prompt: [Int32], tokenizer: Tokenizer) -> String {
        let all = tokenizer.decodeBytes(prompt + tokens, renderSpecial: false)
        let head = tokenizer.decodeBytes(prompt, renderSpecial: false)
        XCTAssertEqual(Array(all.prefix(head.count)), head)
        return String(decoding: all.dropFirst(head.count), as: UTF8.self)
    }

    let text = "Hello, my name is"
    let messages: [[String: String]] = [
        ["role": "system", "content": "You answer in one word."],
        ["role": "user", "content": "What colour is the sky?"],
    ]

    func testTextCompletionIsTheGreedyTokensText() async throws {
        let (s, tokenizer, _) = try await server()
        let prompt = tokenizer.encode(text, addSpecial: true)
        XCTAssertEqual(prompt.first, tokenizer.bos)
        let tokens = try greedy(prompt, count: 8, tokenizer: tokenizer)
        let r = try await s.post("/v1/completions", body(["model": Self.modelID, "prompt": text, "max_tokens": 8, "temperature": 0]))
        XCTAssertEqual(r.status, 200, r.text)
        let c = try JSONDecoder().decode(CompletionResponse.self, from: r.body)
        XCTAssertEqual(c.choices.first?.text, continuation(tokens, after: prompt, tokenizer: tokenizer))
        XCTAssertEqual(c.choices.first?.finishReason, tokens.count == 8 ? "length" : "stop")
        XCTAssertEqual(c.usage, Usage(promptTokens: prompt.count, completionTokens: tokens.count))
    }

    func testChatWholeAndStreamedAgreeAndCountTheTemplatedPrompt() async throws {
        let (s, tokenizer, template) = try await server()
        let rendered = template.render(messages: messages.map { (role: $0["role"]!, content: $0["content"]!) }, addGenerationPrompt: true)
        let prompt = tokenizer.encode(rendered, addSpecial: true, parseSpecial: true)
        let tokens = try greedy(prompt, count: 10, tokenizer: tokenizer)
        let expected = continuation(tokens, after: prompt, tokenizer: tokenizer)
        let finish = tokens.count == 10 ? "length" : "stop"
        let usage = Usage(promptTokens: prompt.count, completionTokens: tokens.count)

        let r = try await s.post("/v1/chat/completions", body(["model": Self.modelID, "messages": messages, "max_tokens": 10,
                                                              "temperature": 0]))
        XCTAssertEqual(r.status, 200, r.text)
        let whole = try JSONDecoder().decode(ChatCompletionResponse.self, from: r.body)
        XCTAssertEqual(whole.object, "chat.completion")
        XCTAssertTrue(whole.id.hasPrefix("chatcmpl-"), whole.id)
        XCTAssertEqual(whole.model, Self.modelID)
        XCTAssertEqual(whole.choices.count, 1)
        XCTAssertEqual(whole.choices.first?.message, ChatMessage(role: "assistant", content: expected))
        XCTAssertEqual(whole.choices.first?.finishReason, finish)
        XCTAssertEqual(whole.usage, usage)

        let (status, events) = try await s.stream("/v1/chat/completions", body([
            "model": Self.modelID, "messages": messages, "max_tokens": 10, "temperature": 0, "stream": true,
            "stream_options": ["include_usage": true],
        ]))
        XCTAssertEqual(status, 200)
        XCTAssertEqual(events.last, "[DONE]")
        let chunks = try events.dropLast().map { try JSONDecoder().decode(ChatCompletionChunk.self, from: Data($0.utf8)) }
        guard chunks.count >= 3 else { return XCTFail("\(events)") }
        XCTAssertTrue(chunks.allSatisfy { $0.object == "chat.completion.chunk" && $0.model == Self.modelID })
        XCTAssertEqual(Set(chunks.map(\.id)).count, 1)
        // The role chunk, the text deltas, the finish chunk (empty delta), the usage chunk.
        XCTAssertEqual(chunks.first?.choices, [ChatChunkChoice(delta: ChatDelta(role: "assistant", content: ""), finishReason: nil)])
        let deltas = chunks.dropFirst().dropLast(2)
        XCTAssertTrue(deltas.allSatisfy { $0.choices.count == 1 && $0.choices[0].delta.role == nil && $0.choices[0].finishReason == nil
                                          && $0.choices[0].delta.content.map { !$0.isEmpty } == true },
                      "\(Array(deltas))")
        XCTAssertEqual(deltas.compactMap { $0.choices.first?.delta.content }.joined(), expected)
        XCTAssertEqual(chunks[chunks.count - 2].choices, [ChatChunkChoice(delta: ChatDelta(), finishReason: finish)])
        XCTAssertTrue(chunks.dropLast().allSatisfy { $0.usage == nil && $0.usageNull })
        XCTAssertEqual(chunks.last?.choices, [])
        XCTAssertEqual(chunks.last?.usage, usage)

        // Without include_usage: no usage chunk, no usage key.
        let (_, plain) = try await s.stream("/v1/chat/completions", body([
            "model": Self.modelID, "messages": messages, "max_tokens": 10, "temperature": 0, "stream": true,
        ]))
        let plainChunks = try plain.dropLast().map { try JSONDecoder().decode(ChatCompletionChunk.self, from: Data($0.utf8)) }
        XCTAssertEqual(plain.last, "[DONE]")
        XCTAssertEqual(plainChunks.last?.choices.first?.finishReason, finish)
        XCTAssertTrue(plainChunks.allSatisfy { $0.usage == nil && !$0.usageNull })
        XCTAssertEqual(plainChunks.compactMap { $0.choices.first?.delta.content }.joined(), expected)
    }

    func testStopStringCutsTheTextBeforeIt() async throws {
        let (s, tokenizer, _) = try await server()
        let prompt = tokenizer.encode(text, addSpecial: true)
        let tokens = try greedy(prompt, count: 12, tokenizer: tokenizer)
        let full = continuation(tokens, after: prompt, tokenizer: tokenizer)
        // Two characters from the middle of the text; the text is cut before their first occurrence.
        let characters = Array(full)
        guard characters.count >= 4 else { throw XCTSkip("the greedy text is too short to hold a stop string: \(full.debugDescription)") }
        let stop = String(characters[(characters.count / 2)...(characters.count / 2 + 1)])
        let at = try XCTUnwrap(TextAssembler.find(Array(stop.utf8), in: Array(full.utf8)))
        let expected = String(decoding: Array(full.utf8)[..<at], as: UTF8.self)
        let request: [String: Any] = ["model": Self.modelID, "prompt": text, "max_tokens": 12, "temperature": 0, "stop": [stop]]
        let r = try await s.post("/v1/completions", body(request))
        XCTAssertEqual(r.status, 200, r.text)
        let c = try JSONDecoder().decode(CompletionResponse.self, from: r.body)
        XCTAssertEqual(c.choices.first?.text, expected, "stop \(stop.debugDescription) in \(full.debugDescription)")
        XCTAssertEqual(c.choices.first?.finishReason, "stop")

        var streamed = request
        streamed["stream"] = true
        let (_, events) = try await s.stream("/v1/completions", body(streamed))
        XCTAssertEqual(events.last, "[DONE]")
        let chunks = try events.dropLast().map { try JSONDecoder().decode(CompletionResponse.self, from: Data($0.utf8)) }
        XCTAssertEqual(chunks.flatMap(\.choices).map(\.text).joined(), expected)
        XCTAssertEqual(chunks.last?.choices.first?.finishReason, "stop")
        try await s.waitForMetric("headroom_kv_blocks_used", 0)
    }
}
