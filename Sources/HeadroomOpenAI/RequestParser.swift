// A completion request body read field by field: the prompt or the messages, the sampling fields, streaming,
// stops. A wrong field is answered with a 400 that names it; a field that would change the answer but is not
// implemented is refused, never ignored (UnsupportedFields.swift); any other unknown field is ignored.
import Foundation

public enum CompletionRequestParser {
    /// Roles a chat message may have.
    public static let roles: Set<String> = ["system", "user", "assistant", "tool", "developer"]

    /// The request in `body`, sent to `endpoint`.
    ///
    /// Throws only `APIError`: status 413 when the body is longer than `limits.maxBodyBytes`, else 400
    /// (`invalid_request_error`) with `param` the field at fault — nil when the body itself is not a JSON
    /// object (not UTF-8, not JSON, nested deeper than `limits.maxDepth`, a key given twice in one object).
    /// `null` counts as absent for every optional field. Integer fields take JSON integers only (`1.0`, `1e2` and
    /// `true` are refused), number fields take numbers only (`"1"` and `true` are refused).
    public static func parse(_ body: [UInt8], endpoint: CompletionEndpoint, limits: RequestLimits = RequestLimits()) throws -> CompletionRequest {
        guard body.count <= limits.maxBodyBytes else {
            throw APIError(status: 413, message: "the body is \(body.count) bytes; the limit is \(limits.maxBodyBytes)",
                           type: "invalid_request_error")
        }
        let root: JSONValue
        do { root = try JSONReader.read(body, maxDepth: limits.maxDepth) } catch let e as JSONSyntaxError {
            throw APIError.invalid("the body is not a JSON object: \(e.message)", param: nil)
        }
        guard case .object(let members) = root else {
            throw APIError.invalid("the body is not a JSON object: it is \(root.shortDescription)", param: nil)
        }
        let body = FieldReader(members, path: "")
        let prompt: PromptInput
        switch endpoint {
        case .completions: prompt = try completionPrompt(body, limits: limits)
        case .chatCompletions: prompt = .messages(try messages(body, limits: limits))
        }
        var request = CompletionRequest(endpoint: endpoint, model: try body.string("model"), prompt: prompt)
        request.maxTokens = try maxTokens(body, endpoint: endpoint)
        request.temperature = try body.number("temperature", expected: "a number from 0 to 2") { $0 >= 0 && $0 <= 2 } ?? 1
        request.topP = try body.number("top_p", expected: "a number greater than 0 and at most 1") { $0 > 0 && $0 <= 1 } ?? 1
        request.seed = try body.integer("seed", from: Int(Int64.min), to: Int(Int64.max)).map { UInt64(bitPattern: Int64($0)) }
        request.stream = try body.bool("stream") ?? false
        if let options = try body.object("stream_options") {
            guard request.stream else {
                throw APIError.invalid("stream_options: only allowed when stream is true", param: "stream_options")
            }
            request.includeUsage = try options.bool("include_usage") ?? false
        }
        request.stop = try stops(body, limits: limits)
        request.stopTokenIDs = try tokenIDs(body.value("stop_token_ids"), param: "stop_token_ids", maxCount: limits.maxStops,
                                            allowEmpty: true)
        request.ignoreEOS = try body.bool("ignore_eos") ?? false
        _ = try body.string("user")
        try UnsupportedFields.check(body)
        return request
    }

    // MARK: - The prompt

    /// `prompt`: a string, a list of token ids, or a list holding exactly one of those (OpenAI's batch forms).
    static func completionPrompt(_ body: FieldReader, limits: RequestLimits) throws -> PromptInput {
        guard let value = body.value("prompt") else {
            throw APIError.invalid("prompt: required on \(CompletionEndpoint.completions.rawValue): a string or an array of token ids", param: "prompt")
        }
        if case .array(let items) = value, let first = items.first, !first.isNumber {
            guard items.count == 1 else {
                throw APIError.invalid("prompt: only one prompt per request is supported, got an array of \(items.count)", param: "prompt")
            }
            return try singlePrompt(first, param: "prompt[0]", limits: limits)
        }
        return try singlePrompt(value, param: "prompt", limits: limits)
    }

    private static func singlePrompt(_ value: JSONValue, param: String, limits: RequestLimits) throws -> PromptInput {
        switch value {
        case .string(let text):
            if text.isEmpty { throw APIError.invalid("\(param): the prompt is empty", param: param) }
            try checkLength(text.unicodeScalars.count, param: param, limits: limits, unit: "characters")
            return .text(text)
        case .array(let items):
            if items.isEmpty { throw APIError.invalid("\(param): the prompt is empty", param: param) }
            try checkLength(items.count, param: param, limits: limits, unit: "token ids")
            return .tokens(try tokenIDs(value, param: param, maxCount: limits.maxPromptLength, allowEmpty: false))
        default:
            throw FieldReader.wrong(param, expected: "a string or an array of token ids", got: value)
        }
    }

    private static func checkLength(_ length: Int, param: String, limits: RequestLimits, unit: String) throws {
        guard length <= limits.maxPromptLength else {
            throw APIError.invalid("\(param): the prompt is \(length) \(unit); the limit is \(limits.maxPromptLength)", param: param)
        }
    }

    /// Token ids: integers from 0 to 2^31 - 1.
    static func tokenIDs(_ value: JSONValue?, param: String, maxCount: Int, allowEmpty: Bool) throws -> [Int32] {
        guard let value else { return [] }
        guard case .array(let items) = value, allowEmpty || !items.isEmpty else {
            throw FieldReader.wrong(param, expected: "an array of token ids", got: value)
        }
        guard items.count <= maxCount else {
            throw APIError.invalid("\(param): at most \(maxCount) token ids, got \(items.count)", param: param)
        }
        var ids: [Int32] = []
        ids.reserveCapacity(items.count)
        for (k, item) in items.enumerated() {
            let id = try FieldReader.integer(item, from: 0, to: Int(Int32.max), param: "\(param)[\(k)]",
                                             expected: "a token id (an integer from 0 to \(Int32.max))")
            ids.append(Int32(id))
        }
        return ids
    }

    /// `messages`: a non-empty list of `{"role", "content"}`; content is a string or a list of text parts, joined
    /// with "\n" as vLLM joins them.
    static func messages(_ body: FieldReader, limits: RequestLimits) throws -> [ChatMessage] {
        guard let value = body.value("messages") else {
            throw APIError.invalid("messages: required on \(CompletionEndpoint.chatCompletions.rawValue): an array of {\"role\", \"content\"}",
                                   param: "messages")
        }
        guard case .array(let items) = value, !items.isEmpty else {
            throw FieldReader.wrong("messages", expected: "a non-empty array of messages", got: value)
        }
        guard items.count <= limits.maxMessages else {
            throw APIError.invalid("messages: at most \(limits.maxMessages) messages, got \(items.count)", param: "messages")
        }
        var messages: [ChatMessage] = []
        var length = 0
        for (i, item) in items.enumerated() {
            guard case .object(let members) = item else {
                throw FieldReader.wrong("messages[\(i)]", expected: "an object with \"role\" and \"content\"", got: item)
            }
            let m = FieldReader(members, path: "messages[\(i)]")
            guard let role = try m.string("role") else {
                throw APIError.invalid("\(m.param("role")): required, one of \(roles.sorted().joined(separator: ", "))", param: m.param("role"))
            }
            guard roles.contains(role) else {
                throw FieldReader.wrong(m.param("role"), expected: "one of \(roles.sorted().joined(separator: ", "))", got: .string(role))
            }
            let content = try messageContent(m)
            if case .array(let calls) = m.value("tool_calls") ?? .array([]), !calls.isEmpty {
                throw APIError.invalid("\(m.param("tool_calls")): tool calls are not supported", param: m.param("tool_calls"))
            }
            length += content.unicodeScalars.count
            if length > limits.maxPromptLength {
                throw APIError.invalid("messages: the messages' contents are more than \(limits.maxPromptLength) characters together",
                                       param: "messages")
            }
            messages.append(ChatMessage(role: role, content: content))
        }
        return messages
    }

    private static func messageContent(_ m: FieldReader) throws -> String {
        let param = m.param("content")
        let expected = "a string or a non-empty array of text parts"
        switch m.members["content"] ?? .null {
        case .string(let s):
            return s
        case .array(let parts) where !parts.isEmpty:
            var texts: [String] = []
            for (j, part) in parts.enumerated() {
                guard case .object(let members) = part else {
                    throw FieldReader.wrong("\(param)[\(j)]", expected: "a part {\"type\": \"text\", \"text\": …}", got: part)
                }
                let p = FieldReader(members, path: "\(param)[\(j)]")
                let type = try p.string("type")
                guard type == "text" else {
                    throw APIError.invalid("\(p.param("type")): only \"text\" parts are supported, got \(type.map { JSONValue.string($0).shortDescription } ?? "none")",
                                           param: p.param("type"))
                }
                guard let text = try p.string("text") else {
                    throw APIError.invalid("\(p.param("text")): required in a text part", param: p.param("text"))
                }
                texts.append(text)
            }
            return texts.joined(separator: "\n")
        case let other:
            throw FieldReader.wrong(param, expected: expected, got: other)
        }
    }

    // MARK: - Sampling and stopping

    /// `max_tokens`, or on chat `max_completion_tokens`, which must agree with it when both are given.
    static func maxTokens(_ body: FieldReader, endpoint: CompletionEndpoint) throws -> Int? {
        let maxTokens = try body.integer("max_tokens", from: 1)
        guard endpoint == .chatCompletions, let completion = try body.integer("max_completion_tokens", from: 1) else { return maxTokens }
        if let maxTokens, maxTokens != completion {
            throw APIError.invalid("max_completion_tokens: \(completion) disagrees with max_tokens \(maxTokens); send one of them",
                                   param: "max_completion_tokens")
        }
        return completion
    }

    /// `stop`: a string or a list of at most `maxStops` strings, none empty.
    static func stops(_ body: FieldReader, limits: RequestLimits) throws -> [String] {
        guard let value = body.value("stop") else { return [] }
        let items: [(JSONValue, String)]
        switch value {
        case .string: items = [(value, "stop")]
        case .array(let a):
            guard a.count <= limits.maxStops else {
                throw APIError.invalid("stop: at most \(limits.maxStops) stop strings, got \(a.count)", param: "stop")
            }
            items = a.enumerated().map { ($1, "stop[\($0)]") }
        default: throw FieldReader.wrong("stop", expected: "a string or an array of strings", got: value)
        }
        return try items.map { item, param in
            guard case .string(let s) = item, !s.isEmpty else { throw FieldReader.wrong(param, expected: "a non-empty string", got: item) }
            return s
        }
    }
}
