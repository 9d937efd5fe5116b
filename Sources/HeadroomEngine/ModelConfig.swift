// HeadroomEngine: the LLaMA-family model Headroom measures — configuration, weights (synthetic, or any
// bytes in the GGUF formats), the inference session (prefill, decode, batched decode), sampling, and in
// `Serving/` the serving engine (a paged KV cache, one model step over any mix of prefill chunks and
// decodes, the loop that drives HeadroomScheduling's scheduler). It imports only the kernels and the
// scheduler's policy; it knows nothing of prices, plans or the store.
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
    public var ropeTheta: Double
    public var normEps: Float

    public init(name: String, layers: Int, dim: Int, heads: Int, kvHeads: Int, ffnDim: Int, vocab: Int, context: Int,
                ropeTheta: Double = 10_000, normEps: Float = 1e-5) {
        self.name = name; self.layers = layers; self.dim = dim; self.heads = heads; self.kvHeads = kvHeads
        self.ffnDim = ffnDim; self.vocab = vocab; self.context = context; self.ropeTheta = ropeTheta; self.normEps = normEps
    }

    public var headDim: Int { dim / heads }
    public var kvDim: Int { kvHeads * headDim }
    var attentionShape: Attention.Shape { Attention.Shape(heads: heads, kvHeads: kvHeads, headDim: headDim) }

    /// Throws when the kernels cannot run this shape (the block formats need widths that are multiples of 32).
    public func validate() throws {
        func need(_ ok: Bool, _ what: String) throws { if !ok { throw EngineError.badConfig(name, what) } }
        try need(layers >= 1 && dim >= 1 && heads >= 1 && kvHeads >= 1 && ffnDim >= 1 && vocab >= 1 && context >= 1, "every size must be positive")
        try need(dim % heads == 0, "dim \(dim) must be a multiple of heads \(heads)")
        try need(heads % kvHeads == 0, "heads \(heads) must be a multiple of kv_heads \(kvHeads)")
        try need(headDim % 2 == 0, "head dim \(headDim) must be even for rotary embedding")
        try need(dim % 32 == 0 && ffnDim % 32 == 0, "dim \(dim) and ffn_dim \(ffnDim) must be multiples of 32 (block formats)")
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
