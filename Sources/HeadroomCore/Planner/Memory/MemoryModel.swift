// Parameter counts computed from a model's configuration, and the memory model: weights per precision,
// KV cache per token, inference workspace, and fine-tuning / training memory (LoRA, QLoRA, full, ZeRO 0-3).
import Foundation

/// A model's parameters by part, counted from its configuration.
public struct ParameterCount: Codable, Equatable, Sendable {
    public var embedding: Double
    /// Zero when the output projection is tied to the embedding.
    public var lmHead: Double
    /// Q, K, V, O of all layers (with Q/K/V biases where the model has them).
    public var attention: Double
    /// Gate, up and down of every expert of every layer.
    public var mlp: Double
    public var router: Double
    public var norms: Double

    public var total: Double { embedding + lmHead + attention + mlp + router + norms }
    /// Weights of the linear layers inside the blocks (what LoRA adapts and QLoRA quantizes).
    public var blockLinear: Double { attention + mlp + router }
    /// Parameters a token's forward pass multiplies with: all but the unused experts and the embedding lookup.
    public var activePerToken: Double
}

extension ModelShape {
    /// Counts every weight: embedding, attention (with biases), MLP of every expert, router, RMSNorm scales, output head.
    public var parameters: ParameterCount {
        let h = Double(dim), kv = Double(kvDim), f = Double(ffnDim), L = Double(layers), E = Double(experts)
        let embedding = Double(vocab) * h
        let lmHead = tiedEmbeddings ? 0 : Double(vocab) * h
        let attnPerLayer = 2 * h * h + 2 * h * kv + (qkvBias ? h + 2 * kv : 0)
        let expert = 3 * h * f
        let router = experts > 1 ? h * E : 0
        let norms = L * 2 * h + h
        let active = L * (attnPerLayer + Double(expertsPerToken) * expert + router) + Double(vocab) * h
        return ParameterCount(embedding: embedding, lmHead: lmHead, attention: L * attnPerLayer, mlp: L * E * expert,
                              router: L * router, norms: norms, activePerToken: active)
    }
}

/// Bytes a model needs: every figure here is a prediction from the configuration, worked in the tests by hand.
public enum MemoryModel {
    public static let gib = 1_073_741_824.0

    /// Fraction of device memory a serving engine may use (vLLM's default `gpu_memory_utilization`, 0.9).
    public static let servingUtilization = 0.9
    /// Most sequences batched at once (vLLM's default `max_num_seqs`, 256).
    public static let maxBatchCap = 256

    public static func weightBytes(_ m: ModelShape, _ p: Precision) -> Double {
        m.parameters.total * p.weightBytes
    }

    /// layers × 2 (K and V) × KV heads × head dim × bytes per element (`element`: the server's KV dtype,
    /// `HardwareProfile.kvElementBytes`; by default the precision's 16-bit or fp32 activations).
    public static func kvBytesPerToken(_ m: ModelShape, _ p: Precision, element: Double? = nil) -> Double {
        Double(m.layers) * 2 * Double(m.kvHeads) * Double(m.headDim) * (element ?? p.activationBytes)
    }

    /// Per device under tensor parallelism: KV heads are split, and replicated when tp exceeds them.
    public static func kvBytesPerTokenPerDevice(_ m: ModelShape, _ p: Precision, tp: Int, stages: Int = 1, element: Double? = nil) -> Double {
        let headsPerDevice = (m.kvHeads + tp - 1) / tp
        let layersPerDevice = (m.layers + max(1, stages) - 1) / max(1, stages)
        return Double(layersPerDevice) * 2 * Double(headsPerDevice) * Double(m.headDim) * (element ?? p.activationBytes)
    }

    /// Activation workspace for a forward pass over `tokens` tokens of `sequences` sequences: the hidden
    /// state and its norm, the fused QKV output, the attention output, the gate/up outputs and SwiGLU
    /// product of the active experts (one layer live at a time), and fp32 logits for each sequence.
    public static func workspaceBytes(_ m: ModelShape, _ p: Precision, tokens: Int, sequences: Int, tp: Int = 1) -> Double {
        let h = Double(m.dim), kv = Double(m.kvDim), f = Double(m.ffnDim) * Double(m.expertsPerToken)
        let perToken = (3 * h + (h + 2 * kv) / Double(tp) + 3 * f / Double(tp)) * p.activationBytes
        return Double(tokens) * perToken + Double(sequences) * Double(m.vocab) * 4
    }

    /// How a serving replica's memory divides, per device.
    public struct Serving: Codable, Equatable, Sendable {
        public var deviceBytes: Double
        public var usableBytes: Double
        public var weightBytes: Double
        public var workspaceBytes: Double
        public var kvBytesPerSequence: Double
        public var kvBudgetBytes: Double
        public var maxBatch: Int
        /// Why no sequence fits, when none does.
        public var whyNot: String?
    }

    /// Splits one device's memory for serving `m` at `p` with tensor parallelism `tp`, sequences of
    /// `contextTokens` tokens, prefill chunks of `chunkTokens`.
    /// `stages` pipeline stages each hold 1/stages of the layers (weights and KV; the layer count rounded up on
    /// the busiest stage), on `tp` devices each.
    public static func serving(_ m: ModelShape, _ p: Precision, deviceBytes: Double, tp: Int, stages: Int = 1, contextTokens: Int,
                               chunkTokens: Int, kvElementBytes: Double? = nil) -> Serving {
        let usable = deviceBytes * servingUtilization
        let stages = max(1, stages)
        // The busiest stage's share of the layers (the embedding and output head are counted as if spread too).
        let share = stages == 1 ? 1 : Double((m.layers + stages - 1) / stages) / Double(max(1, m.layers))
        let weights = weightBytes(m, p) / Double(tp) * share
        let workspace = workspaceBytes(m, p, tokens: chunkTokens, sequences: maxBatchCap, tp: tp)
        let perSeq = kvBytesPerTokenPerDevice(m, p, tp: tp, stages: stages, element: kvElementBytes) * Double(contextTokens)
        let budget = usable - weights - workspace
        let maxBatch = budget > 0 ? Int(saturating: budget / perSeq, rounding: .down, into: 0...maxBatchCap) : 0
        var why: String?
        if maxBatch < 1 {
            why = String(format: "weights %.1f GiB + workspace %.1f GiB + KV for one %ld-token request %.2f GiB exceed %.1f GiB usable (90%% of %.0f GiB) per device at tp=%ld%@",
                         weights / gib, workspace / gib, contextTokens, perSeq / gib, usable / gib, deviceBytes / gib, tp,
                         stages > 1 ? " with \(stages) pipeline stages" : "")
        }
        return Serving(deviceBytes: deviceBytes, usableBytes: usable, weightBytes: weights, workspaceBytes: workspace,
                       kvBytesPerSequence: perSeq, kvBudgetBytes: max(0, budget), maxBatch: max(0, maxBatch), whyNot: why)
    }

    // MARK: fine-tuning and training

    public enum Method: String, Codable, Sendable, CaseIterable { case lora, qlora, full }

    /// Bytes per parameter of a 4-bit NormalFloat base with double quantization (QLoRA, Dettmers et al.
    /// 2023, §3: 4 + 0.127 bits).
    public static let nf4BytesPerParam = 4.127 / 8

    /// LoRA adapter parameters for rank `r` on every linear layer of every block (Q, K, V, O, gate, up,
    /// down of every expert): r × (inputs + outputs) each.
    public static func loraParameters(_ m: ModelShape, rank: Int) -> Double {
        let h = Double(m.dim), kv = Double(m.kvDim), f = Double(m.ffnDim), r = Double(rank)
        let attn = r * ((h + h) + (h + kv) * 2 + (h + h))
        let mlp = r * 3 * (h + f) * Double(m.experts)
        return Double(m.layers) * (attn + mlp)
    }

    /// Activation bytes stored for backward per token per layer (bf16): the layer input and its norm,
    /// Q/K/V, the attention output, the residual and its norm, gate and up outputs and the SwiGLU product
    /// (6h + 2·kv + 3f elements; flash attention keeps no score matrix).
    public static func activationBytesPerTokenPerLayer(_ m: ModelShape) -> Double {
        (6 * Double(m.dim) + 2 * Double(m.kvDim) + 3 * Double(m.ffnDim) * Double(m.expertsPerToken)) * 2
    }

    public struct Training: Codable, Equatable, Sendable {
        public var weights: Double
        public var adapters: Double
        public var gradients: Double
        public var optimizer: Double
        public var activations: Double
        public var total: Double { weights + adapters + gradients + optimizer + activations }
    }

    /// Memory per device for one training step of `microBatch` sequences of `seqLen` tokens on `devices`
    /// devices with ZeRO `zeroStage` (1 shards optimizer states, 2 also gradients, 3 also weights — for
    /// LoRA/QLoRA stage 3 shards the frozen base as FSDP does). Mixed precision: bf16 weights and
    /// gradients, fp32 master weights + AdamW m and v (12 bytes per trained parameter; ZeRO paper, 2019).
    public static func training(_ m: ModelShape, method: Method, rank: Int, seqLen: Int, microBatch: Int,
                                checkpointing: Bool, devices: Int, zeroStage: Int) -> Training {
        let n = Double(devices)
        let params = m.parameters
        let trained: Double
        var base: Double
        switch method {
        case .full:
            trained = params.total
            base = params.total * 2
        case .lora:
            trained = loraParameters(m, rank: rank)
            base = params.total * 2
        case .qlora:
            trained = loraParameters(m, rank: rank)
            base = params.blockLinear * nf4BytesPerParam + (params.embedding + params.lmHead + params.norms) * 2
        }
        var adapters = method == .full ? 0 : trained * 2
        var grads = trained * 2
        var opt = trained * 12
        if zeroStage >= 1 { opt /= n }
        if zeroStage >= 2 { grads /= n }
        if zeroStage >= 3 { base /= n; adapters /= n }
        let tokens = Double(seqLen * microBatch)
        let perLayer = activationBytesPerTokenPerLayer(m)
        let layers = Double(m.layers)
        let stored = checkpointing ? tokens * (layers * Double(m.dim) * 2 + perLayer) : tokens * layers * perLayer
        let logits = tokens * Double(m.vocab) * 4
        return Training(weights: base, adapters: adapters, gradients: grads, optimizer: opt, activations: stored + logits)
    }

    /// Training FLOPs per token: 6·N for full training (forward 2N, backward 4N), 4·N for LoRA/QLoRA (the
    /// frozen base needs no weight gradients), +2·N when checkpointing recomputes the forward; plus
    /// causal attention, 6·layers·seq·dim (forward 2·s·d per layer, backward twice that).
    public static func trainingFLOPsPerToken(_ m: ModelShape, method: Method, seqLen: Int, checkpointing: Bool) -> Double {
        let n = m.parameters.activePerToken
        var f = method == .full ? 6 * n : 4 * n
        if checkpointing { f += 2 * n }
        f += 6 * Double(m.layers) * Double(seqLen) * Double(m.dim) * (checkpointing ? 4.0 / 3.0 : 1)
        return f
    }
}
