// What arrives at the scheduler (a request's identity and sizes), why one is refused at the door, and
// what leaves it (a finished request and why it finished).

/// A request's identity, chosen by the caller (the server's counter, the simulator's index). Unique among
/// the requests a scheduler holds at one time.
public struct RequestID: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public var rawValue: Int

    public init(_ rawValue: Int) { self.rawValue = rawValue }
    public init(integerLiteral value: Int) { self.rawValue = value }

    public static func < (a: RequestID, b: RequestID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "#\(rawValue)" }
}

/// One generation request as the scheduler sees it: how many prompt tokens to prefill and at most how
/// many tokens to generate. Arrival order is the order of `add` calls.
public struct Request: Hashable, Sendable {
    public var id: RequestID
    /// Tokens in the prompt, at least 1.
    public var promptTokens: Int
    /// The most tokens the request may generate (the API's `max_tokens`), at least 1. The request may stop
    /// earlier (end of sequence, a stop string) when the engine says so in `StepResult.stopped`.
    public var maxOutputTokens: Int

    public init(id: RequestID, promptTokens: Int, maxOutputTokens: Int) {
        self.id = id
        self.promptTokens = promptTokens
        self.maxOutputTokens = maxOutputTokens
    }

    /// The most KV-cache positions the request can ever hold: its prompt and every generated token but
    /// the last, which is sampled and returned without ever being fed back through the model.
    public var maxCachedTokens: Int { promptTokens + maxOutputTokens - 1 }
}

/// Why `add` refused a request. Each case is one the scheduler could otherwise never finish (it would
/// wait or preempt forever), or a caller's mistake.
public enum AdmissionError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A request with this id is already waiting or running.
    case duplicateID(RequestID)
    /// `promptTokens` is below 1.
    case emptyPrompt(RequestID)
    /// `maxOutputTokens` is below 1.
    case noOutputTokens(RequestID)
    /// Prompt plus `maxOutputTokens` is longer than the model's context (`SchedulerConfig.maxModelLength`).
    case exceedsModelLength(RequestID, tokens: Int, maxModelLength: Int)
    /// At its longest the request needs more KV blocks than the whole pool has, so even alone it could not
    /// finish.
    case exceedsKVCache(RequestID, blocksNeeded: Int, totalBlocks: Int)
    /// With chunked prefill off a prefill must fit one step's token budget whole, and a preempted request
    /// recomputes its prompt and its output so far in one prefill: at its longest it would never fit.
    case exceedsTokenBudget(RequestID, tokens: Int, maxBatchedTokens: Int)

    public var description: String {
        switch self {
        case .duplicateID(let id):
            return "request \(id) is already in the scheduler"
        case .emptyPrompt(let id):
            return "request \(id) has no prompt tokens"
        case .noOutputTokens(let id):
            return "request \(id) asks for no output tokens (max output tokens must be at least 1)"
        case .exceedsModelLength(let id, let tokens, let limit):
            return "request \(id) needs \(tokens) tokens of context (prompt + max output), more than the model's \(limit)"
        case .exceedsKVCache(let id, let needed, let total):
            return "request \(id) needs up to \(needed) KV blocks, more than the whole pool of \(total)"
        case .exceedsTokenBudget(let id, let tokens, let budget):
            return "request \(id) may need a \(tokens)-token prefill, more than the \(budget)-token step budget with chunked prefill off"
        }
    }
}

/// Why a request finished.
public enum FinishReason: Hashable, Sendable {
    /// The engine reported a stop (end of sequence, a stop string) with the token it sampled.
    case stopped
    /// It generated `maxOutputTokens` tokens.
    case maxTokens
}

/// A request that left the scheduler in `complete(step:results:)`; its KV blocks are back in the pool.
public struct FinishedRequest: Hashable, Sendable {
    public var request: Request
    /// Tokens generated, including the one sampled in the step that finished it.
    public var generatedTokens: Int
    public var reason: FinishReason
    /// How many times it was preempted (and its KV recomputed).
    public var preemptions: Int

    public var id: RequestID { request.id }
}
