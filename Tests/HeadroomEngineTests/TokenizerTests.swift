// The tokenizer on small hand-built vocabularies written as GGUF files: merges in the order llama.cpp
// applies them, byte fallback, special tokens, BOS/EOS, decoding back to the text; the pre-tokenizers
// against hand-worked splits; and refusals of bad tokenizer metadata with their exact messages.
import Foundation
import XCTest
@testable import HeadroomEngine

final class TokenizerTests: XCTestCase {
    var scratch: GGUFScratchDirectory!

    override func setUpWithError() throws { scratch = try GGUFScratchDirectory() }
    override func tearDown() { scratch.remove() }

    /// Writes `metadata` as a GGUF file with no tensors and reads its tokenizer.
    func tokenizer(_ metadata: GGUFMetadata, _ name: String = "vocab.gguf") throws -> Tokenizer {
        let path = scratch.file(name)
        _ = try GGUFWriter(metadata: metadata).write(to: path)
        return try Tokenizer.load(path: path)
    }

    // MARK: - SentencePiece-style

    /// `<unk> <s> </s>`, the 256 byte tokens, a user-defined token, then scored pieces.
    static func spmMetadata(pieces: [(String, Float)] = spmPieces) -> GGUFMetadata {
        var tokens = ["<unk>", "<s>", "</s>"], types: [Int32] = [2, 3, 3], scores: [Float] = [0, 0, 0]
        for b in 0..<256 {
            tokens.append(String(format: "<0x%02X>", b)); types.append(6); scores.append(0)
        }
        tokens.append("<|u|>"); types.append(4); scores.append(0)
        for (text, score) in pieces {
            tokens.append(text); types.append(1); scores.append(score)
        }
        var m = GGUFMetadata()
        m["general.architecture"] = .string("llama")
        m["tokenizer.ggml.model"] = .string("llama")
        m["tokenizer.ggml.tokens"] = .array(.string, tokens.map { .string($0) })
        m["tokenizer.ggml.scores"] = .array(.float32, scores.map { .float32($0) })
        m["tokenizer.ggml.token_type"] = .array(.int32, types.map { .int32($0) })
        m["tokenizer.ggml.bos_token_id"] = .uint32(1)
        m["tokenizer.ggml.eos_token_id"] = .uint32(2)
        m["tokenizer.ggml.unknown_token_id"] = .uint32(0)
        return m
    }

    static let spmPieces: [(String, Float)] = [
        ("▁", -10), ("h", -10), ("e", -10), ("l", -10), ("o", -10), ("a", -10),
        ("he", -1), ("ll", -2), ("llo", -3), ("▁he", -4), ("▁hello", -5), ("aa", -1),
    ]

    func spmID(_ t: Tokenizer, _ text: String) -> Int32 {
        Int32((0..<t.vocabularySize).first { t.text(of: Int32($0)) == text }!)
    }

    func testSentencePieceMergesByScoreAndFallsBackToBytes() throws {
        let t = try tokenizer(Self.spmMetadata())
        XCTAssertEqual(t.kind, .spm)
        XCTAssertEqual(t.vocabularySize, 3 + 256 + 1 + Self.spmPieces.count)
        XCTAssertEqual(t.bos, 1)
        XCTAssertEqual(t.eos, 2)
        XCTAssertTrue(t.addBOS)
        XCTAssertFalse(t.addEOS)
        // "▁hello": he (-1), ll (-2), llo (-3), ▁he (-4), then ▁hello (-5) — one token.
        XCTAssertEqual(t.encode("hello", addSpecial: false), [spmID(t, "▁hello")])
        // "i" is no piece: its byte token <0x69> (3 + 0x69) stands in.
        XCTAssertEqual(t.encode("hello hi", addSpecial: false),
                       [spmID(t, "▁hello"), spmID(t, "▁"), spmID(t, "h"), 3 + 0x69])
        // Equal scores merge leftmost first: "▁aaa" is ▁, aa, a — not ▁, a, aa.
        XCTAssertEqual(t.encode("aaa", addSpecial: false), [spmID(t, "▁"), spmID(t, "aa"), spmID(t, "a")])
        // BOS when asked; EOS is off for this vocabulary.
        XCTAssertEqual(t.encode("hello"), [1, spmID(t, "▁hello")])
        XCTAssertEqual(t.encode("", addSpecial: true), [1])
        XCTAssertEqual(t.encode("", addSpecial: false), [])
    }

    func testSentencePieceDecodesBackToTheText() throws {
        let t = try tokenizer(Self.spmMetadata())
        for text in ["hello", "hello hi", "  two leading spaces", "é and ✓ by bytes", "line\nbreak", "aaa"] {
            let ids = t.encode(text, addSpecial: false)
            XCTAssertEqual(t.decode(ids), text, "ids \(ids)")
            // Dropping the BOS keeps the prefix space: llama.cpp strips it only when no BOS was removed.
            XCTAssertEqual(t.decode(t.encode(text), removeSpecial: true), " " + text)
        }
        // A byte token is part of a character: "é" is <0xC3> <0xA9>.
        let e = t.encode("é", addSpecial: false)
        XCTAssertEqual(e, [spmID(t, "▁"), 3 + 0xC3, 3 + 0xA9])
        XCTAssertEqual(t.piece(for: e[1]), [0xC3])
        XCTAssertEqual(t.piece(for: e[2]), [0xA9])
        XCTAssertEqual(t.piece(for: spmID(t, "▁hello")), Array(" hello".utf8))
        // BOS renders as its text when asked, else as nothing; decode keeps it unless removeSpecial.
        XCTAssertEqual(t.piece(for: 1), Array("<s>".utf8))
        XCTAssertEqual(t.piece(for: 1, renderSpecial: false), [])
        XCTAssertEqual(t.decode(t.encode("hello")), "<s> hello")
        XCTAssertEqual(t.decode(t.encode("hello"), renderSpecial: false), " hello")
    }

    func testSentencePieceSpecialTokens() throws {
        let t = try tokenizer(Self.spmMetadata())
        let user = spmID(t, "<|u|>")
        // The user-defined token is matched in text even without parseSpecial, and the text after it gets
        // the prefix space again, as after BOS.
        XCTAssertEqual(t.encode("hello<|u|>hello", addSpecial: false), [spmID(t, "▁hello"), user, spmID(t, "▁hello")])
        // Control tokens only with parseSpecial; otherwise "</s>" is spelled out.
        XCTAssertEqual(t.encode("</s>", addSpecial: false, parseSpecial: true), [2])
        let spelled = t.encode("</s>", addSpecial: false, parseSpecial: false)
        XCTAssertFalse(spelled.contains(2))
        XCTAssertEqual(t.decode(spelled), "</s>")
        XCTAssertTrue(t.endOfGeneration.contains(2))
    }

    func testAddEOSAndDefaultsFromMetadata() throws {
        var m = Self.spmMetadata()
        m["tokenizer.ggml.add_bos_token"] = .bool(false)
        m["tokenizer.ggml.add_eos_token"] = .bool(true)
        let t = try tokenizer(m)
        XCTAssertFalse(t.addBOS)
        XCTAssertTrue(t.addEOS)
        XCTAssertEqual(t.encode("hello"), [spmID(t, "▁hello"), 2])
        XCTAssertEqual(t.decode(t.encode("hello"), removeSpecial: true), "hello")
        XCTAssertEqual(t.decode(t.encode("hello"), removeSpecial: false), "hello</s>")
    }

    /// The vocabulary GGUFLlama writes for synthetic models is a valid SPM vocabulary too. It has no "▁"
    /// piece, so everything is spelled in byte tokens and the escaped spaces come back as "▁".
    func testTheWritersPlaceholderVocabularyLoads() throws {
        var m = GGUFMetadata()
        try GGUFLlamaVocabulary(size: 300).add(to: &m)
        let t = try tokenizer(m)
        XCTAssertEqual(t.vocabularySize, 300)
        let ids = t.encode("any text, ✓", addSpecial: false)
        XCTAssertEqual(ids, Array("▁any▁text,▁✓".utf8).map { 3 + Int32($0) })
        XCTAssertEqual(t.decode(ids), "▁any▁text,▁✓")
    }

    // MARK: - Byte-level BPE

    /// The 256 GPT-2 byte characters (id = byte), then merged tokens, then `<|endoftext|>` (control).
    static func bpeMetadata(merges: [String] = bpeMerges, pre: String? = "gpt-2") -> GGUFMetadata {
        var tokens = (0..<256).map { String(decoding: ByteLevelEncoding.encoded[$0], as: UTF8.self) }
        var types = [Int32](repeating: 1, count: 256)
        for merge in merges {
            let merged = merge.replacingOccurrences(of: " ", with: "")
            if !tokens.contains(merged) { tokens.append(merged); types.append(1) }
        }
        tokens.append("<|endoftext|>"); types.append(3)
        var m = GGUFMetadata()
        m["tokenizer.ggml.model"] = .string("gpt2")
        if let pre { m["tokenizer.ggml.pre"] = .string(pre) }
        m["tokenizer.ggml.tokens"] = .array(.string, tokens.map { .string($0) })
        m["tokenizer.ggml.token_type"] = .array(.int32, types.map { .int32($0) })
        m["tokenizer.ggml.merges"] = .array(.string, merges.map { .string($0) })
        m["tokenizer.ggml.bos_token_id"] = .uint32(UInt32(tokens.count - 1))
        m["tokenizer.ggml.eos_token_id"] = .uint32(UInt32(tokens.count - 1))
        return m
    }

    static let bpeMerges = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "b c", "a b"]

    func bpeID(_ t: Tokenizer, _ text: String) -> Int32 {
        Int32((0..<t.vocabularySize).first { t.text(of: Int32($0)) == text }!)
    }

    func testBytePairMergesByRank() throws {
        let t = try tokenizer(Self.bpeMetadata())
        XCTAssertEqual(t.kind, .bpe)
        XCTAssertEqual(t.preTokenizer, "gpt-2")
        XCTAssertFalse(t.addBOS)
        // Words "hello" and " world": h+e, l+l, he+ll, hell+o; Ġ+w, o+r, Ġw+or, then l and d stay bytes.
        XCTAssertEqual(t.encode("hello world"),
                       [bpeID(t, "hello"), bpeID(t, "Ġwor"), Int32(UInt8(ascii: "l")), Int32(UInt8(ascii: "d"))])
        // Rank, not position: "b c" (rank 7) beats "a b" (rank 8), leaving a + bc.
        XCTAssertEqual(t.encode("abc"), [Int32(UInt8(ascii: "a")), bpeID(t, "bc")])
        // A two-byte character is two byte tokens, each a piece of it.
        let e = t.encode("é")
        XCTAssertEqual(e, [0xC3, 0xA9])
        XCTAssertEqual(t.piece(for: 0xC3), [0xC3])
        XCTAssertEqual(t.decode(e), "é")
    }

    func testBytePairDecodesBackToTheText() throws {
        let t = try tokenizer(Self.bpeMetadata(pre: "qwen2"))  // qwen2 leaves spaces as they are when decoding
        for text in ["hello world", "  spaces\tand\nnewlines  ", "naïve café ✓ 🦙", "abc , 's ? !"] {
            XCTAssertEqual(t.decode(t.encode(text)), text)
        }
    }

    func testBytePairCleanSpacesOnDecode() throws {
        // gpt-2 asks for llama.cpp's clean-up: " ," " ?" lose the space, a lone " ' " loses both, " 's" its space.
        let t = try tokenizer(Self.bpeMetadata())
        XCTAssertEqual(t.decode(t.encode("a , b ? it 's ' x")), "a, b? it's'x")
    }

    func testBytePairSpecialTokens() throws {
        let t = try tokenizer(Self.bpeMetadata())
        let end = bpeID(t, "<|endoftext|>")
        XCTAssertEqual(t.encode("hello<|endoftext|>", parseSpecial: true), [bpeID(t, "hello"), end])
        XCTAssertFalse(t.encode("hello<|endoftext|>", parseSpecial: false).contains(end))
        XCTAssertEqual(t.decode([bpeID(t, "hello"), end]), "hello<|endoftext|>")
        XCTAssertEqual(t.decode([bpeID(t, "hello"), end], renderSpecial: false), "hello")
        XCTAssertTrue(t.endOfGeneration.contains(end))
    }

    func testMissingPreTokenizerMeansDefault() throws {
        let t = try tokenizer(Self.bpeMetadata(pre: nil))
        XCTAssertEqual(t.preTokenizer, "default")
        XCTAssertEqual(t.decode(t.encode("x+1234")), "x+1234")
    }

    // MARK: - Pre-tokenizers against hand-worked splits

    func words(_ stages: [PreTokenizer.Stage], _ text: String) -> [String] {
        let cps = text.unicodeScalars.map(\.value)
        var out: [String] = []
        var start = 0
        for length in PreTokenizer(stages: stages).split(cps) {
            out.append(String(String.UnicodeScalarView(cps[start..<(start + length)].map { Unicode.Scalar($0)! })))
            start += length
        }
        return out
    }

    func testPreTokenizerSplits() {
        // GPT-2: contractions are case-sensitive; of two spaces, the last starts the next word.
        XCTAssertEqual(words([.gpt2], "I've  got 3 apples!!\n"), ["I", "'ve", " ", " got", " 3", " apples", "!!", "\n"])
        XCTAssertEqual(words([.gpt2], "I'VE"), ["I", "'", "VE"])
        // Llama 3: case-insensitive contractions, digits in threes, newlines with the spaces before them.
        XCTAssertEqual(words([.llama3], "I'VE 12345 tokens\n\n  x"), ["I", "'VE", " ", "123", "45", " tokens", "\n\n", " ", " x"])
        XCTAssertEqual(words([.llama3], "naïve café ٣"), ["naïve", " café", " ", "٣"])
        // Qwen 2: one digit at a time.
        XCTAssertEqual(words([.qwen2], "abc 2024"), ["abc", " ", "2", "0", "2", "4"])
        // Default: punctuation runs (no backtick), GPT-2, number runs, then ASCII digits in threes.
        XCTAssertEqual(words([.punctuationRuns, .gpt2, .numberRuns, .asciiDigitTriples], "a+b=1234567, ok`x"),
                       ["a", "+", "b", "=", "123", "456", "7", ",", " ok", "`", "x"])
        // smollm: every digit apart, then GPT-2.
        XCTAssertEqual(words([.eachNumber, .gpt2], "x 42"), ["x", " ", "4", "2"])
        XCTAssertEqual(words([.gpt2], ""), [])
    }

    // MARK: - Refusals

    func testRefusesAnUnknownTokenizerModel() throws {
        var m = Self.spmMetadata()
        m["tokenizer.ggml.model"] = .string("bert")
        let path = scratch.file("bert.gguf")
        assertGGUFError("\(path): metadata tokenizer.ggml.model is \"bert\", which Headroom's tokenizer does not implement; "
                        + "supported: llama, gpt2") {
            _ = try GGUFWriter(metadata: m).write(to: path)
            _ = try Tokenizer.load(path: path)
        }
    }

    func testRefusesAnUnknownPreTokenizer() throws {
        let path = scratch.file("pre.gguf")
        _ = try GGUFWriter(metadata: Self.bpeMetadata(pre: "falcon")).write(to: path)
        XCTAssertThrowsError(try Tokenizer.load(path: path)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix("\(path): metadata tokenizer.ggml.pre is \"falcon\", which Headroom's tokenizer does not implement; supported: default, llama3,"), message)
        }
    }

    func testRefusesBPEWithoutMerges() throws {
        var m = Self.bpeMetadata()
        m["tokenizer.ggml.merges"] = nil
        let path = scratch.file("nomerges.gguf")
        assertGGUFError("\(path): metadata tokenizer.ggml.merges is missing") {
            _ = try GGUFWriter(metadata: m).write(to: path)
            _ = try Tokenizer.load(path: path)
        }
    }

    func testRefusesAMergeNamingATokenNotInTheVocabulary() throws {
        var m = Self.bpeMetadata()
        m["tokenizer.ggml.merges"] = .array(.string, ["h e", "l l", "he zz"].map { .string($0) })
        let path = scratch.file("dangling.gguf")
        assertGGUFError("\(path): metadata tokenizer.ggml.merges[2]: merge \"he zz\" names \"zz\", which is not in tokenizer.ggml.tokens") {
            _ = try GGUFWriter(metadata: m).write(to: path)
            _ = try Tokenizer.load(path: path)
        }
        m["tokenizer.ggml.merges"] = .array(.string, ["h e", "hello"].map { .string($0) })
        assertGGUFError("\(path): metadata tokenizer.ggml.merges[1]: merge \"hello\" is not two tokens separated by a space") {
            _ = try GGUFWriter(metadata: m).write(to: path)
            _ = try Tokenizer.load(path: path)
        }
    }

    func testRefusesArraysOfTheWrongLength() throws {
        let path = scratch.file("lengths.gguf")
        var m = Self.spmMetadata()
        let n = m.array("tokenizer.ggml.tokens")!.count
        m["tokenizer.ggml.token_type"] = .array(.int32, [GGUFValue](repeating: .int32(1), count: n - 1))
        assertGGUFError("\(path): metadata tokenizer.ggml.token_type: has \(n - 1) entries for \(n) tokens") {
            _ = try GGUFWriter(metadata: m).write(to: path)
            _ = try Tokenizer.load(path: path)
        }
        m = Self.spmMetadata()
        m["tokenizer.ggml.scores"] = .array(.float32, [GGUFValue](repeating: .float32(0), count: n + 1))
        assertGGUFError("\(path): metadata tokenizer.ggml.scores: has \(n + 1) entries for \(n) tokens") {
            _ = try GGUFWriter(metadata: m).write(to: path)
            _ = try Tokenizer.load(path: path)
        }
    }

    func testRefusesBadTypesAndIDs() throws {
        let path = scratch.file("bad.gguf")
        var m = Self.spmMetadata()
        m["tokenizer.ggml.token_type"] = .array(.uint8, [])
        assertGGUFError("\(path): metadata tokenizer.ggml.token_type is a array, expected an array of int32") {
            _ = try GGUFWriter(metadata: m).write(to: path)
            _ = try Tokenizer.load(path: path)
        }
        m = Self.spmMetadata()
        let n = m.array("tokenizer.ggml.tokens")!.count
        m["tokenizer.ggml.eos_token_id"] = .uint32(UInt32(n))
        assertGGUFError("\(path): metadata tokenizer.ggml.eos_token_id: token id \(n) is outside the vocabulary of \(n) tokens") {
            _ = try GGUFWriter(metadata: m).write(to: path)
            _ = try Tokenizer.load(path: path)
        }
        m = Self.spmMetadata()
        var tokens = m.strings("tokenizer.ggml.tokens")!
        tokens[3] = "<0xZZ>"
        m["tokenizer.ggml.tokens"] = .array(.string, tokens.map { .string($0) })
        assertGGUFError("\(path): metadata tokenizer.ggml.token_type[3]: token 3 \"<0xZZ>\" has type byte but is not <0xXX>") {
            _ = try GGUFWriter(metadata: m).write(to: path)
            _ = try Tokenizer.load(path: path)
        }
        m = Self.spmMetadata()
        m["tokenizer.ggml.tokens"] = nil
        assertGGUFError("\(path): metadata tokenizer.ggml.tokens is missing") {
            _ = try GGUFWriter(metadata: m).write(to: path)
            _ = try Tokenizer.load(path: path)
        }
    }

    /// A GGUF file of metadata alone (as llama.cpp's vocabulary files are) opens, with no tensors.
    func testAMetadataOnlyFileOpens() throws {
        let path = scratch.file("meta.gguf")
        _ = try GGUFWriter(metadata: Self.spmMetadata()).write(to: path)
        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.tensors.count, 0)
        XCTAssertEqual(file.tensorBytes, 0)
        XCTAssertEqual(file.metadata.string("tokenizer.ggml.model"), "llama")
    }
}

extension TokenizerTests {
    /// Ids can come from a client: one outside the vocabulary decodes to U+FFFD instead of stopping the process.
    func testIdsOutsideTheVocabularyDecodeToTheReplacementCharacter() throws {
        let tokenizer = try self.tokenizer(Self.spmMetadata())
        let n = Int32(tokenizer.vocabularySize)
        XCTAssertEqual(tokenizer.piece(for: n), [0xEF, 0xBF, 0xBD])
        XCTAssertEqual(tokenizer.piece(for: -1), [0xEF, 0xBF, 0xBD])
        XCTAssertEqual(tokenizer.text(of: Int32.max), "\u{FFFD}")
        XCTAssertTrue(tokenizer.decode([n, -5]).allSatisfy { $0 == "\u{FFFD}" })
    }
}
