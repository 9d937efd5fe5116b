// One inference measurement on synthetic weights of a catalog shape: prefill a prompt, decode tokens
// (one sequence or a batch), repeated, every repetition's figures kept raw; plus the process's memory
// and the rooflines (probe bandwidth and sgemm throughput) those figures are judged against.
import Dispatch
import Foundation
import HeadroomCore
import HeadroomEngine
import HeadroomKernels

/// What one inference measurement runs.
public struct InferenceSpec: Sendable {
    public var model: ModelShape
    public var precision: QuantType
    public var threads: Int
    public var promptTokens: Int
    public var generateTokens: Int
    public var batch: Int
    public var repetitions: Int
    public var warmup: Int
    /// A GGUF file to load instead of synthetic weights (`model` and `precision` then describe the file).
    public var modelFile: String? = nil

    public init(model: ModelShape, precision: QuantType, threads: Int, promptTokens: Int, generateTokens: Int, batch: Int,
                repetitions: Int, warmup: Int) {
        self.model = model; self.precision = precision; self.threads = threads; self.promptTokens = promptTokens
        self.generateTokens = generateTokens; self.batch = batch; self.repetitions = repetitions; self.warmup = warmup
    }

    /// The engine's configuration for `model`.
    public var config: ModelConfig { ModelConfig(model) }

    /// Bytes read per decode step: every weight once, plus each sequence's KV cache at the middle of the generation.
    public var decodeBytesPerStep: Double {
        config.decodeBytes(precision, context: promptTokens + generateTokens / 2, sequences: batch)
    }

    /// FLOPs per prompt token, averaged over the prompt's causal attention lengths.
    public var prefillFlopsPerToken: Double { config.flopsPerToken(context: (promptTokens + 1) / 2) }
}

/// Raw figures of the repetitions, and the memory the process used.
public struct InferenceMeasurement: Sendable {
    public var prefillTokensPerS: [Double] = []
    public var decodeTokensPerS: [Double] = []
    public var ttftMs: [Double] = []
    public var tpotMs: [Double] = []
    public var weightsBytes = 0
    public var kvCacheBytes = 0
    public var activationBytes = 0
    /// VmHWM of the process while this measurement ran (the high-water mark is reset first where Linux allows).
    public var peakRSSBytes = 0
    /// The first generated tokens of the last repetition (sequence 0), so a reader can see the model ran.
    public var sampleTokens: [Int32] = []
}

public enum InferenceBench {
    /// Builds the synthetic weights for `spec` (seeded: the same bytes on every run).
    public static func weights(_ spec: InferenceSpec) throws -> ModelWeights {
        if let path = spec.modelFile { return try GGUFModelSource.weights(path) }
        return try ModelWeights.synthetic(spec.config, type: spec.precision, threads: spec.threads)
    }

    /// Runs warm-ups then repetitions of: prefill the prompt (one sequence; a batch shares it, as a common
    /// system prompt would), then decode `generateTokens` steps for all `batch` sequences, greedy.
    /// `step()` is called after every warm-up or repetition (progress, interruption). A model whose activations
    /// turn NaN or infinite stops with the session's `NonFiniteActivations`, naming the layer.
    public static func measure(_ spec: InferenceSpec, weights: ModelWeights, step: () throws -> Void) throws -> InferenceMeasurement {
        let c = spec.config
        let session = try InferenceSession(weights: weights, maxTokens: spec.promptTokens + spec.generateTokens + 1,
                                           maxBatch: spec.batch, threads: spec.threads)
        var rng = SplitMix64(seed: 0x5052_4F4D)
        let prompt = (0..<spec.promptTokens).map { _ in Int32(rng.next() % UInt64(c.vocab)) }
        var m = InferenceMeasurement()
        m.weightsBytes = weights.bytes
        m.kvCacheBytes = session.kvCacheBytes
        for rep in -spec.warmup..<spec.repetitions {
            session.reset()
            let t0 = now()
            let logits = try session.prefill(prompt, sequence: 0)
            let t1 = now()
            let first = logits.withUnsafeBufferPointer { Sampler.argmax($0) }
            for b in 1..<max(spec.batch, 1) { try session.copySequence(from: 0, to: b) }
            // Different first tokens per sequence, so the batch does not decode one sequence B times.
            var tokens = (0..<spec.batch).map { Int32((Int(first) + $0 * 7919) % c.vocab) }
            let t2 = now()
            var generated: [Int32] = [tokens[0]]
            for _ in 0..<spec.generateTokens {
                if spec.batch == 1 { try session.decode(tokens[0]) } else { try session.decodeBatch(tokens) }
                for b in 0..<spec.batch { tokens[b] = Sampler.argmax(session.lastLogits(b)) }
                generated.append(tokens[0])
            }
            let t3 = now()
            try step()
            guard rep >= 0 else { continue }
            m.prefillTokensPerS.append(Double(spec.promptTokens) / (t1 - t0))
            m.ttftMs.append((t2 - t0) * 1e3)
            if spec.generateTokens > 0 {
                m.decodeTokensPerS.append(Double(spec.batch * spec.generateTokens) / (t3 - t2))
                m.tpotMs.append((t3 - t2) * 1e3 / Double(spec.generateTokens))
            }
            m.sampleTokens = Array(generated.prefix(8))
        }
        m.activationBytes = session.activationBytes
        m.peakRSSBytes = MemoryStats.peakRSSBytes() ?? 0
        return m
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

/// The process's resident memory as Linux reports it.
public enum MemoryStats {
    /// VmHWM (peak resident set) from /proc/self/status, in bytes.
    public static func peakRSSBytes() -> Int? { field("VmHWM:") }
    /// VmRSS (resident now), in bytes.
    public static func rssBytes() -> Int? { field("VmRSS:") }

    /// Resets the peak to the current resident set (writes "5" to /proc/self/clear_refs); false where not allowed.
    @discardableResult
    public static func resetPeak() -> Bool {
        guard let h = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? h.close() }
        do { try h.write(contentsOf: Data("5".utf8)); return true } catch { return false }
    }

    private static func field(_ name: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 2, let kb = Int(parts[1]) else { return nil }
            return kb * 1024
        }
        return nil
    }
}
