// llama.cpp's own tokenizer test suite (test-tokenizer-0): for each vocabulary, every text of
// models/ggml-vocab-NAME.gguf.inp must encode, token for token, to the line of .gguf.out. The files come
// from the llama-cpp-python source package through `make vocab-fixtures` into .cache/llama-vocab/.
import Foundation
import XCTest
@testable import HeadroomEngine

final class TokenizerVocabTests: XCTestCase {
    /// Repository root: this file is Tests/HeadroomEngineTests/TokenizerVocabTests.swift.
    static let vocabDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".cache/llama-vocab").path

    func testLlamaSPM() throws { try checkVocabulary("llama-spm", kind: .spm, roundTrips: true) }
    func testPhi3() throws { try checkVocabulary("phi-3", kind: .spm, roundTrips: true) }
    func testLlamaBPE() throws { try checkVocabulary("llama-bpe", kind: .bpe, roundTrips: false) }
    func testQwen2() throws { try checkVocabulary("qwen2", kind: .bpe, roundTrips: true) }
    func testGPT2() throws { try checkVocabulary("gpt-2", kind: .bpe, roundTrips: false) }
    // The smollm expressions (each digit apart, then GPT-2's) under three of their names, and GPT-2's under MPT's.
    func testStarcoder() throws { try checkVocabulary("starcoder", kind: .bpe, roundTrips: false) }
    func testRefact() throws { try checkVocabulary("refact", kind: .bpe, roundTrips: false) }
    func testCommandR() throws { try checkVocabulary("command-r", kind: .bpe, roundTrips: false) }
    func testMPT() throws { try checkVocabulary("mpt", kind: .bpe, roundTrips: false) }

    /// One case of a vocabulary's test file: the text and the ids llama.cpp produced for it.
    struct Case {
        var text: String
        var expected: [Int32]
    }

    /// Reads NAME.gguf.inp (texts separated by "\n__ggml_vocab_test__\n", which also ends the file) and
    /// NAME.gguf.out (one line of space-separated ids per text), as test-tokenizer-0.cpp reads them.
    static func readCases(_ path: String) throws -> [Case] {
        let input = try Data(contentsOf: URL(fileURLWithPath: path + ".inp"))
        let output = try String(contentsOfFile: path + ".out", encoding: .utf8)
        let separator = Data("\n__ggml_vocab_test__\n".utf8)
        var texts: [String] = []
        var position = input.startIndex
        while position < input.endIndex {
            let next = input.range(of: separator, in: position..<input.endIndex)
            let end = next?.lowerBound ?? input.endIndex
            guard let text = String(data: input[position..<end], encoding: .utf8) else {
                throw GGUFError(path: path + ".inp", problem: .invalidInput("case \(texts.count) is not UTF-8"))
            }
            texts.append(text)
            guard let next else { break }
            position = next.upperBound
        }
        var lines = output.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }  // getline does not yield the empty tail after the last newline
        XCTAssertEqual(texts.count, lines.count, "\(path): .inp has \(texts.count) cases but .out has \(lines.count) lines")
        return try zip(texts, lines).enumerated().map { i, pair in
            let ids = try pair.1.split(separator: " ", omittingEmptySubsequences: true).map { field -> Int32 in
                guard let id = Int32(field.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                    throw GGUFError(path: path + ".out", problem: .invalidInput("line \(i + 1): \"\(field)\" is not a token id"))
                }
                return id
            }
            return Case(text: pair.0, expected: ids)
        }
    }

    func checkVocabulary(_ name: String, kind: Tokenizer.Kind, roundTrips: Bool,
                         file: StaticString = #filePath, line: UInt = #line) throws {
        let path = Self.vocabDirectory + "/ggml-vocab-\(name).gguf"
        guard FileManager.default.fileExists(atPath: path + ".out") else {
            if ProcessInfo.processInfo.environment["HEADROOM_SKIP_VOCAB"] == "1" {
                throw XCTSkip("HEADROOM_SKIP_VOCAB=1: llama.cpp's vocabulary tests skipped")
            }
            XCTFail("\(path).out is missing: run `make vocab-fixtures` (it fetches llama.cpp's tokenizer tests into "
                    + ".cache/llama-vocab), or set HEADROOM_SKIP_VOCAB=1 to skip these tests", file: file, line: line)
            return
        }
        let gguf = try GGUFFile(path: path)
        XCTAssertEqual(gguf.tensors.count, 0, "the vocabulary files hold metadata only", file: file, line: line)
        let tokenizer = try Tokenizer(gguf: gguf)
        XCTAssertEqual(tokenizer.kind, kind, file: file, line: line)

        let cases = try Self.readCases(path)
        XCTAssertGreaterThan(cases.count, 0, file: file, line: line)
        var passed = 0
        for (i, c) in cases.enumerated() {
            let ids = tokenizer.encode(c.text, addSpecial: false, parseSpecial: false)
            if ids == c.expected {
                passed += 1
            } else {
                XCTFail("\(name) case \(i) \(c.text.debugDescription): expected \(c.expected), got \(ids)", file: file, line: line)
            }
            if roundTrips {
                XCTAssertEqual(tokenizer.decode(c.expected), c.text, "\(name) case \(i): decoding llama.cpp's ids", file: file, line: line)
            }
        }
        let total = cases.reduce(0) { $0 + $1.expected.count }
        print("\(name): \(passed)/\(cases.count) cases token for token (\(total) tokens expected in all)")
    }
}
