// How a byte-level BPE vocabulary cuts text into words before merging: the regular expressions llama.cpp
// runs for each `tokenizer.ggml.pre`, written out by hand as matchers over code points, the way llama.cpp's
// own unicode.cpp does for them (no regex engine: Swift's is slow on Linux and \p{…} is not what is needed).

/// A sequence of splitting stages; each stage cuts every word the previous one produced.
struct PreTokenizer: Sendable, Equatable {
    /// One regular expression of llama.cpp's, by what it matches.
    enum Stage: Sendable, Equatable {
        /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` (GPT-2)
        case gpt2
        /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+` (Llama 3)
        case llama3
        /// As `llama3`, but `\p{N}` one digit at a time (Qwen 2).
        case qwen2
        /// `\p{N}`: every number character on its own.
        case eachNumber
        /// `\p{N}+`: runs of number characters.
        case numberRuns
        /// `[\p{P}\$\+<=>\^~\|]+`: runs of punctuation and those ASCII symbols.
        case punctuationRuns
        /// `[0-9][0-9][0-9]`: ASCII digits in threes from the left.
        case asciiDigitTriples
    }

    let stages: [Stage]

    /// The lengths, in code points, of the words `codepoints` splits into, in order; they sum to its count.
    func split(_ codepoints: [UInt32]) -> [Int] {
        var flags = [CodepointFlags]()
        flags.reserveCapacity(codepoints.count)
        for cp in codepoints { flags.append(UnicodeClasses.flags(cp)) }
        var lengths = codepoints.isEmpty ? [] : [codepoints.count]
        for stage in stages {
            var next: [Int] = []
            next.reserveCapacity(lengths.count * 2)
            var start = 0
            for length in lengths {
                var word = Word(cps: codepoints, flags: flags, start: start, end: start + length)
                word.split(by: stage, into: &next)
                start += length
            }
            lengths = next
        }
        return lengths
    }
}

/// One word being cut: positions are indices into the whole text, and reads outside `start..<end` see
/// nothing (code point `outside`, no flags), as a regex confined to the word would.
private struct Word {
    let cps: [UInt32]
    let flags: [CodepointFlags]
    let start: Int
    let end: Int
    private var emittedUpTo: Int

    static let outside: UInt32 = 0xFFFF_FFFF

    init(cps: [UInt32], flags: [CodepointFlags], start: Int, end: Int) {
        self.cps = cps
        self.flags = flags
        self.start = start
        self.end = end
        emittedUpTo = start
    }

    func cp(_ i: Int) -> UInt32 { i >= start && i < end ? cps[i] : Self.outside }
    func flag(_ i: Int) -> CodepointFlags { i >= start && i < end ? flags[i] : [] }

    /// Ends a piece at `position` (nothing when empty); returns its length.
    @discardableResult
    mutating func emit(upTo position: Int, into out: inout [Int]) -> Int {
        let length = position - emittedUpTo
        if length > 0 { out.append(length) }
        emittedUpTo = position
        return length
    }

    mutating func split(by stage: PreTokenizer.Stage, into out: inout [Int]) {
        switch stage {
        case .gpt2: splitGPT2(into: &out)
        case .llama3: splitLlama3(digitsPerWord: 3, into: &out)
        case .qwen2: splitLlama3(digitsPerWord: 1, into: &out)
        case .eachNumber: splitRuns(of: Self.isRegexNumber, single: true, into: &out)
        case .numberRuns: splitRuns(of: Self.isRegexNumber, single: false, into: &out)
        case .punctuationRuns: splitRuns(of: Self.isRegexPunctuation, single: false, into: &out)
        case .asciiDigitTriples: splitDigitTriples(into: &out)
        }
    }

    private static func ascii(_ c: Character) -> UInt32 { c.unicodeScalars.first!.value }
    private static let apostrophe = ascii("'"), space = ascii(" "), cr = ascii("\r"), lf = ascii("\n")

    /// The contraction at `pos` (after an apostrophe), if any: its length including the apostrophe.
    /// `caseInsensitive` folds ASCII capitals only; no other code point lowercases to one of these letters.
    private func contractionLength(at pos: Int, caseInsensitive: Bool) -> Int? {
        guard cp(pos) == Self.apostrophe, pos + 1 < end else { return nil }
        func lower(_ c: UInt32) -> UInt32 { caseInsensitive && c >= 0x41 && c <= 0x5A ? c + 0x20 : c }
        let next = lower(cp(pos + 1))
        if "stmd".unicodeScalars.contains(where: { $0.value == next }) { return 2 }
        if pos + 2 < end {
            let pair = (next, lower(cp(pos + 2)))
            for suffix in ["re", "ve", "ll"] {
                let s = Array(suffix.unicodeScalars)
                if pair == (s[0].value, s[1].value) { return 3 }
            }
        }
        return nil
    }

    private static func isWordBreaking(_ f: CodepointFlags) -> Bool {
        f.isWhitespace || f.isLetter || f.isNumber
    }

    /// GPT-2's pattern, branch by branch in the order the alternation tries them.
    private mutating func splitGPT2(into out: inout [Int]) {
        var pos = start
        while pos < end {
            let c = cp(pos)
            if let n = contractionLength(at: pos, caseInsensitive: false) {
                pos += emit(upTo: pos + n, into: &out)
                continue
            }
            let skip = c == Self.space ? 1 : 0
            var f = c == Self.space ? flag(pos + 1) : flag(pos)
            // ` ?\p{L}+`, ` ?\p{N}+`
            if f.isLetter || f.isNumber {
                let letters = f.isLetter
                pos += skip
                while letters ? f.isLetter : f.isNumber {
                    pos += 1
                    f = flag(pos)
                }
                emit(upTo: pos, into: &out)
                continue
            }
            // ` ?[^\s\p{L}\p{N}]+`
            if !Self.isWordBreaking(f) && f.rawValue != 0 {
                pos += skip
                while !Self.isWordBreaking(f) && f.rawValue != 0 {
                    pos += 1
                    f = flag(pos)
                }
                emit(upTo: pos, into: &out)
                continue
            }
            var spaces = 0
            while flag(pos + spaces).isWhitespace { spaces += 1 }
            // `\s+(?!\S)`: leave the last space to start the next word, unless the run ends the text.
            if spaces > 1 && cp(pos + spaces) != Self.outside {
                pos += spaces - 1
                emit(upTo: pos, into: &out)
                continue
            }
            // `\s+`
            if spaces > 0 {
                pos += spaces
                emit(upTo: pos, into: &out)
                continue
            }
            pos += 1
            emit(upTo: pos, into: &out)
        }
    }

    /// Llama 3's pattern (`digitsPerWord` 3), or Qwen 2's (1).
    private mutating func splitLlama3(digitsPerWord: Int, into out: inout [Int]) {
        var pos = start
        while pos < end {
            let c = cp(pos)
            let f = flag(pos)
            if let n = contractionLength(at: pos, caseInsensitive: true) {
                pos += emit(upTo: pos + n, into: &out)
                continue
            }
            // `[^\r\n\p{L}\p{N}]?\p{L}+`
            if !(c == Self.cr || c == Self.lf || f.isNumber) && (f.isLetter || flag(pos + 1).isLetter) {
                pos += 1
                while flag(pos).isLetter { pos += 1 }
                emit(upTo: pos, into: &out)
                continue
            }
            // `\p{N}{1,3}` (or `\p{N}`)
            if f.isNumber {
                var groupStart = pos
                while flag(pos).isNumber {
                    pos += 1
                    if pos - groupStart >= digitsPerWord {
                        emit(upTo: pos, into: &out)
                        groupStart = pos
                    }
                }
                emit(upTo: pos, into: &out)
                continue
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*` (llama.cpp tests the flags at `pos`, not after the space, for entry)
            var f2 = c == Self.space ? flag(pos + 1) : f
            if !Self.isWordBreaking(f2) && f.rawValue != 0 {
                if c == Self.space { pos += 1 }
                while !Self.isWordBreaking(f2) && f2.rawValue != 0 {
                    pos += 1
                    f2 = flag(pos)
                }
                while cp(pos) == Self.cr || cp(pos) == Self.lf { pos += 1 }
                emit(upTo: pos, into: &out)
                continue
            }
            var spaces = 0
            var afterLastNewline = 0
            while flag(pos + spaces).isWhitespace {
                let c2 = cp(pos + spaces)
                if c2 == Self.cr || c2 == Self.lf { afterLastNewline = pos + spaces + 1 }
                spaces += 1
            }
            // `\s*[\r\n]+`
            if afterLastNewline > 0 {
                pos = afterLastNewline
                emit(upTo: pos, into: &out)
                continue
            }
            // `\s+(?!\S)`
            if spaces > 1 && cp(pos + spaces) != Self.outside {
                pos += spaces - 1
                emit(upTo: pos, into: &out)
                continue
            }
            // `\s+`
            if spaces > 0 {
                pos += spaces
                emit(upTo: pos, into: &out)
                continue
            }
            pos += 1
            emit(upTo: pos, into: &out)
        }
    }

    // The remaining stages are the ones llama.cpp hands to std::regex over a "collapsed" copy of the text,
    // in which every non-ASCII code point stands as one byte for its category (whitespace first). So a
    // class such as \p{N} matches ASCII by the listed ranges and other code points by category alone.

    /// `\p{N}` as llama.cpp's collapsed regex sees it.
    static func isRegexNumber(_ cp: UInt32, _ f: CodepointFlags) -> Bool {
        cp < 128 ? (cp >= 0x30 && cp <= 0x39) : (!f.isWhitespace && f.category == .number)
    }

    /// `[\p{P}\$\+<=>\^~\|]` as llama.cpp's collapsed regex sees it: every ASCII punctuation or symbol
    /// character but the backtick, and non-ASCII punctuation.
    static func isRegexPunctuation(_ cp: UInt32, _ f: CodepointFlags) -> Bool {
        if cp < 128 {
            return cp >= 0x21 && cp <= 0x7E && cp != 0x60 && !(cp >= 0x30 && cp <= 0x39)
                && !(cp >= 0x41 && cp <= 0x5A) && !(cp >= 0x61 && cp <= 0x7A)
        }
        return !f.isWhitespace && f.category == .punctuation
    }

    /// Every match of a one-class pattern (`single`: one character; else a maximal run) becomes a word,
    /// and so does every stretch between matches.
    private mutating func splitRuns(of matches: (UInt32, CodepointFlags) -> Bool, single: Bool, into out: inout [Int]) {
        var pos = start
        while pos < end {
            guard matches(cps[pos], flags[pos]) else {
                pos += 1
                continue
            }
            emit(upTo: pos, into: &out)
            pos += 1
            if !single {
                while pos < end && matches(cps[pos], flags[pos]) { pos += 1 }
            }
            emit(upTo: pos, into: &out)
        }
        emit(upTo: end, into: &out)
    }

    private mutating func splitDigitTriples(into out: inout [Int]) {
        func digit(_ i: Int) -> Bool { i < end && cps[i] >= 0x30 && cps[i] <= 0x39 }
        var pos = start
        while pos < end {
            if digit(pos) && digit(pos + 1) && digit(pos + 2) {
                emit(upTo: pos, into: &out)
                pos += 3
                emit(upTo: pos, into: &out)
            } else {
                pos += 1
            }
        }
        emit(upTo: end, into: &out)
    }
}

/// What a `tokenizer.ggml.pre` name means to llama.cpp: the stages, and the options that come with it.
struct PreTokenizerFamily: Sendable {
    let pre: PreTokenizer
    /// Decoding removes the spaces tokenization put before punctuation and contractions.
    let cleanSpaces: Bool
    /// A word that is itself a token is taken whole, without merging (Llama 3).
    let ignoreMerges: Bool
    /// The BOS default before `tokenizer.ggml.add_bos_token` is read.
    let addBOS: Bool

    /// The family for `name`, or nil when Headroom does not implement it. A missing key means "default".
    static func named(_ name: String) -> PreTokenizerFamily? {
        for (names, family) in table where names.contains(name) { return family }
        return nil
    }

    /// Every name `named` accepts, for error messages.
    static var supportedNames: [String] { table.flatMap(\.names) }

    private static let defaultStages: [PreTokenizer.Stage] = [.punctuationRuns, .gpt2, .numberRuns, .asciiDigitTriples]

    // The names and options as llama.cpp's llama_vocab::impl::load assigns them, for the families whose
    // expressions are implemented above.
    private static let table: [(names: [String], family: PreTokenizerFamily)] = [
        (["default"], .init(stages: defaultStages, clean: true)),
        (["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"],
         .init(stages: [.llama3], clean: true, ignoreMerges: true, addBOS: true)),
        (["dbrx", "smaug-bpe"], .init(stages: [.llama3], clean: true)),
        (["gpt-2", "phi-2", "gigachat", "a.x-4.0", "mellum", "exaone4", "mpt", "olmo", "jais"],
         .init(stages: [.gpt2], clean: true)),
        (["trillion", "granite-docling"], .init(stages: [.gpt2], clean: false)),
        (["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open"], .init(stages: [.qwen2], clean: false)),
        (["stablelm2", "megrez"], .init(stages: [.qwen2], clean: true)),
        (["smollm", "command-r"], .init(stages: [.eachNumber, .gpt2], clean: false)),
        (["starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"], .init(stages: [.eachNumber, .gpt2], clean: true)),
    ]

    private init(stages: [PreTokenizer.Stage], clean: Bool, ignoreMerges: Bool = false, addBOS: Bool = false) {
        pre = PreTokenizer(stages: stages)
        cleanSpaces = clean
        self.ignoreMerges = ignoreMerges
        self.addBOS = addBOS
    }
}
