// One run against `headroom serve` in this process (a small f32 model with synthetic weights, ephemeral
// loopback port): token-id prompts accepted, ignore_eos honoured, usage counted.
import Foundation
import HeadroomEngine
@testable import HeadroomLoad
import HeadroomServe
import Logging
import XCTest

final class LoadServeTests: XCTestCase {
    func testAClosedLoopAgainstHeadroomServe() async throws {
        let config = ModelConfig(name: "micro", layers: 2, dim: 64, heads: 4, kvHeads: 2, ffnDim: 96, vocab: 32000, context: 512)
        let weights = try ModelWeights.synthetic(config, type: .f32, threads: 2)
        let engine = try ServingEngine(weights: weights, configuration: .init(kvCache: .tokens(2048), maxNumSeqs: 8, maxBatchedTokens: 256, threads: 2))
        var options = ServeOptions()
        options.port = 0
        options.handleSignals = false
        var logger = Logger(label: "headroom.load.test")
        logger.logLevel = .error
        let server = ServeServer(engine: engine, model: ServedModel(id: "micro", vocabularySize: config.vocab, context: config.context, created: 1_700_000_000),
                                 options: options, logger: logger)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let task = Task { try await server.run { _, port in continuation.yield(port); continuation.finish() } }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw XCTSkip("the server did not start") }

        let client = LoadClient(endpoint: LoadEndpoint(name: "serve", url: "http://127.0.0.1:\(port)", model: "micro", requestTimeout: .seconds(60)))
        let prompts = PromptSource(kind: .tokenIDs, promptTokens: 16, outputTokens: 8)
        // Ready when a request streams (the weights warm before the first answer).
        var ready = false
        for _ in 0..<200 where !ready {
            ready = await client.send(prompts.request(0), index: 0, warmup: true, due: 0, origin: .now).ok
            if !ready { try await Task.sleep(for: .milliseconds(50)) }
        }
        XCTAssertTrue(ready, "headroom serve never answered a stream")
        let kind = await LoadRunner.resolvePromptKind(.auto, client: client, promptTokens: 16)
        XCTAssertEqual(kind, .tokenIDs)
        let result = await LoadScheduler.run(LoadPointPlan(point: "concurrency:2", arrivals: .closed(concurrency: 2), bound: .requests(6), warmup: 1),
                                             client: client, prompts: prompts)
        await client.shutdown()
        await server.shutdown()
        try await task.value

        let s = LoadAggregation.summary(result, slo: nil)
        XCTAssertEqual(s.ok, 6, result.measured.map(\.errorText).joined(separator: "; "))
        XCTAssertEqual(s.tokenCounts, "usage")
        XCTAssertTrue(result.measured.allSatisfy { $0.outputTokens == 8 && $0.promptTokens == 16 && $0.chunkTimes.count == 8 })
        XCTAssertEqual(s.itl?.count, 6 * 7)
        XCTAssertGreaterThan(s.outputTokensPerS, 0)
    }
}
