// A server on an ephemeral loopback port, its HTTP client (AsyncHTTPClient), and the greedy reference.
import AsyncHTTPClient
import Foundation
import HeadroomEngine
import HeadroomKernels
import HeadroomOpenAI
@testable import HeadroomServe
import Logging
import NIOCore
import NIOHTTP1
import XCTest

/// The `tiny` shape (as the catalog has it), its synthetic q4_0 weights built once for every test.
enum Tiny {
    static let config = ModelConfig(name: "tiny", layers: 12, dim: 768, heads: 12, kvHeads: 12, ffnDim: 2048, vocab: 32000, context: 2048)
    static let weights: ModelWeights = try! ModelWeights.synthetic(config, type: .q4_0, threads: 2)
    static func served(id: String = "tiny") -> ServedModel {
        ServedModel(id: id, vocabularySize: config.vocab, context: config.context, created: 1_700_000_000)
    }

    /// Greedy tokens as `headroom model logits --decode` computes them: prefill, then one decode per token.
    static func greedy(_ prompt: [Int32], count: Int, weights: ModelWeights = weights) throws -> [Int32] {
        let session = try InferenceSession(weights: weights, maxTokens: prompt.count + count, threads: 2)
        var logits = try session.prefill(prompt)
        var out: [Int32] = []
        while true {
            let next = Int32(logits.indices.max(by: { logits[$0] < logits[$1] })!)
            out.append(next)
            if out.count == count { return out }
            try session.decode(next)
            logits = Array(session.lastLogits())
        }
    }
}

/// A small f32 model with tiny's vocabulary size (so llama.cpp's 32000-token vocabularies fit it). Tiny's q4_0
/// logits are flat — top two often within 0.01 — and the engine's paths (paged prefill, batched decode, a
/// recompute after preemption) differ from `InferenceSession` by a q8_0 rounding of the activations, enough to
/// flip such a near tie; in f32 they differ by float rounding only, so greedy tokens can be compared exactly.
enum Micro {
    static let config = ModelConfig(name: "micro", layers: 2, dim: 64, heads: 4, kvHeads: 2, ffnDim: 96, vocab: 32000, context: 512)
    static let weights: ModelWeights = try! ModelWeights.synthetic(config, type: .f32, threads: 2)
    static func greedy(_ prompt: [Int32], count: Int) throws -> [Int32] { try Tiny.greedy(prompt, count: count, weights: weights) }
}

/// A running server and what a test needs to talk to it.
final class TestServer: @unchecked Sendable {
    let server: ServeServer
    let port: Int
    private let task: Task<Void, Error>

    var base: String { "http://127.0.0.1:\(port)" }

    static func start(model: ServedModel = Tiny.served(), weights: ModelWeights = Tiny.weights, kvTokens: Int = 4096,
                      maxNumSeqs: Int = 16, maxBatchedTokens: Int = 256, configure: (inout ServeOptions) -> Void = { _ in }) async throws -> TestServer {
        let engine = try ServingEngine(weights: weights, configuration: .init(
            kvCache: .tokens(kvTokens), maxNumSeqs: maxNumSeqs, maxBatchedTokens: maxBatchedTokens, threads: 2))
        var options = ServeOptions()
        options.port = 0
        options.handleSignals = false
        configure(&options)
        var logger = Logger(label: "headroom.serve.test")
        logger.logLevel = ProcessInfo.processInfo.environment["HEADROOM_TEST_LOG"] == "1" ? .info : .error
        let server = ServeServer(engine: engine, model: model, options: options, logger: logger)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let task = Task { try await server.run { _, port in continuation.yield(port); continuation.finish() } }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw XCTSkip("the server did not start") }
        let s = TestServer(server: server, port: port, task: task)
        try await s.waitUntilReady()
        return s
    }

    private init(server: ServeServer, port: Int, task: Task<Void, Error>) { self.server = server; self.port = port; self.task = task }

    func waitUntilReady() async throws {
        for _ in 0..<600 {
            if let r = try? await get("/health"), r.status == 200 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTFail("the server never became ready")
    }

    /// Shuts down as SIGTERM does and waits for `run` to return.
    func stop() async throws {
        await server.shutdown()
        try await task.value
    }

    struct Reply {
        var status: Int
        var headers: HTTPHeaders
        var body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    func get(_ path: String) async throws -> Reply {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: base + path), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 16 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: Data(buffer: body))
    }

    func post(_ path: String, _ body: Data, headers: [(String, String)] = [], timeout: TimeAmount = .seconds(60)) async throws -> Reply {
        let response = try await HTTPClient.shared.execute(request(path, body, headers: headers), timeout: timeout)
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: Data(buffer: bytes))
    }

    func post(_ path: String, json: String, headers: [(String, String)] = []) async throws -> Reply {
        try await post(path, Data(json.utf8), headers: headers)
    }

    func request(_ path: String, _ body: Data, headers: [(String, String)] = []) -> HTTPClientRequest {
        var r = HTTPClientRequest(url: base + path)
        r.method = .POST
        r.headers.add(name: "content-type", value: "application/json")
        for (k, v) in headers { r.headers.add(name: k, value: v) }
        r.body = .bytes(ByteBuffer(data: body))
        return r
    }

    /// The events of a streamed response (each `data:` payload), read to the end.
    func stream(_ path: String, _ body: Data) async throws -> (status: Int, events: [String]) {
        let response = try await HTTPClient.shared.execute(request(path, body), timeout: .seconds(60))
        var parser = ServerSentEventParser()
        var events: [String] = []
        for try await buffer in response.body { events += try parser.feed(Array(buffer: buffer)) }
        return (Int(response.status.code), events)
    }

    /// A number from `/metrics` (the first sample whose name and labels start with `name`).
    func metric(_ name: String) async throws -> Double? {
        let text = try await get("/metrics").text
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") || line.hasPrefix(name + "{") {
            if let v = line.split(separator: " ").last.flatMap({ Double($0) }) { return v }
        }
        return nil
    }

    /// Waits (bounded) until a metric reads `value`.
    func waitForMetric(_ name: String, _ value: Double, seconds: Double = 20) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        var last: Double?
        while Date() < deadline {
            last = try await metric(name)
            if last == value { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTFail("\(name) stayed \(last.map { "\($0)" } ?? "absent"), expected \(value)")
    }
}

/// `<tok_N>` pieces back to ids (the text of synthetic weights).
func tokenIDs(_ text: String) -> [Int32] {
    text.components(separatedBy: "<tok_").dropFirst().compactMap { Int32($0.prefix(while: { $0 != ">" })) }
}

func body(_ object: [String: Any]) -> Data { try! JSONSerialization.data(withJSONObject: object) }
