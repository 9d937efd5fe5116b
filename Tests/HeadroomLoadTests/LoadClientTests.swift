// The request client against the fixture: how accurately it times a stream, and that every failure comes back
// as the contract's kind, promptly.
import Foundation
@testable import HeadroomLoad
import NIOCore
import NIOPosix
import XCTest

final class LoadClientTests: XCTestCase {
    var server: FixtureServer!

    override func setUp() async throws { server = try await FixtureServer.start() }
    override func tearDown() async throws { await server.stop() }

    func send(_ endpoint: LoadEndpoint, output: Int = 4, prompt: LoadPrompt = .tokenIDs([101, 102, 103])) async -> LoadRequestRecord {
        let client = LoadClient(endpoint: endpoint)
        let r = await client.send(LoadRequestSpec(prompt: prompt, promptTokens: 3, outputTokens: output), index: 0, warmup: false, due: 0, origin: .now)
        await client.shutdown()
        return r
    }

    /// The issue's instrument check: TTFT and ITL p50 within 2 ms of the fixture's set values. TTFT includes the
    /// loopback round trip through both HTTP stacks (about 1.3 ms on this shared 2-core machine with nothing
    /// set), so a burst from another process can push one attempt past the bar: up to three attempts, one of
    /// which must pass; every attempt's figures are printed.
    func testMeasuredTTFTAndITLMatchTheSetValues() async throws {
        var passed = false
        for attempt in 1...3 where !passed {
            let client = LoadClient(endpoint: fixtureEndpoint(server.url(ttftMs: 50, itlMs: 10)))
            let prompts = PromptSource(kind: .tokenIDs, promptTokens: 32, outputTokens: 20)
            let result = await LoadScheduler.run(LoadPointPlan(point: "concurrency:2", arrivals: .closed(concurrency: 2), bound: .requests(10), warmup: 2),
                                                 client: client, prompts: prompts)
            await client.shutdown()
            let s = LoadAggregation.summary(result, slo: nil)
            XCTAssertEqual(s.requests, 10)
            XCTAssertEqual(s.ok, 10)
            XCTAssertEqual(s.tokenCounts, "usage")
            XCTAssertTrue(result.measured.allSatisfy { $0.outputTokens == 20 && $0.promptTokens == 32 && $0.status == 200 })
            let ttft = try XCTUnwrap(s.ttft), itl = try XCTUnwrap(s.itl), tpot = try XCTUnwrap(s.tpot)
            XCTAssertEqual(itl.count, 10 * 19)
            print(String(format: "instrument, attempt %d: TTFT p50 %.3f ms (set 50), ITL p50 %.3f ms (set 10), ITL p99 %.3f ms, TPOT p50 %.3f ms, %d gaps",
                         attempt, ttft.p50, itl.p50, itl.p99, tpot.p50, itl.count))
            passed = abs(ttft.p50 - 50) <= 2 && abs(itl.p50 - 10) <= 2 && abs(tpot.p50 - 10) <= 2
        }
        XCTAssertTrue(passed, "TTFT, ITL and TPOT p50 were not within 2 ms of 50, 10 and 10 ms in any of 3 attempts")
    }

    func testTokenCountsFromTheStreamWhenTheServerSendsNoUsage() async {
        let r = await send(fixtureEndpoint(server.url(.noUsage)), output: 5)
        XCTAssertNil(r.error)
        XCTAssertEqual(r.outputTokens, 5)
        XCTAssertEqual(r.tokenCounts, .stream)
        XCTAssertEqual(r.promptTokens, 3)
        let u = await send(fixtureEndpoint(server.url(.ok)), output: 5)
        XCTAssertEqual(u.tokenCounts, .usage)
    }

    func testChatAPIStreamsDeltas() async {
        let r = await send(fixtureEndpoint(server.url(.ok, ttftMs: 5, itlMs: 2), chat: true), output: 6, prompt: .text("hello there"))
        XCTAssertNil(r.error, r.errorText)
        XCTAssertEqual(r.chunkTimes.count, 6)
        XCTAssertEqual(r.outputTokens, 6)
    }

    func testRequestBodyAsksForAStreamWithUsage() throws {
        let client = LoadClient(endpoint: fixtureEndpoint(server.url()))
        defer { Task { [client] in await client.shutdown() } }
        let body = String(decoding: client.body(LoadRequestSpec(prompt: .tokenIDs([5, 6]), promptTokens: 2, outputTokens: 7)), as: UTF8.self)
        XCTAssertEqual(body, #"{"model":"fixture","prompt":[5,6],"max_tokens":7,"temperature":0.0,"top_p":1.0,"stream":true,"stream_options":{"include_usage":true},"ignore_eos":true}"#)
    }

    func testEveryFailureIsCountedAsItsKind() async throws {
        let cases: [(FixtureServer.Mode, LoadErrorKind, Int)] = [
            (.http401, .http401, 401), (.http404, .http404, 404), (.http429, .http429, 429), (.http400, .http4xx, 400),
            (.http500, .http5xx, 500), (.malformed, .malformedStream, 200), (.nodone, .incompleteStream, 200),
            (.errorEvent, .other, 200),
        ]
        for (mode, kind, status) in cases {
            let r = await send(fixtureEndpoint(server.url(mode)))
            XCTAssertEqual(r.error, kind, "\(mode): \(r.errorText)")
            XCTAssertEqual(r.status, status, "\(mode)")
        }
        let unauthorized = await send(fixtureEndpoint(server.url(.http401)))
        XCTAssertEqual(unauthorized.errorText, "HTTP 401: bad key")
        let malformed = await send(fixtureEndpoint(server.url(.malformed)))
        XCTAssertEqual(malformed.errorText, "an event that is not a JSON object: {not json")
        let error = await send(fixtureEndpoint(server.url(.errorEvent)))
        XCTAssertEqual(error.errorText, "an error event in the stream: engine failed")
    }

    func testRefusedConnectionAndTLSToAPlainPort() async throws {
        // A port that was just free: bound, then closed.
        let group = MultiThreadedEventLoopGroup.singleton
        let channel = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let closedPort = try XCTUnwrap(channel.localAddress?.port)
        try await channel.close()
        let start = ContinuousClock.now
        let refused = await send(fixtureEndpoint("http://127.0.0.1:\(closedPort)"))
        XCTAssertEqual(refused.error, .connect, refused.errorText)
        XCTAssertEqual(refused.status, 0)
        let tls = await send(fixtureEndpoint("https://127.0.0.1:\(server.port)/ok/0/0"))
        XCTAssertEqual(tls.error, .tls, tls.errorText)
        XCTAssertLessThan(start.duration(to: .now), .seconds(5))
    }

    func testASlowServerIsATimeoutAtTheRequestDeadline() async {
        let start = ContinuousClock.now
        let r = await send(fixtureEndpoint(server.url(ttftMs: 3000), timeout: .milliseconds(300)))
        let took = start.duration(to: .now)
        XCTAssertEqual(r.error, .timeout)
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.errorText, "no complete response within 300 ms")
        XCTAssertLessThan(took, .milliseconds(1500))
        XCTAssertEqual(r.e2eMs, 300, accuracy: 100)
    }

    func testAutoPromptKindFallsBackToTextOnA400() async {
        for (mode, kind) in [(FixtureServer.Mode.textOnly, PromptKind.text), (.ok, .tokenIDs)] {
            let client = LoadClient(endpoint: fixtureEndpoint(server.url(mode)))
            let resolved = await LoadRunner.resolvePromptKind(.auto, client: client, promptTokens: 8)
            await client.shutdown()
            XCTAssertEqual(resolved, kind, "\(mode)")
        }
        let chat = LoadClient(endpoint: fixtureEndpoint(server.url(), chat: true))
        let chatKind = await LoadRunner.resolvePromptKind(.tokenIDs, client: chat, promptTokens: 8)
        await chat.shutdown()
        XCTAssertEqual(chatKind, .text)
    }

    func testEndpointURLs() {
        XCTAssertEqual(LoadEndpoint(name: "a", url: "http://h:8000/v1/", model: "m").requestURL, "http://h:8000/v1/completions")
        XCTAssertEqual(LoadEndpoint(name: "a", url: "http://h:8000", api: .chat, model: "m").requestURL, "http://h:8000/v1/chat/completions")
        XCTAssertEqual(LoadEndpoint.defaultName(url: "http://10.0.0.5:8000"), "10.0.0.5:8000")
        XCTAssertEqual(LoadEndpoint.defaultName(url: "https://api.example.com/v1"), "api.example.com:443")
    }
}
