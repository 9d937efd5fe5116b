// What a client writes reads back as the same request, for hand-picked edge cases and for seeded random
// requests; and seeded random mutations of good bodies only ever parse or are refused with a 400 or 413.
import Foundation
import XCTest
@testable import HeadroomOpenAI

/// SplitMix64, for repeatable random cases.
struct TestRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func oneIn(_ n: Int) -> Bool { below(n) == 0 }
}

/// A random request the parser accepts.
func randomRequest(_ r: inout TestRandom) -> CompletionRequest {
    func text(_ r: inout TestRandom, nonEmpty: Bool) -> String {
        let pieces = ["a", "é", "😀", "\"", "\\", "\n", "\r", "\t", "\u{0}", "\u{1F}", "/", "</script>", " ", "\u{2028}", "\u{FEFF}", "日本"]
        let n = (nonEmpty ? 1 : 0) + r.below(12)
        return (0..<n).map { _ in pieces[r.below(pieces.count)] }.joined()
    }
    let endpoint: CompletionEndpoint = r.oneIn(2) ? .completions : .chatCompletions
    let prompt: PromptInput
    if endpoint == .chatCompletions {
        let roles = CompletionRequestParser.roles.sorted()
        prompt = .messages((0..<(1 + r.below(4))).map { _ in ChatMessage(role: roles[r.below(roles.count)], content: text(&r, nonEmpty: false)) })
    } else if r.oneIn(2) {
        prompt = .text(text(&r, nonEmpty: true))
    } else {
        prompt = .tokens((0..<(1 + r.below(8))).map { _ in r.oneIn(4) ? Int32.max : Int32(r.below(50_000)) })
    }
    var q = CompletionRequest(endpoint: endpoint, prompt: prompt)
    if r.oneIn(2) { q.model = text(&r, nonEmpty: false) }
    if r.oneIn(2) { q.maxTokens = r.oneIn(4) ? Int.max : 1 + r.below(4096) }
    if r.oneIn(2) { q.temperature = r.oneIn(4) ? 0 : Double(r.next() >> 11) * 0x1p-53 * 2 }
    if r.oneIn(2) { q.topP = r.oneIn(4) ? .leastNonzeroMagnitude : 1 - Double(r.next() >> 11) * 0x1p-53 }
    if r.oneIn(2) { q.seed = r.oneIn(3) ? [0, UInt64(Int64.max), 1 << 63, .max][r.below(4)] : r.next() }
    q.stream = r.oneIn(2)
    q.includeUsage = q.stream && r.oneIn(2)
    if r.oneIn(2) { q.stop = (0..<r.below(4)).map { _ in text(&r, nonEmpty: true) } }
    if r.oneIn(2) { q.stopTokenIDs = (0..<r.below(4)).map { _ in Int32(r.below(1 << 31)) } }
    q.ignoreEOS = r.oneIn(2)
    return q
}

final class RoundTripTests: XCTestCase {
    func roundTrip(_ q: CompletionRequest, file: StaticString = #filePath, line: UInt = #line) {
        let body = q.jsonBody()
        XCTAssertEqual(try CompletionRequestParser.parse([UInt8](body), endpoint: q.endpoint), q,
                       String(decoding: body, as: UTF8.self), file: file, line: line)
    }

    func testTheBodyAClientSends() {
        let q = CompletionRequest(endpoint: .completions, model: "small", prompt: .tokens([1, 2]), maxTokens: 8, temperature: 0, topP: 0.95,
                                  seed: .max, stream: true, includeUsage: true, stop: ["\n"], stopTokenIDs: [2], ignoreEOS: true)
        XCTAssertEqual(String(decoding: q.jsonBody(), as: UTF8.self),
                       #"{"model":"small","prompt":[1,2],"max_tokens":8,"temperature":0.0,"top_p":0.95,"seed":-1,"stream":true,"stream_options":{"include_usage":true},"stop":["\n"],"stop_token_ids":[2],"ignore_eos":true}"#)
        let chat = CompletionRequest(endpoint: .chatCompletions, prompt: .messages([ChatMessage(role: "user", content: "\"hi\"\u{1}")]))
        XCTAssertEqual(String(decoding: chat.jsonBody(), as: UTF8.self),
                       #"{"messages":[{"role":"user","content":"\"hi\"\u0001"}],"temperature":1.0,"top_p":1.0}"#)
        roundTrip(q)
        roundTrip(chat)
    }

    func testEdgeValuesRoundTrip() {
        for seed: UInt64 in [0, 1, UInt64(Int64.max), 1 << 63, .max] {
            roundTrip(CompletionRequest(endpoint: .completions, prompt: .text("x"), seed: seed))
        }
        for t in [0, 1e-300, 0.1, 1.9999999999999998, 2, .leastNonzeroMagnitude] {
            roundTrip(CompletionRequest(endpoint: .completions, prompt: .text("x"), temperature: t, topP: t == 0 ? 1 : min(t, 1)))
        }
        roundTrip(CompletionRequest(endpoint: .completions, prompt: .tokens([0, Int32.max]), maxTokens: Int.max))
        roundTrip(CompletionRequest(endpoint: .completions, prompt: .text("\u{0}\u{7F}\u{10FFFF}\\\"")))
    }

    func testRandomRequestsRoundTrip() {
        var r = TestRandom(seed: 7)
        for _ in 0..<500 { roundTrip(randomRequest(&r)) }
    }

    /// Random mutations of good bodies (bytes flipped, inserted, deleted, JSON fragments spliced in): each body is
    /// parsed, and what parses writes back to the same request; nothing else but a 400 or 413 comes out.
    func testMutatedBodiesAreParsedOrRefused() {
        var r = TestRandom(seed: 2024)
        let fragments = ["null", "true", "1e999", "-0", "12345678901234567890123", "1.5", "[", "]", "{", "}", ",", ":", "\"", "\\",
                         "\\u", "\\ud800", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "\"max_tokens\":", "\"stream\":", "\"prompt\":",
                         "\"messages\":", "\"stream_options\":{\"include_usage\":true},", "\"n\":2,", "\u{FF}", "\u{0}", "\"\":", "0", "-1"]
        let limits = RequestLimits(maxBodyBytes: 1024, maxDepth: 16, maxPromptLength: 64, maxStops: 4, maxMessages: 8)
        var statuses: [Int: Int] = [:]
        var accepted = 0
        for _ in 0..<2000 {
            let q = randomRequest(&r)
            var body = [UInt8](q.jsonBody())
            for _ in 0..<(1 + r.below(3)) {
                let at = r.below(body.count + 1)
                switch r.below(5) {
                case 0: if at < body.count { body[at] ^= UInt8(1 << r.below(8)) }
                case 1: body.insert(contentsOf: Array(fragments[r.below(fragments.count)].utf8), at: at)
                case 2: body.removeSubrange(at..<min(body.count, at + 1 + r.below(8)))
                case 3: body.removeSubrange(at...)
                default: body.insert(contentsOf: Array(repeating: body[at...].prefix(1 + r.below(200)), count: 1 + r.below(16)).joined(), at: at)
                }
            }
            for endpoint in [CompletionEndpoint.completions, .chatCompletions] {
                do {
                    let parsed = try CompletionRequestParser.parse(body, endpoint: endpoint, limits: limits)
                    accepted += 1
                    XCTAssertEqual(try? CompletionRequestParser.parse([UInt8](parsed.jsonBody()), endpoint: endpoint, limits: RequestLimits()), parsed)
                } catch let e as APIError {
                    statuses[e.status, default: 0] += 1
                    XCTAssertEqual(e.type, "invalid_request_error")
                    XCTAssertTrue(e.status == 400 || e.status == 413, "\(e)")
                    if let param = e.param {
                        XCTAssertTrue(e.message.hasPrefix(param + ": "), e.message)
                    } else {
                        XCTAssertTrue(e.message.hasPrefix("the body "), e.message)
                    }
                } catch {
                    XCTFail("\(error) for \(String(decoding: body, as: UTF8.self))")
                }
            }
        }
        // The loop reaches all three answers.
        XCTAssertGreaterThan(accepted, 50)
        XCTAssertGreaterThan(statuses[400, default: 0], 1000)
        XCTAssertGreaterThan(statuses[413, default: 0], 0)
    }
}
