// A minimal streaming server for the load generator's tests (a fixture, not a product feature): on an
// ephemeral loopback port, it answers any POST whose path starts `/<mode>/<ttft ms>/<itl ms>/` with a stream of
// `max_tokens` chunks, the first after the set delay and the rest at the set interval (each due at an absolute
// time from the request's arrival, so sleep overshoot does not accumulate), or with the failure its mode names.
import Foundation
@testable import HeadroomLoad
import HeadroomOpenAI
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import XCTest

final class FixtureServer: @unchecked Sendable {
    enum Mode: String {
        case ok
        case http401 = "401", http404 = "404", http429 = "429", http500 = "500", http400 = "400"
        /// A 200 stream whose second event is not JSON.
        case malformed
        /// A 200 stream of every token, then the end of the body without `[DONE]`.
        case nodone
        /// A 200 stream with an OpenAI error object as its first event.
        case errorEvent = "error-event"
        /// 400 for token-id prompts, a stream for text (an endpoint that takes text only).
        case textOnly = "text-only"
        /// A stream without a usage chunk even when asked (token counts from the stream).
        case noUsage = "no-usage"
    }

    let port: Int
    private let task: Task<Void, Error>

    private init(port: Int, task: Task<Void, Error>) { self.port = port; self.task = task }

    /// The base URL of an endpoint in `mode` with the first token after `ttftMs` and then one every `itlMs`.
    func url(_ mode: Mode = .ok, ttftMs: Int = 0, itlMs: Int = 0) -> String {
        "http://127.0.0.1:\(port)/\(mode.rawValue)/\(ttftMs)/\(itlMs)"
    }

    static func start() async throws -> FixtureServer {
        let router = Router(context: BasicRequestContext.self)
        router.post("**") { request, _ in try await respond(request) }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "headroom.load.fixture")
        logger.logLevel = .critical
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in
                                  continuation.yield(channel.localAddress?.port ?? 0)
                                  continuation.finish()
                              }, logger: logger)
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else { throw XCTSkip("the fixture server did not start") }
        return FixtureServer(port: port, task: task)
    }

    func stop() async {
        task.cancel()
        _ = try? await task.value
    }

    static func respond(_ request: Request) async throws -> Response {
        let arrived = ContinuousClock.now
        let parts = request.uri.path.split(separator: "/").map(String.init)
        guard parts.count >= 3, let mode = Mode(rawValue: parts[0]), let ttft = Int(parts[1]), let itl = Int(parts[2]) else {
            return Response(status: .badRequest)
        }
        let body = try await request.body.collect(upTo: 16 << 20)
        let json = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
        let maxTokens = json["max_tokens"] as? Int ?? 16
        let chat = parts.contains("chat")
        let tokenPrompt = json["prompt"] is [Any]
        let promptTokens = (json["prompt"] as? [Any])?.count ?? ((json["prompt"] as? String)?.split(separator: " ").count ?? 0)
        let wantsUsage = ((json["stream_options"] as? [String: Any])?["include_usage"] as? Bool) == true && mode != .noUsage

        func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
            let e = APIError(status: Int(status.code), message: message, type: "invalid_request_error", param: nil, code: nil)
            return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: e.jsonBody())))
        }
        switch mode {
        case .http401: return error(.unauthorized, "bad key")
        case .http404: return error(.notFound, "no such model")
        case .http429: return error(.tooManyRequests, "slow down")
        case .http500: return error(.internalServerError, "it broke")
        case .http400: return error(.badRequest, "bad request")
        case .textOnly where tokenPrompt: return error(.badRequest, "prompt: expected a string")
        default: break
        }
        @Sendable func chunk(_ k: Int) -> ByteBuffer {
            let piece = "t\(k)"
            let payload = chat ? #"{"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"\#(piece)"}}]}"#
                               : #"{"id":"x","object":"text_completion","choices":[{"index":0,"text":"\#(piece)"}]}"#
            return ByteBuffer(data: ServerSentEvents.frame(Data(payload.utf8)))
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream"], body: ResponseBody { writer in
            if mode == .errorEvent {
                let e = APIError(status: 500, message: "engine failed", type: "server_error", param: nil, code: nil)
                try await writer.write(ByteBuffer(data: ServerSentEvents.frame(e.jsonBody())))
                try await writer.write(ByteBuffer(data: ServerSentEvents.done))
                try await writer.finish(nil)
                return
            }
            for k in 0..<maxTokens {
                let due = arrived + .milliseconds(ttft + k * itl)
                await LoadScheduler.sleep(until: due)
                if mode == .malformed && k == 1 {
                    try await writer.write(ByteBuffer(string: "data: {not json\n\n"))
                    continue
                }
                try await writer.write(chunk(k))
            }
            if wantsUsage {
                let usage = #"{"id":"x","choices":[],"usage":{"prompt_tokens":\#(promptTokens),"completion_tokens":\#(maxTokens),"total_tokens":\#(promptTokens + maxTokens)}}"#
                try await writer.write(ByteBuffer(data: ServerSentEvents.frame(Data(usage.utf8))))
            }
            if mode != .nodone { try await writer.write(ByteBuffer(data: ServerSentEvents.done)) }
            try await writer.finish(nil)
        })
    }
}

/// An endpoint on the fixture (completions unless `chat`).
func fixtureEndpoint(_ url: String, chat: Bool = false, timeout: Duration = .seconds(10)) -> LoadEndpoint {
    LoadEndpoint(name: "fixture", url: url, api: chat ? .chat : .completions, model: "fixture",
                 requestTimeout: timeout, connectTimeout: .seconds(2))
}
