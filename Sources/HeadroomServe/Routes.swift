// The HTTP routes: OpenAI's completion endpoints (whole or streamed as server-sent events), the model list,
// health and Prometheus metrics. Every answer to a bad request is OpenAI's error schema with the status the
// README documents; nothing a client sends reaches the engine unchecked.
import Foundation
import HeadroomEngine
import HeadroomOpenAI
import Hummingbird
import Logging
import NIOCore

struct Routes: Sendable {
    let server: ServeServer

    /// The paths served and the method each takes: what a 405's `Allow` says and a 404 lists.
    static let methods: KeyValuePairs<String, HTTPRequest.Method> = [
        "/v1/completions": .post, "/v1/chat/completions": .post, "/v1/models": .get, "/health": .get, "/metrics": .get,
    ]

    func register(on router: Router<BasicRequestContext>) {
        // First, so that it wraps Hummingbird's not-found answer as well as the routes.
        router.add(middleware: UnroutedMiddleware())
        router.get("health") { _, _ in self.health() }
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: self.server.metrics.render())))
        }
        router.get("v1/models") { request, _ in
            if let refusal = self.authorize(request) { return self.error(refusal) }
            let list = ModelList(data: [ModelCard(id: self.server.model.id, created: self.server.model.created, ownedBy: "headroom")])
            return self.json(list.jsonData())
        }
        router.post("v1/completions") { request, context in
            await self.complete(request, context: context, endpoint: .completions)
        }
        router.post("v1/chat/completions") { request, context in
            await self.complete(request, context: context, endpoint: .chatCompletions)
        }
    }

    private func health() -> Response {
        let ready = server.loop.isReady
        let body = #"{"status":"\#(ready ? "ready" : "unavailable")"}"#
        return Response(status: ready ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    // MARK: - Completions

    private func complete(_ request: Request, context: BasicRequestContext, endpoint: CompletionEndpoint) async -> Response {
        let response: Response
        do {
            response = try await start(request, context: context, endpoint: endpoint)
        } catch let e as APIError {
            response = error(e)
            server.logger.info("refused", metadata: ["path": "\(endpoint.rawValue)", "status": "\(e.status)", "reason": "\(Self.loggable(e.message))"])
        } catch {
            response = self.error(APIError(status: 500, message: "\(error)", type: "server_error"))
        }
        server.metrics.response(status: Int(response.status.code))
        return response
    }

    private func start(_ request: Request, context: BasicRequestContext, endpoint: CompletionEndpoint) async throws -> Response {
        if let refusal = authorize(request) { throw refusal }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: server.options.limits.maxBodyBytes)
        } catch {
            throw APIError(status: 413, message: "the body is larger than \(server.options.limits.maxBodyBytes) bytes", type: "invalid_request_error")
        }
        let parsed = try CompletionRequestParser.parse(Array(buffer: body), endpoint: endpoint, limits: server.options.limits)
        if let asked = parsed.model, asked != server.model.id {
            throw APIError(status: 404, message: "the model \(asked) does not exist; this server serves \(server.model.id)",
                           type: "invalid_request_error", param: "model", code: "model_not_found")
        }
        let prepared = try server.model.prepare(parsed, kvPoolTokens: server.loop.kvPoolTokens)
        let ticket: EngineLoop.Ticket
        do {
            ticket = try server.loop.submit(prompt: prepared.prompt, parameters: prepared.parameters)
        } catch let refusal as SubmitRefusal {
            switch refusal {
            case .queueFull(let waiting):
                var e = APIError(status: 429, message: "the server's queue is full (\(waiting) requests waiting); retry later",
                                 type: "rate_limit_error", code: "queue_full")
                e.param = nil
                throw e
            case .shuttingDown:
                throw APIError(status: 503, message: "the server is shutting down", type: "server_error", code: "shutting_down")
            case .notReady:
                throw APIError(status: 503, message: "the server is still loading the model", type: "server_error", code: "not_ready")
            }
        }
        let events = EventReader(ticket.events)
        switch await events.next() {
        case .started: break
        case .rejected(let message):
            throw APIError.invalid(message, param: endpoint == .chatCompletions ? "messages" : "prompt")
        default:
            throw APIError(status: 500, message: "the engine ended the request before starting it", type: "server_error")
        }
        let reply = Reply(endpoint: endpoint, model: server.model.id, created: Int(Date().timeIntervalSince1970),
                          promptTokens: prepared.prompt.count, includeUsage: parsed.includeUsage)
        let model = server.model, stops = prepared.stops, loop = server.loop, ticketID = ticket.id
        // A client that goes away cancels its request wherever it is — queued, prefilling or decoding: the
        // connection's inbound side is watched while the answer is made (Hummingbird then closes the connection
        // after the response, so no pipelined request is read meanwhile).
        // Hummingbird's handler waits for the watcher to end if the operation throws, and the watcher ends only
        // when the client sends or closes: so nothing thrown may cross it — errors go across as values.
        let requestBody = request.body
        if parsed.stream {
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", .connection: "close"],
                            body: Hummingbird.ResponseBody { writer in
                var text = TextAssembler(model: model, stops: stops)
                let failure: WriteFailure? = try await requestBody.consumeWithInboundCloseHandler({ _ in
                    do {
                        try await Self.stream(events: events, text: &text, reply: reply, ticket: ticketID, loop: loop, writer: &writer)
                        return nil
                    } catch {
                        return WriteFailure(error: error)
                    }
                }, onInboundClosed: { loop.cancel(ticketID) })
                if let failure {
                    loop.cancel(ticketID)
                    throw failure.error
                }
            })
        }
        var text = TextAssembler(model: model, stops: stops)
        let outcome: Result<Data, APIError> = try await withTaskCancellationHandler {
            try await requestBody.consumeWithInboundCloseHandler({ _ in
                do {
                    return .success(try await whole(events: events, text: &text, reply: reply, ticket: ticketID))
                } catch let e as APIError {
                    return .failure(e)
                } catch {
                    return .failure(APIError(status: 500, message: "\(error)", type: "server_error"))
                }
            }, onInboundClosed: { loop.cancel(ticketID) })
        } onCancel: {
            loop.cancel(ticketID)
        }
        var response: Response
        switch outcome {
        case .success(let data): response = json(data)
        case .failure(let e): response = error(e)
        }
        // The connection was read to its end meanwhile: it closes after this response.
        response.headers[.connection] = "close"
        return response
    }

    /// Writes one chunk per token that adds text, then the finish chunk, the usage chunk when asked, `[DONE]`.
    private static func stream(events: EventReader, text: inout TextAssembler, reply: Reply, ticket: Int, loop: EngineLoop,
                               writer: inout any ResponseBodyWriter) async throws {
        var generated = 0
        if reply.endpoint == .chatCompletions { try await writer.write(ByteBuffer(data: reply.roleChunk())) }
        while let event = await events.next() {
            switch event {
            case .token(let token):
                generated += 1
                let piece = text.add(token)
                if !piece.isEmpty { try await writer.write(ByteBuffer(data: reply.textChunk(piece))) }
                if text.stopped {
                    loop.cancel(ticket, cause: .stopString)
                    try await writer.write(ByteBuffer(data: reply.finishChunk("stop")))
                    if reply.includeUsage { try await writer.write(ByteBuffer(data: reply.usageChunk(completionTokens: generated))) }
                    try await writer.write(ByteBuffer(data: ServerSentEvents.done))
                    try await writer.finish(nil)
                    return
                }
            case .finished(let cause, _):
                let tail = text.finish()
                if !tail.isEmpty { try await writer.write(ByteBuffer(data: reply.textChunk(tail))) }
                if let reason = Reply.finishReason(cause, stopped: text.stopped) {
                    try await writer.write(ByteBuffer(data: reply.finishChunk(reason)))
                    if reply.includeUsage { try await writer.write(ByteBuffer(data: reply.usageChunk(completionTokens: generated))) }
                } else {
                    try await writer.write(ByteBuffer(data: ServerSentEvents.frame(Reply.failure(cause).jsonBody())))
                }
                try await writer.write(ByteBuffer(data: ServerSentEvents.done))
                try await writer.finish(nil)
                return
            case .started, .rejected:
                continue
            }
        }
        try await writer.finish(nil)
    }

    /// Collects the whole text, then answers once.
    private func whole(events: EventReader, text: inout TextAssembler, reply: Reply, ticket: Int) async throws -> Data {
        var out = "", generated = 0
        while let event = await events.next() {
            switch event {
            case .token(let token):
                generated += 1
                out += text.add(token)
                if text.stopped {
                    server.loop.cancel(ticket, cause: .stopString)
                    return reply.whole(text: out, finishReason: "stop", completionTokens: generated)
                }
            case .finished(let cause, _):
                out += text.finish()
                guard let reason = Reply.finishReason(cause, stopped: text.stopped) else { throw Reply.failure(cause) }
                return reply.whole(text: out, finishReason: reason, completionTokens: generated)
            case .started, .rejected:
                continue
            }
        }
        throw APIError(status: 500, message: "the engine ended the request without finishing it", type: "server_error")
    }

    // MARK: - Helpers

    /// 401 unless the request carries the key (when the server has one).
    private func authorize(_ request: Request) -> APIError? {
        guard let key = server.options.apiKey else { return nil }
        let given = request.headers[.authorization] ?? ""
        let expected = "Bearer " + key
        if Self.constantTimeEqual(Array(given.utf8), Array(expected.utf8)) { return nil }
        return APIError(status: 401, message: given.isEmpty ? "missing API key: send Authorization: Bearer KEY" : "incorrect API key",
                        type: "invalid_request_error", code: "invalid_api_key")
    }

    /// A message for the log with control characters escaped: it may quote what a client sent (a model name),
    /// and a newline must not forge a log line.
    static func loggable(_ s: String) -> String {
        var out = ""
        for u in s.unicodeScalars {
            if u.properties.generalCategory == .control || u == "\u{2028}" || u == "\u{2029}" {
                out += "\\u{" + String(u.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(u)
            }
        }
        return out
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) { diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0) }
        return diff == 0
    }

    private func json(_ data: Data) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: data)))
    }

    private func error(_ e: APIError) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if e.status == 429 { headers[.retryAfter] = "\(server.options.retryAfterSeconds)" }
        return Response(status: HTTPResponse.Status(code: e.status), headers: headers, body: .init(byteBuffer: ByteBuffer(data: e.jsonBody())))
    }
}

/// A request no route takes, answered in OpenAI's error schema as the rest of the API is: 405 with `Allow` when
/// the path is served with another method (GET /v1/completions, POST /health), else 404 naming what is served.
/// Hummingbird's own answer to both is an empty 404, which an OpenAI client cannot read.
struct UnroutedMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext

    func handle(_ request: Request, context: BasicRequestContext, next: (Request, BasicRequestContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let e as HTTPError where e.status == .notFound {
            let path = request.uri.path.count > 1 && request.uri.path.hasSuffix("/") ? String(request.uri.path.dropLast()) : request.uri.path
            let error: APIError
            var headers: HTTPFields = [.contentType: "application/json"]
            if let allowed = Routes.methods.first(where: { $0.key == path })?.value {
                guard allowed != request.method else { throw e }
                headers[.allow] = allowed.rawValue
                error = APIError(status: 405, message: "\(request.method.rawValue) \(path): method not allowed; \(path) takes \(allowed.rawValue)",
                                 type: "invalid_request_error", code: "method_not_allowed")
            } else {
                let served = Routes.methods.map { "\($0.value.rawValue) \($0.key)" }.joined(separator: ", ")
                error = APIError(status: 404, message: "\(request.method.rawValue) \(path): no such endpoint; this server serves \(served)",
                                 type: "invalid_request_error", code: "not_found")
            }
            return Response(status: HTTPResponse.Status(code: error.status), headers: headers,
                            body: .init(byteBuffer: ByteBuffer(data: error.jsonBody())))
        }
    }
}

/// An error of the stream's writer (the client went away), carried out of the inbound watcher as a value.
struct WriteFailure: @unchecked Sendable { let error: Error }

/// Reads one request's events in order; handed from the handler to the response body's writer, never
/// read from two tasks at once.
final class EventReader: @unchecked Sendable {
    private var iterator: AsyncStream<GenerationEvent>.Iterator
    init(_ stream: AsyncStream<GenerationEvent>) { iterator = stream.makeAsyncIterator() }
    func next() async -> GenerationEvent? { await iterator.next() }
}
