// The serving loop without the server: requests come and go at any step. It owns the scheduler (who
// computes how many tokens this step, HeadroomScheduling's `ContinuousBatchingScheduler`), the model step
// over the paged KV cache (`ServingSession`) and what the scheduler only counts: each request's tokens,
// its sampler and its stop conditions. The HTTP server drives it: `submit`, `cancel`, and `runStep` in a
// loop; it starts no threads of its own (the kernels use their pool).
import HeadroomKernels
import HeadroomScheduling

/// How one request generates: the OpenAI API's `max_tokens`, `temperature`, `top_p`, `seed` and stop tokens.
public struct GenerationParameters: Hashable, Sendable {
    /// The most tokens to generate, at least 1.
    public var maxTokens: Int
    /// 0: greedy (argmax). Above: sample from softmax(logits / temperature).
    public var temperature: Float
    /// Nucleus sampling: sample among the most likely tokens whose probabilities add up to `topP` (0 < topP ≤ 1).
    public var topP: Float
    /// The request's own random stream, so its samples do not depend on what shares its steps.
    public var seed: UInt64
    /// Token ids that end the request when sampled (besides the engine's end-of-sequence token).
    public var stopTokenIDs: Set<Int32>
    /// Keep generating past the end-of-sequence token (benchmarks that want exactly `maxTokens`).
    public var ignoreEOS: Bool

    public init(maxTokens: Int, temperature: Float = 0, topP: Float = 1, seed: UInt64 = 0, stopTokenIDs: Set<Int32> = [],
                ignoreEOS: Bool = false) {
        self.maxTokens = maxTokens; self.temperature = temperature; self.topP = topP; self.seed = seed
        self.stopTokenIDs = stopTokenIDs; self.ignoreEOS = ignoreEOS
    }
}

/// Why a request stopped generating.
public enum StopReason: Hashable, Sendable {
    /// It generated `maxTokens` tokens (the API's "length").
    case maxTokens
    /// It sampled the end-of-sequence token (the API's "stop").
    case endOfSequence
    /// It sampled one of its stop token ids (the API's "stop").
    case stopToken(Int32)
}

/// What one `runStep` produced, in order.
public enum ServingEvent: Hashable, Sendable {
    /// A token sampled for a request (the stopping token too: it comes before its `finished`).
    case token(RequestID, Int32)
    /// The request is done and its KV blocks are back in the pool; `preemptions` counts its recomputes.
    case finished(RequestID, StopReason, preemptions: Int)
}

/// A step that failed (non-finite activations): the requests it held were cancelled, their blocks freed.
public struct ServingStepError: Error, CustomStringConvertible {
    public var requests: [RequestID]
    public var underlying: Error
    public var description: String { "a model step failed for requests \(requests.map(\.description).joined(separator: ", ")): \(underlying)" }
}

/// A submitted request the engine refuses before the scheduler sees it.
public enum SubmitError: Error, Hashable, CustomStringConvertible {
    case badParameter(String)
    case admission(AdmissionError)

    public var description: String {
        switch self {
        case .badParameter(let what): return what
        case .admission(let e): return e.description
        }
    }
}

/// What one `runStep` computed, for a server's metrics and timings.
public struct StepSummary: Hashable, Sendable {
    /// The requests the step computed for, in plan order.
    public var requests: [RequestID] = []
    /// Prompt (or recomputed) tokens prefilled, and decode tokens.
    public var prefillTokens = 0
    public var decodes = 0
    /// Requests the scheduler preempted to make room (their blocks freed; they recompute later).
    public var preempted: [RequestID] = []
    /// The step's work as the scheduler planned it (chunks and decodes, with their positions).
    public var work: [ScheduledWork] = []
    public init() {}
}

public final class ServingEngine {
    /// The engine's knobs: the scheduler's (as vLLM names them) and the KV budget.
    public struct Configuration: Hashable, Sendable {
        public var kvCache: KVCacheBudget
        public var maxNumSeqs: Int
        public var maxBatchedTokens: Int
        public var chunkedPrefill: Bool
        public var longPrefillTokenThreshold: Int
        /// The model's end-of-sequence token, nil for none (synthetic weights).
        public var eosTokenID: Int32?
        public var threads: Int
        /// A decode computes bit for bit the same alone or batched (`ServingSession.batchInvariant`).
        public var batchInvariant: Bool

        public init(kvCache: KVCacheBudget, maxNumSeqs: Int = 256, maxBatchedTokens: Int = 2048, chunkedPrefill: Bool = true,
                    longPrefillTokenThreshold: Int = 0, eosTokenID: Int32? = nil, threads: Int = 1, batchInvariant: Bool = false) {
            self.kvCache = kvCache; self.maxNumSeqs = maxNumSeqs; self.maxBatchedTokens = maxBatchedTokens
            self.chunkedPrefill = chunkedPrefill; self.longPrefillTokenThreshold = longPrefillTokenThreshold
            self.eosTokenID = eosTokenID; self.threads = threads; self.batchInvariant = batchInvariant
        }
    }

    private struct Sequence {
        /// Prompt, then every token generated: what a recompute after preemption prefills.
        var tokens: [Int32]
        var sampler: Sampler
        var parameters: GenerationParameters
        var stop: StopReason?
    }

    public let configuration: Configuration
    public let session: ServingSession
    public private(set) var scheduler: ContinuousBatchingScheduler
    private var sequences: [RequestID: Sequence] = [:]
    private var nextID = 0
    /// The last `runStep`'s plan in brief (empty before the first step and after a step with nothing to do).
    public private(set) var lastStep = StepSummary()

    public init(weights: ModelWeights, configuration: Configuration) throws {
        self.configuration = configuration
        let cache = try PagedKVCache(config: weights.config, budget: configuration.kvCache)
        session = try ServingSession(weights: weights, cache: cache, threads: configuration.threads)
        session.batchInvariant = configuration.batchInvariant
        scheduler = try ContinuousBatchingScheduler(config: SchedulerConfig(
            maxNumSeqs: configuration.maxNumSeqs, maxBatchedTokens: configuration.maxBatchedTokens,
            chunkedPrefill: configuration.chunkedPrefill, blockSize: cache.blockSize, totalBlocks: cache.totalBlocks,
            maxModelLength: weights.config.context, longPrefillTokenThreshold: configuration.longPrefillTokenThreshold))
    }

    public var config: ModelConfig { session.config }
    /// Blocks in the KV pool, and those held by running requests now.
    public var totalBlocks: Int { scheduler.blocks.totalBlocks }
    public var usedBlocks: Int { scheduler.blocks.usedBlockCount }
    public var runningCount: Int { scheduler.runningCount }
    public var waitingCount: Int { scheduler.waitingCount }
    public var hasUnfinishedRequests: Bool { scheduler.hasUnfinishedRequests }
    /// Preemptions since the engine started (each one a recompute).
    public var preemptionCount: Int { scheduler.preemptionCount }

    /// Prompt and generated tokens of a request still held.
    public func tokens(of id: RequestID) -> [Int32]? { sequences[id]?.tokens }

    /// Queues a request; it starts at a later `runStep`. Throws for an empty prompt, a token outside the
    /// vocabulary, parameters out of range, or a request that could never fit (the context, the KV pool).
    public func submit(prompt: [Int32], parameters: GenerationParameters) throws -> RequestID {
        let c = config
        if let bad = prompt.first(where: { $0 < 0 || Int($0) >= c.vocab }) {
            throw SubmitError.badParameter("prompt token \(bad) is outside the vocabulary 0..<\(c.vocab)")
        }
        if !(parameters.temperature >= 0) || !parameters.temperature.isFinite {
            throw SubmitError.badParameter("temperature must be a finite number of at least 0, got \(parameters.temperature)")
        }
        if !(parameters.topP > 0 && parameters.topP <= 1) { throw SubmitError.badParameter("top_p must be in (0, 1], got \(parameters.topP)") }
        let id = RequestID(nextID)
        do {
            try scheduler.add(Request(id: id, promptTokens: prompt.count, maxOutputTokens: parameters.maxTokens))
        } catch {
            throw SubmitError.admission(error)
        }
        nextID += 1
        sequences[id] = Sequence(tokens: prompt, sampler: Sampler(temperature: parameters.temperature, topP: parameters.topP, seed: parameters.seed),
                                 parameters: parameters)
        return id
    }

    /// Drops a waiting or running request; its blocks return to the pool now. False when not held.
    @discardableResult
    public func cancel(_ id: RequestID) -> Bool {
        sequences[id] = nil
        return scheduler.cancel(id)
    }

    /// Plans and runs one model step: the scheduler's prefill chunks and decodes, one token sampled for each
    /// decode and each chunk that completes a prompt. Returns the tokens and finishes in plan order (empty
    /// when nothing is held).
    public func runStep() throws -> [ServingEvent] {
        lastStep = StepSummary()
        guard scheduler.hasUnfinishedRequests else { return [] }
        let plan = scheduler.schedule()
        lastStep.preempted = plan.preempted
        guard !plan.isEmpty else { return [] }
        lastStep.requests = plan.work.map(\.id)
        lastStep.prefillTokens = plan.prefillTokens
        lastStep.decodes = plan.decodeCount
        lastStep.work = plan.work
        var work: [SequenceWork] = []
        work.reserveCapacity(plan.work.count)
        for w in plan.work {
            let tokens = sequences[w.id]!.tokens
            work.append(SequenceWork(sequence: w.id.rawValue, blockTable: scheduler.blockTable(of: w.id)!,
                                     tokens: Array(tokens[w.start..<w.end]), start: w.start, wantsLogits: w.yieldsToken))
        }
        do {
            try session.step(work)
        } catch {
            // The model failed these requests: drop them (their blocks go back) and close the plan.
            let ids = plan.work.map(\.id)
            for id in ids { cancel(id) }
            _ = scheduler.complete(step: plan)
            throw ServingStepError(requests: ids, underlying: error)
        }
        var events: [ServingEvent] = [], results: [StepResult] = []
        results.reserveCapacity(plan.work.count)
        var row = 0
        for w in plan.work {
            guard w.yieldsToken else { results.append(StepResult(id: w.id)); continue }
            let token = sequences[w.id]!.sampler.sample(session.logits(row))
            row += 1
            sequences[w.id]!.tokens.append(token)
            events.append(.token(w.id, token))
            let p = sequences[w.id]!.parameters
            var stop: StopReason?
            if let eos = configuration.eosTokenID, token == eos, !p.ignoreEOS { stop = .endOfSequence }
            else if p.stopTokenIDs.contains(token) { stop = .stopToken(token) }
            sequences[w.id]!.stop = stop
            results.append(StepResult(id: w.id, stopped: stop != nil))
        }
        for f in scheduler.complete(step: plan, results: results) {
            let reason = f.reason == .maxTokens ? StopReason.maxTokens : sequences[f.id]?.stop ?? .maxTokens
            events.append(.finished(f.id, reason, preemptions: f.preemptions))
            sequences[f.id] = nil
        }
        return events
    }

    /// Runs steps until every request has finished; returns each request's generated tokens (tests, benchmarks).
    public func runToCompletion() throws -> [RequestID: [Int32]] {
        var out: [RequestID: [Int32]] = [:]
        while hasUnfinishedRequests {
            for e in try runStep() { if case .token(let id, let t) = e { out[id, default: []].append(t) } }
        }
        return out
    }
}
