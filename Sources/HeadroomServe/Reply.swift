// One response's wire form: the chunks of a stream and the whole answer, for either endpoint, in
// HeadroomOpenAI's types (which fix OpenAI's shape: nulls where OpenAI writes them, keys sorted).
import Foundation
import HeadroomOpenAI

struct Reply: Sendable {
    let endpoint: CompletionEndpoint
    let model: String
    let created: Int
    let promptTokens: Int
    let includeUsage: Bool
    let id: String

    init(endpoint: CompletionEndpoint, model: String, created: Int, promptTokens: Int, includeUsage: Bool) {
        self.endpoint = endpoint; self.model = model; self.created = created; self.promptTokens = promptTokens
        self.includeUsage = includeUsage
        let random = (0..<12).map { _ in String(UInt8.random(in: 0...15), radix: 16) }.joined()
        id = (endpoint == .chatCompletions ? "chatcmpl-" : "cmpl-") + random
    }

    /// A chat stream opens with the assistant's role and empty content.
    func roleChunk() -> Data {
        ServerSentEvents.frame(ChatCompletionChunk.delta(id: id, created: created, model: model, role: "assistant", content: "",
                                                         includeUsageNull: includeUsage).jsonData())
    }

    func textChunk(_ text: String) -> Data {
        switch endpoint {
        case .completions:
            return ServerSentEvents.frame(CompletionResponse.chunk(id: id, created: created, model: model, text: text,
                                                                   includeUsageNull: includeUsage).jsonData())
        case .chatCompletions:
            return ServerSentEvents.frame(ChatCompletionChunk.delta(id: id, created: created, model: model, content: text,
                                                                    includeUsageNull: includeUsage).jsonData())
        }
    }

    func finishChunk(_ reason: FinishReason) -> Data {
        switch endpoint {
        case .completions:
            return ServerSentEvents.frame(CompletionResponse.chunk(id: id, created: created, model: model, text: "", finishReason: reason,
                                                                   includeUsageNull: includeUsage).jsonData())
        case .chatCompletions:
            return ServerSentEvents.frame(ChatCompletionChunk.delta(id: id, created: created, model: model, content: nil,
                                                                    finishReason: reason, includeUsageNull: includeUsage).jsonData())
        }
    }

    func usageChunk(completionTokens: Int) -> Data {
        let usage = Usage(promptTokens: promptTokens, completionTokens: completionTokens)
        switch endpoint {
        case .completions:
            return ServerSentEvents.frame(CompletionResponse.usageChunk(id: id, created: created, model: model, usage: usage).jsonData())
        case .chatCompletions:
            return ServerSentEvents.frame(ChatCompletionChunk.usageChunk(id: id, created: created, model: model, usage: usage).jsonData())
        }
    }

    func whole(text: String, finishReason: FinishReason, completionTokens: Int) -> Data {
        let usage = Usage(promptTokens: promptTokens, completionTokens: completionTokens)
        switch endpoint {
        case .completions:
            return CompletionResponse(id: id, created: created, model: model,
                                      choices: [CompletionChoice(text: text, finishReason: finishReason)], usage: usage).jsonData()
        case .chatCompletions:
            return ChatCompletionResponse(id: id, created: created, model: model, content: text, finishReason: finishReason,
                                          usage: usage).jsonData()
        }
    }

    /// OpenAI's finish reason for how the engine ended a request; nil when it ended in an error.
    static func finishReason(_ cause: FinishCause, stopped: Bool) -> FinishReason? {
        if stopped { return "stop" }
        switch cause {
        case .stopped(.maxTokens): return "length"
        case .stopped: return "stop"
        case .cancelled, .stopString: return "stop"
        case .timedOut, .shutdown, .failed: return nil
        }
    }

    /// The error a request that ended badly answers with (whole), or sends as its last event (streamed).
    static func failure(_ cause: FinishCause) -> APIError {
        switch cause {
        case .timedOut:
            return APIError(status: 504, message: "the request did not finish within the server's --request-timeout", type: "timeout_error", code: "timeout")
        case .shutdown:
            return APIError(status: 503, message: "the server shut down before the request finished", type: "server_error", code: "shutting_down")
        case .failed(let why):
            return APIError(status: 500, message: "the model failed on this request: \(why)", type: "server_error")
        case .stopped, .cancelled, .stopString:
            return APIError(status: 500, message: "the request was cancelled", type: "server_error")
        }
    }
}
