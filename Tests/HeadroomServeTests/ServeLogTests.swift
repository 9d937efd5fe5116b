// The server's per-request log line read back, and a log cut into load points: the exact fields, what is not a
// request line, the late line moved back, and the warm-ups.
import HeadroomServe
import XCTest

final class ServeLogTests: XCTestCase {
    static let sample = "2026-11-30T13:43:24+0000 info headroom.serve: decode_ms=3906.3 finish=length generated_tokens=128 "
        + "preemptions=0 prefill_ms=1281.7 prompt_tokens=128 queue_ms=0.1 request=0 [HeadroomServe] request"

    func testTheLineEngineLoopWrites() throws {
        let l = try XCTUnwrap(ServeLogLine.parse(Self.sample))
        XCTAssertEqual(l, ServeLogLine(request: 0, finish: "length", promptTokens: 128, generatedTokens: 128, queueMs: 0.1,
                                       prefillMs: 1281.7, decodeMs: 3906.3, preemptions: 0))
        XCTAssertEqual(l.ttftMs, 1281.8, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(l.tpotMs), 3906.3 / 127, accuracy: 1e-9)
    }

    func testFieldsInAnyOrderAndACancelledRequest() throws {
        let text = "2026-11-30T13:43:25+0000 info headroom.serve: request=17 queue_ms=812.0 prefill_ms=0.0 decode_ms=0.0 "
            + "prompt_tokens=32 generated_tokens=0 finish=cancelled preemptions=2 [HeadroomServe] request"
        let l = try XCTUnwrap(ServeLogLine.parse(text))
        XCTAssertEqual(l.request, 17)
        XCTAssertEqual(l.finish, "cancelled")
        XCTAssertEqual(l.preemptions, 2)
        XCTAssertEqual(l.ttftMs, 812.0)
        XCTAssertNil(l.tpotMs, "no gap below two tokens")
        XCTAssertNil(ServeLogLine.parse(text.replacingOccurrences(of: "generated_tokens=0", with: "generated_tokens=1"))?.tpotMs)
    }

    func testOtherLinesAreNotRequests() {
        let others = [
            "",
            "2026-11-30T13:43:20+0000 info headroom.serve: block_size=16 kv_blocks=640 [HeadroomServe] engine ready",
            "2026-11-30T13:43:20+0000 info headroom.serve: [headroom] listening on 127.0.0.1:40123",
            Self.sample.replacingOccurrences(of: "queue_ms=0.1", with: "queue_ms=abc"),
            Self.sample.replacingOccurrences(of: "queue_ms=0.1", with: "queue_ms=-1"),
            Self.sample.replacingOccurrences(of: "decode_ms=3906.3 ", with: ""),
            Self.sample.replacingOccurrences(of: "request=0", with: "request=x"),
            Self.sample.replacingOccurrences(of: "headroom.serve:", with: "other.logger:"),
            String(Self.sample.dropLast(3)),
        ]
        for text in others { XCTAssertNil(ServeLogLine.parse(text), text) }
    }

    func testEntriesCarryTheirEndOffsetAndSkipAnUnfinishedLine() {
        let ready = "2026-11-30T13:43:20+0000 info headroom.serve: kv_blocks=640 [HeadroomServe] engine ready\n"
        let one = Self.sample + "\n"
        let two = Self.sample.replacingOccurrences(of: "request=0", with: "request=1") + "\n"
        let text = ready + one + two + String(two.dropLast())
        let entries = ServeLog.entries(Array(text.utf8), offset: 1000)
        XCTAssertEqual(entries.map(\.line.request), [0, 1])
        XCTAssertEqual(entries.map(\.end), [1000 + ready.utf8.count + one.utf8.count, 1000 + ready.utf8.count + one.utf8.count + two.utf8.count])
    }

    func line(_ ticket: Int) -> ServeLogLine {
        ServeLogLine(request: ticket, finish: "length", promptTokens: 32, generatedTokens: 16, queueMs: 0, prefillMs: 100, decodeMs: 300)
    }

    func testPointsAreTheLinesWrittenWhileEachRanInTicketOrder() {
        // Point 0 ended at offset 30, point 1 at 60; a line before the start (an earlier phase) and one after the
        // last end are no point's. Point 1's burst finished out of ticket order.
        let entries = [(5, 0), (20, 1), (30, 2), (40, 5), (45, 3), (55, 4), (70, 6)].map { ServeLog.Entry(end: $0.0, line: line($0.1)) }
        let points = ServeLog.points(entries, start: 10, ends: [30, 60], warmup: 1)
        XCTAssertEqual(points.map { $0.warmup.map(\.request) }, [[1], [3]])
        XCTAssertEqual(points.map { $0.measured.map(\.request) }, [[2], [4, 5]])
    }

    func testALineWrittenJustAfterItsPointEndedMovesBack() {
        // Ticket 2 ended point 0's stream before the server logged it, so it landed in point 1's window.
        let entries = [(5, 0), (8, 1), (12, 2), (20, 3), (25, 4)].map { ServeLog.Entry(end: $0.0, line: line($0.1)) }
        let moved = ServeLog.points(entries, start: 0, ends: [10, 30], expected: [3, 2], warmup: 1)
        XCTAssertEqual(moved.map { ($0.warmup + $0.measured).map(\.request) }, [[0, 1, 2], [3, 4]])
        XCTAssertEqual(moved[1].warmup.map(\.request), [3])
        // Without the counts nothing moves; with counts that match nothing moves either.
        XCTAssertEqual(ServeLog.points(entries, start: 0, ends: [10, 30]).map { $0.measured.count }, [2, 3])
        XCTAssertEqual(ServeLog.points(entries, start: 0, ends: [10, 30], expected: [2, 3]).map { $0.measured.count }, [2, 3])
    }
}
