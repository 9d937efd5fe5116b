// The model a server answers for, and how a parsed request becomes the engine's tokens and parameters:
// the tokenizer and chat template when the model has them, the context and vocabulary checks that make a
// bad request a 400 naming its field rather than an engine error.
import HeadroomEngine
import HeadroomOpenAI

/// The model behind the server: what `/v1/models` lists and what requests are checked against.
public struct ServedModel: Sendable {
    /// The id clients send as `model` (the catalog name or the file's name).
    public var id: String
    public var vocabularySize: Int
    public var context: Int
    /// The file's tokenizer; nil for synthetic weights, which take token ids only.
    public var tokenizer: Tokenizer?
    /// The file's chat template, when it has one Headroom knows; `chatTemplateError` says why not.
    public var chatTemplate: ChatTemplate?
    public var chatTemplateError: String?
    /// Unix seconds the server started (OpenAI's `created`).
    public var created: Int

    public init(id: String, vocabularySize: Int, context: Int, tokenizer: Tokenizer? = nil, chatTemplate: ChatTemplate? = nil,
                chatTemplateError: String? = nil, created: Int) {
        self.id = id; self.vocabularySize = vocabularySize; self.context = context; self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate; self.chatTemplateError = chatTemplateError; self.created = created
    }

    /// A token's bytes: the tokenizer's piece, or `<tok_N>` for synthetic weights (the placeholder vocabulary
    /// `headroom model export` writes), so every token is visible in the text.
    public func piece(_ token: Int32) -> [UInt8] {
        if let tokenizer { return tokenizer.piece(for: token, renderSpecial: false) }
        return Array("<tok_\(token)>".utf8)
    }

    /// Tokens that end generation unless the request says `ignore_eos`.
    public var endOfGeneration: Set<Int32> { tokenizer?.endOfGeneration ?? [] }
}

/// A request ready for the engine.
struct PreparedRequest {
    var prompt: [Int32]
    var parameters: GenerationParameters
    var stops: [String]
}

extension ServedModel {
    /// Tokens, parameters and stop strings of `request`, or a 400 naming the field. `kvPoolTokens`, the tokens
    /// the server's whole KV pool holds, bounds a request as the context does: the engine refuses one whose
    /// prompt and `max_tokens` could never fit, so that is a 400 naming the field, and without `max_tokens`
    /// a request generates at most what the pool holds.
    func prepare(_ request: CompletionRequest, kvPoolTokens: Int? = nil) throws -> PreparedRequest {
        let prompt: [Int32]
        switch request.prompt {
        case .tokens(let ids):
            if let bad = ids.firstIndex(where: { Int($0) >= vocabularySize }) {
                throw APIError.invalid("prompt[\(bad)]: token id \(ids[bad]) is outside the vocabulary 0..<\(vocabularySize) of \(id)", param: "prompt")
            }
            prompt = ids
        case .text(let text):
            guard let tokenizer else {
                throw APIError.invalid("model \(id) has no tokenizer (synthetic weights): send the prompt as an array of token ids", param: "prompt")
            }
            prompt = tokenizer.encode(text, addSpecial: true, parseSpecial: false)
        case .messages(let messages):
            guard let tokenizer else {
                throw APIError.invalid("model \(id) has no tokenizer (synthetic weights), so it cannot chat: use /v1/completions with token ids", param: "messages")
            }
            guard let template = chatTemplate else {
                throw APIError.invalid("model \(id) cannot chat: \(chatTemplateError ?? "its file has no chat template")", param: "messages")
            }
            let text = template.render(messages: messages.map { (role: $0.role, content: $0.content) }, addGenerationPrompt: true)
            prompt = tokenizer.encode(text, addSpecial: true, parseSpecial: true)
        }
        let param = request.endpoint == .chatCompletions ? "messages" : "prompt"
        guard !prompt.isEmpty else { throw APIError.invalid("the prompt encodes to no tokens", param: param) }
        guard prompt.count < context else {
            throw APIError.invalid("the prompt's \(prompt.count) tokens leave no room to generate in the context of \(context) tokens", param: param)
        }
        // The engine keeps prompt + max_tokens - 1 tokens of KV at a request's longest (the last token is not cached).
        if let pool = kvPoolTokens, prompt.count > pool {
            throw APIError.invalid("the prompt's \(prompt.count) tokens do not fit the server's KV pool of \(pool) tokens", param: param)
        }
        let room = context - prompt.count
        let poolRoom = kvPoolTokens.map { $0 - prompt.count + 1 } ?? .max
        let maxTokens: Int
        if let asked = request.maxTokens {
            guard asked <= room else {
                throw APIError.invalid("max_tokens \(asked) and the prompt's \(prompt.count) tokens exceed the context of \(context) tokens (at most \(room))", param: "max_tokens")
            }
            if asked > poolRoom, let pool = kvPoolTokens {
                throw APIError.invalid("max_tokens \(asked) and the prompt's \(prompt.count) tokens need more KV than the server's pool of \(pool) tokens holds (at most \(poolRoom))", param: "max_tokens")
            }
            maxTokens = asked
        } else {
            maxTokens = min(room, poolRoom)
        }
        if let bad = request.stopTokenIDs.first(where: { Int($0) >= vocabularySize }) {
            throw APIError.invalid("token id \(bad) is outside the vocabulary 0..<\(vocabularySize) of \(id)", param: "stop_token_ids")
        }
        var stopIDs = Set(request.stopTokenIDs)
        if !request.ignoreEOS { stopIDs.formUnion(endOfGeneration) }
        let seed = request.seed ?? UInt64.random(in: 0...UInt64.max)
        let parameters = GenerationParameters(maxTokens: maxTokens, temperature: Float(request.temperature), topP: Float(request.topP),
                                              seed: seed, stopTokenIDs: stopIDs, ignoreEOS: request.ignoreEOS)
        return PreparedRequest(prompt: prompt, parameters: parameters, stops: request.stop)
    }
}

/// Tokens to text for a response: whole UTF-8 characters only, and text held back while it could still
/// become one of the request's stop strings (which end the text and are not part of it).
struct TextAssembler {
    private let model: ServedModel
    private let stops: [[UInt8]]
    private var utf8 = UTF8Stream()
    private var held: [UInt8] = []
    /// Whether a stop string matched; nothing more comes after.
    private(set) var stopped = false

    init(model: ServedModel, stops: [String]) {
        self.model = model
        self.stops = stops.map { Array($0.utf8) }.filter { !$0.isEmpty }
    }

    /// The text that can be sent after `token`.
    mutating func add(_ token: Int32) -> String {
        guard !stopped else { return "" }
        held += Array(utf8.append(model.piece(token)).utf8)
        return release(final: false)
    }

    /// What is left once the request has finished.
    mutating func finish() -> String {
        guard !stopped else { return "" }
        held += Array(utf8.flush().utf8)
        return release(final: true)
    }

    private mutating func release(final: Bool) -> String {
        if stops.isEmpty {
            defer { held = [] }
            return String(decoding: held, as: UTF8.self)
        }
        // The earliest stop string in the held text ends it.
        var cut: Int?
        for stop in stops {
            if let at = Self.find(stop, in: held), cut.map({ at < $0 }) ?? true { cut = at }
        }
        if let cut {
            stopped = true
            defer { held = [] }
            return String(decoding: held[..<cut], as: UTF8.self)
        }
        if final {
            defer { held = [] }
            return String(decoding: held, as: UTF8.self)
        }
        // Keep the longest tail that is the start of a stop string; the rest can go.
        var keep = 0
        for stop in stops {
            var n = min(stop.count - 1, held.count)
            while n > keep {
                if held[(held.count - n)...].elementsEqual(stop[..<n]) { keep = n; break }
                n -= 1
            }
        }
        // Never split a UTF-8 character: back the cut up to a lead byte.
        var end = held.count - keep
        while end > 0 && end < held.count && held[end] & 0xC0 == 0x80 { end -= 1 }
        defer { held.removeFirst(end) }
        return String(decoding: held[..<end], as: UTF8.self)
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
        }
        return nil
    }
}
