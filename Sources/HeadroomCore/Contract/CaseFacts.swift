// The names of the facts a measurement records about itself, and how a case written before facts had
// their own place (they were mixed into `params`) is split: the store's migration and the baseline
// reader both use `CaseFacts.splitLegacy`.

public enum CaseFacts {
    /// The ISA the kernels dispatched to (probe reads, inference's quantized dot products).
    public static let isa = "isa"
    /// The OpenBLAS core type the sgemm probe ran on.
    public static let openblasCore = "openblas_core"
    /// Inference: bytes of the weights as built, of the KV cache, streamed per decode step; FLOPs per
    /// prefill token.
    public static let weightsBytes = "weights_bytes"
    public static let kvCacheBytes = "kv_cache_bytes"
    public static let decodeBytesPerStep = "decode_bytes_per_step"
    public static let prefillFlopsPerToken = "prefill_flops_per_token"

    /// The facts earlier Headroom versions stored among `params` (store rows, baseline files of format 1).
    public static let legacyKeys: Set<String> = [isa, openblasCore, weightsBytes, kvCacheBytes, decodeBytesPerStep,
                                                 prefillFlopsPerToken]

    /// `params` of a case written before facts had their own place, split into the workload's inputs and the
    /// facts (the legacy keys) it recorded. `facts` already present win over a legacy key of the same name.
    public static func splitLegacy(params: [String: String], facts: [String: String] = [:]) -> (params: [String: String], facts: [String: String]) {
        var p: [String: String] = [:], f = facts
        for (k, v) in params {
            if legacyKeys.contains(k) { if f[k] == nil { f[k] = v } } else { p[k] = v }
        }
        return (p, f)
    }
}

/// What an inference case records about itself, typed.
public struct InferenceFacts: Equatable, Sendable {
    public var weightsBytes: Int
    public var kvCacheBytes: Int
    public var decodeBytesPerStep: Int
    public var prefillFlopsPerToken: Int
    public var isa: String

    public init(weightsBytes: Int, kvCacheBytes: Int, decodeBytesPerStep: Int, prefillFlopsPerToken: Int, isa: String) {
        self.weightsBytes = weightsBytes; self.kvCacheBytes = kvCacheBytes; self.decodeBytesPerStep = decodeBytesPerStep
        self.prefillFlopsPerToken = prefillFlopsPerToken; self.isa = isa
    }

    /// Nil when a figure is missing or not an integer (a case written by something else).
    public init?(facts f: [String: String]) {
        guard let w = f[CaseFacts.weightsBytes].flatMap(Int.init), let kv = f[CaseFacts.kvCacheBytes].flatMap(Int.init),
              let d = f[CaseFacts.decodeBytesPerStep].flatMap(Int.init), let p = f[CaseFacts.prefillFlopsPerToken].flatMap(Int.init)
        else { return nil }
        self.init(weightsBytes: w, kvCacheBytes: kv, decodeBytesPerStep: d, prefillFlopsPerToken: p, isa: f[CaseFacts.isa] ?? "")
    }

    public var facts: [String: String] {
        [CaseFacts.weightsBytes: String(weightsBytes), CaseFacts.kvCacheBytes: String(kvCacheBytes),
         CaseFacts.decodeBytesPerStep: String(decodeBytesPerStep), CaseFacts.prefillFlopsPerToken: String(prefillFlopsPerToken),
         CaseFacts.isa: isa]
    }
}
