// `headroom model`: GGUF files in and out of the engine. `export` writes a seeded synthetic model of a catalog
// shape as GGUF (llama.cpp loads it); `logits` runs a GGUF file on token ids and prints the last position's logits.
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomEngine
import HeadroomKernels
import HeadroomRunner

struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "GGUF model files: describe, export a synthetic model, tokenize text, print logits, generate text.",
        subcommands: [ModelInfoCommand.self, ModelExportCommand.self, ModelTokenizeCommand.self, ModelLogitsCommand.self, ModelGenerateCommand.self])
}

struct ModelExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the seeded synthetic model of a catalog shape as a GGUF v3 file (architecture llama).",
        discussion: """
            The weights are those `bench infer` measures (same seed, same floats); norms are F32, the matrices in \
            --precision, with the llama.cpp tensor names and a minimal tokenizer vocabulary. Every format is quantized \
            as ggml's reference quantizer does (llama-quantize without an importance matrix), byte for byte. A format \
            name (q4_0, q4_k, …) puts every matrix in that format, as `llama-quantize --pure`; a mixture (q4_k_m, \
            q5_k_s, …) picks each tensor's format as llama-quantize does for a llama model (Q4_K_M: output.weight and \
            some layers' attn_v and ffn_down in q6_K) and records llama.cpp's file type for it. A K-quant needs rows \
            that are a multiple of 256 wide; a tensor whose rows are not gets llama.cpp's fallback (q2_k, q3_k → q4_0, \
            q4_k → q5_0, q5_k → q5_1, q6_k → q8_0), and the output says how many did. Tensors are generated and \
            written one at a time, so memory holds one tensor, not the model.
            """)

    @Option(name: [.long, .customLong("shape")], help: "A model id from the catalog (tiny, small; `headroom models` lists them).")
    var model = "tiny"

    @Option(name: .long, help: "Weight precision: \(PrecisionNames.exportList). Default f32.")
    var precision = "f32"

    @Option(name: .long, help: "Seed of the synthetic weights.")
    var seed: UInt64 = 0x4845_4144

    @Option(name: .long, help: "Threads generating the weights (the bytes do not depend on it; default: all cores).")
    var threads: Int?

    @OptionGroup var catalog: CatalogOptions

    @Flag(name: .long, help: "Print JSON on standard output instead of a line of text.")
    var json = false

    @Argument(help: ArgumentHelp("The GGUF file to write (replaced when it is a regular file; anything else is refused).", valueName: "out.gguf"))
    var output: String

    func validate() throws {
        _ = try exportPrecision(precision)
        _ = try threadCount(threads)
    }

    func run() throws {
        try reportingErrors {
            try FileChecks.requireWritableOutput(output, option: "OUT.gguf")
            let model = try catalog.load().model(self.model)
            let precision = try exportPrecision(precision)
            let config = ModelConfig(model)
            do { try config.validate() } catch let e as EngineError {
                throw InputError(file: "catalog", path: "models.\(model.id)", message: e.description)
            }
            let w = try GGUFModelExport.writeSynthetic(config, precision: precision, seed: seed, threads: try threadCount(threads), to: output)
            let counts = Dictionary(grouping: w.types, by: \.type).map { ($0.key, $0.value.count) }.sorted { $0.0.rawValue < $1.0.rawValue }
            if json {
                struct Out: Encodable {
                    var kind = "computed"; var file: String; var model: String; var precision: String; var fileType: UInt32
                    var bytes: Int; var seed: UInt64; var tensorTypes: [String: Int]; var fallbacks: [String]
                }
                try printJSON(Out(file: output, model: model.id, precision: precision.description, fileType: precision.llamaFileType,
                                  bytes: w.bytes, seed: seed, tensorTypes: Dictionary(uniqueKeysWithValues: counts.map { ($0.0.description, $0.1) }),
                                  fallbacks: w.fallbacks))
            } else {
                let mix = counts.map { "\($0.1) \($0.0)" }.joined(separator: ", ")
                print("wrote \(output): \(model.id) \(precision) (\(mix) matrices), \(w.bytes) bytes (seed \(seed))")
                if !w.fallbacks.isEmpty {
                    print("\(w.fallbacks.count) of \(w.types.count) matrices are in llama.cpp's fallback format: their rows are not a multiple of 256 wide")
                }
            }
        }
    }
}

struct ModelLogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits",
        abstract: "Run a GGUF model on token ids and print the logits at the last position.",
        discussion: "Computed (not measured): the engine's forward pass in f32 accumulation, for comparison with other engines.")

    @Option(name: .long, help: ArgumentHelp("The GGUF model file (llama architecture).", valueName: "file.gguf"))
    var model: String

    @Option(name: .long, help: ArgumentHelp("Comma-separated token ids.", valueName: "1,2,3"))
    var tokens: String

    @Option(name: .long, help: "Threads for the kernels and OpenBLAS (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: "How many of the highest logits to list.")
    var top = 10

    @Flag(name: .long, help: ArgumentHelp("Feed the tokens one at a time through the decode kernels (q8_0/q4_0 activations quantized to q8_0, as llama.cpp does) instead of one prefill (f32 activations through sgemm)."))
    var decode = false

    @Flag(name: .long, help: "Print JSON (every logit) on standard output instead of a table.")
    var json = false

    func parsedTokens() throws -> [Int32] {
        let parts = tokens.split(separator: ",", omittingEmptySubsequences: false)
        let ids = parts.map { Int32($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, ids.allSatisfy({ $0 != nil && $0! >= 0 }) else {
            throw ValidationError("--tokens: expected comma-separated non-negative token ids, got \(tokens)")
        }
        return ids.map { $0! }
    }

    func validate() throws {
        _ = try parsedTokens()
        _ = try threadCount(threads)
        if top < 1 { throw ValidationError("--top: expected at least 1") }
    }

    func run() throws {
        try reportingErrors {
            let ids = try parsedTokens()
            let weights = try ModelWeights.load(gguf: model)
            let vocab = weights.config.vocab
            if let bad = ids.first(where: { Int($0) >= vocab }) {
                throw InputError(file: "--tokens", path: "", message: "token id \(bad) is outside the vocabulary 0..<\(vocab) of \(model)")
            }
            if ids.count > weights.config.context {
                throw InputError(file: "--tokens", path: "", message: "\(ids.count) tokens exceed the context \(weights.config.context) of \(model)")
            }
            let session = try InferenceSession(weights: weights, maxTokens: ids.count, threads: try threadCount(threads))
            var logits: [Float]
            if decode {
                logits = try session.prefill([ids[0]])
                for t in ids.dropFirst() { logits = try session.decode(t) }
            } else {
                logits = try session.prefill(ids)
            }
            let ranked = logits.indices.sorted { logits[$0] != logits[$1] ? logits[$0] > logits[$1] : $0 < $1 }.prefix(top)
            let result = ModelLogitsJSON(model: model, tokens: ids.map(Int.init), vocab: vocab, precision: weights.type.description,
                                         path: decode ? "decode" : "prefill",
                                         logits: logits, top: ranked.map { .init(id: $0, logit: logits[$0]) })
            if json {
                try printJSON(result)
            } else {
                print("\(model): \(weights.config.layers) layers, dim \(weights.config.dim), vocab \(vocab), \(weights.type); computed logits at position \(ids.count - 1) (\(result.path))")
                print("  rank     token  logit")
                for (rank, t) in result.top.enumerated() {
                    print(String(format: "%6d  %8d  %.6f", rank + 1, t.id, t.logit))
                }
            }
        }
    }
}

/// `headroom model logits --json`.
struct ModelLogitsJSON: Codable {
    struct Entry: Codable { var id: Int; var logit: Float }
    var kind = "computed"
    var model: String
    var tokens: [Int]
    var vocab: Int
    var precision: String
    /// "prefill" (one pass over all tokens) or "decode" (one token at a time through the KV cache).
    var path: String
    var logits: [Float]
    var top: [Entry]
}

/// A GGUF file named as the argument or with `--model` (the convention of every other command).
struct ModelFileArgument: ParsableArguments {
    @Argument(help: ArgumentHelp("The GGUF model file (or give it with --model).", valueName: "file.gguf"))
    var positional: String?

    @Option(name: .long, help: ArgumentHelp("The GGUF model file.", valueName: "file.gguf"))
    var model: String?

    func validate() throws {
        if positional != nil && model != nil { throw ValidationError("give the model file once: as the argument, or with --model") }
        if positional == nil && model == nil { throw ValidationError("missing the model file: headroom model … FILE.gguf") }
    }

    var path: String { positional ?? model ?? "" }
}

struct ModelTokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Turn text into a GGUF model's token ids with the model's own tokenizer.",
        discussion: """
            Reads the tokenizer from the file's metadata (SentencePiece-style or byte-level BPE, with its \
            pre-tokenizer, special tokens and BOS/EOS rules) and prints the ids, one per line with each token's \
            text, or as a JSON list. The same tokenizer passes llama.cpp's own tokenizer tests.
            """)

    @OptionGroup var file: ModelFileArgument

    @Option(name: .long, help: "The text to tokenize.")
    var text: String

    @Flag(name: .customLong("no-special"), help: "Do not add the BOS/EOS tokens the model asks for.")
    var noSpecial = false

    @Flag(name: .customLong("parse-special"), help: "Let the text name control tokens such as <|eot_id|>.")
    var parseSpecial = false

    @Flag(name: .long, help: "Print the ids as a JSON list on standard output.")
    var json = false

    func run() throws {
        try reportingErrors {
            let tokenizer = try Tokenizer.load(path: file.path)
            let ids = tokenizer.encode(text, addSpecial: !noSpecial, parseSpecial: parseSpecial)
            if json {
                try printJSON(ids)
            } else {
                // Each token's text as it decodes (a byte token may hold part of a character: shown escaped).
                for id in ids {
                    let text = String(decoding: tokenizer.piece(for: id), as: UTF8.self)
                    print("\(id)\t\"\(TerminalText.escape(text, keepNewlines: false))\"")
                }
                warn("\(ids.count) token\(ids.count == 1 ? "" : "s") (\(tokenizer.kind), vocabulary of \(tokenizer.vocabularySize))")
            }
        }
    }
}
