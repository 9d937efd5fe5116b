// The request client: one streamed completion per call on AsyncHTTPClient, timed chunk by chunk. Every failure
// comes back as a value in the record (a kind from the contract and its text); nothing throws, nothing waits
// past the request's deadline.
import AsyncHTTPClient
import Foundation
import HeadroomCore
import HeadroomOpenAI
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// Sends streamed requests to one endpoint. Create one per run and `shutdown()` it at the end.
public final class LoadClient: Sendable {
    public let endpoint: LoadEndpoint
    let http: HTTPClient

    /// `maxConnections`: the connection pool's limit per host (open loop needs one per request in flight).
    public init(endpoint: LoadEndpoint, maxConnections: Int = 4096) {
        self.endpoint = endpoint
        var configuration = HTTPClient.Configuration(
            timeout: .init(connect: .nanoseconds(Int64(Self.seconds(endpoint.connectTimeout) * 1e9)), read: nil),
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: maxConnections))
        // A refused connection fails its request at once (and is counted), instead of the pool retrying until the
        // connect timeout: a load generator must see the failure the server's client would.
        configuration.connectionPool.retryConnectionEstablishment = false
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func shutdown() async { try? await http.shutdown() }

    /// The body of `spec` for this endpoint: `model`, the prompt (token ids or text; one user message for chat),
    /// `max_tokens`, `temperature` 0, `stream: true`, `stream_options: {include_usage: true}`, and `ignore_eos`
    /// when the endpoint sends it. Token ids on the chat API are refused by the caller, not here.
    public func body(_ spec: LoadRequestSpec) -> Data {
        let prompt: PromptInput
        switch (endpoint.api, spec.prompt) {
        case (.completions, .tokenIDs(let ids)): prompt = .tokens(ids)
        case (.completions, .text(let t)): prompt = .text(t)
        case (.chat, .text(let t)): prompt = .messages([ChatMessage(role: "user", content: t)])
        case (.chat, .tokenIDs(let ids)): prompt = .messages([ChatMessage(role: "user", content: ids.map(String.init).joined(separator: " "))])
        }
        return CompletionRequest(endpoint: endpoint.api == .chat ? .chatCompletions : .completions, model: endpoint.model,
                                 prompt: prompt, maxTokens: spec.outputTokens, temperature: 0, stream: true,
                                 includeUsage: true, ignoreEOS: endpoint.ignoreEOS).jsonBody()
    }

    /// Sends `spec` now and reads the stream to its end (the record's `sent` is taken just before the request
    /// is handed to AsyncHTTPClient). `origin` is the instant times are measured from;
    /// `due` (seconds since origin) is when it was due. It ends as `timeout` at `deadline` when given, else
    /// `requestTimeout` after sending, whichever is earlier; `deadlineText` says why in that case.
    public func send(_ spec: LoadRequestSpec, index: Int, warmup: Bool, due: Double, origin: ContinuousClock.Instant,
                     deadline: ContinuousClock.Instant? = nil, deadlineText: String? = nil) async -> LoadRequestRecord {
        let sentAt = ContinuousClock.now
        var record = LoadRequestRecord(index: index, warmup: warmup, due: due, sent: Self.seconds(origin.duration(to: sentAt)))
        record.promptTokens = spec.promptTokens
        let ownDeadline = sentAt + endpoint.requestTimeout
        let end = deadline.map { min($0, ownDeadline) } ?? ownDeadline
        let timeoutText = deadline.map { $0 < ownDeadline } == true && deadlineText != nil
            ? deadlineText! : "no complete response within \(Self.format(endpoint.requestTimeout))"
        var request = HTTPClientRequest(url: endpoint.requestURL)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "accept", value: "text/event-stream")
        if let key = endpoint.apiKey { request.headers.add(name: "authorization", value: "Bearer \(key)") }
        request.body = .bytes(ByteBuffer(data: body(spec)))
        let started = record
        let http = self.http
        let api = endpoint.api
        // The request races a timer; the loser is cancelled. AsyncHTTPClient also gets the deadline (plus a
        // second) so that a request that ignored cancellation still ends.
        return await withTaskGroup(of: LoadRequestRecord?.self) { group in
            group.addTask {
                await Self.stream(request, http: http, api: api, record: started, origin: origin,
                                  nioDeadline: .now() + .nanoseconds(Int64(Self.seconds(sentAt.duration(to: end)) * 1e9) + 1_000_000_000))
            }
            group.addTask {
                try? await Task.sleep(until: end, tolerance: .milliseconds(1), clock: .continuous)
                return nil
            }
            let first = await group.next()!
            group.cancelAll()
            if let done = first {
                return done
            }
            // The timer won: keep what the request recorded (status, chunks so far), as a timeout.
            var partial = (await group.next() ?? nil) ?? started
            partial.error = .timeout
            partial.errorText = timeoutText
            partial.end = Self.seconds(origin.duration(to: .now))
            return partial
        }
    }

    /// The request itself: head, then events until `[DONE]`, every error classified.
    static func stream(_ request: HTTPClientRequest, http: HTTPClient, api: LoadAPI, record start: LoadRequestRecord,
                       origin: ContinuousClock.Instant, nioDeadline: NIODeadline) async -> LoadRequestRecord {
        var record = start
        func now() -> Double { seconds(origin.duration(to: .now)) }
        func fail(_ kind: LoadErrorKind, _ text: String) -> LoadRequestRecord {
            record.error = kind
            record.errorText = text
            record.end = now()
            return record
        }
        let response: HTTPClientResponse
        // Sent: the last moment before the request is handed to the HTTP client (the request and the task that
        // sends it are ready, so their cost is schedule lag, not server latency).
        record.sent = now()
        do {
            response = try await http.execute(request, deadline: nioDeadline)
        } catch {
            let (kind, text) = classify(error, afterHead: false)
            return fail(kind, text)
        }
        record.status = Int(response.status.code)
        guard response.status == .ok else {
            var text = "HTTP \(record.status)"
            if let body = try? await response.body.collect(upTo: 64 << 10) {
                let data = Data(buffer: body)
                if let e = APIError(jsonBody: data, status: record.status) {
                    text += ": " + e.message
                } else if !data.isEmpty {
                    text += ": " + String(decoding: data.prefix(200), as: UTF8.self)
                }
            }
            return fail(LoadErrorKind.forStatus(record.status), text)
        }
        var parser = ServerSentEventParser(maxEventBytes: 1 << 20)
        var sawDone = false
        var usage: StreamChunk.Usage?
        let decoder = JSONDecoder()
        do {
            bodyLoop: for try await buffer in response.body {
                let at = now()
                let events: [String]
                do { events = try parser.feed(buffer.readableBytesView) } catch {
                    return fail(.malformedStream, "\(error)")
                }
                for event in events {
                    if sawDone { continue }
                    if event == ServerSentEvents.donePayload { sawDone = true; continue }
                    guard let chunk = try? decoder.decode(StreamChunk.self, from: Data(event.utf8)) else {
                        return fail(.malformedStream, "an event that is not a JSON object: \(event.prefix(120))")
                    }
                    if let e = chunk.error {
                        return fail(.other, "an error event in the stream: \(e.message ?? "(no message)")")
                    }
                    if chunk.carriesContent(api) { record.chunkTimes.append(at) }
                    if let u = chunk.usage { usage = u }
                }
                if sawDone { break bodyLoop }
            }
        } catch {
            if Task.isCancelled { return fail(.timeout, "cancelled") }
            let (kind, text) = classify(error, afterHead: true)
            return fail(kind, text)
        }
        record.end = now()
        record.outputTokens = record.chunkTimes.count
        if let u = usage, let completion = u.completionTokens {
            record.outputTokens = completion
            if let p = u.promptTokens { record.promptTokens = p }
            record.tokenCounts = .usage
        }
        guard sawDone else {
            return fail(.incompleteStream, "the stream ended without data: [DONE] after \(record.chunkTimes.count) content chunks")
        }
        return record
    }

    /// The contract's kind of a thrown error, and its text. `afterHead`: a 200 head had arrived, so a closed
    /// connection is an incomplete stream.
    static func classify(_ error: Error, afterHead: Bool) -> (LoadErrorKind, String) {
        let text = String(describing: error)
        let typeName = String(reflecting: type(of: error))
        if error is CancellationError { return (.timeout, "cancelled") }
        if let e = error as? HTTPClientError {
            switch e {
            case .deadlineExceeded, .readTimeout, .writeTimeout, .cancelled: return (.timeout, text)
            case .connectTimeout: return (.connect, "connecting timed out")
            case .tlsHandshakeTimeout: return (.tls, text)
            case .remoteConnectionClosed: return afterHead ? (.incompleteStream, "the connection closed mid-stream") : (.other, "the connection closed before a response")
            default: break
            }
        }
        if typeName.contains("SSL") || typeName.contains("TLS") || text.contains("SSL") || text.contains("TLS") {
            return (.tls, text)
        }
        if let e = error as? IOError, [ECONNREFUSED, ENETUNREACH, EHOSTUNREACH, ECONNRESET].contains(e.errnoCode), !afterHead {
            return (.connect, text)
        }
        if let c = error as? ChannelError, case .connectTimeout = c { return (.connect, text) }
        if typeName.contains("ConnectionError") { return (.connect, text) }
        if afterHead { return (.incompleteStream, text) }
        return (.other, text)
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    static func format(_ d: Duration) -> String {
        let s = seconds(d)
        return s >= 1 && s == s.rounded() ? "\(Int(s)) s" : String(format: "%.0f ms", s * 1000)
    }
}

/// The fields of a streamed chunk a load run reads, decoded leniently (servers differ in what else they send).
struct StreamChunk: Decodable {
    struct Choice: Decodable {
        struct Delta: Decodable { var content: String? }
        var text: String?
        var delta: Delta?
    }
    struct Usage: Decodable {
        var promptTokens: Int?
        var completionTokens: Int?
        enum CodingKeys: String, CodingKey { case promptTokens = "prompt_tokens", completionTokens = "completion_tokens" }
    }
    /// `{"error": {"message": …}}` as OpenAI and vLLM send it, or `{"error": "…"}` as some servers do.
    struct ErrorObject: Decodable {
        var message: String?
        enum CodingKeys: String, CodingKey { case message }
        init(from decoder: Decoder) throws {
            if let text = try? decoder.singleValueContainer().decode(String.self) { message = text; return }
            message = try decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(String.self, forKey: .message)
        }
    }
    var choices: [Choice]?
    var usage: Usage?
    var error: ErrorObject?

    func carriesContent(_ api: LoadAPI) -> Bool {
        guard let choices else { return false }
        return choices.contains { c in
            switch api {
            case .completions: return !(c.text ?? c.delta?.content ?? "").isEmpty
            case .chat: return !(c.delta?.content ?? c.text ?? "").isEmpty
            }
        }
    }
}
