// The one protocol between a serving loop and its scheduler: the engine behind `headroom serve` and the
// simulator drive any `SchedulingPolicy` the same way, so the simulator predicts the real server's policy
// rather than a model of it. The step is "who computes how many tokens", nothing more.

/// A scheduler of generation requests over a KV-block pool, driven in a loop:
///
///     while scheduler.hasUnfinishedRequests {
///         let plan = scheduler.schedule()       // who computes how many tokens this step
///         let results = engine.run(plan)        // or: the simulator advances the clock
///         let finished = scheduler.complete(step: plan, results: results)
///     }
///
/// with `add` and `cancel` between steps. `schedule` and `complete` alternate: each plan is completed
/// before the next is made.
public protocol SchedulingPolicy {
    var config: SchedulerConfig { get }

    /// Queues `request` behind those already waiting, or refuses one that could never finish.
    mutating func add(_ request: Request) throws(AdmissionError)

    /// Drops a waiting or running request and returns its KV blocks to the pool at once; false when the
    /// scheduler does not hold `id` (finished, cancelled, never added). A request cancelled while its step
    /// is in flight is ignored by that step's `complete`; its blocks, though free, go to no other request
    /// before that, since only `schedule` hands blocks out and it waits for `complete`.
    @discardableResult
    mutating func cancel(_ id: RequestID) -> Bool

    /// Plans the next model step. Never more than `config.maxBatchedTokens` tokens or
    /// `config.maxNumSeqs` sequences; never empty while any request is held.
    mutating func schedule() -> StepPlan

    /// Records what the engine did with `step`: `results[i]` answers `step.work[i]`. Every decode, and the
    /// prefill chunk that completes a prompt, generated one token; returns the requests that finished with
    /// it (a stop, or `maxOutputTokens` reached), whose blocks are already back in the pool.
    mutating func complete(step: StepPlan, results: [StepResult]) -> [FinishedRequest]

    /// `complete(step:results:)` for an engine that never stops a request early (the simulator, with each
    /// request's output length as its `maxOutputTokens`): only `maxOutputTokens` finishes a request.
    mutating func complete(step: StepPlan) -> [FinishedRequest]

    /// Requests waiting (new or preempted), in the order they will be admitted.
    var waitingCount: Int { get }
    /// Requests running (holding KV blocks), at most `config.maxNumSeqs`.
    var runningCount: Int { get }

    /// Where `id` stands, or nil when the scheduler does not hold it.
    func state(of id: RequestID) -> SequenceState?
    /// The physical KV blocks of `id`'s positions, in position order (what the engine's attention reads),
    /// or nil when it holds none.
    func blockTable(of id: RequestID) -> [Int32]?
}

extension SchedulingPolicy {
    /// Whether any request is waiting or running.
    public var hasUnfinishedRequests: Bool { waitingCount + runningCount > 0 }

    /// Builds the results (no stops) and calls `complete(step:results:)`; an implementation may do better.
    public mutating func complete(step: StepPlan) -> [FinishedRequest] {
        complete(step: step, results: step.work.map { StepResult(id: $0.id, stopped: false) })
    }
}

/// One sequence's share of a step.
public struct ScheduledWork: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        /// Tokens of the prompt (or, after a preemption, of the prompt and output being recomputed).
        case prefill
        /// The sequence's newest generated token, everything before it already cached.
        case decode
    }

    public let id: RequestID
    public let kind: Kind
    /// Tokens already in the KV cache, so the first position computed this step (vLLM's
    /// `num_computed_tokens` before the step).
    public let start: Int
    /// Tokens computed this step: 1 for a decode, the chunk's length for a prefill.
    public let tokenCount: Int
    /// Whether this work samples a token: a decode, or the chunk that completes a (re)prefill. A chunk that
    /// leaves part of the prompt for later samples nothing.
    public let yieldsToken: Bool
    /// Output tokens the request had generated before this step: 0 on the work that yields its first token.
    public let generatedTokens: Int

    /// The scheduler's slot for the request, so `complete` finds it without a lookup, and the request's
    /// arrival index, so it does not mistake a newer request in a reused slot for this one.
    let slot: Int32
    let arrivalIndex: Int

    /// Positions the sequence's attention covers after this step.
    public var end: Int { start + tokenCount }
}

/// One model step: who computes how many tokens.
public struct StepPlan: Sendable {
    /// Running sequences first (in admission order), then newly admitted ones (in arrival order).
    public internal(set) var work: [ScheduledWork]
    /// Requests preempted while planning this step: their blocks are freed and they wait to be recomputed
    /// from position 0. The engine keeps their tokens; the KV it had for them is gone.
    public internal(set) var preempted: [RequestID]
    /// Tokens computed this step, the sum of `work`'s `tokenCount`: at most `maxBatchedTokens`.
    public internal(set) var scheduledTokens: Int

    /// Which `schedule()` call made this plan, so `complete` can refuse a stale or foreign one.
    let serial: Int

    public var isEmpty: Bool { work.isEmpty }
    /// Decodes in this step.
    public var decodeCount: Int { work.reduce(0) { $0 + ($1.kind == .decode ? 1 : 0) } }
    /// Prefill tokens in this step.
    public var prefillTokens: Int { scheduledTokens - decodeCount }
}

/// What the engine reports for one `ScheduledWork`.
public struct StepResult: Hashable, Sendable {
    public var id: RequestID
    /// The token sampled for this work ended the request (end of sequence, a stop string). Ignored for a
    /// prefill chunk that samples nothing.
    public var stopped: Bool

    public init(id: RequestID, stopped: Bool = false) {
        self.id = id
        self.stopped = stopped
    }
}

/// Where a request held by the scheduler stands.
public struct SequenceState: Hashable, Sendable {
    public enum Phase: Hashable, Sendable {
        /// Arrived, holding no blocks, not yet admitted.
        case waiting
        /// Admitted: holds KV blocks for `computedTokens` positions and is scheduled each step budget allows.
        case running
        /// Was running, lost its blocks to an older request, and waits (at the front) to be recomputed.
        case preempted
    }

    public let request: Request
    /// Its place in arrival order (0 for the first `add`).
    public let arrivalIndex: Int
    public internal(set) var phase: Phase
    /// Tokens generated so far. Kept across a preemption: recompute rebuilds their KV, not the tokens.
    public internal(set) var generatedTokens: Int
    /// Tokens whose keys and values are in the cache (0 unless running), counting the step in flight.
    public internal(set) var computedTokens: Int
    /// Times it has been preempted.
    public internal(set) var preemptions: Int

    /// Prompt and generated tokens: what a recompute prefills.
    public var tokenCount: Int { request.promptTokens + generatedTokens }
    /// Tokens still to feed through the model before the next token can be sampled.
    public var tokensToCompute: Int { tokenCount - computedTokens }
}
