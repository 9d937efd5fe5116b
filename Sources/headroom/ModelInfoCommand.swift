// `headroom model info` and `headroom model generate`: what a GGUF file holds (architecture, shape, formats,
// tokenizer, chat template, RoPE, the catalog shape it maps to), and text generated from it with its own tokenizer.
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomEngine
import HeadroomKernels
import HeadroomReport
import HeadroomRunner

/// `headroom model info --json`: facts read from the file (nothing measured or predicted).
struct ModelInfoJSON: Codable, Equatable {
    struct Shape: Codable, Equatable { var layers, dim, heads, kvHeads, headDim, ffnDim, vocab, context: Int }
    struct Format: Codable, Equatable { var format: String; var tensors: Int; var bytes: Int }
    struct Tokenizer: Codable, Equatable { var kind: String?; var preTokenizer: String?; var vocabulary: Int?; var problem: String? }
    struct ChatTemplate: Codable, Equatable { var present: Bool; var family: String?; var problem: String? }
    struct Rope: Codable, Equatable {
        var freqBase: Double; var dimensions: Int; var ordering: String; var linearFactor: Double
        var llama3Factor: Double?; var frequencyFactorsTensor: Bool
    }
    struct Catalog: Codable, Equatable { var id, name: String; var layers, dim, heads, kvHeads, ffnDim, vocab, context: Int; var tiedEmbeddings: Bool; var precision: String }
    var kind = "file"
    var file: String
    var name: String?
    var architecture: String
    var shape: Shape
    var parameters: Int
    var bytes: Int
    var formats: [Format]
    var tokenizer: Tokenizer
    var chatTemplate: ChatTemplate
    var rope: Rope
    var tiedEmbeddings: Bool
    var qkvBias: Bool
    var catalogShape: Catalog
}

struct ModelInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Describe a GGUF model file: architecture, shape, parameters, weight formats, tokenizer, chat template, RoPE.",
        discussion: "Read from the file's metadata and tensor table (nothing is computed on the weights). Every string from the file is escaped before it is printed.")

    @OptionGroup var file: ModelFileArgument

    @Flag(name: .long, help: "Print JSON on standard output instead of text.")
    var json = false

    func run() throws {
        try reportingErrors {
            let info = try Self.info(file.path)
            if json { try printJSON(info) } else { print(Self.text(info)) }
        }
    }

    static func info(_ path: String) throws -> ModelInfoJSON {
        let gguf = try GGUFFile(path: path)
        let g = try gguf.llamaConfig()
        let features = try g.checkTensors(in: gguf)
        let config = ModelConfig(name: gguf.metadata.string("general.name") ?? path, gguf: g, features: features)
        var byFormat: [String: (tensors: Int, bytes: Int)] = [:]
        for t in gguf.tensors {
            let f = t.type.quantType?.description ?? t.type.name
            byFormat[f, default: (0, 0)].tensors += 1; byFormat[f]!.bytes += t.byteCount
        }
        let formats = byFormat.map { ModelInfoJSON.Format(format: $0.key, tensors: $0.value.tensors, bytes: $0.value.bytes) }
            .sorted { $0.bytes != $1.bytes ? $0.bytes > $1.bytes : $0.format < $1.format }
        var tok = ModelInfoJSON.Tokenizer()
        do {
            let t = try Tokenizer.load(path: path)
            tok.kind = t.kind.rawValue; tok.preTokenizer = t.preTokenizer; tok.vocabulary = t.vocabularySize
        } catch { tok.problem = "\(error)" }
        let template = gguf.metadata.string("tokenizer.chat_template")
        var chat = ModelInfoJSON.ChatTemplate(present: template != nil)
        if template != nil {
            do { chat.family = try HeadroomEngine.ChatTemplate.detect(from: template).rawValue } catch { chat.problem = "\(error)" }
        }
        let d = try GGUFModelSource.describe(path)
        let s = d.shape
        return ModelInfoJSON(
            file: path, name: gguf.metadata.string("general.name"), architecture: g.architecture,
            shape: .init(layers: g.blockCount, dim: g.embeddingLength, heads: g.headCount, kvHeads: g.headCountKV, headDim: g.headDim,
                         ffnDim: g.feedForwardLength, vocab: g.vocabSize, context: g.contextLength),
            parameters: gguf.tensors.reduce(0) { $0 + $1.elementCount }, bytes: gguf.tensors.reduce(0) { $0 + $1.byteCount },
            formats: formats, tokenizer: tok, chatTemplate: chat,
            rope: .init(freqBase: config.ropeTheta, dimensions: config.ropeDims, ordering: config.rope.ordering.rawValue,
                        linearFactor: config.rope.linearFactor, llama3Factor: config.rope.llama3?.factor, frequencyFactorsTensor: features.ropeFactors),
            tiedEmbeddings: features.tiedOutput, qkvBias: features.qkvBias,
            catalogShape: .init(id: s.id, name: s.name, layers: s.layers, dim: s.dim, heads: s.heads, kvHeads: s.kvHeads, ffnDim: s.ffnDim,
                                vocab: s.vocab, context: s.context, tiedEmbeddings: s.tiedEmbeddings, precision: d.precision.description))
    }

    static func text(_ i: ModelInfoJSON) -> String {
        func e(_ s: String) -> String { TerminalText.escape(s, keepNewlines: false) }
        func count(_ n: Int, _ what: String) -> String { "\(n) \(what)\(n == 1 ? "" : "s")" }
        let s = i.shape
        var lines = ["\(e(i.file)): \(e(i.architecture))\(i.name.map { " \"\(e($0))\"" } ?? "")",
                     "  shape: \(s.layers) layers, dim \(s.dim), \(s.heads) heads (\(s.kvHeads) kv, head dim \(s.headDim)), ffn \(s.ffnDim), vocab \(s.vocab), context \(s.context)",
                     "  parameters: \(i.parameters) (\(Fmt.bytes(Double(i.bytes))) of tensors)",
                     "  formats: " + i.formats.map { "\(e($0.format)): \(count($0.tensors, "tensor")), \(Fmt.bytes(Double($0.bytes)))" }.joined(separator: "; ")]
        if let kind = i.tokenizer.kind, let v = i.tokenizer.vocabulary {
            lines.append("  tokenizer: \(kind)\(i.tokenizer.preTokenizer.map { " (pre-tokenizer \(e($0)))" } ?? ""), vocabulary of \(v)")
        } else {
            lines.append("  tokenizer: not usable (\(e(i.tokenizer.problem ?? "")))")
        }
        let chat = !i.chatTemplate.present ? "none" : i.chatTemplate.family.map { "present (\($0))" } ?? "present (\(e(i.chatTemplate.problem ?? "unrecognised")))"
        lines.append("  chat template: \(chat)")
        let r = i.rope
        var rope = "base \(Fmt.sig(r.freqBase)), \(r.dimensions) of \(s.headDim) dims rotated, \(r.ordering) ordering"
        if r.linearFactor != 1 { rope += ", linear scaling ×\(Fmt.sig(r.linearFactor))" }
        if let f = r.llama3Factor { rope += ", llama3 scaling ×\(Fmt.sig(f))" }
        if r.frequencyFactorsTensor { rope += ", frequency factors (rope_freqs.weight)" }
        lines.append("  rope: \(rope)")
        lines.append("  output head: \(i.tiedEmbeddings ? "tied to the token embedding" : "its own (output.weight)"); q/k/v biases: \(i.qkvBias ? "yes" : "no")")
        let c = i.catalogShape
        lines.append("  catalog shape: \(e(c.id)) \"\(e(c.name))\", \(c.layers) layers, dim \(c.dim), \(c.heads)/\(c.kvHeads) heads, ffn \(c.ffnDim), vocab \(c.vocab), context \(c.context), tied \(c.tiedEmbeddings), \(c.precision)")
        return lines.joined(separator: "\n")
    }
}
