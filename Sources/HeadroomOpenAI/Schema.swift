// HeadroomOpenAI: OpenAI's completion API as Headroom speaks it — what a client may send to
// `/v1/completions` and `/v1/chat/completions` (parsed and checked field by field, so a 400 names the
// field), and what a server answers, whole or streamed as server-sent events. `headroom serve` encodes
// these; the tests and `headroom load` decode them. Foundation only.
import Foundation

/// The endpoint a body was sent to: it decides which fields are required (`prompt` or `messages`).
public enum CompletionEndpoint: String, Hashable, Sendable {
    case completions = "/v1/completions"
    case chatCompletions = "/v1/chat/completions"
}

/// One message of a chat request; `content` is the text (a list of text parts is joined).
public struct ChatMessage: Hashable, Sendable, Codable {
    public var role: String
    public var content: String
    public init(role: String, content: String) { self.role = role; self.content = content }
}

/// What the model is asked to continue.
public enum PromptInput: Hashable, Sendable {
    /// Token ids (an array of integers, as OpenAI and vLLM accept); each is at least 0 and below 2^31.
    case tokens([Int32])
    /// Text, for the model's tokenizer.
    case text(String)
    /// Chat messages, for the model's chat template.
    case messages([ChatMessage])
}

/// A completion request after parsing: every field checked for type and range. Fields the server does
/// not use are ignored when their type is right (OpenAI's `user`, `frequency_penalty` 0, …).
public struct CompletionRequest: Hashable, Sendable {
    public var endpoint: CompletionEndpoint
    /// `model`: the id asked for; nil when absent.
    public var model: String?
    public var prompt: PromptInput
    /// `max_tokens` (or, for chat, `max_completion_tokens`); nil: up to the context.
    public var maxTokens: Int?
    /// `temperature`, 0...2 (OpenAI's range); default 1.
    public var temperature: Double
    /// `top_p`, (0, 1]; default 1.
    public var topP: Double
    /// `seed`; nil: the server picks one. Sent as a signed 64-bit integer (OpenAI's and vLLM's range) and kept as
    /// its bit pattern: -1 is `UInt64.max`.
    public var seed: UInt64?
    /// `stream`; default false.
    public var stream: Bool
    /// `stream_options.include_usage`: a last chunk with the usage and no choices.
    public var includeUsage: Bool
    /// `stop`: a string or a list of strings that end the text when generated (not included in it).
    public var stop: [String]
    /// `stop_token_ids` (vLLM's extension): token ids that end the request when sampled.
    public var stopTokenIDs: [Int32]
    /// `ignore_eos` (vLLM's extension): generate past the end-of-sequence token, for benchmarks.
    public var ignoreEOS: Bool

    public init(endpoint: CompletionEndpoint, model: String? = nil, prompt: PromptInput, maxTokens: Int? = nil,
                temperature: Double = 1, topP: Double = 1, seed: UInt64? = nil, stream: Bool = false,
                includeUsage: Bool = false, stop: [String] = [], stopTokenIDs: [Int32] = [], ignoreEOS: Bool = false) {
        self.endpoint = endpoint; self.model = model; self.prompt = prompt; self.maxTokens = maxTokens
        self.temperature = temperature; self.topP = topP; self.seed = seed; self.stream = stream
        self.includeUsage = includeUsage; self.stop = stop; self.stopTokenIDs = stopTokenIDs; self.ignoreEOS = ignoreEOS
    }
}

/// Bounds a request body must keep, so no body can make the server allocate or recurse without limit.
public struct RequestLimits: Hashable, Sendable {
    /// Bytes of the body (the server refuses a longer one with 413 before parsing).
    public var maxBodyBytes: Int
    /// Nesting of JSON arrays and objects.
    public var maxDepth: Int
    /// Token ids in `prompt`, characters (Unicode scalars) in a text prompt (all messages' contents together for chat).
    public var maxPromptLength: Int
    /// Entries of `stop` and of `stop_token_ids`.
    public var maxStops: Int
    /// Chat messages.
    public var maxMessages: Int

    public init(maxBodyBytes: Int = 4 << 20, maxDepth: Int = 32, maxPromptLength: Int = 1 << 20, maxStops: Int = 16,
                maxMessages: Int = 1024) {
        self.maxBodyBytes = maxBodyBytes; self.maxDepth = maxDepth; self.maxPromptLength = maxPromptLength
        self.maxStops = maxStops; self.maxMessages = maxMessages
    }
}

/// An answer in OpenAI's error schema: `{"error": {"message", "type", "param", "code"}}` with an HTTP status.
public struct APIError: Error, Hashable, Sendable, CustomStringConvertible {
    public var status: Int
    public var message: String
    /// OpenAI's `type`: "invalid_request_error", "authentication_error", "rate_limit_error", "server_error", …
    public var type: String
    /// The request field at fault (`max_tokens`, `messages[2].content`), when one is.
    public var param: String?
    public var code: String?

    public init(status: Int, message: String, type: String, param: String? = nil, code: String? = nil) {
        self.status = status; self.message = message; self.type = type; self.param = param; self.code = code
    }

    /// A 400 naming the field.
    public static func invalid(_ message: String, param: String?) -> APIError {
        APIError(status: 400, message: message, type: "invalid_request_error", param: param)
    }

    public var description: String { "\(status) \(type): \(message)" }
}

/// Why a choice stopped, as OpenAI names it: "stop" (an end-of-sequence token, a stop token or string),
/// "length" (`max_tokens` or the context), or "abort" (cancelled by the server: timeout, shutdown).
public typealias FinishReason = String

/// Token counts of a request.
public struct Usage: Hashable, Sendable, Codable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int
    public init(promptTokens: Int, completionTokens: Int) {
        self.promptTokens = promptTokens; self.completionTokens = completionTokens; totalTokens = promptTokens + completionTokens
    }
    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens"
    }
}
