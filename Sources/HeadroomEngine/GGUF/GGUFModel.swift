// The bridge between GGUF files and the engine: a llama GGUF file becomes `ModelWeights` whose matrices
// point into the file's mapping (no copy), and a synthetic model is written as GGUF one tensor at a time.
// Q and K need no permutation either way: the engine's RoPE pairs values in the order the architecture's files store them.
import HeadroomKernels

extension GGMLType {
    /// The kernels' format for this GGUF type (the kernels' table of formats), or nil when the kernels have none.
    public var quantType: QuantType? { QuantType(rawValue: Int32(rawValue)) }

    /// The GGUF type of a kernel format: the same ggml type id.
    public init(_ q: QuantType) {
        guard let t = GGMLType(rawValue: UInt32(q.rawValue)) else { preconditionFailure("\(q) has ggml type id \(q.rawValue), which GGMLType does not name") }
        self = t
    }
}

extension ModelConfig {
    /// The engine's configuration for a llama-family GGUF configuration; `features` are what the file's tensors add.
    public init(name: String, gguf g: GGUFLlamaConfig, features: GGUFLlamaConfig.TensorFeatures? = nil) {
        self.init(name: name, layers: g.blockCount, dim: g.embeddingLength, heads: g.headCount, kvHeads: g.headCountKV,
                  ffnDim: g.feedForwardLength, vocab: g.vocabSize, context: g.contextLength,
                  ropeTheta: Double(g.ropeFreqBase), normEps: g.rmsNormEpsilon, architecture: g.architecture,
                  rope: RoPESettings(dimensions: g.ropeDimensionCount, ordering: GGUFArchitecture.ropeOrdering(g.architecture),
                                     linearFactor: Double(g.ropeLinearFactor), llama3: g.ropeLlama3),
                  tiedEmbeddings: features?.tiedOutput ?? false, qkvBias: features?.qkvBias ?? false)
    }

    /// The GGUF hyperparameters of this configuration.
    public var gguf: GGUFLlamaConfig {
        var g = GGUFLlamaConfig(blockCount: layers, embeddingLength: dim, headCount: heads, headCountKV: kvHeads, feedForwardLength: ffnDim,
                                contextLength: context, vocabSize: vocab, ropeFreqBase: Float(ropeTheta), rmsNormEpsilon: normEps)
        g.architecture = architecture
        g.ropeDimensionCount = rope.dimensions
        g.ropeLinearFactor = Float(rope.linearFactor)
        g.ropeLlama3 = rope.llama3
        return g
    }
}

extension ModelWeights {
    /// Weights over the tensors of an open llama GGUF file (any mix of the kernels' formats), without copying the matrices:
    /// they keep `file` (its mapping) alive. Norm vectors are read as f32. A file without `output.weight` ties the
    /// output head to the token embedding. Throws `GGUFError` naming the file when it is not a model the engine runs.
    public convenience init(gguf file: GGUFFile) throws {
        let g = try file.llamaConfig()
        let features = try g.checkTensors(in: file)
        let name = file.metadata.string("general.name") ?? file.path
        let config = ModelConfig(name: name, gguf: g, features: features)
        do { try config.validate() } catch let e as EngineError {
            throw GGUFError(path: file.path, problem: .invalidConfig(e.description))
        }
        func matrix(_ t: GGUFTensor) throws -> WeightMatrix {
            guard let q = t.type.quantType else {
                throw GGUFError(path: file.path, problem: .unsupportedTensorType(tensor: t.name, type: t.type))
            }
            return WeightMatrix(type: q, rows: t.rowCount, cols: t.rowLength, data: t.data, owner: file)
        }
        try self.init(config: config) { name in try file.tensor(named: name).map(matrix) }
        self.file = file.path
    }

    /// Opens, validates and loads `path` (see `init(gguf:)`).
    public static func load(gguf path: String) throws -> ModelWeights {
        try ModelWeights(gguf: GGUFFile(path: path))
    }
}

/// Writes the synthetic model of a configuration as a GGUF file that llama.cpp loads.
public enum GGUFModelExport {
    /// Writes `weights` to `path` as GGUF v3, every tensor in its own format (norms F32), with the llama
    /// metadata of `weights.config`; the file type recorded is the first layer's Q projection's. Returns the bytes written.
    @discardableResult
    public static func write(_ weights: ModelWeights, to path: String) throws -> Int {
        let config = weights.config
        try config.validate()
        let metadata: GGUFMetadata
        let fileType = weights.layers.first?.wq.type ?? weights.type
        do { metadata = try config.gguf.metadata(name: config.name, weightType: GGMLType(fileType)) } catch let e as GGUFError {
            throw GGUFError(path: path, problem: e.problem)
        }
        var writer = GGUFWriter(metadata: metadata)
        for (name, m) in weights.namedTensors {
            let isNorm = m.rows == 1  // norms, biases, rope_freqs: 1-D
            let bytes = [UInt8](UnsafeRawBufferPointer(start: m.data, count: m.bytes))
            try writer.addTensor(name: name, type: GGMLType(m.type), dims: isNorm ? [m.cols * m.rows] : [m.cols, m.rows], bytes: bytes)
        }
        return try writer.write(to: path)
    }

    /// Writes `ModelWeights.synthetic(config, type:, seed:)` to `path` as GGUF v3 (matrices in `type`, norms F32,
    /// llama metadata with the minimal tokenizer vocabulary). Each matrix is generated into the writer's scratch
    /// buffer as it is written, so memory holds one tensor, never the model. Returns the bytes written.
    @discardableResult
    public static func writeSynthetic(_ config: ModelConfig, type: QuantType, seed: UInt64 = 0x4845_4144, threads: Int = 1,
                                      to path: String) throws -> Int {
        try config.validate(for: type)
        return try writeSynthetic(config, precision: GGUFExportPrecision(type), seed: seed, threads: threads, to: path).bytes
    }

    /// What `writeSynthetic(_:precision:…)` wrote.
    public struct Written: Sendable {
        /// Bytes of the file.
        public var bytes: Int
        /// Each matrix's format, in file order.
        public var types: [(name: String, type: QuantType)]
        /// The matrices whose row width the chosen format's block does not divide, written in llama.cpp's fallback.
        public var fallbacks: [String]
    }

    /// Writes the synthetic model's weights (the floats `ModelWeights.synthetic` quantizes, same seed) with each
    /// matrix in the format `precision` gives it (a mixture's rule, or one format throughout), each quantized by ggml's
    /// reference quantizer, and `general.file_type` the precision's llama.cpp number. A K-quant that cannot hold a
    /// tensor's rows (width not a multiple of 256) falls back as llama-quantize does; `Written.fallbacks` lists those.
    public static func writeSynthetic(_ config: ModelConfig, precision: GGUFExportPrecision, seed: UInt64 = 0x4845_4144,
                                      threads: Int = 1, to path: String) throws -> Written {
        try config.validate()
        let metadata: GGUFMetadata
        do {
            metadata = try config.gguf.metadata(name: config.name, weightType: GGMLType(precision.base), fileType: precision.llamaFileType)
        } catch let e as GGUFError {
            throw GGUFError(path: path, problem: e.problem)  // the writer's errors name the file being written
        }
        var writer = GGUFWriter(metadata: metadata)
        var written = Written(bytes: 0, types: [], fallbacks: [])
        for t in ModelWeights.syntheticPlan(config) {
            // ggml dims: row length first.
            let dims = t.isNorm ? [t.cols] : [t.cols, t.rows]
            if let seedIndex = t.seedIndex {
                let (type, fellBack) = precision.type(of: t.name, cols: t.cols, config: config)
                written.types.append((t.name, type))
                if fellBack { written.fallbacks.append(t.name) }
                try writer.addTensor(name: t.name, type: GGMLType(type), dims: dims) { buffer in
                    WeightMatrix.fillSynthetic(type: type, rows: t.rows, cols: t.cols, seed: seed &+ seedIndex &* 0x9E37_79B9,
                                               scale: t.scale, threads: threads, into: buffer.baseAddress!)
                }
            } else {
                try writer.addTensor(name: t.name, dims: dims, float32: [Float](repeating: 1, count: t.cols))
            }
        }
        written.bytes = try writer.write(to: path)
        return written
    }
}
