// What a fine-tuning run trains besides the decoder's shape (the engine's ModelConfig, checked here by training's
// own rules): the method (LoRA on chosen projections, or full fine-tuning), and the step's settings (batch,
// sequence length, optimizer, threads).
import Foundation
import HeadroomKernels

/// Training's view of the engine's model shape: its own rules, and the widths of the projections it trains.
extension ModelConfig {
    /// Throws `TrainError` when the trainer cannot build this shape (heads not dividing dim, odd head size for RoPE, ...).
    /// The trainer's rules, not the inference kernels' (`validate()`): training has no 32-wide block requirement in f32.
    public func validateForTraining() throws {
        func fail(_ m: String) -> TrainError { .badConfig(m) }
        guard layers >= 1, dim >= 2, heads >= 1, kvHeads >= 1, ffnDim >= 1, vocab >= 2, context >= 1 else {
            throw fail("every size must be positive (layers \(layers), dim \(dim), heads \(heads), kv_heads \(kvHeads), ffn_dim \(ffnDim), vocab \(vocab), context \(context))")
        }
        guard dim % heads == 0 else { throw fail("heads \(heads) must divide dim \(dim)") }
        guard heads % kvHeads == 0 else { throw fail("kv_heads \(kvHeads) must divide heads \(heads)") }
        guard headDim % 2 == 0 else { throw fail("head size \(headDim) must be even for RoPE") }
        guard vocab <= Int(Int32.max) else { throw fail("vocab \(vocab) exceeds 32-bit token ids") }
    }

    /// The input and output widths (K, N) of a projection.
    public func shape(of p: TrainProjection) -> (k: Int, n: Int) {
        switch p {
        case .q, .o: return (dim, dim)
        case .k, .v: return (dim, kvDim)
        case .gate, .up: return (dim, ffnDim)
        case .down: return (ffnDim, dim)
        }
    }
}

/// The seven linear layers of a block that can carry an adapter.
public enum TrainProjection: String, CaseIterable, Sendable, Comparable {
    case q, k, v, o, gate, up, down
    public static func < (a: Self, b: Self) -> Bool { allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)! }

    /// Parses "q,v" or "all"; throws naming the bad entry.
    public static func parseList(_ text: String) throws -> [TrainProjection] {
        if text == "all" { return allCases }
        var out: [TrainProjection] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let name = part.trimmingCharacters(in: .whitespaces)
            guard let p = TrainProjection(rawValue: name) else {
                throw TrainError.badConfig("unknown projection \"\(name)\" in targets \"\(text)\"; expected some of q,k,v,o,gate,up,down or all")
            }
            if !out.contains(p) { out.append(p) }
        }
        return out.sorted()
    }
}

/// LoRA adapter settings (Hu et al. 2021): y += (alpha/rank)·dropout(x)·Aᵀ·Bᵀ on each target projection.
public struct LoRAConfig: Sendable, Equatable {
    public var rank: Int
    public var alpha: Float
    public var dropout: Float
    public var targets: [TrainProjection]
    public init(rank: Int, alpha: Float, dropout: Float = 0, targets: [TrainProjection]) {
        self.rank = rank; self.alpha = alpha; self.dropout = dropout; self.targets = targets.sorted()
    }
    public var scale: Float { alpha / Float(rank) }
}

/// LoRA (frozen base, trainable adapters) or full fine-tuning of every weight in f32.
public enum TrainMethod: Sendable, Equatable {
    case lora(LoRAConfig)
    case full
    public var name: String { if case .lora = self { return "lora" } else { return "full" } }
}

/// The step's settings.
public struct TrainOptions: Sendable, Equatable {
    public var batch: Int
    public var seqLen: Int
    /// Keep only each layer's input and recompute the layer's forward during backward.
    public var checkpointing: Bool
    /// Threads for OpenBLAS and the element-wise kernels.
    public var threads: Int
    /// Seeds the synthetic weights, the adapters' initialisation and the dropout masks.
    public var seed: UInt64
    public var optimizer: AdamWSettings
    /// The storage format of the frozen projections and output layer (LoRA only; full fine-tuning is f32).
    /// The seeded f32 weights are quantized once; embedding and norms stay f32.
    public var precision: QuantType

    public init(batch: Int, seqLen: Int, checkpointing: Bool = false, threads: Int = 1, seed: UInt64 = 1,
                optimizer: AdamWSettings = AdamWSettings(), precision: QuantType = .f32) {
        self.batch = batch; self.seqLen = seqLen; self.checkpointing = checkpointing; self.threads = threads
        self.seed = seed; self.optimizer = optimizer; self.precision = precision
    }
}

/// What went wrong building or feeding a trainer, with what and where.
public enum TrainError: Error, CustomStringConvertible, Equatable {
    case badConfig(String)
    case tokenFile(path: String, message: String)
    /// A step produced a non-finite loss: a failure while running, not bad input.
    case diverged(step: Int, loss: Double)
    public var description: String {
        switch self {
        case .diverged(let step, let loss): return "fine-tuning: step \(step) produced a non-finite loss (\(loss))"
        case .badConfig(let m): return "fine-tuning: \(m)"
        case .tokenFile(let path, let m): return "\(path): \(m)"
        }
    }
}
