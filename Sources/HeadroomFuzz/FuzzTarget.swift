// HeadroomFuzz: the parsers that read files a user hands Headroom (GGUF models, scenarios, the catalog) and the
// HTTP request bodies `headroom serve` reads, each wrapped as a fuzz target with its seeds and its format-aware
// mutations, and the seeded mutation loop that drives them. `headroom-fuzz` runs the loop under a supervisor; the tests replay the committed corpus.
import Foundation

/// How a parser answered one input. A thrown error that names the input's file is the expected answer to a bad
/// input; anything else that returns is a finding. (A crash or a hang never returns: the supervisor sees those.)
public enum FuzzVerdict: Equatable, Sendable {
    /// Parsed and validated.
    case accepted
    /// Refused with this message, which names the file; `check` says which check refused it, without the
    /// input's particulars (names, numbers), so that inputs can be told apart by the checks they reach.
    case refused(String, check: String)
    /// Refused with an error whose message does not name the file, or that is not the loader's error type.
    case unclear(String)

    public var isFinding: Bool {
        if case .unclear = self { return true }
        return false
    }

    /// The error's message, when refused or unclear.
    public var message: String? {
        switch self {
        case .accepted: return nil
        case .refused(let m, _), .unclear(let m): return m
        }
    }

    /// What the loop counts: an input that reaches a signature not seen before reached a new check, and is kept
    /// in the corpus to mutate further.
    public var signature: String {
        switch self {
        case .accepted: return "accepted"
        case .refused(_, let check): return "refused " + check
        case .unclear(let m): return "unclear " + Self.blank(m)
        }
    }

    /// The message's first line with numbers and quoted text blanked.
    static func blank(_ message: String) -> String {
        var out = ""
        var inQuote = false
        var lastDigit = false
        // The first line only: a YAML syntax error goes on to quote the input's line.
        for c in message.prefix(while: { $0 != "\n" }).prefix(300) {
            if c == "\"" {
                inQuote.toggle()
                if !inQuote { out += "\"…\"" }
                continue
            }
            if inQuote { continue }
            if c.isNumber {
                if !lastDigit { out.append("#") }
                lastDigit = true
            } else {
                lastDigit = false
                out.append(c)
            }
        }
        return out
    }
}

/// One parser under test: the name `headroom-fuzz` and the corpus folder know it by, its valid seeds, its
/// mutations, and the call that runs the parser on an input. Adding a parser is one more `FuzzTarget` in
/// `FuzzTargets.all`.
public final class FuzzTarget: @unchecked Sendable {
    public let name: String
    public let summary: String
    /// The extension saved inputs get (`gguf`, `yaml`).
    public let fileExtension: String
    /// Mutated inputs are cut to this size: memory per input stays bounded and every input stays replayable.
    public let maxInputBytes: Int
    /// Valid inputs built here or read from the repository; the corpus folder adds the inputs found earlier.
    public let seeds: [[UInt8]]
    /// The share of mutations that know nothing of the format (bit flips, splices): in YAML nearly every one is
    /// a syntax error, so those targets keep it low and spend their inputs on the checks behind the parser.
    public let byteMutationShare: Double
    private let mutateInput: (inout [UInt8], inout FuzzRandom) -> Void
    private let check: ([UInt8]) -> FuzzVerdict
    /// Released when the target is (scratch folders).
    private let cleanup: () -> Void

    public init(name: String, summary: String, fileExtension: String, maxInputBytes: Int, seeds: [[UInt8]],
                byteMutationShare: Double = 1.0 / 3, mutate: @escaping (inout [UInt8], inout FuzzRandom) -> Void, check: @escaping ([UInt8]) -> FuzzVerdict,
                cleanup: @escaping () -> Void = {}) {
        self.name = name; self.summary = summary; self.fileExtension = fileExtension; self.maxInputBytes = maxInputBytes
        self.seeds = seeds; self.byteMutationShare = byteMutationShare; mutateInput = mutate; self.check = check; self.cleanup = cleanup
    }

    deinit { cleanup() }

    /// Runs the parser on `input`, in this process. Traps inside the parser are not caught.
    public func run(_ input: [UInt8]) -> FuzzVerdict { check(input) }

    /// The format-aware mutations (the loop mixes in the generic byte mutations itself).
    public func mutate(_ input: inout [UInt8], _ random: inout FuzzRandom) { mutateInput(&input, &random) }

    /// The inputs saved in `directory` (the committed corpus, or a findings folder), sorted by name; files over
    /// `maxInputBytes` are skipped, dot files too. An absent folder has none.
    public func corpus(in directory: String) -> [(name: String, bytes: [UInt8])] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { !$0.hasPrefix(".") && !$0.hasSuffix(".md") }.sorted().compactMap { name in
            let path = (directory as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path), data.count <= maxInputBytes else { return nil }
            return (name, [UInt8](data))
        }
    }

    /// The verdict for a thrown error: refused when it is one of the loader's errors and its message names `file`.
    /// `check` names the check that refused it (by default, the message with `file`, numbers and quotes blanked).
    static func verdict(for error: Error, expected: (Error) -> Bool, file: String,
                        check: (Error) -> String = { FuzzVerdict.blank("\($0)") }) -> FuzzVerdict {
        let message = "\(error)"
        guard expected(error) else { return .unclear("\(type(of: error)), not the loader's error type: \(message)") }
        guard message.contains(file) else { return .unclear("the message does not name \(file): \(message)") }
        return .refused(message, check: check(error).replacingOccurrences(of: FuzzVerdict.blank(file), with: "FILE"))
    }
}

/// Every fuzz target, by name. A new reader to fuzz is one more entry here: its `FuzzTarget` with seeds, mutations
/// and the call into the reader; `headroom-fuzz`, `make fuzz` and the corpus replay test pick it up by name (its
/// corpus folder is Tests/Fuzz/corpus/NAME).
public enum FuzzTargets {
    /// Each target's name and how to make it from the checkout's root (where the YAML targets read their seeds,
    /// Scenarios/, and the catalog a scenario is checked against).
    public static let all: [(name: String, make: (_ repository: String) throws -> FuzzTarget)] = [
        ("gguf", { _ in try GGUFFuzzTarget.make() }),
        ("scenario", { try YAMLFuzzTargets.scenario(repository: $0) }),
        ("catalog-models", { try YAMLFuzzTargets.catalog(file: "models.yaml", name: "catalog-models", repository: $0) }),
        ("catalog-hardware", { try YAMLFuzzTargets.catalog(file: "hardware.yaml", name: "catalog-hardware", repository: $0) }),
        ("catalog-prices", { try YAMLFuzzTargets.catalog(file: "prices.yaml", name: "catalog-prices", repository: $0) }),
        ("request-body", { _ in RequestBodyFuzzTarget.make() }),
    ]

    public static var names: [String] { all.map(\.name) }

    /// The target called `name`. Throws when the name is unknown or a seed cannot be read.
    public static func make(_ name: String, repository: String) throws -> FuzzTarget {
        guard let entry = all.first(where: { $0.name == name }) else {
            throw FuzzSetupError("unknown fuzz target \"\(name)\"; the targets are \(names.joined(separator: ", "))")
        }
        return try entry.make(repository)
    }
}

/// A target that cannot be set up (unknown name, unreadable seed).
public struct FuzzSetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
