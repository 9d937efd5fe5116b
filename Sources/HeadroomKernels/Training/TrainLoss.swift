// Training kernels for the loss and the optimizer: softmax cross-entropy over the vocabulary (the
// probabilities are kept, in place of the logits, for backward) and AdamW with decoupled weight decay.
import Foundation

public enum TrainCrossEntropy {
    /// Softmax over each row of logits (N,V), written in place as probabilities (kept for backward);
    /// losses (N) = −log p[target]. Returns the mean loss, summed in double. targets is (N).
    @discardableResult
    public static func forward(losses: UnsafeMutablePointer<Float>, logits: UnsafeMutablePointer<Float>,
                               targets: UnsafePointer<Int32>, N: Int, V: Int, threads: Int = 1) -> Double {
        forRows(N, threads: threads) { lo, hi in
            for n in lo..<hi {
                let p = logits + n * V
                var mx = -Float.infinity
                for i in 0..<V { mx = max(mx, p[i]) }
                var sum: Float = 0
                for i in 0..<V { let e = expf(p[i] - mx); p[i] = e; sum += e }
                let inv = 1 / sum
                for i in 0..<V { p[i] *= inv }
                losses[n] = -logf(max(p[Int(targets[n])], Float.leastNormalMagnitude))
            }
        }
        var total = 0.0
        for n in 0..<N { total += Double(losses[n]) }
        return total / Double(N)
    }

    /// dlogits (N,V) += dloss · (probs − onehot(target)), the gradient of dloss·Σ losses.
    /// With dloss = 1/N it is the gradient of the mean loss.
    public static func backward(dlogits: UnsafeMutablePointer<Float>, probs: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                N: Int, V: Int, dloss: Float, threads: Int = 1) {
        forRows(N, threads: threads) { lo, hi in
            for n in lo..<hi {
                let p = probs + n * V, d = dlogits + n * V
                for i in 0..<V { d[i] += dloss * p[i] }
                d[Int(targets[n])] -= dloss
            }
        }
    }

    /// The same gradient written over the probabilities themselves (probs becomes dlogits), which saves
    /// a second (N,V) buffer: the logits are the largest activation of a step.
    public static func backwardInPlace(probs: UnsafeMutablePointer<Float>, targets: UnsafePointer<Int32>,
                                       N: Int, V: Int, dloss: Float, threads: Int = 1) {
        forRows(N, threads: threads) { lo, hi in
            for n in lo..<hi {
                let p = probs + n * V
                for i in 0..<V { p[i] *= dloss }
                p[Int(targets[n])] -= dloss
            }
        }
    }
}

/// AdamW hyper-parameters (Loshchilov & Hutter): decoupled weight decay, bias-corrected moments.
public struct AdamWSettings: Sendable, Equatable {
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    public var weightDecay: Float
    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0.01) {
        self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
    }
}

public enum TrainAdamW {
    /// One AdamW update of params (N) from grads (N), moments m and v (N) updated in place; `step` counts from 1.
    /// p −= lr·(m̂/(√v̂ + eps) + wd·p), with m̂ = m/(1−β1^step), v̂ = v/(1−β2^step).
    public static func update(params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
                              v: UnsafeMutablePointer<Float>, N: Int, step: Int, settings s: AdamWSettings, threads: Int = 1) {
        precondition(step >= 1, "AdamW steps count from 1")
        let c1 = 1 - Float(Foundation.pow(Double(s.beta1), Double(step)))
        let c2 = 1 - Float(Foundation.pow(Double(s.beta2), Double(step)))
        let b1 = s.beta1, b2 = s.beta2, lr = s.learningRate, eps = s.eps, wd = s.weightDecay
        let chunk = 1 << 14
        forRows((N + chunk - 1) / chunk, threads: threads) { lo, hi in
            for i in (lo * chunk)..<min(N, hi * chunk) {
                let g = grads[i]
                let mi = b1 * m[i] + (1 - b1) * g
                let vi = b2 * v[i] + (1 - b2) * g * g
                m[i] = mi; v[i] = vi
                params[i] -= lr * ((mi / c1) / ((vi / c2).squareRoot() + eps) + wd * params[i])
            }
        }
    }
}
