// HeadroomEngine: the LLaMA-family model Headroom measures — configuration, weights (synthetic, or any
// bytes in the GGUF formats), the inference session (prefill, decode, batched decode), sampling, and in
// `Serving/` the serving engine (a paged KV cache, one model step over any mix of prefill chunks and
// decodes, the loop that drives HeadroomScheduling's scheduler). It imports only the kernels and the
// scheduler's policy; it knows nothing of prices, plans or the store.
import Foundation
import HeadroomKernels

/// A decoder's shape: what the kernels need, and what memory accounting counts.
public struct ModelConfig: Equatable, Sendable {
    public var name: String
    public var layers: Int
    public var dim: Int
    public var heads: Int
    public var kvHeads: Int
    public var ffnDim: Int
    public var vocab: Int
    public var context: Int
    /// RoPE's frequency base (`{arch}.rope.freq_base`).
    public var ropeTheta: Double
    public var normEps: Float
    /// The GGUF architecture the model follows ("llama", "mistral", "qwen2"); names only, the math is in the fields below.
    public var architecture: String
    /// How positions rotate q and k besides the base: rotated dims, pair ordering, scaling.
    public var rope: RoPESettings
    /// The output head is the token embedding (no separate `output.weight`).
    public var tiedEmbeddings: Bool
    /// Q, K and V projections add a bias vector (qwen2's `blk.N.attn_q.bias`, …).
    public var qkvBias: Bool

    public init(name: String, layers: Int, dim: Int, heads: Int, kvHeads: Int, ffnDim: Int, vocab: Int, context: Int,
                ropeTheta: Double = 10_000, normEps: Float = 1e-5, architecture: String = "llama", rope: RoPESettings = RoPESettings(),
                tiedEmbeddings: Bool = false, qkvBias: Bool = false) {
        self.name = name; self.layers = layers; self.dim = dim; self.heads = heads; self.kvHeads = kvHeads
        self.ffnDim = ffnDim; self.vocab = vocab; self.context = context; self.ropeTheta = ropeTheta; self.normEps = normEps
        self.architecture = architecture; self.rope = rope; self.tiedEmbeddings = tiedEmbeddings; self.qkvBias = qkvBias
    }

    /// Values of each head that RoPE rotates (`{arch}.rope.dimension_count`; the whole head when not given).
    public var ropeDims: Int { rope.dimensions ?? headDim }

    /// The rotation frequencies every session type uses (build once per model): base `ropeTheta` over `ropeDims`,
    /// positions scaled by 1/linear factor, each pair's frequency divided by `factors` (a `rope_freqs.weight`
    /// tensor) or, without them, by the Llama-3 factors the settings describe.
    public func ropeFrequencies(factors: [Float]? = nil) -> RoPE.Frequencies {
        let n = ropeDims
        let f = factors ?? rope.llama3.map { $0.factors(base: ropeTheta, dims: n) }
        return RoPE.Frequencies(headDim: headDim, dims: n, base: ropeTheta, scale: 1 / rope.linearFactor, factors: f, ordering: rope.ordering)
    }

    /// Whether the trainer's RoPE (whole heads, adjacent pairs, unscaled) is this model's.
    public var hasPlainRoPE: Bool { ropeDims == headDim && rope.ordering == .normal && rope.linearFactor == 1 && rope.llama3 == nil }

    public var headDim: Int { dim / heads }
    public var kvDim: Int { kvHeads * headDim }
    var attentionShape: Attention.Shape { Attention.Shape(heads: heads, kvHeads: kvHeads, headDim: headDim) }

    /// Throws when the kernels cannot run this shape: the widths must be multiples of 32 (the f32 kernels' step and
    /// the 32-element blocks), and of `weights`' block size when given (256 for the K-quants).
    public func validate(for weights: QuantType? = nil) throws {
        func need(_ ok: Bool, _ what: String) throws { if !ok { throw EngineError.badConfig(name, what) } }
        try need(layers >= 1 && dim >= 1 && heads >= 1 && kvHeads >= 1 && ffnDim >= 1 && vocab >= 1 && context >= 1, "every size must be positive")
        try need(dim % heads == 0, "dim \(dim) must be a multiple of heads \(heads)")
        try need(heads % kvHeads == 0, "heads \(heads) must be a multiple of kv_heads \(kvHeads)")
        try need(headDim % 2 == 0, "head dim \(headDim) must be even for rotary embedding")
        try need(ropeDims >= 2 && ropeDims % 2 == 0 && ropeDims <= headDim, "rotary dims \(ropeDims) must be even and at most the head dim \(headDim)")
        try need(rope.linearFactor.isFinite && rope.linearFactor > 0, "rope scaling factor \(rope.linearFactor) must be positive")
        try need(dim % 32 == 0 && ffnDim % 32 == 0, "dim \(dim) and ffn_dim \(ffnDim) must be multiples of 32 (block formats)")
        if let weights, weights.blockSize > 32 {
            try need(dim % weights.blockSize == 0 && ffnDim % weights.blockSize == 0,
                     "dim \(dim) and ffn_dim \(ffnDim) must be multiples of \(weights.blockSize) for \(weights) (its block size)")
        }
    }

    /// Weights of the matrix products run per token: the layers' projections and the output head.
    public var matmulWeights: Int { layers * (2 * dim * dim + 2 * dim * kvDim + 3 * dim * ffnDim) + vocab * dim }

    /// FLOPs to compute one token's logits at context length `context` (products of weights, plus attention's
    /// scores and weighted sums over `context` positions).
    public func flopsPerToken(context n: Int) -> Double {
        2 * Double(matmulWeights) + 4 * Double(layers) * Double(dim) * Double(n)
    }

    /// Bytes of weights in `type` (the norms are f32), the output head in `output` when given: exact for the weights
    /// this engine builds.
    public func weightBytes(_ type: QuantType, output: QuantType? = nil) -> Int {
        let perLayer = type.rowBytes(dim) * (2 * dim + 2 * kvDim + 2 * ffnDim) + type.rowBytes(ffnDim) * dim + 2 * dim * 4
        return layers * perLayer + (type.rowBytes(dim) + (output ?? type).rowBytes(dim)) * vocab + dim * 4
    }

    /// Bytes of an f32 KV cache holding `tokens` positions for each of `sequences` sequences.
    public func kvCacheBytes(tokens: Int, sequences: Int = 1) -> Int { 2 * layers * tokens * kvDim * 4 * sequences }

    /// Bytes read from memory to decode one token per sequence for `sequences` sequences at context `n`:
    /// every matrix once (shared by the batch), one embedding row and the KV cache of each sequence.
    public func decodeBytes(_ type: QuantType, output: QuantType? = nil, context n: Int, sequences: Int = 1) -> Double {
        let matrices = Double(weightBytes(type, output: output) - type.rowBytes(dim) * vocab)
        return matrices + Double(sequences) * (Double(type.rowBytes(dim)) + Double(kvCacheBytes(tokens: n)))
    }
}

/// RoPE as a model file describes it, besides the base (see llama.cpp's `llama_model_rope_type` and `ggml_rope_ext`).
public struct RoPESettings: Equatable, Sendable {
    /// Rotated values per head; nil rotates the whole head.
    public var dimensions: Int?
    /// Adjacent pairs (llama, mistral) or halves (qwen2).
    public var ordering: RoPE.Ordering
    /// Linear scaling (`rope.scaling.type` linear): positions are divided by this factor.
    public var linearFactor: Double
    /// Llama-3 scaling, when the file gives its parameters but no `rope_freqs.weight` tensor.
    public var llama3: Llama3Scaling?

    public init(dimensions: Int? = nil, ordering: RoPE.Ordering = .normal, linearFactor: Double = 1, llama3: Llama3Scaling? = nil) {
        self.dimensions = dimensions; self.ordering = ordering; self.linearFactor = linearFactor; self.llama3 = llama3
    }

    /// Llama 3.1's frequency-dependent scaling (the factors convert_hf_to_gguf.py writes as `rope_freqs.weight`).
    public struct Llama3Scaling: Equatable, Sendable {
        public var factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalContext: Double
        public init(factor: Double, lowFreqFactor: Double = 1, highFreqFactor: Double = 4, originalContext: Double = 8192) {
            self.factor = factor; self.lowFreqFactor = lowFreqFactor; self.highFreqFactor = highFreqFactor; self.originalContext = originalContext
        }

        /// One divisor per rotated pair: 1 for short wavelengths, `factor` for long ones, smoothly between.
        public func factors(base: Double, dims: Int) -> [Float] {
            let low = originalContext / lowFreqFactor, high = originalContext / highFreqFactor
            return (0..<dims / 2).map { i in
                let wavelength = 2 * Double.pi * pow(base, 2 * Double(i) / Double(dims))
                if wavelength < high { return 1 }
                if wavelength > low { return Float(factor) }
                let smooth = (originalContext / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor)
                return Float(1 / ((1 - smooth) / factor + smooth))
            }
        }
    }
}

public enum EngineError: Error, CustomStringConvertible, Equatable {
    case badConfig(String, String)
    case missingTensor(String)
    case tensorShape(String, expected: String, got: String)
    case badToken(Int32, vocab: Int)
    case contextFull(sequence: Int, needed: Int, capacity: Int)
    case badSequence(Int, count: Int)

    public var description: String {
        switch self {
        case .badConfig(let name, let what): return "model \(name): \(what)"
        case .missingTensor(let name): return "tensor \(name) is missing"
        case .tensorShape(let name, let expected, let got): return "tensor \(name): expected shape \(expected), got \(got)"
        case .badToken(let t, let vocab): return "token id \(t) is outside the vocabulary 0..<\(vocab)"
        case .contextFull(let s, let needed, let cap): return "sequence \(s) needs \(needed) positions but the KV cache holds \(cap)"
        case .badSequence(let s, let count): return "sequence \(s) is outside 0..<\(count)"
        }
    }
}
