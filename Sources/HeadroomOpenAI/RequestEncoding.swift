// What a client sends: a `CompletionRequest` written as the JSON body of its endpoint, so that
// `CompletionRequestParser.parse(jsonBody(r), endpoint: r.endpoint) == r` for every request the parser returns.
import Foundation

extension CompletionRequest {
    /// The body a client sends for this request, keys in a fixed order:
    /// `model`, `prompt` (a string or token ids) or `messages` (`[{"role", "content"}]`), `max_tokens`,
    /// `temperature`, `top_p`, `seed`, `stream`, `stream_options` `{"include_usage": true}`, `stop`,
    /// `stop_token_ids`, `ignore_eos`. `temperature` and `top_p` are always written (a server's default may not
    /// be OpenAI's 1); the others only when set. `seed` is written as the signed 64-bit integer with its bit
    /// pattern, the range OpenAI and vLLM accept, and the parser maps it back. `stream_options` is written only
    /// with `stream` (OpenAI refuses it alone), so `includeUsage` without `stream` does not survive the trip.
    /// A prompt that does not match the endpoint (messages on /v1/completions) is written under the key its
    /// form has; the server refuses it. Values are written as they are, in range or not: the server checks them
    /// (a non-finite number is written as a string, which it refuses naming the field).
    public func jsonBody() -> Data {
        var w = JSONWriter()
        w.beginObject()
        if let model { w.key("model"); w.string(model) }
        switch prompt {
        case .text(let text): w.key("prompt"); w.string(text)
        case .tokens(let ids): w.key("prompt"); w.integers(ids.map(Int64.init))
        case .messages(let messages):
            w.key("messages")
            w.beginArray()
            for m in messages {
                w.beginObject()
                w.key("role"); w.string(m.role)
                w.key("content"); w.string(m.content)
                w.endObject()
            }
            w.endArray()
        }
        if let maxTokens { w.key("max_tokens"); w.integer(Int64(maxTokens)) }
        w.key("temperature"); w.number(temperature)
        w.key("top_p"); w.number(topP)
        if let seed { w.key("seed"); w.integer(Int64(bitPattern: seed)) }
        if stream {
            w.key("stream"); w.bool(true)
            if includeUsage {
                w.key("stream_options"); w.beginObject(); w.key("include_usage"); w.bool(true); w.endObject()
            }
        }
        if !stop.isEmpty {
            w.key("stop")
            w.beginArray()
            for s in stop { w.string(s) }
            w.endArray()
        }
        if !stopTokenIDs.isEmpty { w.key("stop_token_ids"); w.integers(stopTokenIDs.map(Int64.init)) }
        if ignoreEOS { w.key("ignore_eos"); w.bool(true) }
        w.endObject()
        return Data(w.bytes)
    }
}

/// Compact JSON, written in order. Commas are placed by the writer; strings escape `"`, `\` and control
/// characters and keep all other characters as UTF-8.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    /// Whether the next value in the open array or object needs a comma before it.
    private var needsComma = false

    private mutating func separate() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
        needsComma = true
    }

    mutating func beginObject() { separate(); bytes.append(UInt8(ascii: "{")); needsComma = false }
    mutating func endObject() { bytes.append(UInt8(ascii: "}")); needsComma = true }
    mutating func beginArray() { separate(); bytes.append(UInt8(ascii: "[")); needsComma = false }
    mutating func endArray() { bytes.append(UInt8(ascii: "]")); needsComma = true }

    /// A key; the value written next needs no comma.
    mutating func key(_ k: String) { string(k); bytes.append(UInt8(ascii: ":")); needsComma = false }

    mutating func bool(_ b: Bool) { separate(); bytes.append(contentsOf: Array((b ? "true" : "false").utf8)) }
    mutating func integer(_ n: Int64) { separate(); bytes.append(contentsOf: Array(String(n).utf8)) }

    mutating func integers(_ ns: [Int64]) {
        beginArray()
        for n in ns { integer(n) }
        endArray()
    }

    /// The shortest text that reads back as the same Double (Swift's `description`, which is valid JSON for
    /// finite values: `0.7`, `1e-05`, `1e+16`).
    mutating func number(_ d: Double) {
        guard d.isFinite else { string(d.description); return }
        separate()
        bytes.append(contentsOf: Array(d.description.utf8))
    }

    mutating func string(_ s: String) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case ..<0x20: bytes.append(contentsOf: Array(String(format: "\\u%04x", b).utf8))
            default: bytes.append(b)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
