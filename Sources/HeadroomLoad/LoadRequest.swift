// HeadroomLoad: an OpenAI-compatible endpoint measured under a load profile, request by request, on
// AsyncHTTPClient. These are its nouns: the endpoint, one request to send, and what was recorded about it.
import Foundation
import HeadroomCore

/// Which OpenAI API a run speaks.
public enum LoadAPI: String, Hashable, Sendable, CaseIterable {
    /// `POST /v1/completions` with `prompt` (token ids or text).
    case completions
    /// `POST /v1/chat/completions` with one user message (text prompts only).
    case chat

    public var path: String { self == .completions ? "/v1/completions" : "/v1/chat/completions" }
}

/// Where and how requests are sent.
public struct LoadEndpoint: Hashable, Sendable {
    /// The endpoint's name (`params.endpoint`): a scenario's `endpoints[].name`, or `host:port`.
    public var name: String
    /// The base URL, `http://host:port` or `https://…`, optionally with a path prefix; the API's path is appended
    /// (a trailing `/v1` of the base is dropped first, as clients of OpenAI's API commonly write it).
    public var url: String
    public var api: LoadAPI
    /// The model name sent in every request.
    public var model: String
    /// Sent as `Authorization: Bearer …` when set.
    public var apiKey: String?
    /// Send `ignore_eos: true`, so that every request generates exactly `max_tokens` (vLLM, llama.cpp's server,
    /// SGLang and `headroom serve` accept it; OpenAI's own API refuses unknown fields — turn it off there).
    public var ignoreEOS: Bool
    /// A request with no complete response this long after it was sent ends as a `timeout` error.
    public var requestTimeout: Duration
    /// How long opening a connection may take before the request is a `connect` error.
    public var connectTimeout: Duration

    public init(name: String, url: String, api: LoadAPI = .completions, model: String, apiKey: String? = nil,
                ignoreEOS: Bool = true, requestTimeout: Duration = .seconds(300), connectTimeout: Duration = .seconds(10)) {
        self.name = name; self.url = url; self.api = api; self.model = model; self.apiKey = apiKey
        self.ignoreEOS = ignoreEOS; self.requestTimeout = requestTimeout; self.connectTimeout = connectTimeout
    }

    /// The full URL requests are posted to.
    public var requestURL: String { Self.base(url) + api.path }

    /// `url` without trailing slashes and a trailing `/v1`: what the API's paths (`/v1/…`) are appended to.
    public static func base(_ url: String) -> String {
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        if base.hasSuffix("/v1") { base.removeLast(3) }
        return base
    }

    /// `host:port` of a URL (the default endpoint name); the URL itself when it has no host.
    public static func defaultName(url: String) -> String {
        guard let c = URLComponents(string: url), let host = c.host else { return url }
        let port = c.port ?? (c.scheme == "https" ? 443 : 80)
        return "\(host):\(port)"
    }
}

/// A prompt as it is sent.
public enum LoadPrompt: Hashable, Sendable {
    /// Token ids (completions API only): exactly this many prompt tokens.
    case tokenIDs([Int32])
    /// Text (of approximately `promptTokens` tokens when synthetic).
    case text(String)
}

/// One request to send: its prompt, the lengths it asks for.
public struct LoadRequestSpec: Hashable, Sendable {
    public var prompt: LoadPrompt
    /// The prompt length asked for (exact for token ids, approximate for synthetic text, 0 when unknown).
    public var promptTokens: Int
    /// `max_tokens`.
    public var outputTokens: Int
    public init(prompt: LoadPrompt, promptTokens: Int, outputTokens: Int) {
        self.prompt = prompt; self.promptTokens = promptTokens; self.outputTokens = outputTokens
    }
}

/// Why a request failed; the raw values are the contract's `errors_<kind>` names.
public enum LoadErrorKind: String, Hashable, Sendable, CaseIterable, Codable {
    /// The connection was refused, or the host unreachable, or connecting timed out.
    case connect
    /// No complete response within the request timeout (or still in flight at the end of the run's grace).
    case timeout
    /// The TLS handshake failed (including TLS spoken to a plain-HTTP port).
    case tls
    case http401 = "http_401"
    case http404 = "http_404"
    case http429 = "http_429"
    /// Any other 4xx.
    case http4xx = "http_4xx"
    case http5xx = "http_5xx"
    /// A 200 stream whose event is not JSON, or an SSE event past the parser's bound.
    case malformedStream = "malformed_stream"
    /// A 200 stream that ended (or whose connection closed) before `data: [DONE]`.
    case incompleteStream = "incomplete_stream"
    /// Anything else, including an error object sent inside a 200 stream and a status that is neither 2xx nor 4xx/5xx.
    case other

    /// The kind of an HTTP status other than 200.
    public static func forStatus(_ status: Int) -> LoadErrorKind {
        switch status {
        case 401: return .http401
        case 404: return .http404
        case 429: return .http429
        case 400..<500: return .http4xx
        case 500..<600: return .http5xx
        default: return .other
        }
    }
}

/// How a request's token counts were obtained.
public enum TokenCountSource: String, Hashable, Sendable, Codable {
    /// The server's `usage` (the last chunk, with `stream_options.include_usage`).
    case usage
    /// Counted from the stream: one output token per chunk carrying content; the prompt length as asked.
    case stream
}

/// What was recorded about one request. Times are seconds since the point's origin (its first due time).
public struct LoadRequestRecord: Hashable, Sendable {
    /// Position in the point's schedule (warm-up requests included), 0-based.
    public var index: Int
    /// A warm-up request: sent, but left out of samples and aggregates.
    public var warmup: Bool
    /// When it was due (the schedule's time; for a closed loop, when a slot became free).
    public var due: Double
    /// When the client started sending it.
    public var sent: Double
    /// When each chunk carrying content arrived (the first is the first token).
    public var chunkTimes: [Double]
    /// When the response ended: `[DONE]` read, the stream closed, or the failure noticed.
    public var end: Double
    public var promptTokens: Int
    public var outputTokens: Int
    public var tokenCounts: TokenCountSource
    /// The HTTP status; 0 when no response head arrived.
    public var status: Int
    /// Nil for a request that streamed to `[DONE]` with status 200.
    public var error: LoadErrorKind?
    public var errorText: String

    public init(index: Int, warmup: Bool, due: Double, sent: Double) {
        self.index = index; self.warmup = warmup; self.due = due; self.sent = sent
        chunkTimes = []; end = sent; promptTokens = 0; outputTokens = 0; tokenCounts = .stream; status = 0
        error = nil; errorText = ""
    }

    public var ok: Bool { error == nil }
    /// Actual send − due, in ms.
    public var scheduleLagMs: Double { (sent - due) * 1000 }
    /// Send → first content chunk, in ms (nil without one).
    public var ttftMs: Double? { chunkTimes.first.map { ($0 - sent) * 1000 } }
    /// Send → end, in ms.
    public var e2eMs: Double { (end - sent) * 1000 }
    /// The gaps between consecutive content chunks, in ms (ITL excludes the first token).
    public var itlMs: [Double] {
        guard chunkTimes.count > 1 else { return [] }
        return (1..<chunkTimes.count).map { (chunkTimes[$0] - chunkTimes[$0 - 1]) * 1000 }
    }
    /// (e2e − ttft) / (output tokens − 1), in ms; nil under 2 output tokens or without a first token.
    public var tpotMs: Double? {
        guard outputTokens >= 2, let t = ttftMs else { return nil }
        return (e2eMs - t) / Double(outputTokens - 1)
    }
}
