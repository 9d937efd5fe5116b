// One model step over any set of sequences of a server: each contributes either one decode token or a chunk
// of its prompt (chunked prefill), its keys and values living in a `PagedKVCache` at the blocks its block
// table names. Batched decode, prefill and mixed steps all go through `step`.
//
// How a mixed step runs: the rows of every sequence are laid out together — single-token work (decodes)
// first, then the chunks — and everything that is per row (embedding, norms, rotary embedding, the KV
// writes, attention, SwiGLU, residual adds) runs over all rows at once. Only the weight products are
// split: the single-token rows go through the batched matrix–vector kernels (each weight read once for all
// of them, q8_0 activations for the block formats, as `InferenceSession.decodeBatch`; a lone one through
// the single-sequence kernel, as `InferenceSession.decode`, unless `batchInvariant`), the chunk rows
// through sgemm over dequantized tiles (as `InferenceSession.prefill`). Merging the two into one product
// would make a row's arithmetic depend on what else is in the step. Attention is one kernel call for all
// rows: row i of a chunk starting at `start` attends to positions 0..<start + i + 1 of its own sequence,
// through its block table.
import HeadroomKernels

/// One sequence's share of a step.
public struct SequenceWork: Sendable {
    /// The caller's name for the sequence (for errors only).
    public var sequence: Int
    /// Physical blocks of the sequence's positions, in order: at least enough for `start + tokens.count`.
    public var blockTable: [Int32]
    /// Tokens to feed: one decode token, or a chunk of the prompt (or of prompt and output, recomputed).
    public var tokens: [Int32]
    /// Positions already in the cache: `tokens[i]` is at position `start + i`.
    public var start: Int
    /// Whether the step returns logits after the last of `tokens` (a decode, or a chunk that ends a prefill).
    public var wantsLogits: Bool

    public init(sequence: Int, blockTable: [Int32], tokens: [Int32], start: Int, wantsLogits: Bool = true) {
        self.sequence = sequence; self.blockTable = blockTable; self.tokens = tokens; self.start = start; self.wantsLogits = wantsLogits
    }
}

/// The model over a paged KV cache. Not thread-safe: one `step` at a time (the kernels use the pool's threads).
public final class ServingSession {
    public let weights: ModelWeights
    public let config: ModelConfig
    public let cache: PagedKVCache
    /// Threads of the kernel pool and of OpenBLAS.
    public let threads: Int
    /// Single-token rows always go through the batched kernel, even alone, so a decode computes bit for bit
    /// the same whatever else is in its step (vLLM's batch-invariant mode). Off, a lone decode takes the
    /// single-sequence kernel, about 30 % faster on q4_0 at the same bytes (it sums in another order, so for
    /// the block formats its logits differ from the batched kernel's by about one q8_0 rounding).
    public var batchInvariant = false

    // Activations, one row per token of the step, grown to the largest step seen.
    private var rowCapacity = 0
    private var x = FloatBuffer(count: 0), xn = FloatBuffer(count: 0), q = FloatBuffer(count: 0), att = FloatBuffer(count: 0)
    private var tmp = FloatBuffer(count: 0), k = FloatBuffer(count: 0), v = FloatBuffer(count: 0)
    private var gate = FloatBuffer(count: 0), up = FloatBuffer(count: 0)
    // Final hidden states and logits of the rows that want them.
    private var logitCapacity = 0
    private var hidden = FloatBuffer(count: 0), logitRows = FloatBuffer(count: 0)
    /// Logit rows the last step produced.
    public private(set) var logitCount = 0
    private var rope: [RoPE.Table] = []
    private let tiles = TileScratch()

    public init(weights: ModelWeights, cache: PagedKVCache, threads: Int = 1) throws {
        guard cache.config == weights.config else {
            throw EngineError.badConfig(weights.config.name, "the KV cache was made for model \(cache.config.name)")
        }
        self.weights = weights; config = weights.config; self.cache = cache; self.threads = max(1, threads)
    }

    /// Bytes of activation buffers held now.
    public var activationBytes: Int {
        [x, xn, q, att, tmp, k, v, gate, up, hidden, logitRows].reduce(0) { $0 + $1.bytes } + tiles.bytes
    }

    /// The logits (vocab) of the `i`-th work item of the last step that wanted them, in batch order; valid
    /// until the next step.
    public func logits(_ i: Int) -> UnsafeBufferPointer<Float> {
        precondition(i >= 0 && i < logitCount, "logit row \(i) of \(logitCount)")
        return UnsafeBufferPointer(start: logitRows.pointer + i * config.vocab, count: config.vocab)
    }

    /// Runs one step and returns the logits of the items that wanted them, in batch order (copies; `step`
    /// and `logits(_:)` do not).
    public func stepLogits(_ batch: [SequenceWork]) throws -> [[Float]] {
        try step(batch)
        return (0..<logitCount).map { Array(logits($0)) }
    }

    private func reserve(rows: Int, logits: Int) {
        let c = config
        if rows > rowCapacity {
            x = FloatBuffer(count: rows * c.dim); xn = FloatBuffer(count: rows * c.dim); q = FloatBuffer(count: rows * c.dim)
            att = FloatBuffer(count: rows * c.dim); tmp = FloatBuffer(count: rows * c.dim)
            k = FloatBuffer(count: rows * c.kvDim); v = FloatBuffer(count: rows * c.kvDim)
            gate = FloatBuffer(count: rows * c.ffnDim); up = FloatBuffer(count: rows * c.ffnDim)
            rowCapacity = rows
        }
        if logits > logitCapacity {
            hidden = FloatBuffer(count: logits * c.dim); logitRows = FloatBuffer(count: logits * c.vocab)
            logitCapacity = logits
        }
    }

    private func ropeTable(_ position: Int) -> RoPE.Table {
        // The model's own frequencies (partial rotary, NEOX or adjacent pairs, scaling, rope_freqs factors).
        while rope.count <= position { rope.append(RoPE.Table(position: rope.count, weights.rope)) }
        return rope[position]
    }

    /// Feeds every item's tokens through the model, writing their keys and values into the cache at their
    /// positions, and leaves the logits of the items that want them in `logits(_:)`; returns how many.
    /// Throws, leaving the cache's rows for these positions overwritten but nothing else changed, for a
    /// token outside the vocabulary, a block table too short for the positions, or non-finite activations.
    @discardableResult
    public func step(_ batch: [SequenceWork]) throws -> Int {
        let c = config, n = threads, bs = cache.blockSize
        logitCount = 0
        // Validate, and lay out rows: single-token items first (the batched matrix-vector kernels), then chunks (sgemm).
        var order: [Int] = [], chunks: [Int] = []
        var tableOffset: [Int] = [], tableStore: [Int32] = []
        for (i, w) in batch.enumerated() {
            guard !w.tokens.isEmpty else { throw EngineError.badConfig(c.name, "sequence \(w.sequence) has no tokens in this step") }
            for t in w.tokens where t < 0 || Int(t) >= c.vocab { throw EngineError.badToken(t, vocab: c.vocab) }
            let end = w.start + w.tokens.count
            guard w.start >= 0, end <= c.context else { throw EngineError.contextFull(sequence: w.sequence, needed: end, capacity: c.context) }
            guard end <= w.blockTable.count * bs else {
                throw EngineError.contextFull(sequence: w.sequence, needed: end, capacity: w.blockTable.count * bs)
            }
            for b in w.blockTable.prefix((end + bs - 1) / bs) where b < 0 || Int(b) >= cache.totalBlocks {
                throw EngineError.badConfig(c.name, "sequence \(w.sequence)'s block table names block \(b), outside 0..<\(cache.totalBlocks)")
            }
            tableOffset.append(tableStore.count)
            tableStore.append(contentsOf: w.blockTable)
            if w.tokens.count == 1 { order.append(i) } else { chunks.append(i) }
        }
        let D = order.count
        order += chunks
        var tokens: [Int32] = [], positions: [Int] = [], rowTable: [Int] = [], logitRow: [Int] = []
        for i in order {
            let w = batch[i]
            for (t, tok) in w.tokens.enumerated() {
                tokens.append(tok); positions.append(w.start + t); rowTable.append(tableOffset[i])
            }
        }
        // Logit rows in batch order: the last row of each item that wants them.
        var lastRow = [Int](repeating: 0, count: batch.count), row = 0
        for i in order { row += batch[i].tokens.count; lastRow[i] = row - 1 }
        for (i, w) in batch.enumerated() where w.wantsLogits { logitRow.append(lastRow[i]) }
        let R = tokens.count, P = R - D
        guard R > 0 else { return 0 }
        reserve(rows: R, logits: logitRow.count)
        if P > 0 { BLASThreads.set(n) }
        _ = ropeTable(positions.max()!)
        let tables = rope
        let npos = positions.map { $0 + 1 }

        try tableStore.withUnsafeBufferPointer { store in
            let base = store.baseAddress!
            let rowTables = rowTable.map { base + $0 }
            /// matrices · rows of `inp` into `outputs` (row-major, `matrices[i].rows` wide).
            func project(_ matrices: [WeightMatrix], _ inp: FloatBuffer, _ outputs: [FloatBuffer]) {
                let cols = matrices[0].cols
                if D == 1 && !batchInvariant { QMatmul.matvec(matrices, x: inp.pointer, outputs: outputs.map(\.pointer), threads: n) }
                else if D > 0 { QMatmul.matvecBatch(matrices, x: inp.pointer, batch: D, outputs: outputs.map(\.pointer), threads: n) }
                if P > 0 {
                    for (m, o) in zip(matrices, outputs) {
                        QMatmul.forward(m, inp: inp.pointer + D * cols, m: P, out: o.pointer + D * m.rows, scratch: tiles, threads: n)
                    }
                }
            }
            /// x += matrix · rows of `inp`.
            func addProject(_ m: WeightMatrix, _ inp: FloatBuffer) {
                if D > 0 {
                    if D == 1 && !batchInvariant { QMatmul.matvec(m, x: inp.pointer, y: tmp.pointer, threads: n) }
                    else { QMatmul.matvecBatch(m, x: inp.pointer, batch: D, y: tmp.pointer, threads: n) }
                    let X = x.pointer, T = tmp.pointer
                    for i in 0..<D * c.dim { X[i] += T[i] }
                }
                if P > 0 {
                    QMatmul.forward(m, inp: inp.pointer + D * m.cols, m: P, out: x.pointer + D * c.dim, accumulate: true, scratch: tiles, threads: n)
                }
            }
            func embedTokens() {
                for (r, tok) in tokens.enumerated() { weights.tokenEmbedding.dequantize(rows: Int(tok), count: 1, into: x.pointer + r * c.dim) }
            }
            /// Every layer over x; with `check`, stops at the first layer after which x holds a non-finite value.
            func runLayers(check: Bool) -> Int? {
                for (l, w) in weights.layers.enumerated() {
                    w.attnNorm.withUnsafeBufferPointer { RMSNorm.forward(out: xn.pointer, inp: x.pointer, weight: $0.baseAddress!, T: R, C: c.dim, eps: c.normEps) }
                    project([w.wq, w.wk, w.wv], xn, [q, k, v])
                    weights.addQKVBias(layer: l, q: q.pointer, k: k.pointer, v: v.pointer, rows: R)
                    let layer = cache.layerBase(l)
                    for r in 0..<R {
                        RoPE.apply(x: q.pointer + r * c.dim, heads: c.heads, tables[positions[r]])
                        RoPE.apply(x: k.pointer + r * c.kvDim, heads: c.kvHeads, tables[positions[r]])
                        let o = cache.rowOffset(rowTables[r], position: positions[r])
                        (layer.k + o).update(from: k.pointer + r * c.kvDim, count: c.kvDim)
                        (layer.v + o).update(from: v.pointer + r * c.kvDim, count: c.kvDim)
                    }
                    Attention.paged(q: q.pointer, kPool: layer.k, vPool: layer.v, tables: rowTables, npos: npos, blockSize: bs,
                                    shape: c.attentionShape, out: att.pointer, threads: n)
                    addProject(w.wo, att)
                    w.ffnNorm.withUnsafeBufferPointer { RMSNorm.forward(out: xn.pointer, inp: x.pointer, weight: $0.baseAddress!, T: R, C: c.dim, eps: c.normEps) }
                    project([w.gate, w.up], xn, [gate, up])
                    SwiGLU.forward(out: gate.pointer, gate: gate.pointer, up: up.pointer, n: R * c.ffnDim, threads: n)
                    addProject(w.down, gate)
                    if check && !InferenceSession.allFinite(x.pointer, count: R * c.dim) { return l }
                }
                return nil
            }
            embedTokens()
            _ = runLayers(check: false)
            // As InferenceSession: one scan of the final hidden states; the layer-by-layer re-check (which
            // rewrites the same KV rows) runs only when it fails.
            if !InferenceSession.allFinite(x.pointer, count: R * c.dim) {
                embedTokens()
                let site = InferenceSession.allFinite(x.pointer, count: R * c.dim) ? runLayers(check: true).map(ActivationSite.layer) : .embedding
                throw NonFiniteActivations(model: weights.file ?? "model \(c.name)", site: site ?? .layer(c.layers - 1))
            }
        }
        let Y = logitRow.count
        guard Y > 0 else { return 0 }
        weights.outputNorm.withUnsafeBufferPointer { g in
            for (j, r) in logitRow.enumerated() {
                RMSNorm.forward(out: hidden.pointer + j * c.dim, inp: x.pointer + r * c.dim, weight: g.baseAddress!, T: 1, C: c.dim, eps: c.normEps)
            }
        }
        if Y == 1 && !batchInvariant { QMatmul.matvec(weights.output, x: hidden.pointer, y: logitRows.pointer, threads: n) }
        else { QMatmul.matvecBatch(weights.output, x: hidden.pointer, batch: Y, y: logitRows.pointer, threads: n) }
        guard InferenceSession.allFinite(logitRows.pointer, count: Y * c.vocab) else {
            throw NonFiniteActivations(model: weights.file ?? "model \(c.name)", site: .output)
        }
        logitCount = Y
        return Y
    }
}
