// The one seam between the trainer and how a frozen base weight is stored: f32 here; f16, q8_0 and
// q4_0 (QLoRA-style) implementations plug in behind the same two methods.
import HeadroomKernels

/// A linear layer y = x·Wᵀ whose weight W (N,K) is not trained. LoRA needs only its forward and the
/// gradient with respect to its input, so a quantized weight never has to be dequantized whole.
public protocol FrozenLinear: AnyObject {
    /// N, the output features (rows of W).
    var outFeatures: Int { get }
    /// K, the input features.
    var inFeatures: Int { get }
    /// Bytes the weight occupies in its storage format.
    var bytes: Int { get }
    /// The storage format's name ("f32", "q4_0", ...).
    var precision: String { get }
    /// out (M,N) = inp (M,K) · Wᵀ.
    func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, M: Int)
    /// dinp (M,K) += dout (M,N) · W.
    func backwardInput(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, M: Int)
}

/// An f32 weight inside the trainer's parameter allocation (not owned: the allocation outlives it).
/// Full fine-tuning trains this same weight, through `weight`.
public final class F32Linear: FrozenLinear {
    public let weight: UnsafeMutablePointer<Float>
    public let outFeatures: Int
    public let inFeatures: Int
    public init(weight: UnsafeMutablePointer<Float>, outFeatures: Int, inFeatures: Int) {
        self.weight = weight; self.outFeatures = outFeatures; self.inFeatures = inFeatures
    }
    public var bytes: Int { outFeatures * inFeatures * MemoryLayout<Float>.stride }
    public var precision: String { "f32" }
    public func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, M: Int) {
        TrainLinear.forward(out: out, inp: inp, weight: weight, M: M, N: outFeatures, K: inFeatures)
    }
    public func backwardInput(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, M: Int) {
        TrainLinear.backwardInput(dinp: dinp, dout: dout, weight: weight, M: M, N: outFeatures, K: inFeatures)
    }
}

/// A frozen weight in one of the engine's GGUF formats (f16, q8_0, q4_0 — q4_0 is QLoRA-style), held as a
/// `WeightMatrix`. Forward and input gradient dequantize a tile of rows at a time into `scratch`, one buffer
/// shared by every layer of a trainer, and multiply with sgemm.
public final class QuantLinear: FrozenLinear {
    public let matrix: WeightMatrix
    public let scratch: TileScratch
    let threads: Int
    /// Quantizes `weight` (N,K) f32 once; K must be a multiple of the format's block size (32).
    public init(quantizing weight: UnsafePointer<Float>, outFeatures: Int, inFeatures: Int, type: QuantType,
                scratch: TileScratch, threads: Int) {
        let values = Array(UnsafeBufferPointer(start: weight, count: outFeatures * inFeatures))
        matrix = WeightMatrix.quantized(values, type: type, rows: outFeatures, cols: inFeatures)
        self.scratch = scratch; self.threads = threads
    }
    /// Uses `matrix` as it is stored (a GGUF file's tensor, say): no copy, no re-quantization.
    public init(matrix: WeightMatrix, scratch: TileScratch, threads: Int) {
        self.matrix = matrix; self.scratch = scratch; self.threads = threads
    }
    public var outFeatures: Int { matrix.rows }
    public var inFeatures: Int { matrix.cols }
    /// The quantized bytes only; the shared tile buffer is counted once by the trainer.
    public var bytes: Int { matrix.bytes }
    public var precision: String { matrix.type.description }
    public func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, M: Int) {
        QMatmul.forward(matrix, inp: inp, m: M, out: out, scratch: scratch, threads: threads)
    }
    public func backwardInput(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, M: Int) {
        QMatmul.backwardInput(matrix, dout: dout, m: M, dinp: dinp, scratch: scratch, threads: threads)
    }
}
