// The architecture of a LLaMA-family decoder: everything the kernels, the memory model and the
// performance model need to know about a model, read from the catalog.

/// One model's configuration as published (layers, widths, heads, vocabulary, context).
public struct ModelShape: Codable, Equatable, Sendable {
    public var id: String
    public var name: String
    public var layers: Int
    public var dim: Int
    public var heads: Int
    public var kvHeads: Int
    public var ffnDim: Int
    public var vocab: Int
    public var context: Int
    public var ropeTheta: Double
    public var normEps: Double
    public var tiedEmbeddings: Bool
    /// Mixture of experts: experts per MLP layer and experts used per token (1 and 1 for dense models).
    public var experts: Int
    public var expertsPerToken: Int
    /// Q, K and V projections carry a bias (Qwen2.5); counted in parameters, negligible in time.
    public var qkvBias: Bool = false
    /// The total the publisher states, when it states one exactly enough to check against.
    public var publishedParams: Double? = nil
    public var source: String

    public init(id: String, name: String, layers: Int, dim: Int, heads: Int, kvHeads: Int, ffnDim: Int,
                vocab: Int, context: Int, ropeTheta: Double = 10_000, normEps: Double = 1e-5,
                tiedEmbeddings: Bool = false, experts: Int = 1, expertsPerToken: Int = 1, source: String) {
        self.id = id; self.name = name; self.layers = layers; self.dim = dim; self.heads = heads
        self.kvHeads = kvHeads; self.ffnDim = ffnDim; self.vocab = vocab; self.context = context
        self.ropeTheta = ropeTheta; self.normEps = normEps; self.tiedEmbeddings = tiedEmbeddings
        self.experts = experts; self.expertsPerToken = expertsPerToken; self.source = source
    }

    public var headDim: Int { dim / heads }
    public var kvDim: Int { kvHeads * headDim }

    /// The linear layers of one transformer block as (name, N outputs, K inputs), with Q/K/V fused
    /// and gate/up fused the way inference engines run them.
    public var layerProjections: [Projection] {
        [
            Projection(name: "qkv", n: dim + 2 * kvDim, k: dim),
            Projection(name: "o", n: dim, k: dim),
            Projection(name: "gate_up", n: 2 * ffnDim, k: dim),
            Projection(name: "down", n: dim, k: ffnDim),
        ]
    }
}

/// A linear layer y = x·Wᵀ with W of shape (n, k).
public struct Projection: Codable, Equatable, Sendable {
    public let name: String
    public let n: Int
    public let k: Int
}
