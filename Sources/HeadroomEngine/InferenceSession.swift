// An inference session over one model: KV caches for up to `maxBatch` sequences, prefill of a prompt
// (matrix-matrix, sgemm), decode of one token (matrix-vector, memory-bound) and batched decode of one
// token for each of several sequences, reading every weight once per step. All buffers are sized up front.
import CBLAS
import Foundation
import HeadroomKernels

public final class InferenceSession {
    public let weights: ModelWeights
    public let config: ModelConfig
    /// Threads of the kernel pool and of OpenBLAS.
    public let threads: Int
    /// Positions each sequence's KV cache holds.
    public let maxTokens: Int
    /// Sequences with a KV cache.
    public let maxBatch: Int

    /// Positions filled in each sequence's cache.
    public private(set) var positions: [Int]

    private let kCache: FloatBuffer, vCache: FloatBuffer
    // Decode activations, maxBatch rows each.
    private let x: FloatBuffer, xn: FloatBuffer, q: FloatBuffer, k: FloatBuffer, v: FloatBuffer, att: FloatBuffer, tmp: FloatBuffer
    private let gate: FloatBuffer, up: FloatBuffer, logits: FloatBuffer
    // Prefill activations, grown to the longest prompt seen.
    private var prefillRows = 0
    private var px = FloatBuffer(count: 0), pxn = FloatBuffer(count: 0), pq = FloatBuffer(count: 0), pk = FloatBuffer(count: 0)
    private var pv = FloatBuffer(count: 0), patt = FloatBuffer(count: 0), pgate = FloatBuffer(count: 0), pup = FloatBuffer(count: 0)
    private var scores = FloatBuffer(count: 0)
    private let tiles = TileScratch()

    public init(weights: ModelWeights, maxTokens: Int, maxBatch: Int = 1, threads: Int = 1) throws {
        let c = weights.config
        guard maxTokens >= 1, maxTokens <= c.context else {
            throw EngineError.badConfig(c.name, "a session needs 1 to \(c.context) positions (the context), got \(maxTokens)")
        }
        guard (1...1024).contains(maxBatch) else { throw EngineError.badConfig(c.name, "batch must be 1 to 1024, got \(maxBatch)") }
        self.weights = weights; config = c; self.threads = max(1, threads); self.maxTokens = maxTokens; self.maxBatch = maxBatch
        positions = [Int](repeating: 0, count: maxBatch)
        kCache = FloatBuffer(count: maxBatch * c.layers * maxTokens * c.kvDim)
        vCache = FloatBuffer(count: maxBatch * c.layers * maxTokens * c.kvDim)
        x = FloatBuffer(count: maxBatch * c.dim); xn = FloatBuffer(count: maxBatch * c.dim)
        q = FloatBuffer(count: maxBatch * c.dim); att = FloatBuffer(count: maxBatch * c.dim); tmp = FloatBuffer(count: maxBatch * c.dim)
        k = FloatBuffer(count: maxBatch * c.kvDim); v = FloatBuffer(count: maxBatch * c.kvDim)
        gate = FloatBuffer(count: maxBatch * c.ffnDim); up = FloatBuffer(count: maxBatch * c.ffnDim)
        logits = FloatBuffer(count: maxBatch * c.vocab)
    }

    /// Bytes of the KV caches (f32 keys and values for every sequence, layer and position).
    public var kvCacheBytes: Int { kCache.bytes + vCache.bytes }

    /// Bytes of activation buffers held now (decode, prefill and the dequantization tile).
    public var activationBytes: Int {
        [x, xn, q, k, v, att, tmp, gate, up, logits, px, pxn, pq, pk, pv, patt, pgate, pup, scores].reduce(0) { $0 + $1.bytes } + tiles.bytes
    }

    /// Forgets every sequence (the caches are overwritten as positions refill).
    public func reset() { positions = [Int](repeating: 0, count: maxBatch) }

    /// Makes sequence `to` a copy of sequence `from` (its cache and position): a shared prompt prefilled once.
    public func copySequence(from: Int, to: Int) throws {
        try checkSequence(from); try checkSequence(to)
        let n = positions[from] * config.kvDim
        for l in 0..<config.layers {
            (kCache.pointer + cacheOffset(to, l)).update(from: kCache.pointer + cacheOffset(from, l), count: n)
            (vCache.pointer + cacheOffset(to, l)).update(from: vCache.pointer + cacheOffset(from, l), count: n)
        }
        positions[to] = positions[from]
    }

    private func cacheOffset(_ seq: Int, _ layer: Int) -> Int { (seq * config.layers + layer) * maxTokens * config.kvDim }

    private func checkSequence(_ s: Int) throws { if s < 0 || s >= maxBatch { throw EngineError.badSequence(s, count: maxBatch) } }

    private func checkTokens(_ tokens: [Int32]) throws {
        for t in tokens where t < 0 || Int(t) >= config.vocab { throw EngineError.badToken(t, vocab: config.vocab) }
    }

    private func embed(_ token: Int32, into row: UnsafeMutablePointer<Float>) {
        weights.tokenEmbedding.dequantize(rows: Int(token), count: 1, into: row)
    }

    // MARK: prefill

    private func reservePrefill(_ T: Int, context L: Int) {
        let c = config
        if T > prefillRows {
            px = FloatBuffer(count: T * c.dim); pxn = FloatBuffer(count: T * c.dim); pq = FloatBuffer(count: T * c.dim)
            patt = FloatBuffer(count: T * c.dim); pk = FloatBuffer(count: T * c.kvDim); pv = FloatBuffer(count: T * c.kvDim)
            pgate = FloatBuffer(count: T * c.ffnDim); pup = FloatBuffer(count: T * c.ffnDim)
            prefillRows = T
        }
        if scores.count < T * L { scores = FloatBuffer(count: T * L) }
    }

    /// Runs `tokens` through the model after what `sequence` already holds, and returns the logits (vocab)
    /// at the last position.
    @discardableResult
    public func prefill(_ tokens: [Int32], sequence s: Int = 0) throws -> [Float] {
        try checkSequence(s); try checkTokens(tokens)
        let T = tokens.count, pos0 = positions[s], c = config
        guard T >= 1 else { return [] }
        guard pos0 + T <= maxTokens else { throw EngineError.contextFull(sequence: s, needed: pos0 + T, capacity: maxTokens) }
        reservePrefill(T, context: pos0 + T)
        BLASThreads.set(threads)
        let n = threads
        let X = px.pointer, XN = pxn.pointer
        func rows(_ body: @escaping (Int) -> Void) {
            ThreadPool.run(n) { th in for t in T * th / n..<T * (th + 1) / n { body(t) } }
        }
        func embedTokens() { for (t, tok) in tokens.enumerated() { embed(tok, into: X + t * c.dim) } }
        /// Every layer over X; with `check`, stops at the first layer after which X holds a non-finite value.
        func runLayers(check: Bool) -> Int? {
            for (l, w) in weights.layers.enumerated() {
                w.attnNorm.withUnsafeBufferPointer { g in
                    rows { t in RMSNorm.forward(out: XN + t * c.dim, inp: X + t * c.dim, weight: g.baseAddress!, T: 1, C: c.dim, eps: c.normEps) }
                }
                QMatmul.forward(w.wq, inp: XN, m: T, out: pq.pointer, scratch: tiles, threads: n)
                QMatmul.forward(w.wk, inp: XN, m: T, out: pk.pointer, scratch: tiles, threads: n)
                QMatmul.forward(w.wv, inp: XN, m: T, out: pv.pointer, scratch: tiles, threads: n)
                let Q = pq.pointer, K = pk.pointer
                rows { t in
                    RoPE.forward(x: Q + t * c.dim, T: 1, heads: c.heads, headDim: c.headDim, pos0: pos0 + t, theta: c.ropeTheta)
                    RoPE.forward(x: K + t * c.kvDim, T: 1, heads: c.kvHeads, headDim: c.headDim, pos0: pos0 + t, theta: c.ropeTheta)
                }
                let kc = kCache.pointer + cacheOffset(s, l), vc = vCache.pointer + cacheOffset(s, l)
                (kc + pos0 * c.kvDim).update(from: pk.pointer, count: T * c.kvDim)
                (vc + pos0 * c.kvDim).update(from: pv.pointer, count: T * c.kvDim)
                Attention.prefill(q: Q, kCache: kc, vCache: vc, pos0: pos0, T: T, shape: c.attentionShape,
                                  out: patt.pointer, scores: scores.pointer, threads: n)
                QMatmul.forward(w.wo, inp: patt.pointer, m: T, out: X, accumulate: true, scratch: tiles, threads: n)
                w.ffnNorm.withUnsafeBufferPointer { g in
                    rows { t in RMSNorm.forward(out: XN + t * c.dim, inp: X + t * c.dim, weight: g.baseAddress!, T: 1, C: c.dim, eps: c.normEps) }
                }
                QMatmul.forward(w.gate, inp: XN, m: T, out: pgate.pointer, scratch: tiles, threads: n)
                QMatmul.forward(w.up, inp: XN, m: T, out: pup.pointer, scratch: tiles, threads: n)
                let G = pgate.pointer, U = pup.pointer
                rows { t in SwiGLU.forward(out: G + t * c.ffnDim, gate: G + t * c.ffnDim, up: U + t * c.ffnDim, n: c.ffnDim) }
                QMatmul.forward(w.down, inp: G, m: T, out: X, accumulate: true, scratch: tiles, threads: n)
                if check && !Self.allFinite(X, count: T * c.dim) { return l }
            }
            return nil
        }
        embedTokens()
        _ = runLayers(check: false)
        // The KV cache rows just written are rewritten identically by the re-check, and the position only
        // advances on success: a refused prefill leaves the sequence as it was.
        try requireFinite(X, count: T * c.dim) {
            embedTokens()
            return Self.allFinite(X, count: T * c.dim) ? runLayers(check: true).map(ActivationSite.layer) : .embedding
        }
        // Only the last position's logits are needed to sample the next token.
        weights.outputNorm.withUnsafeBufferPointer { g in
            RMSNorm.forward(out: xn.pointer, inp: X + (T - 1) * c.dim, weight: g.baseAddress!, T: 1, C: c.dim, eps: c.normEps)
        }
        QMatmul.matvec(weights.output, x: xn.pointer, y: logits.pointer, threads: n)
        try requireFinite(logits.pointer, count: c.vocab) { .output }
        positions[s] = pos0 + T
        return Array(UnsafeBufferPointer(start: logits.pointer, count: c.vocab))
    }

    // MARK: decode

    /// Decodes one token for `sequence` and returns the logits (vocab) of the next.
    @discardableResult
    public func decode(_ token: Int32, sequence: Int = 0) throws -> [Float] {
        try step(tokens: [token], sequences: [sequence])
        return Array(UnsafeBufferPointer(start: logits.pointer, count: config.vocab))
    }

    /// Decodes one token for each of sequences 0..<tokens.count at once and returns their logits (batch × vocab, row-major).
    /// Every weight matrix is read once for the whole batch.
    @discardableResult
    public func decodeBatch(_ tokens: [Int32]) throws -> [Float] {
        try step(tokens: tokens, sequences: Array(0..<tokens.count))
        return Array(UnsafeBufferPointer(start: logits.pointer, count: tokens.count * config.vocab))
    }

    /// The logits of the last decode step for row `b` of its batch, without copying.
    public func lastLogits(_ b: Int = 0) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: logits.pointer + b * config.vocab, count: config.vocab)
    }

    private func step(tokens: [Int32], sequences seqs: [Int]) throws {
        let B = tokens.count, c = config, n = threads
        guard B >= 1 else { return }
        guard B <= maxBatch else { throw EngineError.badSequence(B - 1, count: maxBatch) }
        try checkTokens(tokens)
        for s in seqs {
            try checkSequence(s)
            if positions[s] + 1 > maxTokens { throw EngineError.contextFull(sequence: s, needed: positions[s] + 1, capacity: maxTokens) }
        }
        func mv(_ w: WeightMatrix, _ inp: FloatBuffer, _ out: FloatBuffer) {
            if B == 1 { QMatmul.matvec(w, x: inp.pointer, y: out.pointer, threads: n) }
            else { QMatmul.matvecBatch(w, x: inp.pointer, batch: B, y: out.pointer, threads: n) }
        }
        func embedTokens() { for (b, tok) in tokens.enumerated() { embed(tok, into: x.pointer + b * c.dim) } }
        let rope = seqs.map { RoPE.Table(position: positions[$0], headDim: c.headDim, theta: c.ropeTheta) }
        /// Every layer over x; with `check`, stops at the first layer after which x holds a non-finite value.
        func runLayers(check: Bool) -> Int? {
            for (l, w) in weights.layers.enumerated() {
                w.attnNorm.withUnsafeBufferPointer { RMSNorm.forward(out: xn.pointer, inp: x.pointer, weight: $0.baseAddress!, T: B, C: c.dim, eps: c.normEps) }
                if B == 1 { QMatmul.matvec([w.wq, w.wk, w.wv], x: xn.pointer, outputs: [q.pointer, k.pointer, v.pointer], threads: n) }
                else { QMatmul.matvecBatch([w.wq, w.wk, w.wv], x: xn.pointer, batch: B, outputs: [q.pointer, k.pointer, v.pointer], threads: n) }
                var kcs: [UnsafePointer<Float>] = [], vcs: [UnsafePointer<Float>] = [], npos: [Int] = []
                for (b, s) in seqs.enumerated() {
                    let pos = positions[s]
                    RoPE.apply(x: q.pointer + b * c.dim, heads: c.heads, rope[b])
                    RoPE.apply(x: k.pointer + b * c.kvDim, heads: c.kvHeads, rope[b])
                    let kc = kCache.pointer + cacheOffset(s, l), vc = vCache.pointer + cacheOffset(s, l)
                    (kc + pos * c.kvDim).update(from: k.pointer + b * c.kvDim, count: c.kvDim)
                    (vc + pos * c.kvDim).update(from: v.pointer + b * c.kvDim, count: c.kvDim)
                    kcs.append(UnsafePointer(kc)); vcs.append(UnsafePointer(vc)); npos.append(pos + 1)
                }
                Attention.decodeBatch(q: q.pointer, kCaches: kcs, vCaches: vcs, npos: npos, shape: c.attentionShape, out: att.pointer, threads: n)
                mv(w.wo, att, tmp)
                for i in 0..<B * c.dim { x[i] += tmp[i] }
                w.ffnNorm.withUnsafeBufferPointer { RMSNorm.forward(out: xn.pointer, inp: x.pointer, weight: $0.baseAddress!, T: B, C: c.dim, eps: c.normEps) }
                if B == 1 { QMatmul.matvec([w.gate, w.up], x: xn.pointer, outputs: [gate.pointer, up.pointer], threads: n) }
                else { QMatmul.matvecBatch([w.gate, w.up], x: xn.pointer, batch: B, outputs: [gate.pointer, up.pointer], threads: n) }
                SwiGLU.forward(out: gate.pointer, gate: gate.pointer, up: up.pointer, n: B * c.ffnDim, threads: n)
                mv(w.down, gate, tmp)
                for i in 0..<B * c.dim { x[i] += tmp[i] }
                if check && !Self.allFinite(x.pointer, count: B * c.dim) { return l }
            }
            return nil
        }
        embedTokens()
        _ = runLayers(check: false)
        // One scan of the final hidden state per step (B·dim floats, against the layers' B·dim² work); the
        // layer-by-layer re-check runs only when it fails. Positions advance only on success.
        try requireFinite(x.pointer, count: B * c.dim) {
            embedTokens()
            return Self.allFinite(x.pointer, count: B * c.dim) ? runLayers(check: true).map(ActivationSite.layer) : .embedding
        }
        weights.outputNorm.withUnsafeBufferPointer { RMSNorm.forward(out: xn.pointer, inp: x.pointer, weight: $0.baseAddress!, T: B, C: c.dim, eps: c.normEps) }
        mv(weights.output, xn, logits)
        try requireFinite(logits.pointer, count: B * c.vocab) { .output }
        for s in seqs { positions[s] += 1 }
    }

    // MARK: non-finite activations

    /// Throws `NonFiniteActivations` when any of `count` floats at `p` is NaN or infinite, naming the site
    /// `locate` finds (it runs only then, so the check costs one pass over the floats).
    private func requireFinite(_ p: UnsafePointer<Float>, count: Int, locate: () -> ActivationSite?) throws {
        guard !Self.allFinite(p, count: count) else { return }
        // The forward pass is deterministic: the re-check finds the layer. Should it not, the last layer's
        // output is where the first pass saw the value.
        let site = locate() ?? .layer(config.layers - 1)
        throw NonFiniteActivations(model: weights.file ?? "model \(config.name)", site: site)
    }

    /// Whether every one of `count` floats is finite. x · 0 is 0 for a finite x and NaN for NaN or ±∞, so one
    /// bad value turns the sum NaN: a branch-free pass of 16-wide vector multiply-adds.
    static func allFinite(_ p: UnsafePointer<Float>, count n: Int) -> Bool {
        let raw = UnsafeRawPointer(p)
        var acc = SIMD16<Float>(repeating: 0)
        var i = 0
        while i + 16 <= n {
            acc += raw.loadUnaligned(fromByteOffset: i * MemoryLayout<Float>.stride, as: SIMD16<Float>.self) * 0
            i += 16
        }
        var tail: Float = 0
        while i < n { tail += p[i] * 0; i += 1 }
        return acc.sum() + tail == 0
    }
}

/// Where a forward pass first held a NaN or an infinity.
public enum ActivationSite: Equatable, Sendable, CustomStringConvertible {
    /// The embedded tokens, before the first layer.
    case embedding
    /// The hidden state after layer `l` (0-based, as GGUF's `blk.l`): its attention and MLP residual adds.
    case layer(Int)
    /// The logits: the final norm and the output head.
    case output

    public var description: String {
        switch self {
        case .embedding: return "the token embedding (token_embd)"
        case .layer(let l): return "layer \(l) (blk.\(l))"
        case .output: return "the output head (output_norm, output)"
        }
    }
}

/// A forward pass that produced NaN or infinity: the weights hold such a value, or values so large that
/// the activations overflow. Prefill and decode refuse it the same way, so no command prints such logits.
public struct NonFiniteActivations: Error, CustomStringConvertible, Equatable {
    /// The model file (or "model NAME" for synthetic weights).
    public var model: String
    public var site: ActivationSite

    public init(model: String, site: ActivationSite) { self.model = model; self.site = site }

    public var description: String { "\(model): the activations became non-finite (NaN or infinity) in \(site)" }
}

/// Picks the next token from logits: greedy (temperature 0) or sampled from softmax(logits / temperature),
/// optionally only among the nucleus (`topP` < 1: the most likely tokens whose probabilities reach `topP`).
/// Each draw takes one number from its own seeded stream.
public struct Sampler: Sendable {
    public var temperature: Float
    public var topP: Float
    private var rng: SplitMix64

    public init(temperature: Float = 0, topP: Float = 1, seed: UInt64 = 1) {
        self.temperature = temperature; self.topP = topP; rng = SplitMix64(seed: seed)
    }

    public mutating func sample(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        if temperature <= 0 { return Self.argmax(logits) }
        if topP < 1 { return sampleNucleus(logits) }
        var mx = -Float.infinity
        for v in logits { mx = max(mx, v) }
        var sum: Double = 0
        for v in logits { sum += Double(expf((v - mx) / temperature)) }
        var u = Double(rng.nextUnitFloat()) * sum
        for (i, v) in logits.enumerated() {
            u -= Double(expf((v - mx) / temperature))
            if u <= 0 { return Int32(i) }
        }
        return Int32(logits.count - 1)
    }

    public mutating func sample(_ logits: [Float]) -> Int32 { logits.withUnsafeBufferPointer { sample($0) } }

    /// Top-p: sorts only the candidates at least `cut` times the most likely token's probability, lowering
    /// the cut until they hold `topP` of the mass, so a peaked distribution never sorts the vocabulary.
    /// Ties go to the lower token id, as in `argmax`.
    private mutating func sampleNucleus(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        var mx = -Float.infinity
        for v in logits { mx = max(mx, v) }
        var p = [Double](repeating: 0, count: logits.count)
        var total: Double = 0
        for (i, v) in logits.enumerated() { p[i] = Double(expf((v - mx) / temperature)); total += p[i] }
        let target = Double(topP) * total
        var cut = 1e-3
        var candidates: [Int] = []
        while true {
            candidates = p.indices.filter { p[$0] >= cut }
            if cut == 0 || candidates.reduce(0.0, { $0 + p[$1] }) >= target { break }
            cut = cut > 1e-12 ? cut * 1e-3 : 0
        }
        candidates.sort { p[$0] != p[$1] ? p[$0] > p[$1] : $0 < $1 }
        var kept = 0, mass: Double = 0
        while kept < candidates.count {
            mass += p[candidates[kept]]
            kept += 1
            if mass >= target { break }
        }
        var u = Double(rng.nextUnitFloat()) * mass
        for i in candidates.prefix(kept) {
            u -= p[i]
            if u <= 0 { return Int32(i) }
        }
        return Int32(candidates[kept - 1])
    }

    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        var best = 0
        for i in 1..<logits.count where logits[i] > logits[best] { best = i }
        return Int32(best)
    }
}
