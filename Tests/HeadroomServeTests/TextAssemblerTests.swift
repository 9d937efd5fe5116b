// TextAssembler on its own: stop strings cut exactly wherever the tokens split them, text that only might
// become a stop string held back and then released, and UTF-8 characters split across byte tokens sent whole.
import Foundation
import HeadroomEngine
import HeadroomKernels
@testable import HeadroomServe
import XCTest

final class TextAssemblerTests: XCTestCase {
    /// Synthetic pieces: token N is the text `<tok_N>`.
    let synthetic = Tiny.served()

    /// What each `add` returned, then `finish()`'s, for `tokens`.
    func run(_ model: ServedModel, stops: [String], _ tokens: [Int32]) -> (parts: [String], tail: String, stopped: Bool) {
        var text = TextAssembler(model: model, stops: stops)
        let parts = tokens.map { text.add($0) }
        let stopped = text.stopped
        return (parts, text.finish(), stopped)
    }

    func testStopSplitAcrossTwoTokensIsCutExactly() {
        // "<tok_1><tok_2><tok_3>": the stop "2><tok_3" starts inside token 2 and ends inside token 3.
        let r = run(synthetic, stops: ["2><tok_3"], [1, 2, 3, 4])
        XCTAssertEqual(r.parts, ["<tok_1>", "<tok_", "", ""])
        XCTAssertTrue(r.stopped)
        XCTAssertEqual(r.tail, "")
    }

    func testStopSplitAcrossThreeTokensIsCutExactly() {
        // "_1><tok_2><tok_3" runs from inside token 1 through token 2 into token 3.
        let r = run(synthetic, stops: ["_1><tok_2><tok_3"], [1, 2, 3])
        XCTAssertEqual(r.parts, ["<tok", "", ""])
        XCTAssertTrue(r.stopped)
        XCTAssertEqual(r.tail, "")
    }

    func testTextThatOnlyLooksLikeAStopIsReleasedOnceItCannotMatch() {
        // After token 1, "1>" could still begin "1><tok_9": held. Token 2 rules it out: all of it goes.
        let r = run(synthetic, stops: ["1><tok_9"], [1, 2])
        XCTAssertEqual(r.parts, ["<tok_", "1><tok_2>"])
        XCTAssertFalse(r.stopped)
        XCTAssertEqual(r.tail, "")
        // The request ends while "1>" is held: finish() gives it back.
        let held = run(synthetic, stops: ["1><tok_9"], [1])
        XCTAssertEqual(held.parts, ["<tok_"])
        XCTAssertEqual(held.tail, "1>")
        XCTAssertFalse(held.stopped)
    }

    func testEarliestOfSeveralStopsWins() {
        // Both complete with token 3; "2><tok_3>" (listed second) starts two bytes before "<tok_3".
        let r = run(synthetic, stops: ["<tok_3", "2><tok_3>"], [1, 2, 3])
        XCTAssertEqual(r.parts.joined(), "<tok_1><tok_")
        XCTAssertTrue(r.stopped)
        // And the one that completes first in the stream ends it even when a longer one was still possible.
        let first = run(synthetic, stops: ["<tok_2><tok_3>", "<tok_2"], [1, 2, 3])
        XCTAssertEqual(first.parts.joined(), "<tok_1>")
        XCTAssertTrue(first.stopped)
    }

    func testNothingAfterAStop() {
        var text = TextAssembler(model: synthetic, stops: ["<tok_2>"])
        XCTAssertEqual(text.add(1), "<tok_1>")
        XCTAssertEqual(text.add(2), "")
        XCTAssertTrue(text.stopped)
        XCTAssertEqual(text.add(3), "")
        XCTAssertEqual(text.finish(), "")
    }

    /// Random token streams against random stops: the text sent is the text cut before the earliest stop once
    /// one is complete (or all of it).
    func testRandomStreamsAgainstTheWholeTextCut() {
        var rng = SplitMix64(seed: 0x5EED)
        for trial in 0..<400 {
            let tokens = (0..<Int(rng.next() % 8 + 1)).map { _ in Int32(rng.next() % 4) }
            let full = tokens.map { "<tok_\($0)>" }.joined()
            let bytes = Array(full.utf8)
            // Stops: substrings of the text (so they may match) and near misses.
            var stops: [String] = []
            for _ in 0..<Int(rng.next() % 3 + 1) {
                let a = Int(rng.next() % UInt64(bytes.count)), n = Int(rng.next() % 12 + 1)
                var s = Array(bytes[a..<min(bytes.count, a + n)])
                if rng.next() % 3 == 0 { s[s.count - 1] = UInt8(ascii: "9") }
                stops.append(String(decoding: s, as: UTF8.self))
            }
            // Stops are looked for as each token arrives (as vLLM does): the first token that completes one ends
            // the text, at the earliest stop in the text so far.
            var cut: Int?
            for k in 1...tokens.count where cut == nil {
                let sofar = Array(tokens[..<k].map { "<tok_\($0)>" }.joined().utf8)
                cut = stops.compactMap { TextAssembler.find(Array($0.utf8), in: sofar) }.min()
            }
            let expected = String(decoding: bytes[..<(cut ?? bytes.count)], as: UTF8.self)
            let r = run(synthetic, stops: stops, tokens)
            XCTAssertEqual(r.parts.joined() + r.tail, expected, "trial \(trial): \(tokens) stops \(stops)")
            XCTAssertEqual(r.stopped, cut != nil, "trial \(trial): \(tokens) stops \(stops)")
        }
    }

    // MARK: - UTF-8 through byte tokens

    /// llama.cpp's SPM vocabulary, whose byte-fallback tokens `<0xNN>` are single bytes.
    func spmModel() throws -> ServedModel {
        let tokenizer = try ChatTests.llamaSPM()
        return ServedModel(id: "spm", vocabularySize: tokenizer.vocabularySize, context: 2048, tokenizer: tokenizer, created: 0)
    }

    func byteTokens(_ model: ServedModel, _ s: String) throws -> [Int32] {
        let tokenizer = try XCTUnwrap(model.tokenizer)
        return try s.utf8.map { byte in
            let id = Int32(byte) + 3  // SPM puts the 256 byte tokens after <unk>, <s>, </s>
            XCTAssertEqual(tokenizer.text(of: id), String(format: "<0x%02X>", byte))
            return try XCTUnwrap(Optional(id))
        }
    }

    func testThreeAndFourByteCharactersSplitAcrossTokensComeOutWhole() throws {
        let model = try spmModel()
        for stops in [[], ["never"], ["€😀!"]] {
            // € is E2 82 AC, 😀 is F0 9F 98 80: one byte token each.
            let r = run(model, stops: stops, try byteTokens(model, "a€😀b"))
            XCTAssertEqual(r.parts.joined() + r.tail, "a€😀b", "stops \(stops)")
            XCTAssertFalse(r.stopped)
            for part in r.parts { XCTAssertFalse(part.contains("\u{FFFD}"), "stops \(stops): \(r.parts)") }
            if stops.isEmpty {
                XCTAssertEqual(r.parts, ["a", "", "", "€", "", "", "", "😀", "b"])
            }
        }
        // A stop string that is the character itself: nothing of it is sent.
        let r = run(model, stops: ["😀"], try byteTokens(model, "a€😀b"))
        XCTAssertEqual(r.parts.joined() + r.tail, "a€")
        XCTAssertTrue(r.stopped)
        // A character the request ends inside of comes out as U+FFFD at finish().
        let cut = run(model, stops: [], Array(try byteTokens(model, "x😀").dropLast()))
        XCTAssertEqual(cut.parts.joined(), "x")
        XCTAssertEqual(cut.tail, "\u{FFFD}")
    }
}

final class LoggableTests: XCTestCase {
    func testControlCharactersAreEscapedForTheLog() {
        XCTAssertEqual(Routes.loggable("model x\ninfo forged"), "model x\\u{a}info forged")
        XCTAssertEqual(Routes.loggable("tab\there \u{1b}[31m"), "tab\\u{9}here \\u{1b}[31m")
        XCTAssertEqual(Routes.loggable("plain, ünïcode ✓"), "plain, ünïcode ✓")
    }
}
