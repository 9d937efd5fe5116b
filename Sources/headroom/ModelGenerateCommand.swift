// `headroom model generate`: text from a GGUF model with its own tokenizer — prefill the prompt, then sample one
// token at a time (greedy, or temperature/top-p from a seed), streaming whole characters as they arrive.
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomEngine
import HeadroomKernels

/// `headroom model generate --json`. The rates are measured on this machine (one run, wall clock).
struct ModelGenerateJSON: Codable {
    var kind = "measured"
    var text: String
    var tokens: [Int]
    var promptTokens: Int
    var prefillTokensPerS: Double
    var decodeTokensPerS: Double?
    /// "max_tokens", "end_of_generation" or "context".
    var stopReason: String
}

struct ModelGenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a GGUF model with its own tokenizer, streaming it as tokens arrive.",
        discussion: """
            Tokenizes the prompt (BOS as the model asks), prefills it, then decodes one token at a time until \
            --max-tokens or an end-of-generation token. Temperature 0 is greedy (argmax); otherwise tokens are drawn \
            from softmax(logits / T), within the top-p nucleus, from --seed. Prefill and decode rates (measured, one \
            run) go to standard error at the end. With --chat, the prompt is a user message in the file's chat template.
            """)

    @OptionGroup var file: ModelFileArgument

    @Option(name: .long, help: "The prompt text.")
    var prompt: String

    @Option(name: .customLong("max-tokens"), help: "Tokens to generate at most.")
    var maxTokens = 128

    @Option(name: .long, help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(name: .customLong("top-p"), help: "Nucleus sampling mass in (0, 1].")
    var topP: Float = 1

    @Option(name: .long, help: "Seed of the sampler.")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Threads for the kernels and OpenBLAS (default: all cores).")
    var threads: Int?

    @Flag(name: .long, help: "Render the prompt as a user message in the file's chat template (tokenizer.chat_template).")
    var chat = false

    @Flag(name: .long, help: "Print JSON at the end instead of streaming text.")
    var json = false

    func validate() throws {
        _ = try threadCount(threads)
        if maxTokens < 1 { throw ValidationError("--max-tokens: expected at least 1") }
        if !(temperature >= 0 && temperature.isFinite) { throw ValidationError("--temperature: expected a number ≥ 0") }
        if !(topP > 0 && topP <= 1) { throw ValidationError("--top-p: expected a number in (0, 1]") }
    }

    func run() throws {
        try reportingErrors {
            let path = file.path
            let weights = try ModelWeights.load(gguf: path)
            let tokenizer: Tokenizer
            do { tokenizer = try Tokenizer.load(path: path) } catch {
                throw InputError(file: path, path: "", message: "the file has no usable tokenizer (\(error))")
            }
            // Headroom's synthetic export writes placeholder pieces <tok_N>: ids only, no text.
            if tokenizer.vocabularySize > GGUFLlamaVocabulary.minimumSize,
               tokenizer.text(of: Int32(GGUFLlamaVocabulary.minimumSize)) == "<tok_\(GGUFLlamaVocabulary.minimumSize)>" {
                throw InputError(file: path, path: "", message: "the file has no usable tokenizer: its vocabulary is Headroom's placeholder (<tok_N>), which encodes only bytes")
            }
            var text = prompt
            if chat {
                let template: ChatTemplate
                do { template = try ChatTemplate.detect(from: try GGUFFile(path: path).metadata.string("tokenizer.chat_template")) } catch let e as ChatTemplateError {
                    throw InputError(file: path, path: "", message: e.description)
                }
                text = template.render(messages: [(role: "user", content: prompt)], addGenerationPrompt: true)
            }
            let ids = tokenizer.encode(text, addSpecial: true, parseSpecial: chat)
            guard !ids.isEmpty else { throw InputError(file: "--prompt", path: "", message: "the prompt encodes to no tokens") }
            let capacity = min(weights.config.context, ids.count + maxTokens)
            guard ids.count <= weights.config.context else {
                throw InputError(file: "--prompt", path: "", message: "\(ids.count) prompt tokens exceed the context \(weights.config.context) of \(path)")
            }
            let session = try InferenceSession(weights: weights, maxTokens: capacity, threads: try threadCount(threads))
            var sampler = Sampler(temperature: temperature, topP: topP, seed: seed)
            let clock = ContinuousClock()
            let t0 = clock.now
            let logits = try session.prefill(ids)
            let prefillSeconds = (clock.now - t0).seconds
            var next = logits.withUnsafeBufferPointer { sampler.sample(logits: $0) }
            var generated: [Int32] = [], stream = UTF8Stream(), out = ""
            var stop = "max_tokens"
            let t1 = clock.now
            while true {
                if tokenizer.endOfGeneration.contains(next) { stop = "end_of_generation"; break }
                generated.append(next)
                let piece = stream.append(tokenizer.piece(for: next, renderSpecial: false))
                out += piece
                if !json && !piece.isEmpty { FileHandle.standardOutput.write(Data(TerminalText.escape(piece).utf8)) }
                if generated.count >= maxTokens { break }
                if session.positions[0] >= capacity { stop = "context"; break }
                try session.decode(next)
                next = sampler.sample(logits: session.lastLogits())
            }
            let decodeSeconds = (clock.now - t1).seconds
            let tail = stream.flush()
            out += tail
            // Decode steps run: every generated token but the first came from one decode.
            let steps = max(0, generated.count - 1)
            let prefillRate = Double(ids.count) / max(prefillSeconds, 1e-9)
            let decodeRate: Double? = steps > 0 ? Double(steps) / max(decodeSeconds, 1e-9) : nil
            if json {
                try printJSON(ModelGenerateJSON(text: out, tokens: generated.map(Int.init), promptTokens: ids.count,
                                                prefillTokensPerS: prefillRate, decodeTokensPerS: decodeRate, stopReason: stop))
            } else {
                // Through the same unbuffered handle as the pieces: print's buffer would put this newline after the
                // report on standard error when both go to one pipe.
                FileHandle.standardOutput.write(Data((TerminalText.escape(tail) + "\n").utf8))
                warn(String(format: "measured: prefill %d tokens at %.1f tokens/s; decode %d tokens at %@ (stop: %@)",
                            ids.count, prefillRate, steps, decodeRate.map { String(format: "%.1f tokens/s", $0) } ?? "n/a", stop))
            }
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
