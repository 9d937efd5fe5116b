// A minimal streaming server for the load generator's tests (a fixture, not a product feature): raw NIO on an
// ephemeral loopback port. Any POST whose path starts `/<mode>/<ttft ms>/<itl ms>/` is answered with a stream of
// `max_tokens` chunks, the first `ttft` after the request head arrived and the rest `itl` apart, each written by
// a task scheduled on the connection's event loop for its absolute due time (so nothing accumulates and no
// task hop adds to the delays), or with the failure its mode names.
import Foundation
@testable import HeadroomLoad
import HeadroomOpenAI
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOPosix
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
    private let channel: Channel

    private init(port: Int, channel: Channel) { self.port = port; self.channel = channel }

    /// The base URL of an endpoint in `mode` with the first token after `ttftMs` and then one every `itlMs`.
    func url(_ mode: Mode = .ok, ttftMs: Int = 0, itlMs: Int = 0) -> String {
        "http://127.0.0.1:\(port)/\(mode.rawValue)/\(ttftMs)/\(itlMs)"
    }

    static func start() async throws -> FixtureServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap { channel.pipeline.addHandler(FixtureHandler()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        guard let port = channel.localAddress?.port else { throw XCTSkip("the fixture server did not bind") }
        return FixtureServer(port: port, channel: channel)
    }

    func stop() async { try? await channel.close() }
}

/// One connection: reads a request, answers it as its path says.
final class FixtureHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var head: HTTPRequestHead?
    private var arrived = NIODeadline.now()
    private var body = ByteBuffer()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            arrived = .now()
            body.clear()
        case .body(var b):
            body.writeBuffer(&b)
        case .end:
            if let head { respond(context, head) }
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        let parts = head.uri.split(separator: "/").map(String.init)
        guard parts.count >= 3, let mode = FixtureServer.Mode(rawValue: parts[0]), let ttft = Int64(parts[1]), let itl = Int64(parts[2]) else {
            return error(context, .badRequest, "bad fixture path")
        }
        let json = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
        let maxTokens = json["max_tokens"] as? Int ?? 16
        let chat = parts.contains("chat")
        let tokenPrompt = json["prompt"] is [Any]
        let promptTokens = (json["prompt"] as? [Any])?.count ?? ((json["prompt"] as? String)?.split(separator: " ").count ?? 0)
        let wantsUsage = ((json["stream_options"] as? [String: Any])?["include_usage"] as? Bool) == true && mode != .noUsage
        switch mode {
        case .http401: return error(context, .unauthorized, "bad key")
        case .http404: return error(context, .notFound, "no such model")
        case .http429: return error(context, .tooManyRequests, "slow down")
        case .http500: return error(context, .internalServerError, "it broke")
        case .http400: return error(context, .badRequest, "bad request")
        case .textOnly where tokenPrompt: return error(context, .badRequest, "prompt: expected a string")
        default: break
        }
        var headers = HTTPHeaders([("content-type", "text/event-stream")])
        headers.add(name: "transfer-encoding", value: "chunked")
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
        if mode == .errorEvent {
            let e = APIError(status: 500, message: "engine failed", type: "server_error", param: nil, code: nil)
            write(context, ServerSentEvents.frame(e.jsonBody()))
            write(context, ServerSentEvents.done)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let start = arrived
        for k in 0..<maxTokens {
            let payload: Data
            if mode == .malformed && k == 1 {
                payload = Data("data: {not json\n\n".utf8)
            } else {
                let piece = "t\(k)"
                let json = chat ? #"{"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"\#(piece)"}}]}"#
                                : #"{"id":"x","object":"text_completion","choices":[{"index":0,"text":"\#(piece)"}]}"#
                payload = ServerSentEvents.frame(Data(json.utf8))
            }
            let last = k == maxTokens - 1
            context.eventLoop.scheduleTask(deadline: start + .milliseconds(ttft + Int64(k) * itl)) {
                let (handler, context) = bound.value
                handler.write(context, payload)
                guard last else { return }
                if wantsUsage {
                    let usage = #"{"id":"x","choices":[],"usage":{"prompt_tokens":\#(promptTokens),"completion_tokens":\#(maxTokens),"total_tokens":\#(promptTokens + maxTokens)}}"#
                    handler.write(context, ServerSentEvents.frame(Data(usage.utf8)))
                }
                if mode != .nodone { handler.write(context, ServerSentEvents.done) }
                context.writeAndFlush(handler.wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }

    private func write(_ context: ChannelHandlerContext, _ data: Data) {
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(data: data)))), promise: nil)
    }

    private func error(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ message: String) {
        let e = APIError(status: Int(status.code), message: message, type: "invalid_request_error", param: nil, code: nil)
        let body = ByteBuffer(data: e.jsonBody())
        let headers = HTTPHeaders([("content-type", "application/json"), ("content-length", "\(body.readableBytes)")])
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

/// An endpoint on the fixture (completions unless `chat`).
func fixtureEndpoint(_ url: String, chat: Bool = false, timeout: Duration = .seconds(10)) -> LoadEndpoint {
    LoadEndpoint(name: "fixture", url: url, api: chat ? .chat : .completions, model: "fixture",
                 requestTimeout: timeout, connectTimeout: .seconds(2))
}
