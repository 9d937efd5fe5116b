// The performance model: FLOPs and bytes moved by each operation of a decoder's prefill and decode
// step, turned into time by a roofline with achieved efficiencies, plus tensor-parallel all-reduces
// and the pipeline bubble. Every time it returns is a prediction.
import Foundation

/// One operation's work on one device: FLOPs at a dtype's peak, and bytes moved to and from memory.
public struct OpCost: Codable, Equatable, Sendable {
    public var name: String
    public var flops: Double
    public var bytes: Double
    /// The catalog dtype whose peak this op runs at (fp32, bf16, fp16, fp8, int8).
    public var dtype: String

    public init(name: String, flops: Double, bytes: Double, dtype: String) {
        self.name = name; self.flops = flops; self.bytes = bytes; self.dtype = dtype
    }

    /// FLOPs per byte: where the op sits on the roofline.
    public var intensity: Double { bytes > 0 ? flops / bytes : .infinity }
}

/// The roofline of one device with efficiencies applied.
public struct Roofline: Equatable, Sendable {
    /// Peak FLOP/s per dtype.
    public var peakFLOPs: [String: Double]
    /// Peak bytes/s.
    public var bandwidth: Double
    public var efficiency: Efficiency

    public init(peakFLOPs: [String: Double], bandwidth: Double, efficiency: Efficiency) {
        self.peakFLOPs = peakFLOPs; self.bandwidth = bandwidth; self.efficiency = efficiency
    }

    public init(_ h: HardwareProfile, efficiency: Efficiency? = nil) {
        peakFLOPs = h.peakTflops.mapValues { $0 * 1e12 }
        bandwidth = h.bandwidthGbps * 1e9
        self.efficiency = efficiency ?? h.efficiency
    }

    /// The peak for `dtype`, falling back from bf16 to fp16 to fp32 for elementwise and attention work.
    func peak(_ dtype: String) -> Double {
        peakFLOPs[dtype] ?? peakFLOPs[dtype == "bf16" ? "fp16" : "bf16"] ?? peakFLOPs["fp32"] ?? 0
    }

    /// time = max(FLOPs / (peak × compute efficiency), bytes / (bandwidth × bandwidth efficiency)).
    public func time(_ op: OpCost) -> Double {
        let c = op.flops / (peak(op.dtype) * efficiency.compute)
        let m = op.bytes / (bandwidth * efficiency.bandwidth)
        return max(c, m)
    }

    public func time(_ ops: [OpCost]) -> Double {
        // The peak of each op's dtype, looked up once per dtype of the list (a step's ops use two or three).
        var lastDtype = "", lastPeak = 0.0, total = 0.0
        for op in ops {
            if op.dtype != lastDtype { lastDtype = op.dtype; lastPeak = peak(op.dtype) }
            total += max(op.flops / (lastPeak * efficiency.compute), op.bytes / (bandwidth * efficiency.bandwidth))
        }
        return total
    }
}

public enum PerformanceModel {
    /// The operations of one forward pass on one device of a tensor-parallel group of `tp`, for `sequences`
    /// sequences each adding `newTokens` tokens after `pastTokens` already in the KV cache, all layers summed.
    /// Prefill is (sequences, prompt, 0); a decode step is (batch, 1, context).
    public static func forwardOps(_ m: ModelShape, _ p: Precision, sequences: Int, newTokens: Int, pastTokens: Int,
                                  tp: Int = 1, kvElementBytes: Double? = nil) -> [OpCost] {
        stepOps(m, p, .uniform(sequences: sequences, newTokens: newTokens, pastTokens: pastTokens), tp: tp, kvElementBytes: kvElementBytes)
    }

    /// The operations of one step of any mix of prefill chunks and decodes (`BatchShape`) on one device of
    /// a tensor-parallel group of `tp`, all layers summed: the linear layers read their weights once for all
    /// the step's tokens; attention reads each sequence's cached keys and values.
    /// `kvElementBytes`: bytes of a cached key or value (`HardwareProfile.kvElementBytes`; by default the
    /// precision's activation size).
    public static func stepOps(_ m: ModelShape, _ p: Precision, _ shape: BatchShape, tp: Int = 1,
                               kvElementBytes: Double? = nil) -> [OpCost] {
        var ops: [OpCost] = []
        ops.reserveCapacity(9)
        forEachStepOp(m, p, shape, tp: tp, kvElementBytes: kvElementBytes) { ops.append(OpCost(name: $0, flops: $1, bytes: $2, dtype: $3)) }
        return ops
    }

    /// `stepOps` without the array: each op's (name, FLOPs, bytes, dtype) handed to `body` in order. The one
    /// statement of a step's work, which `stepOps` collects and `stepTime` prices as it goes (the simulator
    /// prices a step per event, and an array per step was a fifth of what-if's time).
    @inline(__always)
    static func forEachStepOp(_ m: ModelShape, _ p: Precision, _ shape: BatchShape, tp: Int, kvElementBytes: Double?,
                              _ body: (String, Double, Double, String) -> Void) {
        let T = Double(shape.tokens), t = Double(tp), L = Double(m.layers)
        let h = Double(m.dim), kv = Double(m.kvDim), f = Double(m.ffnDim)
        let wb = p.weightBytes, ab = p.activationBytes
        let act = p == .fp32 ? "fp32" : "bf16"
        let dtype = p.computeDtype
        func linear(_ name: String, n: Double, k: Double, weightCopies: Double = 1, tokensThrough: Double? = nil) {
            let tokens = tokensThrough ?? T
            body(name, L * 2 * tokens * n * k / t, L * (weightCopies * n * k * wb + tokens * (n + k) * ab) / t, dtype)
        }
        linear("qkv", n: h + 2 * kv, k: h)
        // Attention: every new token attends to the past and to the new tokens before it (causal).
        let attnFlops = L * 4 * shape.attendedKeys * h / t
        let kvRead = L * Double(shape.kvPositionsRead) * 2 * kv * (kvElementBytes ?? ab) / t
        let qoBytes = L * T * 2 * h * ab / t
        body("attention", attnFlops, kvRead + qoBytes, act)
        linear("o", n: h, k: h)
        if m.experts > 1 {
            // Mixture of experts: each token runs `expertsPerToken` experts; the weights read are those of
            // the distinct experts the batch touches, E·(1 − (1 − k/E)^T) in expectation.
            let E = Double(m.experts), k = Double(m.expertsPerToken)
            let touched = E * (1 - pow(1 - k / E, T))
            body("router", L * 2 * T * h * E, L * (h * E * wb + T * (h + E) * ab), act)
            linear("gate_up", n: 2 * f, k: h, weightCopies: touched, tokensThrough: T * k)
            linear("down", n: h, k: f, weightCopies: touched, tokensThrough: T * k)
        } else {
            linear("gate_up", n: 2 * f, k: h)
            linear("down", n: h, k: f)
        }
        // Two RMSNorms, two residual adds and SwiGLU: memory-bound elementwise passes.
        let fActive = f * Double(m.expertsPerToken)
        body("norms+elementwise", L * T * (10 * h + 4 * fActive / t), L * T * (10 * h + 3 * fActive / t) * ab, act)
        // Output head for each sequence that samples this step, then sampling over the vocabulary.
        let V = Double(m.vocab), B = Double(shape.sampledSequences)
        body("lm_head", 2 * B * V * h / t, (V * h * wb + B * (V + h) * ab) / t, dtype)
        body("sampling", 5 * B * V, 2 * B * V * 4, "fp32")
    }

    /// Time of one step of `shape` on a tensor-parallel group: the roofline time of its ops plus two
    /// all-reduces of the hidden state per layer (after attention and after the MLP).
    public static func stepTime(_ m: ModelShape, _ p: Precision, _ shape: BatchShape, tp: Int, roofline: Roofline,
                                interconnect: Interconnect, kvElementBytes: Double? = nil) -> Double {
        guard !shape.isEmpty else { return 0 }
        let hiddenBytes = Double(shape.tokens) * Double(m.dim) * p.activationBytes
        let comm = 2 * Double(m.layers) * allReduceTime(bytes: hiddenBytes, tp: tp, interconnect: interconnect)
        // roofline.time(stepOps(…)) without the array: each dtype's peak looked up once it changes.
        let ic = 1 / roofline.efficiency.compute, ib = 1 / (roofline.bandwidth * roofline.efficiency.bandwidth)
        var lastDtype = "", lastPeakInverse = 0.0, total = 0.0
        forEachStepOp(m, p, shape, tp: tp, kvElementBytes: kvElementBytes) { _, flops, bytes, dtype in
            if dtype != lastDtype { lastDtype = dtype; lastPeakInverse = ic / roofline.peak(dtype) }
            total += max(flops * lastPeakInverse, bytes * ib)
        }
        return total + comm
    }

    /// Ring all-reduce of `bytes` over `tp` devices: 2(tp−1)/tp of the data crosses each link (one
    /// direction, half the vendor's total figure), plus 2(tp−1) latency steps.
    public static func allReduceTime(bytes: Double, tp: Int, interconnect: Interconnect) -> Double {
        guard tp > 1 else { return 0 }
        let t = Double(tp)
        let perDirection = interconnect.bandwidthGbps * 1e9 / 2
        return 2 * (t - 1) / t * bytes / perDirection + 2 * (t - 1) * interconnect.latencyUs * 1e-6
    }

    /// Time of one forward pass (prefill or decode step) of `sequences` alike sequences: `stepTime` of their shape.
    public static func forwardTime(_ m: ModelShape, _ p: Precision, sequences: Int, newTokens: Int, pastTokens: Int,
                                   tp: Int, roofline: Roofline, interconnect: Interconnect) -> Double {
        stepTime(m, p, .uniform(sequences: sequences, newTokens: newTokens, pastTokens: pastTokens), tp: tp, roofline: roofline,
                 interconnect: interconnect)
    }

    /// Pipeline parallelism over `stages` stages with `microbatches` micro-batches: the batch takes
    /// (m + p − 1) stage times, of which a fraction (p − 1)/(m + p − 1) is the bubble.
    public static func pipelineTime(stageTime: Double, stages: Int, microbatches: Int) -> Double {
        stageTime * Double(microbatches + stages - 1)
    }

    public static func pipelineBubble(stages: Int, microbatches: Int) -> Double {
        Double(stages - 1) / Double(microbatches + stages - 1)
    }
}
