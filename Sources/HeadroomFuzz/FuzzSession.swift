// The seeded mutation loop: pick an input from the corpus, stack a few mutations (the target's own and the
// generic ones), run the parser, and keep the input when its verdict is one not seen before. The same seed and
// corpus give the same inputs in the same order.

/// One run of the loop over one target. Not thread-safe; one per process.
public struct FuzzSession {
    public let target: FuzzTarget
    private var random: FuzzRandom
    /// Inputs mutations start from: the seeds, the corpus given, then every input that reached a new verdict.
    public private(set) var corpus: [[UInt8]]
    /// Verdict signatures seen, with how many inputs reached each.
    public private(set) var signatures: [String: Int] = [:]
    public private(set) var iterations = 0
    /// The corpus stops growing here, so that memory stays bounded on long runs.
    public var corpusLimit = 4096

    public init(target: FuzzTarget, corpus: [[UInt8]] = [], seed: UInt64) {
        self.target = target
        random = FuzzRandom(seed: seed)
        self.corpus = (target.seeds + corpus).filter { $0.count <= target.maxInputBytes }
        if self.corpus.isEmpty { self.corpus = [[]] }
    }

    /// The next input: a corpus entry (a seed one time in three, so that the valid inputs keep being mutated as
    /// the corpus grows) with one to eight mutations stacked on it, cut to `maxInputBytes`.
    public mutating func nextInput() -> [UInt8] {
        var input = random.oneIn(3) && !target.seeds.isEmpty ? random.pick(target.seeds) : random.pick(corpus)
        for _ in 0..<(1 + random.below(random.oneIn(4) ? 8 : 2)) {
            if Double(random.next() >> 11) * 0x1p-53 < target.byteMutationShare {
                ByteMutations.mutate(&input, other: random.pick(corpus), &random)
            } else {
                target.mutate(&input, &random)
            }
        }
        if input.count > target.maxInputBytes { input.removeSubrange(target.maxInputBytes...) }
        return input
    }

    /// Counts the verdict; returns true (and keeps `input`) when its signature is new.
    @discardableResult
    public mutating func record(_ input: [UInt8], _ verdict: FuzzVerdict) -> Bool {
        iterations += 1
        let signature = verdict.signature
        let seen = signatures[signature, default: 0]
        signatures[signature] = seen + 1
        guard seen == 0 else { return false }
        if corpus.count < corpusLimit { corpus.append(input) }
        return true
    }

    /// Runs `count` inputs in this process and returns the findings (inputs with `.unclear` verdicts). A crash
    /// inside the parser ends the process: the tests use this for short runs, `headroom-fuzz` runs it supervised.
    public mutating func run(iterations count: Int) -> [(input: [UInt8], verdict: FuzzVerdict)] {
        var findings: [(input: [UInt8], verdict: FuzzVerdict)] = []
        for _ in 0..<count {
            let input = nextInput()
            let verdict = target.run(input)
            record(input, verdict)
            if verdict.isFinding { findings.append((input, verdict)) }
        }
        return findings
    }
}
