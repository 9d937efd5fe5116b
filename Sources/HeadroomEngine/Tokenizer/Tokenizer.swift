// A model's own tokenizer, read from its GGUF metadata: SentencePiece-style (`llama`) or byte-level BPE
// (`gpt2`) vocabularies, encoding and decoding token for token as llama.cpp does.
import Foundation

/// The tokenizer stored in a GGUF file's `tokenizer.ggml.*` metadata. Construction checks the metadata
/// and refuses what it cannot use exactly (an unknown model or pre-tokenizer, missing or dangling merges,
/// arrays whose lengths disagree) with a `GGUFError` naming the file and key; after that, encoding and
/// decoding cannot fail. A value type: it copies what it needs, so the file may be closed.
public struct Tokenizer: Sendable {
    /// The algorithm: SentencePiece-style merges by score, or byte-level BPE merges by rank.
    public enum Kind: String, Sendable {
        case spm, bpe
    }

    let vocab: TokenVocabulary

    /// Reads the tokenizer of an open GGUF file.
    public init(gguf: GGUFFile) throws {
        try self.init(metadata: gguf.metadata, path: gguf.path)
    }

    /// Reads a tokenizer from metadata; `path` names the file in errors.
    public init(metadata: GGUFMetadata, path: String) throws {
        vocab = try TokenVocabulary(metadata: metadata, path: path)
    }

    /// Opens the GGUF file at `path` and reads its tokenizer.
    public static func load(path: String) throws -> Tokenizer {
        try Tokenizer(gguf: GGUFFile(path: path))
    }

    public var kind: Kind { vocab.kind == .spm ? .spm : .bpe }
    /// `tokenizer.ggml.model` as stored: "llama" or "gpt2".
    public var model: String { vocab.model }
    /// `tokenizer.ggml.pre` for BPE ("default" when the key is absent); nil for SPM, which has none.
    public var preTokenizer: String? { vocab.preName }
    /// The number of tokens; every id is in `0..<vocabularySize`.
    public var vocabularySize: Int { vocab.texts.count }
    public var bos: Int32? { vocab.bos }
    public var eos: Int32? { vocab.eos }
    public var unknown: Int32? { vocab.unknown }
    /// Whether `encode(_:addSpecial: true)` starts with `bos` (`tokenizer.ggml.add_bos_token`, else the model's default).
    public var addBOS: Bool { vocab.addBOS }
    /// Whether `encode(_:addSpecial: true)` ends with `eos` (`tokenizer.ggml.add_eos_token`, else false).
    public var addEOS: Bool { vocab.addEOS }
    /// Tokens that end generation: EOS, end-of-turn and the others llama.cpp recognises.
    public var endOfGeneration: Set<Int32> { vocab.endOfGeneration }

    /// The token's text exactly as the vocabulary stores it (with "▁" or GPT-2 byte characters).
    /// An id outside `0..<vocabularySize` reads as U+FFFD (ids can come from a client; none may stop the process).
    public func text(of id: Int32) -> String {
        guard id >= 0 && Int(id) < vocab.texts.count else { return "\u{FFFD}" }
        return String(decoding: vocab.texts[Int(id)], as: UTF8.self)
    }

    // MARK: - Encoding

    /// The token ids of `text`. `addSpecial` adds BOS/EOS as `addBOS`/`addEOS` say; `parseSpecial` lets the
    /// text name control tokens (e.g. "<|eot_id|>") — user-defined tokens are matched either way, as in
    /// llama.cpp. llama.cpp's tokenizer tests use `addSpecial: false, parseSpecial: false`.
    public func encode(_ text: String, addSpecial: Bool = true, parseSpecial: Bool = false) -> [Int32] {
        let bytes = Array(text.utf8)
        var output: [Int32] = []
        output.reserveCapacity(bytes.count / 3 + 2)
        let fragments = bytes.isEmpty ? [] : partition(bytes, parseSpecial: parseSpecial)
        if addSpecial && vocab.addBOS, let bos = vocab.bos { output.append(bos) }
        switch vocab.kind {
        case .spm:
            var afterSpecial = true  // the text's start counts as after a special token: it gets the prefix space
            for fragment in fragments {
                switch fragment {
                case let .text(range):
                    var piece: [UInt8] = vocab.addSpacePrefix && afterSpecial ? [0x20] : []
                    piece.append(contentsOf: bytes[range])
                    encodeSentencePiece(Self.escapeSpaces(piece), into: &output)
                    afterSpecial = false
                case let .token(id):
                    output.append(id)
                    afterSpecial = true
                }
            }
        case .bpe:
            for fragment in fragments {
                switch fragment {
                case let .text(range): encodeBytePair(Array(bytes[range]), into: &output)
                case let .token(id): output.append(id)
                }
            }
        }
        if addSpecial && vocab.addEOS, let eos = vocab.eos { output.append(eos) }
        return output
    }

    enum Fragment: Equatable {
        case text(Range<Int>)
        case token(Int32)
    }

    /// Cuts `bytes` at every occurrence of a special token, longest tokens first (llama.cpp's
    /// tokenizer_st_partition): control and unknown tokens only when `parseSpecial`, user-defined always.
    func partition(_ bytes: [UInt8], parseSpecial: Bool) -> [Fragment] {
        var fragments: [Fragment] = [.text(0..<bytes.count)]
        for id in vocab.specialTokens {
            let attributes = vocab.attributes[Int(id)]
            if !parseSpecial && !attributes.isDisjoint(with: [.control, .unknown]) { continue }
            let token = vocab.texts[Int(id)]
            var next: [Fragment] = []
            next.reserveCapacity(fragments.count)
            for fragment in fragments {
                guard case var .text(range) = fragment else {
                    next.append(fragment)
                    continue
                }
                while true {
                    guard let match = Self.find(token, in: bytes, range) else {
                        if !range.isEmpty { next.append(.text(range)) }
                        break
                    }
                    var leftEnd = match
                    if attributes.contains(.lstrip) {
                        while leftEnd > range.lowerBound && Self.isCSpace(bytes[leftEnd - 1]) { leftEnd -= 1 }
                    }
                    if leftEnd > range.lowerBound { next.append(.text(range.lowerBound..<leftEnd)) }
                    next.append(.token(id))
                    var rightStart = match + token.count
                    guard rightStart < range.upperBound else { break }
                    if attributes.contains(.rstrip) {
                        while rightStart < range.upperBound && Self.isCSpace(bytes[rightStart]) { rightStart += 1 }
                    }
                    range = rightStart..<range.upperBound
                }
            }
            fragments = next
        }
        return fragments
    }

    /// The first occurrence of `needle` wholly inside `range` of `haystack`.
    static func find(_ needle: [UInt8], in haystack: [UInt8], _ range: Range<Int>) -> Int? {
        guard let first = needle.first, needle.count <= range.count else { return nil }
        var i = range.lowerBound
        let last = range.upperBound - needle.count
        while i <= last {
            if haystack[i] == first {
                var j = 1
                while j < needle.count && haystack[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }

    /// C's isspace in the "C" locale.
    static func isCSpace(_ b: UInt8) -> Bool { b == 0x20 || (b >= 0x09 && b <= 0x0D) }

    /// SentencePiece writes spaces as U+2581 "▁".
    static func escapeSpaces(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 2)
        for b in bytes {
            if b == 0x20 { out.append(contentsOf: [0xE2, 0x96, 0x81]) } else { out.append(b) }
        }
        return out
    }

    // MARK: - Decoding

    /// The bytes token `id` stands for. A piece can be part of a UTF-8 character (byte tokens), so stream
    /// output by collecting pieces and decoding complete characters. Control and unknown tokens render as
    /// their text when `renderSpecial`, else as nothing; user-defined tokens always render.
    /// An id outside `0..<vocabularySize` is the bytes of U+FFFD (ids can come from a client; none may stop the process).
    public func piece(for id: Int32, renderSpecial: Bool = true) -> [UInt8] {
        guard id >= 0 && Int(id) < vocab.texts.count else { return [0xEF, 0xBF, 0xBD] }
        let attributes = vocab.attributes[Int(id)]
        let text = vocab.texts[Int(id)]
        if !renderSpecial && !attributes.isDisjoint(with: [.unknown, .control]) { return [] }
        if !attributes.isDisjoint(with: [.unknown, .control, .userDefined]) { return text }
        if attributes.contains(.normal) {
            switch vocab.kind {
            case .spm: return Self.unescapeSpaces(text)
            case .bpe: return Self.byteLevelDecode(text)
            }
        }
        if attributes.contains(.byte), let byte = TokenVocabulary.byteValue(text) { return [byte] }
        return []  // unused and undefined tokens have no text
    }

    /// The text of `ids`, as llama.cpp's llama_detokenize: the prefix space SPM added is dropped from the
    /// first piece, and for BPE vocabularies that ask for it, spaces before punctuation and contractions
    /// are cleaned up. `removeSpecial` drops a leading BOS and trailing EOS that `encode` would add.
    /// Bytes that are not valid UTF-8 become U+FFFD.
    public func decode(_ ids: [Int32], removeSpecial: Bool = false, renderSpecial: Bool = true) -> String {
        String(decoding: decodeBytes(ids, removeSpecial: removeSpecial, renderSpecial: renderSpecial), as: UTF8.self)
    }

    /// `decode`'s bytes, before they are read as UTF-8.
    public func decodeBytes(_ ids: [Int32], removeSpecial: Bool = false, renderSpecial: Bool = true) -> [UInt8] {
        var tokens = ids[...]
        var removeSpace = vocab.addSpacePrefix
        if removeSpecial && vocab.addBOS, let first = tokens.first, first == vocab.bos {
            removeSpace = false
            tokens = tokens.dropFirst()
        }
        if removeSpecial && vocab.addEOS, let last = tokens.last, last == vocab.eos {
            tokens = tokens.dropLast()
        }
        var text: [UInt8] = []
        for id in tokens {
            var p = piece(for: id, renderSpecial: renderSpecial)[...]
            if removeSpace, p.first == 0x20 { p = p.dropFirst() }
            removeSpace = false
            text.append(contentsOf: p)
        }
        if vocab.cleanSpaces { Self.cleanSpaces(&text) }
        return text
    }

    static func unescapeSpaces(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if i + 2 < bytes.count && bytes[i] == 0xE2 && bytes[i + 1] == 0x96 && bytes[i + 2] == 0x81 {
                out.append(0x20)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }

    /// GPT-2 characters back to bytes; a character outside the mapping is written as llama.cpp writes it,
    /// "[UNK_BYTE_0x…<token>]".
    static func byteLevelDecode(_ text: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        for scalar in String(decoding: text, as: UTF8.self).unicodeScalars {
            if let byte = ByteLevelEncoding.decoded[scalar.value] {
                out.append(byte)
            } else {
                out.append(contentsOf: "[UNK_BYTE_0x".utf8)
                for b in String(scalar).utf8 { out.append(contentsOf: String(format: "%02x", b).utf8) }
                out.append(contentsOf: text)
                out.append(contentsOf: "]".utf8)
            }
        }
        return out
    }

    /// llama.cpp's clean_spaces passes, in place as it does them: " ?", " !", " .", " ," lose the space;
    /// a lone apostrophe between spaces loses both; " 's", " 'm", " 're", " 've" lose the space.
    static func cleanSpaces(_ text: inout [UInt8]) {
        let space: UInt8 = 0x20, quote: UInt8 = 0x27
        func char(_ c: Character) -> UInt8 { c.asciiValue! }

        // Pass 1: space before ? ! . ,
        var count = text.count
        var total = count > 0 ? 1 : 0
        var i = 1
        while i < count {
            let x = text[i]
            if text[i - 1] == space && (x == char("?") || x == char("!") || x == char(".") || x == char(",")) { total -= 1 }
            text[total] = x
            total += 1
            i += 1
        }
        // Pass 2: a single apostrophe between spaces.
        count = total
        total = count > 0 ? 1 : 0
        i = 1
        while i < count {
            let x = text[i]
            if x == quote && i + 1 < count && text[i - 1] == space && text[i + 1] == space {
                total -= 1
                i += 1
                text[i] = 0
            }
            text[total] = x
            total += 1
            i += 1
        }
        // Pass 3: contractions.
        count = total
        total = count > 0 ? 1 : 0
        i = 1
        while i < count {
            let x = text[i]
            if text[i - 1] == space && x == quote && i + 1 < count {
                let x1 = text[i + 1]
                if x1 == char("s") || x1 == char("m") {
                    total -= 1
                } else if x1 != char("t") && x1 != char("d") && i + 2 < count {
                    let x2 = text[i + 2]
                    if (x1 == char("r") && x2 == char("e")) || (x1 == char("v") && x2 == char("e")) { total -= 1 }
                }
            }
            text[total] = x
            total += 1
            i += 1
        }
        text.removeSubrange(total...)
    }
}
