// The llama conventions on top of GGUF: the hyperparameter keys, llama.cpp's tensor names and
// shapes, and the metadata (with a minimal tokenizer vocabulary) that lets llama.cpp load a file
// Headroom writes.
import Foundation
import HeadroomKernels

/// The GGUF architectures the engine runs: llama's block (RMSNorm, GQA attention with RoPE, SwiGLU), with
/// the differences each one's files carry — metadata under `{arch}.*`, qwen2's Q/K/V biases and NEOX rotary.
public enum GGUFArchitecture {
    public static let supported = ["llama", "mistral", "qwen2"]

    /// llama.cpp's `llama_model_rope_type`: NORM (adjacent pairs) for llama and mistral, NEOX (halves) for qwen2.
    public static func ropeOrdering(_ architecture: String) -> RoPE.Ordering { architecture == "qwen2" ? .neox : .normal }
}

/// llama.cpp's names for the tensors of a llama model.
public enum GGUFLlamaTensorNames {
    public static let tokenEmbedding = "token_embd.weight"
    public static let outputNorm = "output_norm.weight"
    public static let output = "output.weight"
    public static func attentionNorm(_ layer: Int) -> String { "blk.\(layer).attn_norm.weight" }
    public static func attentionQ(_ layer: Int) -> String { "blk.\(layer).attn_q.weight" }
    public static func attentionK(_ layer: Int) -> String { "blk.\(layer).attn_k.weight" }
    public static func attentionV(_ layer: Int) -> String { "blk.\(layer).attn_v.weight" }
    public static func attentionOutput(_ layer: Int) -> String { "blk.\(layer).attn_output.weight" }
    public static func ffnNorm(_ layer: Int) -> String { "blk.\(layer).ffn_norm.weight" }
    public static func ffnGate(_ layer: Int) -> String { "blk.\(layer).ffn_gate.weight" }
    public static func ffnUp(_ layer: Int) -> String { "blk.\(layer).ffn_up.weight" }
    public static func ffnDown(_ layer: Int) -> String { "blk.\(layer).ffn_down.weight" }
}

/// A tensor a llama model of a given configuration has: its llama.cpp name and ggml dims
/// (`[in, out]` for a linear layer). Norm weights are 1-D and stored as F32 by convention.
public struct GGUFLlamaTensorSpec: Equatable, Sendable {
    public let name: String
    public let dims: [Int]
    public let isNorm: Bool
}

/// The hyperparameters of a llama model as GGUF stores them under `llama.*`.
public struct GGUFLlamaConfig: Equatable, Sendable {
    /// `general.architecture`: one of `GGUFArchitecture.supported`; the prefix of every hyperparameter key.
    public var architecture: String = "llama"
    /// `{arch}.rope.dimension_count` when given (partial rotary when below the head dim).
    public var ropeDimensionCount: Int? = nil
    /// `{arch}.rope.scaling.factor` (or the older `rope.scale_linear`) when the scaling type is linear; 1 otherwise.
    public var ropeLinearFactor: Float = 1
    /// Llama-3 scaling parameters (`rope.scaling.type` llama3), used when the file has no `rope_freqs.weight`.
    public var ropeLlama3: RoPESettings.Llama3Scaling? = nil
    public var blockCount: Int
    public var embeddingLength: Int
    public var headCount: Int
    public var headCountKV: Int
    public var feedForwardLength: Int
    public var contextLength: Int
    public var vocabSize: Int
    public var ropeFreqBase: Float
    public var rmsNormEpsilon: Float

    public init(blockCount: Int, embeddingLength: Int, headCount: Int, headCountKV: Int, feedForwardLength: Int,
                contextLength: Int, vocabSize: Int, ropeFreqBase: Float = 10000, rmsNormEpsilon: Float = 1e-5) {
        self.blockCount = blockCount
        self.embeddingLength = embeddingLength
        self.headCount = headCount
        self.headCountKV = headCountKV
        self.feedForwardLength = feedForwardLength
        self.contextLength = contextLength
        self.vocabSize = vocabSize
        self.ropeFreqBase = ropeFreqBase
        self.rmsNormEpsilon = rmsNormEpsilon
    }

    /// Dimensions per attention head.
    public var headDim: Int { embeddingLength / headCount }
    /// Width of the K and V projections: KV heads × head dim.
    public var kvDim: Int { headCountKV * headDim }

    /// Why this configuration cannot describe a llama model, or nil when it can.
    public var problem: String? {
        let a = architecture
        let positive: [(String, Int)] = [
            ("\(a).block_count", blockCount), ("\(a).embedding_length", embeddingLength),
            ("\(a).attention.head_count", headCount), ("\(a).attention.head_count_kv", headCountKV),
            ("\(a).feed_forward_length", feedForwardLength), ("\(a).context_length", contextLength),
            ("vocabulary size", vocabSize),
        ]
        for (key, value) in positive where value < 1 { return "\(key) is \(value), expected at least 1" }
        if embeddingLength % headCount != 0 {
            return "\(a).embedding_length \(embeddingLength) is not a multiple of \(a).attention.head_count \(headCount)"
        }
        if headCount % headCountKV != 0 {
            return "\(a).attention.head_count \(headCount) is not a multiple of \(a).attention.head_count_kv \(headCountKV)"
        }
        if headDim % 2 != 0 { return "head dimension \(headDim) is odd; rotary embedding needs pairs" }
        if !(ropeFreqBase.isFinite && ropeFreqBase > 0) { return "\(a).rope.freq_base is \(ropeFreqBase), expected a positive number" }
        if !(rmsNormEpsilon.isFinite && rmsNormEpsilon > 0) {
            return "\(a).attention.layer_norm_rms_epsilon is \(rmsNormEpsilon), expected a positive number"
        }
        if let n = ropeDimensionCount, !(n >= 2 && n % 2 == 0 && n <= headDim) {
            return "\(a).rope.dimension_count is \(n); expected an even number from 2 to the head dimension \(headDim)"
        }
        if !(ropeLinearFactor.isFinite && ropeLinearFactor > 0) { return "\(a).rope.scaling.factor is \(ropeLinearFactor), expected a positive number" }
        return nil
    }

    /// Reads the configuration from an open file: `general.architecture` must be "llama"; the
    /// vocabulary size comes from `tokenizer.ggml.tokens`, `llama.vocab_size` or the rows of
    /// `token_embd.weight`, which must agree where more than one is present. As llama.cpp does,
    /// a missing `head_count_kv` means no grouping and a missing `rope.freq_base` means 10000.
    public init(file: GGUFFile) throws {
        try self.init(metadata: file.metadata, tokenEmbeddingDims: file.tensor(named: GGUFLlamaTensorNames.tokenEmbedding)?.dims,
                      path: file.path)
    }

    /// Reads the configuration from metadata (and the token embedding's dims when known); errors name `path`.
    public init(metadata m: GGUFMetadata, tokenEmbeddingDims: [Int]?, path: String) throws {
        let a = try m.requireString("general.architecture", path: path)
        guard GGUFArchitecture.supported.contains(a) else { throw GGUFError(path: path, problem: .notLlama(architecture: a)) }
        let headCount = try m.requireInt("\(a).attention.head_count", path: path)
        let embedding = try m.requireInt("\(a).embedding_length", path: path)

        var vocabSources: [(String, Int)] = []
        if let value = m["tokenizer.ggml.tokens"] {
            guard case .array(.string, let tokens) = value else {
                throw GGUFError(path: path, problem: .wrongValueType(key: "tokenizer.ggml.tokens", expected: "an array of strings", found: value.type))
            }
            vocabSources.append(("tokenizer.ggml.tokens has \(tokens.count) entries", tokens.count))
        }
        if let n = try m.optionalInt("\(a).vocab_size", path: path) {
            vocabSources.append(("\(a).vocab_size is \(n)", n))
        }
        if let dims = tokenEmbeddingDims, dims.count == 2 {
            vocabSources.append(("token_embd.weight has \(dims[1]) rows", dims[1]))
        }
        guard let first = vocabSources.first else {
            throw GGUFError(path: path, problem: .invalidConfig(
                "no vocabulary size: neither tokenizer.ggml.tokens, \(a).vocab_size nor token_embd.weight is present"))
        }
        if let other = vocabSources.first(where: { $0.1 != first.1 }) {
            throw GGUFError(path: path, problem: .invalidConfig("\(first.0) but \(other.0)"))
        }

        self.init(
            blockCount: try m.requireInt("\(a).block_count", path: path),
            embeddingLength: embedding,
            headCount: headCount,
            headCountKV: try m.optionalInt("\(a).attention.head_count_kv", path: path) ?? headCount,
            feedForwardLength: try m.requireInt("\(a).feed_forward_length", path: path),
            contextLength: try m.requireInt("\(a).context_length", path: path),
            vocabSize: first.1,
            ropeFreqBase: Float(try m.optionalFloat("\(a).rope.freq_base", path: path) ?? 10000),
            rmsNormEpsilon: Float(try m.requireFloat("\(a).attention.layer_norm_rms_epsilon", path: path)))
        architecture = a
        // A count equal to the head dimension is the default: whole heads rotate.
        let ropeDims = try m.optionalInt("\(a).rope.dimension_count", path: path)
        ropeDimensionCount = ropeDims == headDim ? nil : ropeDims
        // As llama.cpp: a file without a scaling type scales linearly by its factor (if any); "none" never scales.
        let scalingKey = "\(a).rope.scaling.type"
        let scaling = m[scalingKey] == nil ? "linear" : try m.requireString(scalingKey, path: path)
        let factor = try m.optionalFloat("\(a).rope.scaling.factor", path: path) ?? m.optionalFloat("\(a).rope.scale_linear", path: path)
        switch scaling {
        case "none": break
        case "linear": if let factor, factor != 0 { ropeLinearFactor = Float(factor) }
        case "llama3":
            guard let factor else { throw GGUFError(path: path, problem: .missingKey("\(a).rope.scaling.factor")) }
            ropeLlama3 = RoPESettings.Llama3Scaling(
                factor: factor,
                lowFreqFactor: try m.optionalFloat("\(a).rope.scaling.low_freq_factor", path: path) ?? 1,
                highFreqFactor: try m.optionalFloat("\(a).rope.scaling.high_freq_factor", path: path) ?? 4,
                originalContext: Double(try m.optionalInt("\(a).rope.scaling.original_context_length", path: path) ?? 8192))
        default:
            throw GGUFError(path: path, problem: .invalidConfig(
                "\(scalingKey) is \"\(scaling)\"; Headroom applies none, linear and llama3 (with rope_freqs.weight) RoPE scaling"))
        }
        if let problem { throw GGUFError(path: path, problem: .invalidConfig(problem)) }
    }

    /// Every tensor of the model in llama.cpp's order, with ggml dims. `output.weight` is left out
    /// when `tiedOutput` (the model then reuses the token embedding, as llama.cpp allows).
    public func tensorSpecs(tiedOutput: Bool = false, qkvBias: Bool = false) -> [GGUFLlamaTensorSpec] {
        var specs: [GGUFLlamaTensorSpec] = []
        forEachTensorSpec(tiedOutput: tiedOutput, qkvBias: qkvBias) { specs.append($0) }
        return specs
    }

    /// Calls `body` with each tensor spec in llama.cpp's order, one at a time: a file's `block_count` is a
    /// claim, and checking a file against it must cost what the file holds, not what the claim says.
    func forEachTensorSpec(tiedOutput: Bool, qkvBias: Bool, _ body: (GGUFLlamaTensorSpec) throws -> Void) rethrows {
        typealias N = GGUFLlamaTensorNames
        let d = embeddingLength
        try body(.init(name: N.tokenEmbedding, dims: [d, vocabSize], isNorm: false))
        for l in 0..<max(blockCount, 0) {
            try body(.init(name: N.attentionNorm(l), dims: [d], isNorm: true))
            try body(.init(name: N.attentionQ(l), dims: [d, d], isNorm: false))
            try body(.init(name: N.attentionK(l), dims: [d, kvDim], isNorm: false))
            try body(.init(name: N.attentionV(l), dims: [d, kvDim], isNorm: false))
            if qkvBias {
                try body(.init(name: "blk.\(l).attn_q.bias", dims: [d], isNorm: true))
                try body(.init(name: "blk.\(l).attn_k.bias", dims: [kvDim], isNorm: true))
                try body(.init(name: "blk.\(l).attn_v.bias", dims: [kvDim], isNorm: true))
            }
            try body(.init(name: N.attentionOutput(l), dims: [d, d], isNorm: false))
            try body(.init(name: N.ffnNorm(l), dims: [d], isNorm: true))
            try body(.init(name: N.ffnGate(l), dims: [d, feedForwardLength], isNorm: false))
            try body(.init(name: N.ffnUp(l), dims: [d, feedForwardLength], isNorm: false))
            try body(.init(name: N.ffnDown(l), dims: [feedForwardLength, d], isNorm: false))
        }
        try body(.init(name: N.outputNorm, dims: [d], isNorm: true))
        if !tiedOutput { try body(.init(name: N.output, dims: [d, vocabSize], isNorm: false)) }
    }

    /// What a file's tensors add to its metadata: a tied head, Q/K/V biases, RoPE frequency factors.
    public struct TensorFeatures: Equatable, Sendable {
        public var tiedOutput: Bool
        public var qkvBias: Bool
        public var ropeFactors: Bool
    }

    /// Checks that `file` holds every tensor this configuration needs with the right dims
    /// (`output.weight` may be absent: tied embeddings; Q/K/V biases all or none; `rope_freqs.weight` one per rotated
    /// pair). A bias the engine would not apply (on the attention output or the MLP) is refused by name.
    @discardableResult
    public func checkTensors(in file: GGUFFile) throws -> TensorFeatures {
        let tied = file.tensor(named: GGUFLlamaTensorNames.output) == nil
        let biased = file.tensor(named: "blk.0.attn_q.bias") != nil
        if let other = file.tensors.first(where: { $0.name.hasSuffix(".bias") && !["attn_q", "attn_k", "attn_v"].contains($0.name.split(separator: ".").dropFirst(2).first.map(String.init) ?? "") }) {
            throw GGUFError(path: file.path, problem: .invalidConfig("tensor \(other.name) is a bias the engine does not apply (it adds Q, K and V biases only)"))
        }
        let rotated = ropeDimensionCount ?? headDim
        var factors = false
        if let f = file.tensor(named: "rope_freqs.weight") {
            guard f.dims == [rotated / 2] else {
                throw GGUFError(path: file.path, problem: .wrongTensorShape(tensor: f.name, expected: [rotated / 2], found: f.dims))
            }
            factors = true
        }
        // One spec at a time, stopping at the first missing one: a file claiming 2^40 blocks is refused at its first absent layer.
        try forEachTensorSpec(tiedOutput: tied, qkvBias: biased) { spec in
            let tensor = try file.requireTensor(spec.name)
            guard tensor.dims == spec.dims else {
                throw GGUFError(path: file.path, problem: .wrongTensorShape(tensor: spec.name, expected: spec.dims, found: tensor.dims))
            }
        }
        return TensorFeatures(tiedOutput: tied, qkvBias: biased, ropeFactors: factors)
    }

    /// llama.cpp's `general.file_type` for a model whose matrices are of `type`.
    static func fileType(for type: GGMLType) -> UInt32 { type.quantType?.llamaFileType ?? 0 }

    /// The metadata llama.cpp needs to load a model of this configuration whose matrices are of
    /// `weightType`: `general.*`, the `llama.*` hyperparameters (uint32 and float32, the types
    /// llama.cpp insists on), and a minimal SentencePiece-style vocabulary of `vocabSize` tokens
    /// (see `GGUFLlamaVocabulary`). Throws when the configuration is invalid or the vocabulary is
    /// too small to hold the special and byte tokens. `fileType` overrides the `general.file_type` of
    /// `weightType` (a mixture's number).
    public func metadata(name: String, weightType: GGMLType, fileType: UInt32? = nil) throws -> GGUFMetadata {
        if let problem { throw GGUFError(path: "(writer)", problem: .invalidConfig(problem)) }
        let vocabulary = try GGUFLlamaVocabulary(size: vocabSize)
        func u32(_ v: Int) -> GGUFValue { .uint32(UInt32(clamping: v)) }
        var m = GGUFMetadata()
        let a = architecture
        m["general.architecture"] = .string(architecture)
        m["general.name"] = .string(name)
        m["general.file_type"] = .uint32(fileType ?? Self.fileType(for: weightType))
        m["general.quantization_version"] = .uint32(2)
        m["\(a).context_length"] = u32(contextLength)
        m["\(a).embedding_length"] = u32(embeddingLength)
        m["\(a).block_count"] = u32(blockCount)
        m["\(a).feed_forward_length"] = u32(feedForwardLength)
        m["\(a).rope.dimension_count"] = u32(ropeDimensionCount ?? headDim)
        m["\(a).attention.head_count"] = u32(headCount)
        m["\(a).attention.head_count_kv"] = u32(headCountKV)
        m["\(a).attention.layer_norm_rms_epsilon"] = .float32(rmsNormEpsilon)
        m["\(a).rope.freq_base"] = .float32(ropeFreqBase)
        m["\(a).vocab_size"] = u32(vocabSize)
        if ropeLinearFactor != 1 {
            m["\(a).rope.scaling.type"] = .string("linear")
            m["\(a).rope.scaling.factor"] = .float32(ropeLinearFactor)
        }
        if let l = ropeLlama3 {
            m["\(a).rope.scaling.type"] = .string("llama3")
            m["\(a).rope.scaling.factor"] = .float32(Float(l.factor))
            m["\(a).rope.scaling.low_freq_factor"] = .float32(Float(l.lowFreqFactor))
            m["\(a).rope.scaling.high_freq_factor"] = .float32(Float(l.highFreqFactor))
            m["\(a).rope.scaling.original_context_length"] = u32(Int(l.originalContext))
        }
        vocabulary.add(to: &m)
        return m
    }
}

/// A minimal SentencePiece ("llama") vocabulary that llama.cpp accepts: `<unk>`, `<s>`, `</s>`,
/// the 256 byte tokens `<0x00>`…`<0xFF>` (llama.cpp looks up `<0x0A>` for newline, and any text
/// tokenizes through them), then placeholder tokens `<tok_N>` up to the size. Headroom benchmarks
/// on token ids, so the vocabulary only has to be valid, not useful for text.
public struct GGUFLlamaVocabulary: Sendable {
    public static let unknownID = 0, bosID = 1, eosID = 2
    /// Special tokens plus byte tokens: the smallest vocabulary this can build.
    public static let minimumSize = 3 + 256

    // llama.cpp's token types.
    static let normal: Int32 = 1, unknown: Int32 = 2, control: Int32 = 3, byte: Int32 = 6

    public let tokens: [String]
    public let scores: [Float]
    public let tokenTypes: [Int32]

    public init(size: Int) throws {
        guard size >= Self.minimumSize else {
            throw GGUFError(path: "(writer)", problem: .invalidConfig(
                "vocabulary size \(size) is too small for the minimal tokenizer: it needs at least \(Self.minimumSize) tokens"))
        }
        var tokens = ["<unk>", "<s>", "</s>"]
        var types = [Self.unknown, Self.control, Self.control]
        tokens.reserveCapacity(size)
        types.reserveCapacity(size)
        for b in 0..<256 {
            tokens.append(String(format: "<0x%02X>", b))
            types.append(Self.byte)
        }
        for i in tokens.count..<size {
            tokens.append("<tok_\(i)>")
            types.append(Self.normal)
        }
        // Placeholders score below one another so no two pieces tie.
        scores = (0..<size).map { $0 < Self.minimumSize ? 0 : -Float($0 - Self.minimumSize + 1) }
        self.tokens = tokens
        tokenTypes = types
    }

    /// Writes the `tokenizer.ggml.*` keys.
    public func add(to m: inout GGUFMetadata) {
        m["tokenizer.ggml.model"] = .string("llama")
        m["tokenizer.ggml.tokens"] = .array(.string, tokens.map { .string($0) })
        m["tokenizer.ggml.scores"] = .array(.float32, scores.map { .float32($0) })
        m["tokenizer.ggml.token_type"] = .array(.int32, tokenTypes.map { .int32($0) })
        m["tokenizer.ggml.bos_token_id"] = .uint32(UInt32(Self.bosID))
        m["tokenizer.ggml.eos_token_id"] = .uint32(UInt32(Self.eosID))
        m["tokenizer.ggml.unknown_token_id"] = .uint32(UInt32(Self.unknownID))
        m["tokenizer.ggml.add_bos_token"] = .bool(true)
        m["tokenizer.ggml.add_eos_token"] = .bool(false)
    }
}

extension GGUFFile {
    /// The llama hyperparameters of this file; throws when it is not a valid llama model.
    public func llamaConfig() throws -> GGUFLlamaConfig { try GGUFLlamaConfig(file: self) }
}
