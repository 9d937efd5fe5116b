// The scheduler's knobs, named and defaulted as vLLM v1 names them (`--max-num-seqs`,
// `--max-num-batched-tokens`, `--enable-chunked-prefill`, `--block-size`), validated in one place.

/// How a `ContinuousBatchingScheduler` fills each model step. Call `validate()` before use; the scheduler's
/// initializer does.
public struct SchedulerConfig: Hashable, Sendable {
    /// The most sequences running at once (vLLM `--max-num-seqs`): the batch's width, and so the size of
    /// the per-sequence state the engine keeps. A running sequence keeps its KV blocks between steps even
    /// when the token budget skips it.
    public var maxNumSeqs: Int
    /// The token budget of one step (vLLM `--max-num-batched-tokens`): decode tokens and prefill chunks
    /// together, so a long prompt never stalls the decodes beside it for more than one step.
    public var maxBatchedTokens: Int
    /// Whether a prompt may be prefilled over several steps (vLLM `--enable-chunked-prefill`, on by default in
    /// v1). Off, a waiting request is admitted only when its whole prefill fits the step's remaining budget.
    public var chunkedPrefill: Bool
    /// Positions per KV block (vLLM `--block-size`, 16): smaller wastes less of each sequence's last block,
    /// larger makes the engine's block tables shorter.
    public var blockSize: Int
    /// KV blocks in the pool: what the memory left after the weights holds (vLLM's `num_gpu_blocks`).
    public var totalBlocks: Int
    /// The model's context length (vLLM `--max-model-len`); a request whose prompt plus max output tokens is
    /// longer is refused at `add`. Nil: only the KV pool (and, with chunked prefill off, the budget) limits.
    public var maxModelLength: Int?
    /// With chunked prefill, the most tokens one request's prefill may take in one step (vLLM
    /// `--long-prefill-token-threshold`), so a long prompt leaves budget for the prompts behind it; 0: no
    /// cap beyond the budget. Ignored with chunked prefill off.
    public var longPrefillTokenThreshold: Int

    public init(maxNumSeqs: Int = 256, maxBatchedTokens: Int = 2048, chunkedPrefill: Bool = true, blockSize: Int = 16,
                totalBlocks: Int, maxModelLength: Int? = nil, longPrefillTokenThreshold: Int = 0) {
        self.maxNumSeqs = maxNumSeqs
        self.maxBatchedTokens = maxBatchedTokens
        self.chunkedPrefill = chunkedPrefill
        self.blockSize = blockSize
        self.totalBlocks = totalBlocks
        self.maxModelLength = maxModelLength
        self.longPrefillTokenThreshold = longPrefillTokenThreshold
    }

    /// A field of `SchedulerConfig`, for errors that name it (the command line maps it to its option).
    public enum Field: String, Hashable, Sendable, CaseIterable {
        case maxNumSeqs, maxBatchedTokens, blockSize, totalBlocks, maxModelLength, longPrefillTokenThreshold
    }

    /// Throws the first field that is out of range, or that contradicts another (the same checks vLLM's
    /// `SchedulerConfig` makes).
    public func validate() throws(SchedulerConfigError) {
        func atLeast(_ minimum: Int, _ value: Int, _ field: Field) throws(SchedulerConfigError) {
            if value < minimum { throw SchedulerConfigError(field: field, value: value, requirement: "must be at least \(minimum)") }
        }
        try atLeast(1, maxNumSeqs, .maxNumSeqs)
        try atLeast(1, maxBatchedTokens, .maxBatchedTokens)
        try atLeast(1, blockSize, .blockSize)
        try atLeast(1, totalBlocks, .totalBlocks)
        if totalBlocks > Int(Int32.max) {
            throw SchedulerConfigError(field: .totalBlocks, value: totalBlocks, requirement: "must be at most \(Int32.max)")
        }
        if let maxModelLength { try atLeast(1, maxModelLength, .maxModelLength) }
        try atLeast(0, longPrefillTokenThreshold, .longPrefillTokenThreshold)
        // A budget below the sequence cap could never give every running sequence its decode token in one step.
        if maxBatchedTokens < maxNumSeqs {
            throw SchedulerConfigError(field: .maxBatchedTokens, value: maxBatchedTokens,
                                       requirement: "must be at least maxNumSeqs (\(maxNumSeqs))")
        }
        // Without chunking a full-length prompt must fit one step, or it would wait forever.
        if !chunkedPrefill, let maxModelLength, maxBatchedTokens < maxModelLength {
            throw SchedulerConfigError(field: .maxBatchedTokens, value: maxBatchedTokens,
                                       requirement: "must be at least maxModelLength (\(maxModelLength)) with chunked prefill off")
        }
    }
}

/// A `SchedulerConfig` field out of range: which field, its value, and what it must be.
public struct SchedulerConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    public var field: SchedulerConfig.Field
    public var value: Int
    /// What the value must be, e.g. "must be at least 1".
    public var requirement: String

    public var description: String { "\(field.rawValue) \(requirement), got \(value)" }
}
