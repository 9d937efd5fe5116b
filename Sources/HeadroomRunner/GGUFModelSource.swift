// A GGUF file as the model of an inference measurement: its shape (for the spec and the rooflines), its
// precision, and its weights mapped and pre-faulted so that page faults are not timed; and the resolver that lets
// a scenario's `measure.model` name such a file.
import Foundation
import HeadroomCore
import HeadroomEngine
import HeadroomKernels

public enum GGUFModelSource {
    /// Whether a `--model` / `measure.model` value names a file rather than a catalog shape: it ends in
    /// `.gguf` or is an existing file.
    public static func isFile(_ value: String) -> Bool {
        var directory: ObjCBool = false
        return value.lowercased().hasSuffix(".gguf")
            || (FileManager.default.fileExists(atPath: value, isDirectory: &directory) && !directory.boolValue)
    }

    /// The shape and matrix precision of the llama-family (llama, mistral, qwen2) GGUF file at `path` (validated; nothing is loaded).
    /// Throws `GGUFError` naming the file.
    public static func describe(_ path: String) throws -> (shape: ModelShape, precision: QuantType) {
        let file = try GGUFFile(path: path)
        let g = try file.llamaConfig()
        let tied = try g.checkTensors(in: file).tiedOutput
        let q = try file.requireTensor(GGUFLlamaTensorNames.attentionQ(0))
        guard let precision = q.type.quantType else {
            throw GGUFError(path: path, problem: .unsupportedTensorType(tensor: q.name, type: q.type))
        }
        let name = file.metadata.string("general.name") ?? (path as NSString).lastPathComponent
        let shape = ModelShape(id: (path as NSString).lastPathComponent, name: name, layers: g.blockCount, dim: g.embeddingLength,
                               heads: g.headCount, kvHeads: g.headCountKV, ffnDim: g.feedForwardLength, vocab: g.vocabSize,
                               context: g.contextLength, ropeTheta: Double(g.ropeFreqBase), normEps: Double(g.rmsNormEpsilon),
                               tiedEmbeddings: tied, source: "GGUF file \(path)")
        return (shape, precision)
    }

    /// The scenario loader's resolver: a `measure.model` value that names a file (see `isFile`), relative to the
    /// scenario file's folder unless absolute, is described from the file; anything else is left to the catalog.
    /// Errors are `GGUFError`s naming the file (missing, not a llama GGUF, corrupt).
    public static let resolver: ModelResolver = { value, directory in
        let path = (value as NSString).isAbsolutePath ? value : (directory as NSString).appendingPathComponent(value)
        guard isFile(path) else { return nil }
        let d = try describe(path)
        let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        return ResolvedModel(shape: d.shape, file: ModelFile(path: path, bytes: bytes, precision: d.precision.description))
    }

    /// The weights of the file, mapped (no copy) and every page touched once.
    public static func weights(_ path: String) throws -> ModelWeights {
        let file = try GGUFFile(path: path)
        file.prefault()
        return try ModelWeights(gguf: file)
    }
}
