// The vocabulary of a GGUF tokenizer, read and checked from `tokenizer.ggml.*` metadata: token texts,
// scores, attributes, BPE merges, special-token ids and the options llama.cpp derives from them.
import Foundation

/// llama.cpp's per-token attributes (`llama_token_attr`), derived from `tokenizer.ggml.token_type` and
/// then adjusted by name the way llama.cpp adjusts them.
struct TokenAttributes: OptionSet, Sendable {
    let rawValue: UInt16
    static let unknown = TokenAttributes(rawValue: 1 << 0)
    static let unused = TokenAttributes(rawValue: 1 << 1)
    static let normal = TokenAttributes(rawValue: 1 << 2)
    static let control = TokenAttributes(rawValue: 1 << 3)
    static let userDefined = TokenAttributes(rawValue: 1 << 4)
    static let byte = TokenAttributes(rawValue: 1 << 5)
    /// Whitespace before the token is dropped when it is matched in text.
    static let lstrip = TokenAttributes(rawValue: 1 << 7)
    /// Whitespace after the token is dropped when it is matched in text.
    static let rstrip = TokenAttributes(rawValue: 1 << 8)

    /// From a GGUF token type: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte; any
    /// other value (0 included) is "undefined", no attribute, as in llama.cpp.
    init(tokenType: Int) {
        switch tokenType {
        case 1: self = .normal
        case 2: self = .unknown
        case 3: self = .control
        case 4: self = .userDefined
        case 5: self = .unused
        case 6: self = .byte
        default: self = []
        }
    }

    init(rawValue: UInt16) { self.rawValue = rawValue }
}

/// Everything read from the metadata, checked; `Tokenizer` adds the algorithms.
struct TokenVocabulary: Sendable {
    enum Kind: Sendable { case spm, bpe }

    var kind: Kind
    var model: String
    var preName: String?
    var family: PreTokenizerFamily?
    var texts: [[UInt8]] = []
    var ids: [[UInt8]: Int32] = [:]
    var scores: [Float] = []
    var attributes: [TokenAttributes] = []
    /// (left id << 32 | right id) → rank (its index in `tokenizer.ggml.merges`); BPE only.
    var merges: [UInt64: Int32] = [:]
    var bos: Int32?
    var eos: Int32?
    var unknown: Int32?
    var addBOS: Bool
    var addEOS: Bool
    var addSpacePrefix: Bool
    var cleanSpaces: Bool
    var endOfGeneration: Set<Int32> = []
    /// The tokens matched in text before tokenizing (control, user-defined, unknown), longest first.
    var specialTokens: [Int32] = []

    static let modelKey = "tokenizer.ggml.model", preKey = "tokenizer.ggml.pre"
    static let tokensKey = "tokenizer.ggml.tokens", scoresKey = "tokenizer.ggml.scores"
    static let typesKey = "tokenizer.ggml.token_type", mergesKey = "tokenizer.ggml.merges"
    static let addBOSKey = "tokenizer.ggml.add_bos_token", addEOSKey = "tokenizer.ggml.add_eos_token"
    static let addPrefixKey = "tokenizer.ggml.add_space_prefix"
    static let bosKey = "tokenizer.ggml.bos_token_id", eosKey = "tokenizer.ggml.eos_token_id"
    static let unknownKey = "tokenizer.ggml.unknown_token_id"
    static let supportedModels = ["llama", "gpt2"]

    static func mergeKey(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    // swiftlint:disable:next function_body_length
    init(metadata m: GGUFMetadata, path: String) throws {
        func fail(_ key: String, _ index: Int? = nil, _ reason: String) -> GGUFError {
            GGUFError(path: path, problem: .invalidTokenizer(key: key, index: index, reason: reason))
        }

        model = try m.requireString(Self.modelKey, path: path)
        switch model {
        case "llama":
            kind = .spm
            bos = 1; eos = 2; unknown = 0
            addBOS = true; addEOS = false; addSpacePrefix = true; cleanSpaces = false
        case "gpt2":
            kind = .bpe
            let pre: String
            if let value = m[Self.preKey] {
                guard let s = value.stringValue else {
                    throw GGUFError(path: path, problem: .wrongValueType(key: Self.preKey, expected: "string", found: value.type))
                }
                pre = s
            } else {
                pre = "default"  // llama.cpp's choice too, with a warning that quality will suffer
            }
            guard let family = PreTokenizerFamily.named(pre) else {
                throw GGUFError(path: path, problem: .unsupportedTokenizer(key: Self.preKey, value: pre,
                                                                           supported: PreTokenizerFamily.supportedNames))
            }
            preName = pre
            self.family = family
            bos = 11; eos = 11; unknown = nil
            addBOS = family.addBOS; addEOS = false; addSpacePrefix = false; cleanSpaces = family.cleanSpaces
        default:
            throw GGUFError(path: path, problem: .unsupportedTokenizer(key: Self.modelKey, value: model,
                                                                       supported: Self.supportedModels))
        }
        if let v = try Self.optionalBool(m, Self.addPrefixKey, path: path) { addSpacePrefix = v }

        // Tokens, scores, types.
        guard let tokenValue = m[Self.tokensKey] else { throw GGUFError(path: path, problem: .missingKey(Self.tokensKey)) }
        guard case .array(.string, let tokenElements) = tokenValue else {
            throw GGUFError(path: path, problem: .wrongValueType(key: Self.tokensKey, expected: "an array of strings", found: tokenValue.type))
        }
        let n = tokenElements.count
        guard n > 0 else { throw fail(Self.tokensKey, nil, "the vocabulary is empty") }
        guard n <= Int(Int32.max) else { throw fail(Self.tokensKey, nil, "\(n) tokens do not fit 32-bit ids") }

        scores = [Float](repeating: 0, count: n)
        if let value = m[Self.scoresKey] {
            guard case .array(let type, let elements) = value, type == .float32 || type == .int32 else {
                throw GGUFError(path: path, problem: .wrongValueType(key: Self.scoresKey, expected: "an array of float32 or int32", found: value.type))
            }
            guard elements.count == n else {
                throw fail(Self.scoresKey, nil, "has \(elements.count) entries for \(n) tokens")
            }
            for (i, e) in elements.enumerated() {
                scores[i] = e.floatValue.map(Float.init) ?? Float(e.intValue ?? 0)
            }
        }
        attributes = [TokenAttributes](repeating: .normal, count: n)
        if let value = m[Self.typesKey] {
            guard case .array(.int32, let elements) = value else {
                throw GGUFError(path: path, problem: .wrongValueType(key: Self.typesKey, expected: "an array of int32", found: value.type))
            }
            guard elements.count == n else {
                throw fail(Self.typesKey, nil, "has \(elements.count) entries for \(n) tokens")
            }
            for (i, e) in elements.enumerated() { attributes[i] = TokenAttributes(tokenType: e.intValue ?? 0) }
        }

        texts.reserveCapacity(n)
        ids.reserveCapacity(n)
        for (i, e) in tokenElements.enumerated() {
            var text = Array((e.stringValue ?? "").utf8)
            if text.isEmpty { text = Array("[EMPTY_\(i)]".utf8) }  // llama.cpp's stand-in for an empty token
            if attributes[i].contains(.byte) && Self.byteValue(text) == nil {
                throw fail(Self.typesKey, i, "token \(i) \"\(String(decoding: text, as: UTF8.self))\" has type byte but is not <0xXX>")
            }
            ids[text] = Int32(i)  // a repeated text resolves to its last id, as in llama.cpp
            texts.append(text)
        }

        if kind == .bpe { try readMerges(m, path: path) }
        try readSpecialTokens(m, path: path)
        adjustAttributesByName(m)
    }

    /// The byte a `<0xXX>` token stands for, or nil when `text` is not one.
    static func byteValue(_ text: [UInt8]) -> UInt8? {
        guard text.count == 6, text[0] == 0x3C, text[1] == 0x30, text[2] == 0x78, text[5] == 0x3E else { return nil }
        return UInt8(String(decoding: text[3..<5], as: UTF8.self), radix: 16)
    }

    private static func optionalBool(_ m: GGUFMetadata, _ key: String, path: String) throws -> Bool? {
        guard let value = m[key] else { return nil }
        guard let b = value.boolValue else {
            throw GGUFError(path: path, problem: .wrongValueType(key: key, expected: "bool", found: value.type))
        }
        return b
    }

    /// `tokenizer.ggml.merges`: "left right" per entry, rank = index; both sides must be tokens.
    private mutating func readMerges(_ m: GGUFMetadata, path: String) throws {
        let key = Self.mergesKey
        guard let value = m[key] else { throw GGUFError(path: path, problem: .missingKey(key)) }
        guard case .array(.string, let elements) = value else {
            throw GGUFError(path: path, problem: .wrongValueType(key: key, expected: "an array of strings", found: value.type))
        }
        merges.reserveCapacity(elements.count)
        for (rank, e) in elements.enumerated() {
            let merge = Array((e.stringValue ?? "").utf8)
            // llama.cpp splits at the first space after the first byte, so a left side may begin with one.
            guard merge.count > 1, let space = merge[1...].firstIndex(of: 0x20) else {
                throw GGUFError(path: path, problem: .invalidTokenizer(key: key, index: rank,
                    reason: "merge \"\(String(decoding: merge, as: UTF8.self))\" is not two tokens separated by a space"))
            }
            let left = Array(merge[..<space]), right = Array(merge[(space + 1)...])
            for side in [left, right] where ids[side] == nil {
                throw GGUFError(path: path, problem: .invalidTokenizer(key: key, index: rank,
                    reason: "merge \"\(String(decoding: merge, as: UTF8.self))\" names \"\(String(decoding: side, as: UTF8.self))\", which is not in \(Self.tokensKey)"))
            }
            let k = Self.mergeKey(ids[left]!, ids[right]!)
            if merges[k] == nil { merges[k] = Int32(rank) }  // the first rank of a repeated merge counts
        }
    }

    /// Special ids from their keys (with llama.cpp's defaults), BOS/EOS options, end-of-generation tokens,
    /// and the control flags llama.cpp adds to tokens it recognises by their text.
    private mutating func readSpecialTokens(_ m: GGUFMetadata, path: String) throws {
        let n = texts.count
        func id(_ key: String, default value: Int32?, required: Bool) throws -> Int32? {
            var result = value.flatMap { $0 >= 0 && Int($0) < n ? $0 : nil }
            guard let v = m[key] else { return result }
            guard let i = v.intValue else {
                throw GGUFError(path: path, problem: .wrongValueType(key: key, expected: "an integer", found: v.type))
            }
            if i >= 0 && i < n {
                result = Int32(i)
            } else if required {
                throw GGUFError(path: path, problem: .invalidTokenizer(key: key, index: nil,
                    reason: "token id \(i) is outside the vocabulary of \(n) tokens"))
            }  // other out-of-range ids keep the default, with llama.cpp's warning as the only trace there
            return result
        }
        bos = try id(Self.bosKey, default: bos, required: true)
        eos = try id(Self.eosKey, default: eos, required: true)
        unknown = try id(Self.unknownKey, default: unknown, required: true)
        var eot = try id("tokenizer.ggml.eot_token_id", default: nil, required: false)
        var eom = try id("tokenizer.ggml.eom_token_id", default: nil, required: false)
        // Fill-in-the-middle tokens; the deprecated prefix/suffix/middle keys override the new ones when both exist.
        var fim: [String: Int32?] = [:]
        for (kind, deprecated) in [("pre", "prefix"), ("suf", "suffix"), ("mid", "middle"), ("pad", nil), ("rep", nil), ("sep", nil)] {
            var value = try id("tokenizer.ggml.fim_\(kind)_token_id", default: nil, required: false)
            if let deprecated { value = try id("tokenizer.ggml.\(deprecated)_token_id", default: value, required: false) }
            fim[kind] = value
        }

        if let v = try Self.optionalBool(m, Self.addBOSKey, path: path) { addBOS = v }
        if let v = try Self.optionalBool(m, Self.addEOSKey, path: path) { addEOS = v }
        if addBOS && bos == nil {
            throw GGUFError(path: path, problem: .invalidTokenizer(key: Self.addBOSKey, index: nil,
                reason: "a BOS token is to be added, but the vocabulary has none (\(Self.bosKey))"))
        }
        if addEOS && eos == nil {
            throw GGUFError(path: path, problem: .invalidTokenizer(key: Self.addEOSKey, index: nil,
                reason: "an EOS token is to be added, but the vocabulary has none (\(Self.eosKey))"))
        }

        // Recognise special tokens by text where no key named them, marking them control.
        func find(_ candidates: [String]) -> Int32? {
            candidates.compactMap { ids[Array($0.utf8)] }.min()
        }
        func markControl(_ id: Int32?) { if let id { attributes[Int(id)].insert(.control) } }
        if eot == nil {
            eot = find(["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
                        "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"])
            markControl(eot)
        }
        if eom == nil { eom = find(["<|eom_id|>"]); markControl(eom) }
        let fimNames: [(String, [String])] = [
            ("pre", ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"]),
            ("suf", ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"]),
            ("mid", ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"]),
            ("pad", ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"]),
            ("rep", ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"]),
            ("sep", ["<|file_sep|>"]),
        ]
        for (kind, names) in fimNames where fim[kind]! == nil {
            let found = find(names)
            fim[kind] = found
            markControl(found)
        }

        // Control tokens named "unused" are unused.
        for i in 0..<n where attributes[i].contains(.control) && !attributes[i].contains(.unused) {
            if String(decoding: texts[i], as: UTF8.self).contains("unused") { attributes[i].insert(.unused) }
        }

        // End-of-generation tokens.
        var eog = Set([fim["pad"]!, fim["rep"]!, fim["sep"]!].compactMap { $0 })
        let eogTexts: Set<String> = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
                                     "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
                                     "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
                                     "<｜end▁of▁sentence｜>", "[e~["]
        for text in eogTexts {
            guard let id = ids[Array(text.utf8)] else { continue }
            eog.insert(id)
            attributes[Int(id)].insert(.control)
        }
        // gpt-oss: these always render.
        for text in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let id = ids[Array(text.utf8)] { attributes[Int(id)] = .userDefined }
        }
        for id in [eos, eot, eom].compactMap({ $0 }) { eog.insert(id) }
        func eogText(_ text: String) -> Int32? {
            guard let id = ids[Array(text.utf8)], eog.contains(id) else { return nil }
            return id
        }
        // o200k_harmony and solar-open: "<|end|>" is not the end there.
        if let end = eogText("<|end|>"), eogText("<|call|>") != nil || eogText("<|calls|>") != nil,
           eogText("<|return|>") != nil || eogText("<|flush|>") != nil {
            eog.remove(end)
            attributes[Int(end)] = .userDefined
        }
        // Gemma 4 and PLaMo: "</s>" is an ordinary token.
        if let s = eogText("</s>"), eogText("<|tool_response>") != nil || eogText("<|plamo:eos|>") != nil {
            eog.remove(s)
            attributes[Int(s)] = .normal
        }
        endOfGeneration = eog

        let special: TokenAttributes = [.control, .userDefined, .unknown]
        let candidates: [Int] = (0..<n).filter { !attributes[$0].isDisjoint(with: special) }
        let lengths = texts.map(\.count)
        specialTokens = candidates.sorted { (a: Int, b: Int) -> Bool in
            lengths[a] != lengths[b] ? lengths[a] > lengths[b] : a < b
        }.map { Int32($0) }
    }

    /// The strip flags llama.cpp sets on some models' special tokens, chosen by model name.
    private mutating func adjustAttributesByName(_ m: GGUFMetadata) {
        let name = String(decoding: (m.string("general.name") ?? "").utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 },
                          as: UTF8.self)
        let pre = m.string(Self.preKey) ?? ""
        let arch = m.string("general.architecture") ?? ""
        func set(_ text: String, _ flag: TokenAttributes, _ on: Bool) {
            guard let id = ids[Array(text.utf8)] else { return }
            if on { attributes[Int(id)].insert(flag) } else { attributes[Int(id)].remove(flag) }
        }
        if ["jina-v2-de", "jina-v2-es", "jina-v2-code"].contains(where: pre.contains)
            || ["nomic-bert-moe", "jina-bert-v3"].contains(where: arch.contains) {
            set("<mask>", .lstrip, true)
        } else if name.contains("phi-3") || name.contains("phi3") {
            for id in specialTokens { attributes[Int(id)].insert(.rstrip) }
            set("</s>", .rstrip, true)
            for text in ["<unk>", "<s>", "<|endoftext|>"] { set(text, .rstrip, false) }
        } else if name.contains("modern-bert") {
            set("[MASK]", .lstrip, true)
        }
    }
}
