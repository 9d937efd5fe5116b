// The request client: one streamed completion per call on AsyncHTTPClient, timed chunk by chunk. Every failure
// comes back as a value in the record (a kind from the contract and its text); nothing throws, nothing waits
// past the request's deadline.
import AsyncHTTPClient
import Foundation
import HeadroomCore
import HeadroomOpenAI
import NIOCore
import NIOFoundationCompat
import NIOConcurrencyHelpers
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
        // One request per connection, as the pool's limit counts them: over TLS the client would otherwise negotiate
        // HTTP/2 and queue streams behind the server's stream limit, out of sight of the schedule.
        configuration.httpVersion = .http1Only
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
        var headers = HTTPHeaders([("content-type", "application/json"), ("accept", "text/event-stream")])
        if let key = endpoint.apiKey { headers.add(name: "authorization", value: "Bearer \(key)") }
        let request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(url: endpoint.requestURL, method: .POST, headers: headers,
                                             body: .byteBuffer(ByteBuffer(data: body(spec))))
        } catch {
            record.error = .other
            record.errorText = "\(error)"
            return record
        }
        let delegate = StreamDelegate(api: endpoint.api, record: record, origin: origin)
        let http = self.http
        let nioDeadline = NIODeadline.now() + .nanoseconds(Int64(Self.seconds(ContinuousClock.now.duration(to: end)) * 1e9) + 1_000_000_000)
        // The request races a timer; the loser is cancelled. AsyncHTTPClient also gets the deadline (plus a
        // second) so that a request that ignored cancellation still ends.
        let timedOut = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                delegate.markSent()
                let task = http.execute(request: request, delegate: delegate, deadline: nioDeadline)
                await withTaskCancellationHandler {
                    _ = try? await task.futureResult.get()
                } onCancel: {
                    task.cancel()
                }
                return false
            }
            group.addTask {
                try? await Task.sleep(until: end, tolerance: .milliseconds(1), clock: .continuous)
                return !Task.isCancelled
            }
            let first = await group.next()!
            group.cancelAll()
            return first
        }
        // The timer won: keep what the request recorded (status, chunks so far), as a timeout.
        return delegate.result(timedOut: timedOut ? timeoutText : nil)
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
        if let e = error as? IOError, [ECONNREFUSED, ENETUNREACH, EHOSTUNREACH].contains(e.errnoCode), !afterHead {
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

/// Reads one streamed response on the event loop, timestamping each body part as it arrives (no task hop
/// between the socket and the clock), parsing events as they come. AsyncHTTPClient calls it on the
/// connection's event loop; the lock makes the final read from the sending task safe.
final class StreamDelegate: HTTPClientResponseDelegate, @unchecked Sendable {
    typealias Response = Void

    struct State {
        var record: LoadRequestRecord
        var parser = ServerSentEventParser(maxEventBytes: 1 << 20)
        var sawDone = false
        var usage: StreamChunk.Usage?
        /// The body of a non-200 answer, up to 64 KiB.
        var errorBody = Data()
    }

    let api: LoadAPI
    let origin: ContinuousClock.Instant
    private let state: NIOLockedValueBox<State>
    private let decoder = JSONDecoder()

    init(api: LoadAPI, record: LoadRequestRecord, origin: ContinuousClock.Instant) {
        self.api = api; self.origin = origin; state = NIOLockedValueBox(State(record: record))
    }

    private func now() -> Double { LoadClient.seconds(origin.duration(to: .now)) }

    /// Sent: the last moment before the request is handed to the HTTP client.
    func markSent() {
        let t = now()
        state.withLockedValue { $0.record.sent = t; $0.record.end = t }
    }

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        state.withLockedValue { $0.record.status = Int(head.status.code) }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let at = now()
        let stop: Bool = state.withLockedValue { s in
            guard s.record.error == nil, !s.sawDone else { return false }
            guard s.record.status == 200 else {
                s.errorBody.append(contentsOf: buffer.readableBytesView.prefix(max(0, (64 << 10) - s.errorBody.count)))
                return false
            }
            let events: [String]
            do { events = try s.parser.feed(buffer.readableBytesView) } catch {
                s.record.error = .malformedStream; s.record.errorText = "\(error)"; s.record.end = at
                return true
            }
            for event in events {
                if event == ServerSentEvents.donePayload { s.sawDone = true; s.record.end = at; break }
                guard let chunk = try? decoder.decode(StreamChunk.self, from: Data(event.utf8)) else {
                    s.record.error = .malformedStream; s.record.errorText = "an event that is not a JSON object: \(event.prefix(120))"; s.record.end = at
                    return true
                }
                if let e = chunk.error {
                    s.record.error = .other; s.record.errorText = "an error event in the stream: \(e.message ?? "(no message)")"; s.record.end = at
                    return true
                }
                if chunk.carriesContent(api) { s.record.chunkTimes.append(at) }
                if let u = chunk.usage { s.usage = u }
            }
            return false
        }
        // A broken stream is dropped at once (its kind is already recorded; the cancellation error is ignored).
        if stop { task.cancel() }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveError(task: HTTPClient.Task<Void>, _ error: Error) {
        let at = now()
        state.withLockedValue { s in
            guard s.record.error == nil, !s.sawDone else { return }
            let (kind, text) = LoadClient.classify(error, afterHead: s.record.status == 200)
            s.record.error = kind; s.record.errorText = text; s.record.end = at
        }
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {
        let at = now()
        state.withLockedValue { s in if !s.sawDone && s.record.error == nil { s.record.end = at } }
    }

    /// The record once the request is over; `timedOut` (its text) when the timer ended it first.
    func result(timedOut: String?) -> LoadRequestRecord {
        let at = now()
        return state.withLockedValue { s in
            var r = s.record
            r.outputTokens = r.chunkTimes.count
            if let u = s.usage, let completion = u.completionTokens {
                r.outputTokens = completion
                if let p = u.promptTokens { r.promptTokens = p }
                r.tokenCounts = .usage
            }
            if r.error != nil && !(r.error == .timeout && timedOut != nil) { return r }
            if let timedOut, !s.sawDone {
                r.error = .timeout; r.errorText = timedOut; r.end = at
                return r
            }
            if r.status != 200 && r.status != 0 {
                var text = "HTTP \(r.status)"
                if let e = APIError(jsonBody: s.errorBody, status: r.status) {
                    text += ": " + e.message
                } else if !s.errorBody.isEmpty {
                    text += ": " + String(decoding: s.errorBody.prefix(200), as: UTF8.self)
                }
                r.error = LoadErrorKind.forStatus(r.status); r.errorText = text
                return r
            }
            if r.status == 0 {
                r.error = r.error ?? .other; if r.errorText.isEmpty { r.errorText = "no response" }
                return r
            }
            if !s.sawDone {
                r.error = .incompleteStream
                r.errorText = "the stream ended without data: [DONE] after \(r.chunkTimes.count) content chunks"
            }
            return r
        }
    }
}

/// The fields of a streamed chunk a load run reads, decoded leniently (servers differ in what else they send).
struct StreamChunk: Decodable {
    struct Choice: Decodable {
        /// `reasoning_content` (vLLM, DeepSeek) and `reasoning` (some servers) carry a reasoning model's thinking
        /// tokens: output tokens like any other, so they count for TTFT and ITL as `vllm bench serve` counts them.
        struct Delta: Decodable {
            var content: String?
            var reasoningContent: String?
            var reasoning: String?
            enum CodingKeys: String, CodingKey { case content, reasoningContent = "reasoning_content", reasoning }
            var anyText: String { [content, reasoningContent, reasoning].compactMap { $0 }.joined() }
        }
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
            case .completions: return !(c.text ?? c.delta?.anyText ?? "").isEmpty
            case .chat: return !(c.delta?.anyText ?? c.text ?? "").isEmpty
            }
        }
    }
}

extension LoadClient {
    /// The first model id of `GET url/v1/models` (OpenAI's list: `{"data": [{"id": …}, …]}`), for a run given no
    /// model; throws `LoadRunError` saying what came back instead.
    public static func firstModel(url: String, apiKey: String?, timeout: Duration = .seconds(10)) async throws -> String {
        let base = LoadEndpoint.base(url)
        var request = HTTPClientRequest(url: base + "/v1/models")
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .nanoseconds(Int64(seconds(timeout) * 1e9)))
        } catch {
            throw LoadRunError("GET \(base)/v1/models failed: \(error)")
        }
        let body = try await response.body.collect(upTo: 4 << 20)
        guard response.status == .ok else { throw LoadRunError("GET \(base)/v1/models answered \(response.status.code)") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
              let data = object["data"] as? [[String: Any]], let id = data.first?["id"] as? String, !id.isEmpty else {
            throw LoadRunError("GET \(base)/v1/models did not list a model")
        }
        return id
    }
}
