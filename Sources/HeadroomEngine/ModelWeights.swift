// A model's weights: every matrix a `WeightMatrix` over bytes in one of the GGUF formats, so they can be
// synthetic (seeded, of any shape) or point into a memory-mapped GGUF file, with the same tensor names.
import HeadroomKernels

public final class ModelWeights: @unchecked Sendable {
    public struct Layer: @unchecked Sendable {
        public var attnNorm: [Float]
        public var wq, wk, wv, wo: WeightMatrix
        public var ffnNorm: [Float]
        public var gate, up, down: WeightMatrix
        /// Biases added after the Q, K and V projections (qwen2), nil when the model has none.
        public var bq: [Float]? = nil, bk: [Float]? = nil, bv: [Float]? = nil
    }

    public let config: ModelConfig
    public let tokenEmbedding: WeightMatrix
    public let layers: [Layer]
    public let outputNorm: [Float]
    /// The output head: its own matrix, or the token embedding when the config ties them.
    public let output: WeightMatrix
    /// Per-pair frequency divisors from a `rope_freqs.weight` tensor (Llama 3.1), nil when the file has none.
    public let ropeFactors: [Float]?
    /// The rotation frequencies of this model (config and `ropeFactors`), built once: what every session applies.
    public let rope: RoPE.Frequencies
    /// The file the weights were read from (nil for synthetic weights): what errors about the model name.
    public internal(set) var file: String?

    /// The GGUF (llama.cpp) name of each tensor.
    public enum Name {
        public static let tokenEmbedding = "token_embd.weight", outputNorm = "output_norm.weight", output = "output.weight"
        public static func block(_ i: Int, _ part: String) -> String { "blk.\(i).\(part).weight" }
        public static let blockParts = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"]
        public static func bias(_ i: Int, _ part: String) -> String { "blk.\(i).\(part).bias" }
        public static let ropeFactors = "rope_freqs.weight"
    }

    /// The projections that carry a bias when `config.qkvBias`.
    public enum BiasedProjection: String, CaseIterable, Sendable { case q = "attn_q", k = "attn_k", v = "attn_v" }

    /// The bias of projection `p` in layer `layer`, nil when the model has none.
    public func bias(layer: Int, _ p: BiasedProjection) -> [Float]? {
        switch p {
        case .q: return layers[layer].bq
        case .k: return layers[layer].bk
        case .v: return layers[layer].bv
        }
    }

    /// Adds layer `layer`'s Q, K and V biases (if any) to `rows` rows of q (rows, dim), k and v (rows, kvDim): call
    /// right after the three projections, before RoPE.
    public func addQKVBias(layer: Int, q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, rows: Int) {
        let l = layers[layer]
        for (bias, out, width) in [(l.bq, q, config.dim), (l.bk, k, config.kvDim), (l.bv, v, config.kvDim)] {
            guard let bias else { continue }
            bias.withUnsafeBufferPointer { b in
                for r in 0..<rows { let o = out + r * width; for i in 0..<width { o[i] += b[i] } }
            }
        }
    }

    /// Builds from tensors looked up by GGUF name (any format, any owner). Shapes are (rows, cols) with one row
    /// per output feature, as GGUF's ne[1], ne[0]. Norm vectors may be in any format; they are kept as f32.
    public init(config: ModelConfig, tensor: (String) throws -> WeightMatrix?) throws {
        try config.validate()
        func get(_ name: String, _ rows: Int, _ cols: Int) throws -> WeightMatrix {
            guard let t = try tensor(name) else { throw EngineError.missingTensor(name) }
            guard t.rows == rows, t.cols == cols else {
                throw EngineError.tensorShape(name, expected: "\(rows)×\(cols)", got: "\(t.rows)×\(t.cols)")
            }
            return t
        }
        func vector(_ name: String, _ n: Int) throws -> [Float] {
            guard let t = try tensor(name) else { throw EngineError.missingTensor(name) }
            guard t.rows * t.cols == n else { throw EngineError.tensorShape(name, expected: "\(n)", got: "\(t.rows)×\(t.cols)") }
            return t.dequantized()
        }
        let c = config
        self.config = c
        tokenEmbedding = try get(Name.tokenEmbedding, c.vocab, c.dim)
        func bias(_ i: Int, _ part: String, _ n: Int) throws -> [Float]? { c.qkvBias ? try vector(Name.bias(i, part), n) : nil }
        layers = try (0..<c.layers).map { i in
            Layer(attnNorm: try vector(Name.block(i, "attn_norm"), c.dim),
                  wq: try get(Name.block(i, "attn_q"), c.dim, c.dim),
                  wk: try get(Name.block(i, "attn_k"), c.kvDim, c.dim),
                  wv: try get(Name.block(i, "attn_v"), c.kvDim, c.dim),
                  wo: try get(Name.block(i, "attn_output"), c.dim, c.dim),
                  ffnNorm: try vector(Name.block(i, "ffn_norm"), c.dim),
                  gate: try get(Name.block(i, "ffn_gate"), c.ffnDim, c.dim),
                  up: try get(Name.block(i, "ffn_up"), c.ffnDim, c.dim),
                  down: try get(Name.block(i, "ffn_down"), c.dim, c.ffnDim),
                  bq: try bias(i, "attn_q", c.dim), bk: try bias(i, "attn_k", c.kvDim), bv: try bias(i, "attn_v", c.kvDim))
        }
        outputNorm = try vector(Name.outputNorm, c.dim)
        output = c.tiedEmbeddings ? tokenEmbedding : try get(Name.output, c.vocab, c.dim)
        ropeFactors = try tensor(Name.ropeFactors).map { _ in try vector(Name.ropeFactors, c.ropeDims / 2) }
        rope = c.ropeFrequencies(factors: ropeFactors)
    }

    /// Seeded synthetic weights of `config`'s shape, held in `type`. Uniform values scaled so that every
    /// projection keeps its input's variance, and the residual branches (attention output, down projection)
    /// add 1/(2·layers) each: activations stay of order one through any depth. Norm weights are 1.
    public static func synthetic(_ config: ModelConfig, type: QuantType, seed: UInt64 = 0x4845_4144, threads: Int = 1) throws -> ModelWeights {
        try config.validate(for: type)
        var tensors: [String: WeightMatrix] = [:]
        for t in syntheticPlan(config) {
            if let seedIndex = t.seedIndex {
                tensors[t.name] = WeightMatrix.synthetic(type: type, rows: t.rows, cols: t.cols, seed: seed &+ seedIndex &* 0x9E37_79B9,
                                                         scale: t.scale, threads: threads)
            } else {
                tensors[t.name] = WeightMatrix.quantized([Float](repeating: 1, count: t.cols), type: .f32, rows: 1, cols: t.cols)
            }
        }
        return try ModelWeights(config: config, tensor: { tensors[$0] })
    }

    /// One tensor of the synthetic model: a matrix filled from `seed &+ seedIndex &* 0x9E3779B9` with uniform values in
    /// [-scale, scale), or (seedIndex nil) a norm vector of ones. `rows` × `cols`, one row per output feature.
    public struct SyntheticTensor: Sendable {
        public let name: String
        public let rows: Int, cols: Int
        public let scale: Float
        public let seedIndex: UInt64?
        public var isNorm: Bool { seedIndex == nil }
    }

    /// The synthetic model's tensors in llama.cpp's file order, so that `synthetic` and a streaming GGUF export
    /// produce the same bytes tensor by tensor.
    public static func syntheticPlan(_ c: ModelConfig) -> [SyntheticTensor] {
        var plan: [SyntheticTensor] = []
        var counter: UInt64 = 0
        func make(_ name: String, _ rows: Int, _ cols: Int, _ scale: Float) {
            counter += 1
            plan.append(SyntheticTensor(name: name, rows: rows, cols: cols, scale: scale, seedIndex: counter))
        }
        func ones(_ name: String, _ n: Int) { plan.append(SyntheticTensor(name: name, rows: 1, cols: n, scale: 1, seedIndex: nil)) }
        let unit = { (k: Int) -> Float in (3 / Float(k)).squareRoot() }
        let residual = 1 / (2 * Float(c.layers)).squareRoot()
        make(Name.tokenEmbedding, c.vocab, c.dim, 1)
        for i in 0..<c.layers {
            ones(Name.block(i, "attn_norm"), c.dim)
            make(Name.block(i, "attn_q"), c.dim, c.dim, unit(c.dim))
            make(Name.block(i, "attn_k"), c.kvDim, c.dim, unit(c.dim))
            make(Name.block(i, "attn_v"), c.kvDim, c.dim, unit(c.dim))
            make(Name.block(i, "attn_output"), c.dim, c.dim, unit(c.dim) * residual)
            ones(Name.block(i, "ffn_norm"), c.dim)
            make(Name.block(i, "ffn_gate"), c.ffnDim, c.dim, unit(c.dim))
            make(Name.block(i, "ffn_up"), c.ffnDim, c.dim, unit(c.dim))
            make(Name.block(i, "ffn_down"), c.dim, c.ffnDim, unit(c.ffnDim) * residual)
        }
        ones(Name.outputNorm, c.dim)
        if !c.tiedEmbeddings { make(Name.output, c.vocab, c.dim, unit(c.dim)) }
        return plan
    }

    /// Every tensor by GGUF name, in file order (for writing a GGUF file).
    public var namedTensors: [(name: String, matrix: WeightMatrix)] {
        func vec(_ v: [Float]) -> WeightMatrix { WeightMatrix.quantized(v, type: .f32, rows: 1, cols: v.count) }
        var out: [(String, WeightMatrix)] = [(Name.tokenEmbedding, tokenEmbedding)]
        for (i, l) in layers.enumerated() {
            out += [(Name.block(i, "attn_norm"), vec(l.attnNorm)), (Name.block(i, "attn_q"), l.wq), (Name.block(i, "attn_k"), l.wk),
                    (Name.block(i, "attn_v"), l.wv)]
            for p in BiasedProjection.allCases { if let b = bias(layer: i, p) { out.append((Name.bias(i, p.rawValue), vec(b))) } }
            out += [(Name.block(i, "attn_output"), l.wo), (Name.block(i, "ffn_norm"), vec(l.ffnNorm)),
                    (Name.block(i, "ffn_gate"), l.gate), (Name.block(i, "ffn_up"), l.up), (Name.block(i, "ffn_down"), l.down)]
        }
        out.append((Name.outputNorm, vec(outputNorm)))
        if !config.tiedEmbeddings { out.append((Name.output, output)) }
        if let ropeFactors { out.append((Name.ropeFactors, vec(ropeFactors))) }
        return out
    }

    /// Bytes the weights occupy (matrices in their format, norms as f32).
    public var bytes: Int {
        // A tied output head (a GGUF file without output.weight) is the embedding's bytes, counted once.
        var total = tokenEmbedding.bytes + (output.data == tokenEmbedding.data ? 0 : output.bytes) + outputNorm.count * 4
        for l in layers {
            total += l.wq.bytes + l.wk.bytes + l.wv.bytes + l.wo.bytes + l.gate.bytes + l.up.bytes + l.down.bytes
            total += (l.attnNorm.count + l.ffnNorm.count + (l.bq?.count ?? 0) + (l.bk?.count ?? 0) + (l.bv?.count ?? 0)) * 4
        }
        return total
    }

    /// The format of the matrices (the token embedding's).
    public var type: QuantType { tokenEmbedding.type }
}
