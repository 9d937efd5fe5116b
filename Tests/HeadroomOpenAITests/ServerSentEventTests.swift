// Server-sent events: framing, and the incremental parser against the WHATWG rules, split at every byte.
import Foundation
import XCTest
@testable import HeadroomOpenAI

final class ServerSentEventTests: XCTestCase {
    func testFraming() {
        XCTAssertEqual(String(decoding: ServerSentEvents.frame(Data(#"{"a":1}"#.utf8)), as: UTF8.self), "data: {\"a\":1}\n\n")
        XCTAssertEqual(String(decoding: ServerSentEvents.done, as: UTF8.self), "data: [DONE]\n\n")
        XCTAssertEqual(String(decoding: ServerSentEvents.frame(Data("a\nb\r\nc\rd".utf8)), as: UTF8.self), "data: a\ndata: b\ndata: c\ndata: d\n\n")
        XCTAssertEqual(String(decoding: ServerSentEvents.frame(Data()), as: UTF8.self), "data: \n\n")
    }

    func testFramesReadBack() throws {
        var parser = ServerSentEventParser()
        let chunk = ChatCompletionChunk.delta(id: "c", created: 1, model: "m", content: "a\nb", includeUsageNull: true).jsonData()
        var stream = ServerSentEvents.frame(chunk)
        stream.append(ServerSentEvents.frame(Data("x\ny\r\n".utf8)))
        stream.append(ServerSentEvents.done)
        XCTAssertEqual(try parser.feed(stream), [String(decoding: chunk, as: UTF8.self), "x\ny\n", ServerSentEvents.donePayload])
        XCTAssertFalse(parser.hasPendingEvent)
    }

    /// A stream with every rule in it: CRLF, CR and LF line ends, comments, other fields, a field without a colon,
    /// no space after the colon, multi-line data, an empty data line, a blank line without data, a leading BOM,
    /// invalid UTF-8, and an event left open at the end.
    static let stream: [UInt8] = [0xEF, 0xBB, 0xBF] + Array(": keep-alive\r\ndata: one\r\n\r\nevent: ping\nid: 7\nretry: 10\ndata:two\ndata:  three\n\ndata\n\n\n\ndata: four\r\rdata: é😀\rdata: x".utf8)
        + [0xFF] + Array("\n\ndata: [DONE]\n\ndata: open".utf8)
    static let events = ["one", "two\n three", "", "four", "é😀\nx\u{FFFD}", "[DONE]"]

    func testTheRules() throws {
        var parser = ServerSentEventParser()
        XCTAssertEqual(try parser.feed(Self.stream), Self.events)
        XCTAssertTrue(parser.hasPendingEvent)
    }

    func testEverySplitGivesTheSameEvents() throws {
        for cut in 0...Self.stream.count {
            var parser = ServerSentEventParser()
            let events = try parser.feed(Self.stream[..<cut]) + parser.feed(Self.stream[cut...])
            XCTAssertEqual(events, Self.events, "cut at \(cut)")
        }
        var parser = ServerSentEventParser()
        XCTAssertEqual(try Self.stream.flatMap { try parser.feed([$0]) }, Self.events, "byte by byte")
    }

    func testAnEventPastTheBoundThrows() throws {
        var parser = ServerSentEventParser(maxEventBytes: 64)
        XCTAssertEqual(try parser.feed(Array("data: \(String(repeating: "a", count: 50))\n\n".utf8)), [String(repeating: "a", count: 50)])
        XCTAssertThrowsError(try parser.feed(Array("data: \(String(repeating: "a", count: 40))\ndata: \(String(repeating: "b", count: 40))".utf8))) {
            XCTAssertEqual("\($0)", "a server-sent event is longer than 64 bytes")
        }
        // A comment line with no end is bounded too.
        var comments = ServerSentEventParser(maxEventBytes: 64)
        XCTAssertThrowsError(try comments.feed(Array(repeating: UInt8(ascii: ":"), count: 65)))
        // The parser holds nothing after refusing.
        XCTAssertFalse(parser.hasPendingEvent)
    }
}
