// What a server answers, whole or as stream chunks, in OpenAI's wire shape (snake_case keys). Encoding writes
// the nulls OpenAI writes (`"logprobs": null`, `"finish_reason": null`, and `"usage": null` on the chunks of a
// stream with `include_usage`); decoding reads them back, so `decode(encode(x)) == x`. `system_fingerprint`
// is not written (it is optional in OpenAI's schema) and is ignored when read.
import Foundation

/// The encoder the server writes responses with: compact, keys sorted (so the bytes are fixed and testable),
/// `/` not escaped.
func responseEncoder() -> JSONEncoder {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return e
}

/// A response type the server writes as a body or a stream chunk's data.
public protocol ResponseBody: Codable {}

extension ResponseBody {
    /// This value as compact JSON, keys sorted. The response types hold only strings, integers and nulls, which
    /// always encode, so this does not fail.
    public func jsonData() -> Data {
        // swiftlint:disable:next force_try
        try! responseEncoder().encode(self)
    }
}

// MARK: - /v1/completions

/// One choice of a text completion: `{"finish_reason": null | "stop" | "length", "index": 0, "logprobs": null,
/// "text": "…"}`. `logprobs` is always written as null (the parser refuses requests for them) and not read.
public struct CompletionChoice: Hashable, Sendable, Codable {
    public var index: Int
    public var text: String
    public var finishReason: FinishReason?

    public init(index: Int = 0, text: String, finishReason: FinishReason?) {
        self.index = index; self.text = text; self.finishReason = finishReason
    }

    enum CodingKeys: String, CodingKey { case index, text, logprobs, finishReason = "finish_reason" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        index = try c.decode(Int.self, forKey: .index)
        text = try c.decode(String.self, forKey: .text)
        finishReason = try c.decodeIfPresent(String.self, forKey: .finishReason)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(index, forKey: .index)
        try c.encode(text, forKey: .text)
        try c.encodeNil(forKey: .logprobs)
        try c.encode(finishReason, forKey: .finishReason)  // null until the last chunk
    }
}

/// A `/v1/completions` answer, whole or one stream chunk (OpenAI uses the same object, `"object":
/// "text_completion"`, for both). Wire shape, keys sorted:
///
///     {"choices":[{"finish_reason":"length","index":0,"logprobs":null,"text":"…"}],"created":1589478378,
///      "id":"cmpl-…","model":"…","object":"text_completion","usage":{"completion_tokens":7,"prompt_tokens":5,"total_tokens":12}}
///
/// A stream chunk has one choice with `"finish_reason": null` until the last; it has no `usage` key, or
/// `"usage": null` when the request asked for `include_usage` (`usageNull`), whose final chunk has `"choices": []`
/// and the usage.
public struct CompletionResponse: Hashable, Sendable, ResponseBody {
    public var id: String
    public var object: String
    public var created: Int
    public var model: String
    public var choices: [CompletionChoice]
    public var usage: Usage?
    /// With `usage` nil: write `"usage": null` (true) or leave the key out (false). Decoding sets it when the key
    /// is there with null.
    public var usageNull: Bool

    public init(id: String, created: Int, model: String, choices: [CompletionChoice], usage: Usage?, usageNull: Bool = false,
                object: String = "text_completion") {
        self.id = id; self.object = object; self.created = created; self.model = model; self.choices = choices
        self.usage = usage; self.usageNull = usageNull
    }

    /// A stream chunk with one choice of `text`; `finishReason` only on the last one. `includeUsageNull`: the
    /// request asked for `include_usage`, so the chunk carries `"usage": null`.
    public static func chunk(id: String, created: Int, model: String, text: String, finishReason: FinishReason? = nil,
                             includeUsageNull: Bool) -> CompletionResponse {
        CompletionResponse(id: id, created: created, model: model, choices: [CompletionChoice(text: text, finishReason: finishReason)],
                           usage: nil, usageNull: includeUsageNull)
    }

    /// The last chunk of a stream with `include_usage`: `"choices": []` and the usage.
    public static func usageChunk(id: String, created: Int, model: String, usage: Usage) -> CompletionResponse {
        CompletionResponse(id: id, created: created, model: model, choices: [], usage: usage)
    }

    enum CodingKeys: String, CodingKey { case id, object, created, model, choices, usage }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        object = try c.decode(String.self, forKey: .object)
        created = try c.decode(Int.self, forKey: .created)
        model = try c.decode(String.self, forKey: .model)
        choices = try c.decode([CompletionChoice].self, forKey: .choices)
        usage = try c.decodeIfPresent(Usage.self, forKey: .usage)
        usageNull = usage == nil && c.contains(.usage)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(object, forKey: .object)
        try c.encode(created, forKey: .created)
        try c.encode(model, forKey: .model)
        try c.encode(choices, forKey: .choices)
        try encodeUsage(usage, null: usageNull, into: &c, forKey: .usage)
    }
}

/// `usage` when there is one, else `null` when asked, else nothing.
private func encodeUsage<K: CodingKey>(_ usage: Usage?, null: Bool, into c: inout KeyedEncodingContainer<K>, forKey key: K) throws {
    if let usage { try c.encode(usage, forKey: key) } else if null { try c.encodeNil(forKey: key) }
}

// MARK: - /v1/chat/completions

/// One choice of a whole chat answer: `{"finish_reason": "stop", "index": 0, "logprobs": null, "message":
/// {"content": "…", "role": "assistant"}}`.
public struct ChatChoice: Hashable, Sendable, Codable {
    public var index: Int
    public var message: ChatMessage
    public var finishReason: FinishReason?

    public init(index: Int = 0, message: ChatMessage, finishReason: FinishReason?) {
        self.index = index; self.message = message; self.finishReason = finishReason
    }

    enum CodingKeys: String, CodingKey { case index, message, logprobs, finishReason = "finish_reason" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        index = try c.decode(Int.self, forKey: .index)
        message = try c.decode(ChatMessage.self, forKey: .message)
        finishReason = try c.decodeIfPresent(String.self, forKey: .finishReason)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(index, forKey: .index)
        try c.encode(message, forKey: .message)
        try c.encodeNil(forKey: .logprobs)
        try c.encode(finishReason, forKey: .finishReason)
    }
}

/// A whole chat answer, `"object": "chat.completion"`, always with its usage:
///
///     {"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":"…","role":"assistant"}}],
///      "created":1677652288,"id":"chatcmpl-…","model":"…","object":"chat.completion",
///      "usage":{"completion_tokens":12,"prompt_tokens":9,"total_tokens":21}}
public struct ChatCompletionResponse: Hashable, Sendable, ResponseBody {
    public var id: String
    public var object: String
    public var created: Int
    public var model: String
    public var choices: [ChatChoice]
    public var usage: Usage?

    public init(id: String, created: Int, model: String, choices: [ChatChoice], usage: Usage?, object: String = "chat.completion") {
        self.id = id; self.object = object; self.created = created; self.model = model; self.choices = choices; self.usage = usage
    }

    /// One assistant message with `content`.
    public init(id: String, created: Int, model: String, content: String, finishReason: FinishReason, usage: Usage) {
        self.init(id: id, created: created, model: model,
                  choices: [ChatChoice(message: ChatMessage(role: "assistant", content: content), finishReason: finishReason)], usage: usage)
    }
}

/// What a chat stream chunk adds: `{"role": "assistant", "content": ""}` on the first, `{"content": "…"}` on the
/// next, `{}` on the last (absent fields are left out, as OpenAI does).
public struct ChatDelta: Hashable, Sendable, Codable {
    public var role: String?
    public var content: String?
    public init(role: String? = nil, content: String? = nil) { self.role = role; self.content = content }
}

/// One choice of a chat stream chunk: `{"delta": {…}, "finish_reason": null, "index": 0, "logprobs": null}`.
public struct ChatChunkChoice: Hashable, Sendable, Codable {
    public var index: Int
    public var delta: ChatDelta
    public var finishReason: FinishReason?

    public init(index: Int = 0, delta: ChatDelta, finishReason: FinishReason?) {
        self.index = index; self.delta = delta; self.finishReason = finishReason
    }

    enum CodingKeys: String, CodingKey { case index, delta, logprobs, finishReason = "finish_reason" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        index = try c.decode(Int.self, forKey: .index)
        delta = try c.decode(ChatDelta.self, forKey: .delta)
        finishReason = try c.decodeIfPresent(String.self, forKey: .finishReason)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(index, forKey: .index)
        try c.encode(delta, forKey: .delta)
        try c.encodeNil(forKey: .logprobs)
        try c.encode(finishReason, forKey: .finishReason)
    }
}

/// One chunk of a chat stream, `"object": "chat.completion.chunk"`:
///
///     {"choices":[{"delta":{"content":"","role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],
///      "created":1694268190,"id":"chatcmpl-…","model":"…","object":"chat.completion.chunk"}
///
/// With `include_usage` every chunk also has `"usage": null`, and the last one is `"choices": []` with the usage.
public struct ChatCompletionChunk: Hashable, Sendable, ResponseBody {
    public var id: String
    public var object: String
    public var created: Int
    public var model: String
    public var choices: [ChatChunkChoice]
    public var usage: Usage?
    /// With `usage` nil: write `"usage": null` (true) or leave the key out (false).
    public var usageNull: Bool

    public init(id: String, created: Int, model: String, choices: [ChatChunkChoice], usage: Usage?, usageNull: Bool = false,
                object: String = "chat.completion.chunk") {
        self.id = id; self.object = object; self.created = created; self.model = model; self.choices = choices
        self.usage = usage; self.usageNull = usageNull
    }

    /// A chunk with one choice: the first has `role: "assistant"` and `content: ""`, the next the text, the last
    /// no role or content and the `finishReason`.
    public static func delta(id: String, created: Int, model: String, role: String? = nil, content: String?,
                             finishReason: FinishReason? = nil, includeUsageNull: Bool) -> ChatCompletionChunk {
        ChatCompletionChunk(id: id, created: created, model: model,
                            choices: [ChatChunkChoice(delta: ChatDelta(role: role, content: content), finishReason: finishReason)],
                            usage: nil, usageNull: includeUsageNull)
    }

    /// The last chunk of a stream with `include_usage`: `"choices": []` and the usage.
    public static func usageChunk(id: String, created: Int, model: String, usage: Usage) -> ChatCompletionChunk {
        ChatCompletionChunk(id: id, created: created, model: model, choices: [], usage: usage)
    }

    enum CodingKeys: String, CodingKey { case id, object, created, model, choices, usage }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        object = try c.decode(String.self, forKey: .object)
        created = try c.decode(Int.self, forKey: .created)
        model = try c.decode(String.self, forKey: .model)
        choices = try c.decode([ChatChunkChoice].self, forKey: .choices)
        usage = try c.decodeIfPresent(Usage.self, forKey: .usage)
        usageNull = usage == nil && c.contains(.usage)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(object, forKey: .object)
        try c.encode(created, forKey: .created)
        try c.encode(model, forKey: .model)
        try c.encode(choices, forKey: .choices)
        try encodeUsage(usage, null: usageNull, into: &c, forKey: .usage)
    }
}

// MARK: - /v1/models

/// `{"created": 1686935002, "id": "…", "object": "model", "owned_by": "headroom"}`.
public struct ModelCard: Hashable, Sendable, Codable {
    public var id: String
    public var object: String
    public var created: Int
    public var ownedBy: String

    public init(id: String, created: Int, ownedBy: String, object: String = "model") {
        self.id = id; self.object = object; self.created = created; self.ownedBy = ownedBy
    }

    enum CodingKeys: String, CodingKey { case id, object, created, ownedBy = "owned_by" }
}

/// The answer to `/v1/models`: `{"data": [ModelCard…], "object": "list"}`.
public struct ModelList: Hashable, Sendable, ResponseBody {
    public var object: String
    public var data: [ModelCard]
    public init(data: [ModelCard], object: String = "list") { self.object = object; self.data = data }
}
