// What a server must survive: keys, a full queue, clients that go away, requests that run too long,
// shutdown with requests in flight — and after each, every KV block back in the pool.
import AsyncHTTPClient
import Foundation
import HeadroomEngine
import HeadroomOpenAI
@testable import HeadroomServe
import NIOCore
import XCTest

final class ServeLifecycleTests: XCTestCase {
    let prompt: [Int] = [1, 450, 4996, 17354, 1701]

    func testAPIKeyIsRequiredOnV1Only() async throws {
        let s = try await TestServer.start { $0.apiKey = "s3cret" }
        defer { Task { try? await s.stop() } }
        let json = body(["prompt": prompt, "max_tokens": 2])
        let missing = try await s.post("/v1/completions", json)
        XCTAssertEqual(missing.status, 401)
        XCTAssertEqual(APIError(jsonBody: missing.body, status: 401)?.code, "invalid_api_key")
        let wrong = try await s.post("/v1/completions", json, headers: [("authorization", "Bearer s3cre")])
        XCTAssertEqual(wrong.status, 401)
        let models = try await s.get("/v1/models")
        XCTAssertEqual(models.status, 401)
        let right = try await s.post("/v1/completions", json, headers: [("authorization", "Bearer s3cret")])
        XCTAssertEqual(right.status, 200, right.text)
        let health = try await s.get("/health")
        XCTAssertEqual(health.status, 200)
        try await s.stop()
    }

    func testFullQueueAnswers429WithRetryAfterAndLosesNothing() async throws {
        // One request runs at a time and one may wait: of 12 fired together, most must be refused.
        let s = try await TestServer.start(maxNumSeqs: 1) { $0.maxQueue = 1 }
        let json = body(["prompt": prompt, "max_tokens": 16, "ignore_eos": true])
        let statuses = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for _ in 0..<12 {
                group.addTask {
                    let r = try await s.post("/v1/completions", json)
                    return (r.status, r.headers.first(name: "retry-after"))
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(statuses.count, 12)
        XCTAssertTrue(statuses.allSatisfy { $0.0 == 200 || $0.0 == 429 }, "\(statuses)")
        XCTAssertGreaterThanOrEqual(statuses.filter { $0.0 == 200 }.count, 1)
        XCTAssertGreaterThanOrEqual(statuses.filter { $0.0 == 429 }.count, 1)
        XCTAssertTrue(statuses.filter { $0.0 == 429 }.allSatisfy { $0.1 == "1" })
        try await s.waitForMetric("headroom_kv_blocks_used", 0)
        try await s.stop()
    }

    func testClientGoneMidStreamCancelsAndFreesBlocks() async throws {
        let s = try await TestServer.start()
        let json = body(["prompt": prompt, "max_tokens": 1500, "ignore_eos": true, "stream": true])
        let reader = Task {
            let response = try await HTTPClient.shared.execute(s.request("/v1/completions", json), timeout: .seconds(60))
            var seen = 0
            for try await _ in response.body {
                seen += 1
                if seen >= 3 { break }
            }
            return seen
        }
        _ = try await reader.value
        // Leaving the loop drops the body: AsyncHTTPClient closes the connection.
        try await s.waitForMetric("headroom_requests_finished_total{finish=\"cancelled\"}", 1)
        try await s.waitForMetric("headroom_kv_blocks_used", 0)
        try await s.waitForMetric("headroom_requests_running", 0)
        try await s.stop()
    }

    func testClientGoneBeforeAWholeAnswerCancelsAndFreesBlocks() async throws {
        let s = try await TestServer.start()
        let json = body(["prompt": prompt, "max_tokens": 1500, "ignore_eos": true])
        do {
            _ = try await s.post("/v1/completions", json, timeout: .milliseconds(800))
            XCTFail("1500 tokens of tiny in 0.8 s on this machine: the client's timeout was meant to fire first")
        } catch {}
        try await s.waitForMetric("headroom_requests_finished_total{finish=\"cancelled\"}", 1)
        try await s.waitForMetric("headroom_kv_blocks_used", 0)
        try await s.stop()
    }

    func testRequestTimeoutEndsStreamWithErrorAndWholeWith504() async throws {
        let s = try await TestServer.start { $0.requestTimeout = .milliseconds(400) }
        let (status, events) = try await s.stream("/v1/completions", body(["prompt": prompt, "max_tokens": 1500, "ignore_eos": true, "stream": true]))
        XCTAssertEqual(status, 200)
        XCTAssertEqual(events.last, "[DONE]")
        let error = events.dropLast().last.flatMap { APIError(jsonBody: Data($0.utf8), status: 504) }
        XCTAssertEqual(error?.code, "timeout", "\(events.suffix(2))")
        let whole = try await s.post("/v1/completions", body(["prompt": prompt, "max_tokens": 1500, "ignore_eos": true]))
        XCTAssertEqual(whole.status, 504, whole.text)
        try await s.waitForMetric("headroom_kv_blocks_used", 0)
        try await s.stop()
    }

    func testShutdownRefusesNewWorkAndCancelsAfterGrace() async throws {
        let s = try await TestServer.start { $0.shutdownGrace = .milliseconds(600) }
        let long = Task {
            try await s.stream("/v1/completions", body(["prompt": prompt, "max_tokens": 1500, "ignore_eos": true, "stream": true]))
        }
        // Wait until it runs, then shut down as SIGTERM would.
        try await s.waitForMetric("headroom_requests_running", 1)
        let stopped = Task { try await s.stop() }
        var refused: TestServer.Reply?
        for _ in 0..<100 {
            if let r = try? await s.post("/v1/completions", body(["prompt": prompt, "max_tokens": 1])), r.status == 503 { refused = r; break }
            try await Task.sleep(for: .milliseconds(20))
        }
        XCTAssertEqual(refused.flatMap { APIError(jsonBody: $0.body, status: 503) }?.code, "shutting_down")
        let (status, events) = try await long.value
        XCTAssertEqual(status, 200)
        XCTAssertEqual(events.last, "[DONE]")
        XCTAssertEqual(events.dropLast().last.flatMap { APIError(jsonBody: Data($0.utf8), status: 503) }?.code, "shutting_down")
        try await stopped.value
        XCTAssertEqual(s.server.loop.snapshot.usedBlocks, 0)
    }
}

final class ServeIdleConnectionTests: XCTestCase {
    /// A client that opens a connection and sends half a request, then nothing (slowloris), is closed after the
    /// idle timeout; the server goes on answering others.
    func testSlowClientIsClosedAfterTheIdleTimeout() async throws {
        // 1.5 s, not less: the health request below opens a fresh connection that must not itself sit idle past the
        // timeout on a loaded 2-core machine (at 500 ms it once failed with "I/O on closed channel" under `make test`).
        let s = try await TestServer.start { $0.idleTimeout = .milliseconds(1500) }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(s.port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        XCTAssertEqual(connected, 0)
        let partial = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"pro"
        _ = partial.withCString { send(fd, $0, strlen($0), 0) }
        // The server closes it: recv returns 0 (end of stream) well before the 10 s bound.
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let started = Date()
        var buffer = [UInt8](repeating: 0, count: 4096)
        var n = 1
        while n > 0 { n = recv(fd, &buffer, buffer.count, 0) }
        XCTAssertEqual(n, 0, "the connection was not closed (recv returned \(n))")
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        let health = try await s.get("/health")
        XCTAssertEqual(health.status, 200)
        try await s.stop()
    }
}
