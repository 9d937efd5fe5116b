// Prompts a run sends: synthetic token ids of an exact length, synthetic text of about a length, or a
// dataset's. Request i's prompt depends only on the seed and i, so a run is repeated exactly by its seed.
import Foundation
import HeadroomCore
import HeadroomKernels

/// Which prompts a run sends, as the `prompt_kind` fact names them.
public enum PromptKind: String, Hashable, Sendable, Codable {
    case tokenIDs = "token_ids"
    case text
    case dataset
}

/// The user's choice of synthetic prompts (`--prompt-kind`).
public enum PromptChoice: String, Hashable, Sendable, CaseIterable {
    /// Token ids (exact length; the completions API only).
    case tokenIDs = "token-ids"
    /// Text of approximately the length.
    case text
    /// Token ids when the endpoint accepts them: one probe request with token ids (not counted in any point);
    /// a 400 answer switches to text. Always text on the chat API.
    case auto
}

/// Where request i's prompt and lengths come from.
public struct PromptSource: Sendable {
    /// What is sent: token ids, text, or the dataset's entries.
    public let kind: PromptKind
    /// Synthetic prompt length (tokens), used unless a dataset or trace entry gives one.
    public let promptTokens: Int
    /// `max_tokens`, unless a dataset or trace entry gives one.
    public let outputTokens: Int
    /// Synthetic token ids are drawn uniformly from this range (default [100, 1000): ordinary vocabulary ids,
    /// clear of the special tokens most vocabularies put first).
    public let tokenRange: Range<Int32>
    public let seed: UInt64
    /// The dataset's entries (used in turn, wrapping around) when `kind` is `.dataset`.
    public let dataset: [LoadDatasetEntry]
    /// Whether synthetic parts of dataset entries (`prompt_tokens`) are sent as text instead of token ids.
    public let datasetLengthsAsText: Bool

    /// Synthetic prompts: `kind` `.tokenIDs` or `.text`.
    public init(kind: PromptKind, promptTokens: Int, outputTokens: Int, tokenRange: Range<Int32> = 100..<1000, seed: UInt64 = 1) {
        precondition(kind != .dataset, "a dataset source is made with init(dataset:)")
        self.kind = kind; self.promptTokens = promptTokens; self.outputTokens = outputTokens
        self.tokenRange = tokenRange; self.seed = seed; dataset = []; datasetLengthsAsText = kind == .text
    }

    /// A dataset's prompts; `outputTokens` for entries without their own; entries given by length are sent as
    /// token ids, or as text when `lengthsAsText`.
    public init(dataset: [LoadDatasetEntry], outputTokens: Int, lengthsAsText: Bool, tokenRange: Range<Int32> = 100..<1000, seed: UInt64 = 1) {
        precondition(!dataset.isEmpty, "a dataset has at least one entry")
        kind = .dataset; promptTokens = 0; self.outputTokens = outputTokens; self.tokenRange = tokenRange; self.seed = seed
        self.dataset = dataset; datasetLengthsAsText = lengthsAsText
    }

    /// Request `index`'s prompt; `promptTokens`/`outputTokens` override the source's lengths (a trace entry's).
    public func request(_ index: Int, promptTokens: Int? = nil, outputTokens: Int? = nil) -> LoadRequestSpec {
        if kind == .dataset {
            let entry = dataset[index % dataset.count]
            let output = outputTokens ?? entry.outputTokens ?? self.outputTokens
            switch entry.prompt {
            case .text(let t): return LoadRequestSpec(prompt: .text(t), promptTokens: 0, outputTokens: output)
            case .tokens(let n): return synthetic(index, length: n, output: output, asText: datasetLengthsAsText)
            }
        }
        return synthetic(index, length: promptTokens ?? self.promptTokens, output: outputTokens ?? self.outputTokens, asText: kind == .text)
    }

    func synthetic(_ index: Int, length: Int, output: Int, asText: Bool) -> LoadRequestSpec {
        var rng = LoadRandom(seed: seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        if asText {
            return LoadRequestSpec(prompt: .text(Self.text(length, rng: &rng)), promptTokens: length, outputTokens: output)
        }
        let width = UInt64(tokenRange.upperBound - tokenRange.lowerBound)
        let ids = (0..<length).map { _ in tokenRange.lowerBound + Int32(rng.next() % width) }
        return LoadRequestSpec(prompt: .tokenIDs(ids), promptTokens: length, outputTokens: output)
    }

    /// About `tokens` tokens of text: that many common English words, each one token with its leading space in
    /// the BPE vocabularies of Llama, Mistral, Qwen and GPT (so the count is approximate, usually within a few
    /// percent).
    static func text(_ tokens: Int, rng: inout LoadRandom) -> String {
        var words: [String] = []
        words.reserveCapacity(tokens)
        for _ in 0..<tokens { words.append(commonWords[Int(rng.next() % UInt64(commonWords.count))]) }
        return words.joined(separator: " ")
    }

    static let commonWords = [
        "the", "time", "people", "year", "way", "day", "man", "thing", "woman", "life", "child", "world", "school",
        "state", "family", "student", "group", "country", "problem", "hand", "part", "place", "case", "week",
        "company", "system", "program", "question", "work", "government", "number", "night", "point", "home",
        "water", "room", "mother", "area", "money", "story", "fact", "month", "lot", "right", "study", "book",
        "eye", "job", "word", "business", "issue", "side", "kind", "head", "house", "service", "friend", "father",
        "power", "hour", "game", "line", "end", "member", "law", "car", "city", "name", "team", "minute", "idea",
        "body", "information", "back", "parent", "face", "level", "office", "door", "health", "person", "art",
        "war", "history", "party", "result", "change", "morning", "reason", "research", "girl", "guy", "moment",
        "air", "teacher", "force", "education", "good", "new", "first", "last", "long", "great", "little", "own",
        "other", "old", "big", "high", "different", "small", "large", "next", "early", "young", "important",
    ]
}

/// The load generator's randomness: the kernels' SplitMix64, seeded, so prompts and Poisson gaps repeat by seed.
typealias LoadRandom = SplitMix64

extension SplitMix64 {
    /// A double in (0, 1] (never 0, so that −log of it is finite).
    mutating func nextOpenUnit() -> Double { (Double(next() >> 11) + 1) / 9_007_199_254_740_992 }
}
