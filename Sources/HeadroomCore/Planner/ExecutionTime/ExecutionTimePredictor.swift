// How long one model step takes, for any mix of prefill chunks and decodes. The serving models (the
// queueing approximation, the discrete-event simulator) ask only this; which model answers — the roofline
// with calibrated efficiencies, or a table fitted to steps measured on this machine — they never know.

import HeadroomScheduling

/// One model step's work as the scheduler planned it: prefill chunks (tokens, past tokens) and decodes
/// (context each), summed into what a step's time depends on. Built with `addPrefill` and `addDecode`, it
/// holds no arrays, so the simulator describes millions of steps without allocating.
public struct BatchShape: Equatable, Hashable, Sendable {
    /// Tokens fed through the model this step: every chunk's tokens plus one per decode.
    public private(set) var tokens = 0
    /// Prefill tokens (chunks of prompts, or of a preempted request's prompt and output recomputed).
    public private(set) var prefillTokens = 0
    /// Prefill chunks in the step.
    public private(set) var prefillChunks = 0
    /// Decodes in the step (one token each).
    public private(set) var decodes = 0
    /// Sequences that sample a token this step (every decode, and a chunk that ends its prefill): the rows
    /// of the output head.
    public private(set) var sampledSequences = 0
    /// Σ over new tokens of the keys each attends to (past positions, and the new ones before it, causal).
    public private(set) var attendedKeys = 0.0
    /// Σ over sequences of the positions whose keys and values are read (past + new).
    public private(set) var kvPositionsRead = 0
    /// The decodes' share of `attendedKeys` and `kvPositionsRead` (a model that prices decodes and prompt
    /// chunks by different kernels splits the step's attention so).
    public private(set) var decodeAttendedKeys = 0.0
    public private(set) var decodeKVPositionsRead = 0

    public init() {}

    /// The shape of a step the scheduler planned: decodes at their context, chunks after their past tokens.
    /// (The simulator prices its steps so, and `headroom serve` logs its steps so.)
    public init(_ work: some Sequence<ScheduledWork>) {
        for w in work {
            if w.kind == .decode { addDecode(context: w.start) } else { addPrefill(tokens: w.tokenCount, pastTokens: w.start, samples: w.yieldsToken) }
        }
    }

    /// A shape from its sums, as a step log records them. Nil when they do not describe a step: a count below 0,
    /// more sampled sequences than sequences, keys that are not finite and at least 0, or a decodes' share above
    /// the whole. Without the decodes' share of the attention sums (an older log), it is split by tokens.
    public init?(prefillTokens: Int, prefillChunks: Int, decodes: Int, sampledSequences: Int, attendedKeys: Double, kvPositionsRead: Int,
                 decodeAttendedKeys: Double? = nil, decodeKVPositionsRead: Int? = nil) {
        guard prefillTokens >= 0, prefillChunks >= 0, prefillChunks <= prefillTokens, decodes >= 0, sampledSequences >= 0,
              sampledSequences <= prefillChunks + decodes, attendedKeys.isFinite, attendedKeys >= 0, kvPositionsRead >= 0,
              prefillTokens <= Int.max / 2, decodes <= Int.max / 2 else { return nil }
        self.prefillTokens = prefillTokens; self.prefillChunks = prefillChunks; self.decodes = decodes
        self.tokens = prefillTokens + decodes; self.sampledSequences = sampledSequences
        self.attendedKeys = attendedKeys; self.kvPositionsRead = kvPositionsRead
        if let k = decodeAttendedKeys, let r = decodeKVPositionsRead {
            guard k.isFinite, k >= 0, k <= attendedKeys, r >= 0, r <= kvPositionsRead else { return nil }
            self.decodeAttendedKeys = k; self.decodeKVPositionsRead = r
        } else {
            let share = tokens > 0 ? Double(decodes) / Double(tokens) : 0
            self.decodeAttendedKeys = attendedKeys * share
            self.decodeKVPositionsRead = Int((Double(kvPositionsRead) * share).rounded())
        }
    }

    /// A chunk of `tokens` prompt tokens after `pastTokens` already cached; `samples` when it ends the prefill.
    public mutating func addPrefill(tokens t: Int, pastTokens past: Int, samples: Bool = true) {
        guard t > 0 else { return }
        tokens += t; prefillTokens += t; prefillChunks += 1
        if samples { sampledSequences += 1 }
        attendedKeys += Double(t) * (Double(past) + Double(t + 1) / 2)
        kvPositionsRead += past + t
    }

    /// One decode token for a sequence with `context` positions already cached.
    public mutating func addDecode(context: Int) {
        tokens += 1; decodes += 1; sampledSequences += 1
        attendedKeys += Double(context) + 1
        kvPositionsRead += context + 1
        decodeAttendedKeys += Double(context) + 1
        decodeKVPositionsRead += context + 1
    }

    /// The step's decodes alone.
    public var decodePart: BatchShape {
        var s = BatchShape()
        s.tokens = decodes; s.decodes = decodes; s.sampledSequences = decodes
        s.attendedKeys = decodeAttendedKeys; s.kvPositionsRead = decodeKVPositionsRead
        s.decodeAttendedKeys = decodeAttendedKeys; s.decodeKVPositionsRead = decodeKVPositionsRead
        return s
    }

    /// The shape with its prefill rows as the engine's sgemm multiplies them (`PrefillKernel.sgemmRows`): the linear
    /// layers see the padded rows; attention keeps the real ones.
    public var withPrefillRowsPadded: BatchShape {
        var s = self
        let pad = PrefillKernel.sgemmRows(prefillTokens) - prefillTokens
        s.prefillTokens += pad; s.tokens += pad
        return s
    }

    /// One prompt chunk of the step's mean chunk (tokens, keys and positions ÷ chunks), for a model that runs
    /// each chunk as its own pass; nil without chunks.
    public var meanChunk: BatchShape? {
        guard prefillChunks > 0 else { return nil }
        let c = Double(prefillChunks)
        var s = BatchShape()
        s.prefillTokens = max(1, Int((Double(prefillTokens) / c).rounded()))
        s.tokens = s.prefillTokens; s.prefillChunks = 1
        s.sampledSequences = sampledSequences > decodes ? 1 : 0
        s.attendedKeys = (attendedKeys - decodeAttendedKeys) / c
        s.kvPositionsRead = Int((Double(kvPositionsRead - decodeKVPositionsRead) / c).rounded())
        return s
    }

    /// `sequences` sequences each adding `newTokens` after `pastTokens` (a batched prefill, or a decode step
    /// when `newTokens` is 1 and `pastTokens` is the context).
    public static func uniform(sequences: Int, newTokens: Int, pastTokens: Int) -> BatchShape {
        var s = BatchShape()
        for _ in 0..<max(0, sequences) {
            if newTokens == 1 && pastTokens > 0 { s.addDecode(context: pastTokens) } else { s.addPrefill(tokens: newTokens, pastTokens: pastTokens) }
        }
        return s
    }

    public var isEmpty: Bool { tokens == 0 }
    /// Sequences in the step.
    public var sequences: Int { prefillChunks + decodes }
}

/// Seconds of one model step. Every time it returns is a prediction; `basis` says what it rests on.
public protocol ExecutionTimePredictor: Sendable {
    /// What the predictions rest on ("roofline, efficiencies calibrated from run 12", "steps measured in run 40").
    var basis: String { get }
    /// Seconds for one step of `batch` on one replica (all its devices), communication included.
    func iterationSeconds(_ batch: BatchShape) -> Double
}

/// The roofline with a profile's efficiencies: the ops of `PerformanceModel.stepOps`, tensor-parallel
/// all-reduces over the interconnect.
public struct RooflineExecutionTime: ExecutionTimePredictor {
    public var model: ModelShape
    public var precision: Precision
    public var tensorParallel: Int
    public var roofline: Roofline
    public var interconnect: Interconnect
    /// Bytes of a cached key or value (the server's KV dtype).
    public var kvElementBytes: Double
    public var basis: String

    public init(model: ModelShape, precision: Precision, tensorParallel: Int = 1, roofline: Roofline, interconnect: Interconnect,
                kvElementBytes: Double? = nil, basis: String) {
        self.model = model; self.precision = precision; self.tensorParallel = tensorParallel; self.roofline = roofline
        self.interconnect = interconnect; self.kvElementBytes = kvElementBytes ?? precision.activationBytes; self.basis = basis
    }

    /// The roofline of `hardware` (its efficiencies at `precision`, calibrated or default).
    public init(model: ModelShape, precision: Precision, tensorParallel: Int = 1, hardware h: HardwareProfile) {
        self.init(model: model, precision: precision, tensorParallel: tensorParallel, roofline: Roofline(h, efficiency: h.efficiency(precision)),
                  interconnect: h.interconnect, kvElementBytes: h.kvElementBytes(precision),
                  basis: "roofline of \(h.id): \(h.calibration(precision))")
    }

    public func iterationSeconds(_ batch: BatchShape) -> Double {
        PerformanceModel.stepTime(model, precision, batch, tp: tensorParallel, roofline: roofline, interconnect: interconnect,
                                  kvElementBytes: kvElementBytes)
    }
}
