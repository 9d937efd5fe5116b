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
