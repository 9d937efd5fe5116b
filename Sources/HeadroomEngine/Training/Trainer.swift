// The fine-tuning step on a LLaMA-family decoder: forward, backward and AdamW, for LoRA adapters on a
// frozen base or for full fine-tuning in f32. Parameters, adapters, gradients, optimizer moments and
// activations each live in one allocation laid out before the first step, so memory is known up front.
import Foundation
import HeadroomKernels

/// Bytes held by each kind of buffer, counted from the layouts (every byte is allocated and touched at start).
public struct TrainMemory: Sendable, Equatable {
    public var weightsBytes: Int
    public var adapterBytes: Int
    public var gradientBytes: Int
    public var optimizerBytes: Int
    public var activationBytes: Int
    public var totalBytes: Int { weightsBytes + adapterBytes + gradientBytes + optimizerBytes + activationBytes }
}

public final class Trainer {
    public let config: ModelConfig
    public let method: TrainMethod
    public let options: TrainOptions

    /// Base weights: one allocation, one named slice per tensor ("emb", "l0.q", "l0.attn_norm", ..., "out").
    public let parameterTable: BufferTable
    public let parameters: FloatBuffer
    /// LoRA adapters ("l0.q.A", "l0.q.B", ...); empty for full fine-tuning.
    public let adapterTable: BufferTable
    /// What AdamW trains (the adapters for LoRA, the parameters for full) and its gradients and moments.
    public let gradients: FloatBuffer
    let moment1: FloatBuffer
    let moment2: FloatBuffer
    let adapters: FloatBuffer
    /// Activations and backward scratch: one allocation, named slices.
    public let activationTable: BufferTable
    let activations: FloatBuffer
    let inputs: UnsafeMutablePointer<Int32>
    let targets: UnsafeMutablePointer<Int32>

    /// Updates applied so far (AdamW's step counter; also seeds each step's dropout masks).
    public private(set) var step = 0

    let blocks: [Block]
    let output: any FrozenLinear
    /// The tile buffer every quantized base weight dequantizes into (unused in f32).
    let tileScratch: TileScratch
    /// Weights held in a quantized format (0 in f32).
    let quantizedParameters: Int
    let acts: [LayerActs]
    let B: Int, T: Int, BT: Int

    /// One projection of one block: its frozen base and, for LoRA targets, where its adapter lives.
    struct Slot {
        let base: any FrozenLinear
        let weightOffset: Int
        let k: Int, n: Int
        let adapter: (a: Int, b: Int)?
    }
    struct Block {
        let slots: [Slot] // indexed like TrainProjection.allCases
        let attnNorm: Int, ffnNorm: Int
        subscript(p: TrainProjection) -> Slot { slots[TrainProjection.allCases.firstIndex(of: p)!] }
    }
    /// Pointers into the activation allocation for one layer's forward results.
    struct LayerActs {
        let ln1, ln1Rstd, q, k, v, probs, att, res1, ln2, ln2Rstd, gate, up, hmid: UnsafeMutablePointer<Float>
        let loraU: [UnsafeMutablePointer<Float>?]     // (BT, r) per projection, nil when not a target
        let loraMask: [UnsafeMutablePointer<Float>?]  // (BT, K) per projection when dropout > 0
    }

    /// Builds the model with seeded synthetic weights (uniform, standard deviation `initStd`, norms at 1), or
    /// from `base` (a GGUF file's weights, say) when given, and allocates every buffer the step needs.
    /// With `base`, a quantized `options.precision` keeps each projection and the output in the base's own
    /// bytes (no re-quantization, no copy); f32 dequantizes them into the parameter allocation (what full
    /// fine-tuning trains). The embedding and norms are always f32.
    public init(config: ModelConfig, method: TrainMethod, options: TrainOptions, initStd: Float = 0.02,
                base: ModelWeights? = nil) throws {
        try config.validateForTraining()
        if let base { try Self.check(base: base, against: config) }
        guard options.batch >= 1, options.seqLen >= 1 else { throw TrainError.badConfig("batch and sequence length must be positive") }
        guard options.seqLen <= config.context else {
            throw TrainError.badConfig("sequence length \(options.seqLen) exceeds the model's context \(config.context)")
        }
        guard options.threads >= 1 else { throw TrainError.badConfig("threads must be positive") }
        if case .lora(let l) = method {
            guard l.rank >= 1 else { throw TrainError.badConfig("LoRA rank must be positive, got \(l.rank)") }
            guard !l.targets.isEmpty else { throw TrainError.badConfig("LoRA needs at least one target projection") }
            guard l.dropout >= 0 && l.dropout < 1 else { throw TrainError.badConfig("LoRA dropout must be in [0, 1), got \(l.dropout)") }
        }
        if options.precision != .f32 {
            guard case .lora = method else {
                throw TrainError.badConfig("full fine-tuning trains every weight in f32; precision \(options.precision) is for LoRA's frozen base (use method lora, or precision f32)")
            }
            let block = options.precision.blockSize
            for (name, k) in [("dim", config.dim), ("ffn_dim", config.ffnDim)] where k % block != 0 {
                throw TrainError.badConfig("precision \(options.precision) needs \(name) (\(k)) to be a multiple of \(block)")
            }
        }
        self.config = config; self.method = method; self.options = options
        BLASThreads.set(options.threads)
        let C = config.dim, V = config.vocab, L = config.layers
        B = options.batch; T = options.seqLen; BT = B * T
        let lora: LoRAConfig? = { if case .lora(let l) = method { return l } else { return nil } }()

        // Parameters.
        // Quantized base: the projections and output are drawn in the same order as in f32, quantized once
        // and kept only in their format; the f32 allocation holds the embedding and the norms.
        let quantized = options.precision != .f32
        let pt = Self.parameterLayout(config: config, quantized: quantized)
        parameterTable = pt
        let params = FloatBuffer(count: pt.count)
        parameters = params
        let scratch = TileScratch()
        tileScratch = scratch
        var quantLinears: [String: QuantLinear] = [:]
        var rng = SplitMix64(seed: options.seed)
        let bound = initStd * Float(3).squareRoot()
        for e in Self.parameterLayout(config: config, quantized: false).entries {
            let kept = pt.entry(e.name)
            if let base {
                let source = Self.baseTensor(e.name, in: base)
                if let kept {
                    let values = source.dequantized()
                    precondition(values.count == e.count, "\(e.name): \(values.count) values, expected \(e.count)")
                    values.withUnsafeBufferPointer { (params.pointer + kept.offset).update(from: $0.baseAddress!, count: e.count) }
                } else {
                    quantLinears[e.name] = QuantLinear(matrix: source, scratch: scratch, threads: options.threads)
                }
                continue
            }
            var temp: [Float] = kept == nil ? [Float](repeating: 0, count: e.count) : []
            temp.withUnsafeMutableBufferPointer { tb in
                let p = kept.map { params.pointer + $0.offset } ?? tb.baseAddress!
                if e.name.hasSuffix("norm") {
                    p.update(repeating: 1, count: e.count)
                } else {
                    for i in 0..<e.count { p[i] = (rng.nextUnitFloat() * 2 - 1) * bound }
                }
                if kept == nil {
                    let (k, n) = Self.quantizedShape(e.name, config: config)
                    quantLinears[e.name] = QuantLinear(quantizing: p, outFeatures: n, inFeatures: k, type: options.precision,
                                                       scratch: scratch, threads: options.threads)
                }
            }
        }

        // Adapters.
        let at = Self.adapterLayout(config: config, lora: lora)
        adapterTable = at
        adapters = FloatBuffer(count: at.count)
        if let lora {
            for l in 0..<L {
                for p in lora.targets {
                    let s = config.shape(of: p)
                    TrainLoRA.initialize(A: adapters.pointer + at.offset("l\(l).\(p.rawValue).A"),
                                         B: adapters.pointer + at.offset("l\(l).\(p.rawValue).B"),
                                         r: lora.rank, N: s.n, K: s.k, seed: options.seed &+ UInt64(1000 * l + p.index + 1))
                }
            }
        }
        let trainable = lora == nil ? pt.count : at.count
        gradients = FloatBuffer(count: trainable)
        moment1 = FloatBuffer(count: trainable)
        moment2 = FloatBuffer(count: trainable)

        // Frozen linears over the parameter allocation.
        var blocks: [Block] = []
        for l in 0..<L {
            let slots = TrainProjection.allCases.map { p -> Slot in
                let s = config.shape(of: p)
                let name = "l\(l).\(p.rawValue)"
                let adapter = lora?.targets.contains(p) == true
                    ? (at.offset("\(name).A"), at.offset("\(name).B")) : nil
                if let q = quantLinears[name] {
                    return Slot(base: q, weightOffset: -1, k: s.k, n: s.n, adapter: adapter)
                }
                let off = pt.offset(name)
                return Slot(base: F32Linear(weight: params.pointer + off, outFeatures: s.n, inFeatures: s.k),
                            weightOffset: off, k: s.k, n: s.n, adapter: adapter)
            }
            blocks.append(Block(slots: slots, attnNorm: pt.offset("l\(l).attn_norm"), ffnNorm: pt.offset("l\(l).ffn_norm")))
        }
        self.blocks = blocks
        output = quantLinears["out"] ?? F32Linear(weight: parameters.pointer + pt.offset(config.tiedEmbeddings ? "emb" : "out"), outFeatures: V, inFeatures: C)
        quantizedParameters = quantLinears.values.reduce(0) { $0 + $1.outFeatures * $1.inFeatures }

        // Activations: every layer's, or (checkpointing) one layer's reused, plus the residual stream.
        let actLayers = options.checkpointing ? 1 : L
        let table = Self.activationLayout(config: config, lora: lora, B: B, T: T, actLayers: actLayers)
        activationTable = table
        activations = FloatBuffer(count: table.count)
        let base = activations.pointer
        func ptr(_ name: String) -> UnsafeMutablePointer<Float> { base + table.offset(name) }
        acts = (0..<actLayers).map { a in
            func n(_ s: String) -> UnsafeMutablePointer<Float> { ptr("a\(a).\(s)") }
            return LayerActs(
                ln1: n("ln1"), ln1Rstd: n("ln1_rstd"), q: n("q"), k: n("k"), v: n("v"), probs: n("probs"), att: n("att"),
                res1: n("res1"), ln2: n("ln2"), ln2Rstd: n("ln2_rstd"), gate: n("gate"), up: n("up"), hmid: n("hmid"),
                loraU: TrainProjection.allCases.map { p in table.entry("a\(a).\(p.rawValue).lora_u").map { base + $0.offset } },
                loraMask: TrainProjection.allCases.map { p in table.entry("a\(a).\(p.rawValue).lora_mask").map { base + $0.offset } })
        }
        TrainRoPE.tables(cos: ptr("rope_cos"), sin: ptr("rope_sin"), T: T, headDim: config.headDim, theta: config.ropeTheta)
        inputs = .allocate(capacity: BT); inputs.initialize(repeating: 0, count: BT)
        targets = .allocate(capacity: BT); targets.initialize(repeating: 0, count: BT)
    }

    /// Throws unless `base` has exactly the shape of `config`.
    static func check(base: ModelWeights, against config: ModelConfig) throws {
        let b = base.config
        let got = [b.layers, b.dim, b.heads, b.kvHeads, b.ffnDim, b.vocab]
        let want = [config.layers, config.dim, config.heads, config.kvHeads, config.ffnDim, config.vocab]
        guard got == want else {
            throw TrainError.badConfig("the base weights' shape (layers, dim, heads, kv_heads, ffn_dim, vocab) \(got) differs from the trainer's \(want)")
        }
        guard b.tiedEmbeddings == config.tiedEmbeddings else {
            throw TrainError.badConfig("the base weights \(b.tiedEmbeddings ? "tie" : "do not tie") the output head to the embedding, the trainer's configuration \(config.tiedEmbeddings ? "does" : "does not")")
        }
        // The trainer's forward is llama's: no Q/K/V biases, whole-head adjacent-pair RoPE, no scaling.
        let model = base.file ?? "model \(b.name)"
        if b.qkvBias { throw TrainError.badConfig("\(model) (\(b.architecture)) adds Q/K/V biases, which the trainer does not apply") }
        if !b.hasPlainRoPE || base.ropeFactors != nil {
            throw TrainError.badConfig("\(model) (\(b.architecture)) uses RoPE the trainer does not compute (partial, NEOX-ordered or scaled); it rotates whole heads in adjacent pairs")
        }
    }

    /// The base tensor behind one of the trainer's parameter names ("emb", "l0.q", "l0.attn_norm", "norm", "out").
    static func baseTensor(_ name: String, in w: ModelWeights) -> WeightMatrix {
        func vec(_ v: [Float]) -> WeightMatrix { WeightMatrix.quantized(v, type: .f32, rows: 1, cols: v.count) }
        switch name {
        case "emb": return w.tokenEmbedding
        case "norm": return vec(w.outputNorm)
        case "out": return w.output
        default:
            let parts = name.split(separator: ".")
            guard parts.count == 2, parts[0].hasPrefix("l"), let l = Int(parts[0].dropFirst()), l < w.layers.count else {
                preconditionFailure("no base tensor for \(name)")
            }
            let layer = w.layers[l]
            switch parts[1] {
            case "attn_norm": return vec(layer.attnNorm)
            case "ffn_norm": return vec(layer.ffnNorm)
            case "q": return layer.wq
            case "k": return layer.wk
            case "v": return layer.wv
            case "o": return layer.wo
            case "gate": return layer.gate
            case "up": return layer.up
            case "down": return layer.down
            default: preconditionFailure("no base tensor for \(name)")
            }
        }
    }

    /// The frozen base as the engine's weights, by GGUF name: f32 tensors copied out of the parameter allocation,
    /// quantized ones sharing their bytes. Written to a GGUF file, it loads back as this trainer's base.
    public func baseWeights(name: String = "trainer") throws -> ModelWeights {
        let c = config
        var model = c
        model.name = name
        func f32(_ trainerName: String, rows: Int, cols: Int) -> WeightMatrix {
            let e = parameterTable.entry(trainerName)!
            let values = Array(UnsafeBufferPointer(start: parameters.pointer + e.offset, count: e.count))
            return WeightMatrix.quantized(values, type: .f32, rows: rows, cols: cols)
        }
        func linear(_ l: Int, _ p: TrainProjection) -> WeightMatrix {
            let slot = blocks[l][p]
            if let q = slot.base as? QuantLinear { return q.matrix }
            return f32("l\(l).\(p.rawValue)", rows: slot.n, cols: slot.k)
        }
        return try ModelWeights(config: model) { name in
            typealias N = ModelWeights.Name
            switch name {
            case N.tokenEmbedding: return f32("emb", rows: c.vocab, cols: c.dim)
            case N.outputNorm: return f32("norm", rows: 1, cols: c.dim)
            case N.output: return c.tiedEmbeddings ? nil : (output as? QuantLinear)?.matrix ?? f32("out", rows: c.vocab, cols: c.dim)
            default:
                for l in 0..<c.layers {
                    let map: [String: TrainProjection] = ["attn_q": .q, "attn_k": .k, "attn_v": .v, "attn_output": .o,
                                                          "ffn_gate": .gate, "ffn_up": .up, "ffn_down": .down]
                    for (part, p) in map where name == N.block(l, part) { return linear(l, p) }
                    if name == N.block(l, "attn_norm") { return f32("l\(l).attn_norm", rows: 1, cols: c.dim) }
                    if name == N.block(l, "ffn_norm") { return f32("l\(l).ffn_norm", rows: 1, cols: c.dim) }
                }
                return nil
            }
        }
    }

    deinit {
        inputs.deallocate()
        targets.deallocate()
    }

    /// The parameter allocation's layout: the embedding, each block's norms and projections, the final norm, the output.
    /// `quantized` leaves out the projections and the output, which then live in their own format (QuantLinear).
    static func parameterLayout(config: ModelConfig, quantized: Bool = false) -> BufferTable {
        let C = config.dim, V = config.vocab
        var pt = BufferTable()
        pt.add("emb", V * C)
        for l in 0..<config.layers {
            pt.add("l\(l).attn_norm", C)
            if !quantized {
                for p in TrainProjection.allCases {
                    let s = config.shape(of: p)
                    pt.add("l\(l).\(p.rawValue)", s.n * s.k)
                }
            }
            pt.add("l\(l).ffn_norm", C)
        }
        pt.add("norm", C)
        // A tied head is the embedding: no parameters of its own (f32), or the embedding quantized (see `quantizedTensors`).
        if !quantized && !config.tiedEmbeddings { pt.add("out", V * C) }
        return pt
    }

    /// Every tensor a quantized base keeps in its format: each block's projections and the output, as (name, K, N).
    static func quantizedTensors(config: ModelConfig) -> [(name: String, k: Int, n: Int)] {
        var out: [(name: String, k: Int, n: Int)] = []
        for l in 0..<config.layers {
            for p in TrainProjection.allCases { let s = config.shape(of: p); out.append(("l\(l).\(p.rawValue)", s.k, s.n)) }
        }
        // A tied head reads the f32 embedding (frozen for LoRA) instead.
        if !config.tiedEmbeddings { out.append(("out", config.dim, config.vocab)) }
        return out
    }

    static func quantizedShape(_ name: String, config: ModelConfig) -> (k: Int, n: Int) {
        guard let t = quantizedTensors(config: config).first(where: { $0.name == name }) else { preconditionFailure("\(name) is not quantized") }
        return (t.k, t.n)
    }

    /// The adapter allocation's layout: A (r,K) and B (N,r) for each target of each block.
    static func adapterLayout(config: ModelConfig, lora: LoRAConfig?) -> BufferTable {
        var at = BufferTable()
        guard let lora else { return at }
        for l in 0..<config.layers {
            for p in lora.targets {
                let s = config.shape(of: p)
                at.add("l\(l).\(p.rawValue).A", lora.rank * s.k)
                at.add("l\(l).\(p.rawValue).B", s.n * lora.rank)
            }
        }
        return at
    }

    /// The memory a trainer with these settings will allocate, computed without allocating it.
    public static func plannedMemory(config: ModelConfig, method: TrainMethod, options: TrainOptions) -> TrainMemory {
        let lora: LoRAConfig? = { if case .lora(let l) = method { return l } else { return nil } }()
        let quantized = options.precision != .f32
        let pt = parameterLayout(config: config, quantized: quantized), at = adapterLayout(config: config, lora: lora)
        let acts = activationLayout(config: config, lora: lora, B: options.batch, T: options.seqLen,
                                    actLayers: options.checkpointing ? 1 : config.layers)
        let trainable = lora == nil ? pt.count : at.count
        let f = MemoryLayout<Float>.stride
        var weights = pt.count * f, padding = 0
        if quantized {
            // The quantized tensors, and the one tile buffer they all dequantize into (sized by the largest tile).
            let scratch = TileScratch(), qt = quantizedTensors(config: config)
            weights += qt.reduce(0) { $0 + options.precision.rowBytes($1.k) * $1.n }
            weights += qt.map { QMatmul.tileBytes(scratch: scratch, rows: $0.n, cols: $0.k) }.max() ?? 0
            // The forward pads B·T rows to a multiple of 16 through two more buffers of that scratch.
            padding = QMatmul.paddingBytes(m: options.batch * options.seqLen, shapes: qt.map { (rows: $0.n, cols: $0.k) })
        }
        return TrainMemory(weightsBytes: weights, adapterBytes: at.count * f, gradientBytes: trainable * f,
                           optimizerBytes: 2 * trainable * f,
                           activationBytes: acts.count * f + 2 * options.batch * options.seqLen * MemoryLayout<Int32>.stride + padding)
    }

    /// The activation allocation's layout: what the step keeps for backward and the backward's scratch.
    static func activationLayout(config: ModelConfig, lora: LoRAConfig?, B: Int, T: Int, actLayers: Int) -> BufferTable {
        let C = config.dim, CKV = config.kvDim, F = config.ffnDim, V = config.vocab, H = config.heads
        let BT = B * T
        var t = BufferTable()
        t.add("resid", (config.layers + 1) * BT * C)  // each layer's input, and the last layer's output
        for a in 0..<actLayers {
            for (name, count) in [("ln1", BT * C), ("ln1_rstd", BT), ("q", BT * C), ("k", BT * CKV), ("v", BT * CKV),
                                  ("probs", B * H * T * T), ("att", BT * C), ("res1", BT * C), ("ln2", BT * C),
                                  ("ln2_rstd", BT), ("gate", BT * F), ("up", BT * F), ("hmid", BT * F)] {
                t.add("a\(a).\(name)", count)
            }
            if let lora {
                for p in lora.targets {
                    t.add("a\(a).\(p.rawValue).lora_u", BT * lora.rank)
                    if lora.dropout > 0 { t.add("a\(a).\(p.rawValue).lora_mask", BT * config.shape(of: p).k) }
                }
            }
        }
        for (name, count) in [("lnf", BT * C), ("lnf_rstd", BT), ("logits", BT * V), ("losses", BT),
                              ("rope_cos", T * config.headDim / 2), ("rope_sin", T * config.headDim / 2),
                              // backward scratch, reused by every layer
                              ("dx", BT * C), ("dln", BT * C), ("dhmid", BT * F), ("dgate", BT * F), ("dup", BT * F),
                              ("datt", BT * C), ("dq", BT * C), ("dk", BT * CKV), ("dv", BT * CKV),
                              ("dq_pre", BT * C), ("dk_pre", BT * CKV), ("dprobs", B * H * T * T)] {
            t.add(name, count)
        }
        if let lora {
            t.add("lora_g", BT * lora.rank)
            if lora.dropout > 0 { t.add("lora_xd", BT * max(C, F)) }
        }
        // The token ids (two int32 arrays) are counted here too, in float-sized units.
        return t
    }

    // MARK: - Sizes

    public var memory: TrainMemory { Self.plannedMemory(config: config, method: method, options: options) }

    /// Parameters AdamW updates.
    public var trainableParameters: Int { gradients.count }
    /// Every parameter of the model, base and adapters (padding excluded).
    public var totalParameters: Int {
        parameterTable.entries.reduce(0) { $0 + $1.count } + quantizedParameters + adapterTable.entries.reduce(0) { $0 + $1.count }
    }

    /// Useful FLOPs per trained token: the multiply-adds of every matrix product the step needs
    /// (forward, input gradients where something below needs them, weight gradients of what is trained,
    /// causal attention counted over the positions actually attended). Recomputation under
    /// checkpointing and element-wise work are not counted. See docs/finetune.md.
    public var flopsPerToken: Double {
        let C = Double(config.dim), V = Double(config.vocab), Tt = Double(T)
        var f = 0.0
        let full = method == .full
        let lora: LoRAConfig? = { if case .lora(let l) = method { return l } else { return nil } }()
        for l in 0..<config.layers {
            for p in TrainProjection.allCases {
                let s = config.shape(of: p)
                let kn = Double(s.k * s.n)
                let needsInput = full || l > 0 || ![.q, .k, .v].contains(p)
                f += 2 * kn + (needsInput ? 2 * kn : 0) + (full ? 2 * kn : 0)
                if let lora, lora.targets.contains(p) {
                    let r = Double(lora.rank)
                    f += 2 * r * Double(s.k + s.n)                     // forward: u = x·Aᵀ, out += u·Bᵀ
                    f += 2 * r * Double(2 * s.n + s.k)                 // dB, g = dout·B, dA
                    f += needsInput ? 2 * r * Double(s.k) : 0          // dinp += g·A
                }
            }
            f += 2 * C * (Tt + 1) + 4 * C * (Tt + 1)                  // attention: forward 2 products, backward 4
        }
        f += 2 * C * V * (full ? 3 : 2)                                // output projection
        return f
    }

    // MARK: - The step

    /// Copies a batch in; its shape must be (batch, seqLen) and its ids below the vocabulary.
    public func setBatch(_ batch: TokenBatch) {
        precondition(batch.inputs.count == BT && batch.targets.count == BT, "batch is not \(B)×\(T)")
        for i in 0..<BT {
            precondition(batch.inputs[i] >= 0 && Int(batch.inputs[i]) < config.vocab && batch.targets[i] >= 0 && Int(batch.targets[i]) < config.vocab,
                         "token id outside the vocabulary")
            inputs[i] = batch.inputs[i]; targets[i] = batch.targets[i]
        }
    }

    /// Forward pass over the current batch; returns the mean cross-entropy loss.
    @discardableResult
    public func forward() -> Double {
        BLASThreads.set(options.threads)  // another trainer (or the probe) may have changed it
        let C = config.dim, L = config.layers
        let resid = act("resid")
        TrainEmbedding.forward(out: resid, tokens: inputs, table: parameters.pointer + parameterTable.offset("emb"), BT: BT, C: C)
        for l in 0..<L { layerForward(l, acts[options.checkpointing ? 0 : l]) }
        TrainRMSNorm.forward(out: act("lnf"), rstd: act("lnf_rstd"), inp: resid + L * BT * C,
                             weight: parameters.pointer + parameterTable.offset("norm"), N: BT, C: C, eps: config.normEps, threads: options.threads)
        output.forward(out: act("logits"), inp: act("lnf"), M: BT)
        return TrainCrossEntropy.forward(losses: act("losses"), logits: act("logits"), targets: targets, N: BT, V: config.vocab,
                                         threads: options.threads)
    }

    /// Zeroes the gradients of what is trained.
    public func zeroGradients() { memset(gradients.pointer, 0, gradients.bytes) }

    /// Backward pass after `forward()`: accumulates into `gradients`. The logits buffer is consumed.
    public func backward() {
        BLASThreads.set(options.threads)
        let C = config.dim, L = config.layers, full = method == .full
        let th = options.threads
        let logits = act("logits"), dln = act("dln"), dx = act("dx"), resid = act("resid")
        TrainCrossEntropy.backwardInPlace(probs: logits, targets: targets, N: BT, V: config.vocab, dloss: 1 / Float(BT), threads: th)
        zero(dln, BT * C)
        output.backwardInput(dinp: dln, dout: logits, M: BT)
        if full {
            // Tied: the head's gradient adds to the embedding's (both accumulate).
            TrainLinear.backwardWeight(dweight: gradients.pointer + parameterTable.offset(config.tiedEmbeddings ? "emb" : "out"), dout: logits, inp: act("lnf"),
                                       M: BT, N: config.vocab, K: C)
        }
        zero(dx, BT * C)
        TrainRMSNorm.backward(dinp: dx, dweight: full ? gradients.pointer + parameterTable.offset("norm") : nil, dout: dln,
                              inp: resid + L * BT * C, weight: parameters.pointer + parameterTable.offset("norm"),
                              rstd: act("lnf_rstd"), N: BT, C: C, threads: th)
        for l in stride(from: L - 1, through: 0, by: -1) {
            let a = acts[options.checkpointing ? 0 : l]
            // Under checkpointing the shared buffers hold the last layer's forward; every other layer is recomputed.
            if options.checkpointing && l != L - 1 { layerForward(l, a) }
            layerBackward(l, a)
        }
        if full {
            TrainEmbedding.backward(dtable: gradients.pointer + parameterTable.offset("emb"), dout: dx, tokens: inputs, BT: BT, C: C)
        }
    }

    /// One AdamW update of what is trained, from the accumulated gradients.
    public func update() {
        step += 1
        let target = method == .full ? parameters : adapters
        TrainAdamW.update(params: target.pointer, grads: gradients.pointer, m: moment1.pointer, v: moment2.pointer,
                          N: gradients.count, step: step, settings: options.optimizer, threads: options.threads)
    }

    /// Forward, backward and update on one batch; returns the loss before the update.
    @discardableResult
    public func trainStep(_ batch: TokenBatch) -> Double {
        let loss = computeGradients(batch)
        update()
        return loss
    }

    /// Forward and backward on one batch with fresh gradients; returns the loss.
    @discardableResult
    public func computeGradients(_ batch: TokenBatch) -> Double {
        setBatch(batch)
        let loss = forward()
        zeroGradients()
        backward()
        return loss
    }

    /// The loss of a batch, forward only (the dropout masks of the current step).
    public func loss(_ batch: TokenBatch) -> Double {
        setBatch(batch)
        return forward()
    }

    /// The trained values (adapters for LoRA, parameters for full), in the layout of `gradients`.
    public var trainedValues: FloatBuffer { method == .full ? parameters : adapters }
    /// The table naming slices of `trainedValues` and `gradients`.
    public var trainedTable: BufferTable { method == .full ? parameterTable : adapterTable }

    // MARK: - One layer

    private func act(_ name: String) -> UnsafeMutablePointer<Float> { activations.pointer + activationTable.offset(name) }
    private func zero(_ p: UnsafeMutablePointer<Float>, _ n: Int) { memset(p, 0, n * MemoryLayout<Float>.stride) }

    private var lora: LoRAConfig? { if case .lora(let l) = method { return l } else { return nil } }

    /// out (BT,N) = inp·Wᵀ (+ the adapter's term) for projection `p` of layer `l`.
    private func project(_ p: TrainProjection, layer l: Int, inp: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, _ a: LayerActs) {
        let slot = blocks[l][p]
        slot.base.forward(out: out, inp: inp, M: BT)
        guard let lora, let ad = slot.adapter else { return }
        let mask = a.loraMask[p.index]
        if let mask {
            TrainLoRA.dropoutMask(mask, count: BT * slot.k, p: lora.dropout, seed: maskSeed(layer: l, p))
        }
        TrainLoRA.forward(out: out, u: a.loraU[p.index]!, inp: inp, mask: mask.map { UnsafePointer($0) },
                          xd: mask == nil ? out : act("lora_xd"), A: adapters.pointer + ad.a, B: adapters.pointer + ad.b,
                          scale: lora.scale, M: BT, N: slot.n, K: slot.k, r: lora.rank)
    }

    /// Backward of `project`: dinp (when given) += ∂/∂inp; weight or adapter gradients accumulate.
    private func projectBackward(_ p: TrainProjection, layer l: Int, dout: UnsafeMutablePointer<Float>, inp: UnsafeMutablePointer<Float>,
                                 dinp: UnsafeMutablePointer<Float>?, _ a: LayerActs) {
        let slot = blocks[l][p]
        if let dinp { slot.base.backwardInput(dinp: dinp, dout: dout, M: BT) }
        if method == .full {
            TrainLinear.backwardWeight(dweight: gradients.pointer + slot.weightOffset, dout: dout, inp: inp, M: BT, N: slot.n, K: slot.k)
        }
        guard let lora, let ad = slot.adapter else { return }
        let mask = a.loraMask[p.index]
        TrainLoRA.backward(dinp: dinp, dA: gradients.pointer + ad.a, dB: gradients.pointer + ad.b, dout: dout, u: a.loraU[p.index]!,
                           inp: inp, mask: mask.map { UnsafePointer($0) }, A: adapters.pointer + ad.a, B: adapters.pointer + ad.b,
                           g: act("lora_g"), xd: mask == nil ? dout : act("lora_xd"),
                           scale: lora.scale, M: BT, N: slot.n, K: slot.k, r: lora.rank)
    }

    private func maskSeed(layer l: Int, _ p: TrainProjection) -> UInt64 {
        var h = options.seed ^ 0xD80F_D80F
        for x in [UInt64(step), UInt64(l), UInt64(p.index)] { h = (h ^ x) &* 0x0000_0100_0000_01B3 &+ 0x9E37_79B9_7F4A_7C15 }
        return h
    }

    private func layerForward(_ l: Int, _ a: LayerActs) {
        let C = config.dim, F = config.ffnDim, th = options.threads
        let x = act("resid") + l * BT * C, out = act("resid") + (l + 1) * BT * C
        let w = parameters.pointer, blk = blocks[l]
        TrainRMSNorm.forward(out: a.ln1, rstd: a.ln1Rstd, inp: x, weight: w + blk.attnNorm, N: BT, C: C, eps: config.normEps, threads: th)
        project(.q, layer: l, inp: a.ln1, out: a.q, a)
        project(.k, layer: l, inp: a.ln1, out: a.k, a)
        project(.v, layer: l, inp: a.ln1, out: a.v, a)
        let cos = act("rope_cos"), sin = act("rope_sin"), hd = config.headDim
        TrainRoPE.forward(out: a.q, inp: a.q, cos: cos, sin: sin, B: B, T: T, NH: config.heads, hd: hd)
        TrainRoPE.forward(out: a.k, inp: a.k, cos: cos, sin: sin, B: B, T: T, NH: config.kvHeads, hd: hd)
        TrainAttention.forward(out: a.att, probs: a.probs, q: a.q, k: a.k, v: a.v, B: B, T: T, NH: config.heads, NKV: config.kvHeads,
                               hd: hd, threads: th)
        project(.o, layer: l, inp: a.att, out: a.res1, a)
        TrainResidual.forward(out: a.res1, a: a.res1, b: x, N: BT * C)
        TrainRMSNorm.forward(out: a.ln2, rstd: a.ln2Rstd, inp: a.res1, weight: w + blk.ffnNorm, N: BT, C: C, eps: config.normEps, threads: th)
        project(.gate, layer: l, inp: a.ln2, out: a.gate, a)
        project(.up, layer: l, inp: a.ln2, out: a.up, a)
        TrainSwiGLU.forward(out: a.hmid, gate: a.gate, up: a.up, N: BT, F: F, threads: th)
        project(.down, layer: l, inp: a.hmid, out: out, a)
        TrainResidual.forward(out: out, a: out, b: a.res1, N: BT * C)
    }

    /// On entry `dx` holds ∂L/∂(layer l's output); on exit ∂L/∂(layer l's input).
    private func layerBackward(_ l: Int, _ a: LayerActs) {
        let C = config.dim, F = config.ffnDim, CKV = config.kvDim, th = options.threads
        let full = method == .full
        let x = act("resid") + l * BT * C
        let w = parameters.pointer, blk = blocks[l]
        let dx = act("dx"), dln = act("dln"), dhmid = act("dhmid"), dgate = act("dgate"), dup = act("dup")
        let datt = act("datt"), dq = act("dq"), dk = act("dk"), dv = act("dv"), dqPre = act("dq_pre"), dkPre = act("dk_pre")
        // MLP: out = res1 + down(swiglu(gate(ln2), up(ln2))).
        zero(dhmid, BT * F)
        projectBackward(.down, layer: l, dout: dx, inp: a.hmid, dinp: dhmid, a)
        zero(dgate, BT * F); zero(dup, BT * F)
        TrainSwiGLU.backward(dgate: dgate, dup: dup, dout: dhmid, gate: a.gate, up: a.up, N: BT, F: F, threads: th)
        zero(dln, BT * C)
        projectBackward(.gate, layer: l, dout: dgate, inp: a.ln2, dinp: dln, a)
        projectBackward(.up, layer: l, dout: dup, inp: a.ln2, dinp: dln, a)
        TrainRMSNorm.backward(dinp: dx, dweight: full ? gradients.pointer + blk.ffnNorm : nil, dout: dln, inp: a.res1,
                              weight: w + blk.ffnNorm, rstd: a.ln2Rstd, N: BT, C: C, threads: th)
        // Attention: res1 = x + o(attention(rope(q(ln1)), rope(k(ln1)), v(ln1))).
        zero(datt, BT * C)
        projectBackward(.o, layer: l, dout: dx, inp: a.att, dinp: datt, a)
        zero(dq, BT * C); zero(dk, BT * CKV); zero(dv, BT * CKV)
        TrainAttention.backward(dq: dq, dk: dk, dv: dv, dprobs: act("dprobs"), dout: datt, probs: a.probs, q: a.q, k: a.k, v: a.v,
                                B: B, T: T, NH: config.heads, NKV: config.kvHeads, hd: config.headDim, threads: th)
        zero(dqPre, BT * C); zero(dkPre, BT * CKV)
        let cos = act("rope_cos"), sin = act("rope_sin")
        TrainRoPE.backward(dinp: dqPre, dout: dq, cos: cos, sin: sin, B: B, T: T, NH: config.heads, hd: config.headDim)
        TrainRoPE.backward(dinp: dkPre, dout: dk, cos: cos, sin: sin, B: B, T: T, NH: config.kvHeads, hd: config.headDim)
        // Below layer 0 only the embedding is left, trained only in full fine-tuning.
        let needInput = full || l > 0
        if needInput { zero(dln, BT * C) }
        projectBackward(.q, layer: l, dout: dqPre, inp: a.ln1, dinp: needInput ? dln : nil, a)
        projectBackward(.k, layer: l, dout: dkPre, inp: a.ln1, dinp: needInput ? dln : nil, a)
        projectBackward(.v, layer: l, dout: dv, inp: a.ln1, dinp: needInput ? dln : nil, a)
        if needInput {
            TrainRMSNorm.backward(dinp: dx, dweight: full ? gradients.pointer + blk.attnNorm : nil, dout: dln, inp: x,
                                  weight: w + blk.attnNorm, rstd: a.ln1Rstd, N: BT, C: C, threads: th)
        }
    }
}

extension TrainProjection {
    /// Position in `allCases`.
    var index: Int { TrainProjection.allCases.firstIndex(of: self)! }
}
