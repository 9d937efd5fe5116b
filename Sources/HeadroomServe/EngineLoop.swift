// The serving engine on a thread of its own. Model steps are long blocking CPU work (the kernels use their
// own pool), so they run neither on the event loops nor on Swift's cooperative pool: one thread owns the
// `ServingEngine`, takes submissions and cancellations from an inbox between steps, runs steps while any
// request is held, and hands each request's tokens to its `AsyncStream`. It sleeps when nothing is held.
//
// The HTTP side only ever calls `submit`, `cancel` and reads `snapshot`; everything else happens here.
import Foundation
import HeadroomCore
import HeadroomEngine
import HeadroomScheduling
import Logging

/// Why a request ended.
public enum FinishCause: Hashable, Sendable {
    /// The model stopped it: `max_tokens`, the end-of-sequence token or a stop token.
    case stopped(StopReason)
    /// Its client went away.
    case cancelled
    /// The HTTP side stopped it: one of its stop strings appeared in the text.
    case stopString
    /// It ran past `--request-timeout`.
    case timedOut
    /// The server shut down before it finished (the grace period ran out).
    case shutdown
    /// A model step failed (non-finite activations); the message says how.
    case failed(String)
}

/// Server-side timings of one request, from the engine's thread (the log line and the histograms).
public struct RequestTimings: Hashable, Sendable {
    public var promptTokens: Int
    public var generatedTokens: Int
    /// Submitted → first scheduled step.
    public var queueWait: Duration
    /// First scheduled step → first token (the prefill, with whatever shared its steps).
    public var prefill: Duration
    /// First token → finish.
    public var decode: Duration
    public var preemptions: Int
}

/// What the HTTP side hears about one submitted request, in order: `started` or `rejected` once, then
/// tokens, then `finished` (never after `rejected`).
public enum GenerationEvent: Hashable, Sendable {
    /// The engine took the request (it is queued; its tokens follow).
    case started
    /// The engine refused it (a request that can never fit the KV pool); the message says why.
    case rejected(String)
    case token(Int32)
    case finished(FinishCause, RequestTimings)
}

/// Why `submit` refused a request outright.
public enum SubmitRefusal: Error, Hashable, Sendable {
    /// The queue of waiting requests is full (`--max-queue`): answer 429.
    case queueFull(waiting: Int)
    /// The server is shutting down: answer 503.
    case shuttingDown
    /// The weights are still warming: answer 503.
    case notReady
}

/// Counts the HTTP side may read at any time (updated after every step).
public struct EngineSnapshot: Hashable, Sendable {
    public var running = 0
    /// Requests not yet running: in the engine's queue or in the inbox.
    public var waiting = 0
    public var usedBlocks = 0
    public var totalBlocks = 0
    public var preemptions = 0
    public var steps = 0
}

public final class EngineLoop: @unchecked Sendable {
    /// A submitted request, as the HTTP side holds it.
    public struct Ticket: Sendable {
        public let id: Int
        public let events: AsyncStream<GenerationEvent>
    }

    private struct Submission {
        var ticket: Int
        var prompt: [Int32]
        var parameters: GenerationParameters
        var continuation: AsyncStream<GenerationEvent>.Continuation
        var submitted: ContinuousClock.Instant
        var deadline: ContinuousClock.Instant
    }

    /// A request the engine holds, on the engine's thread only.
    private struct Live {
        var ticket: Int
        var continuation: AsyncStream<GenerationEvent>.Continuation
        var promptTokens: Int
        var submitted: ContinuousClock.Instant
        var deadline: ContinuousClock.Instant
        var firstScheduled: ContinuousClock.Instant?
        var firstToken: ContinuousClock.Instant?
        var lastToken: ContinuousClock.Instant?
        var generated = 0
    }

    private let engine: ServingEngine
    private let metrics: ServeMetrics?
    private let logger: Logger
    public let maxQueue: Int
    public let requestTimeout: Duration
    /// Tokens the whole KV pool holds (blocks × block size): no request may need more at its longest.
    public let kvPoolTokens: Int
    private let clock = ContinuousClock()

    // Shared with the HTTP side, under `condition`.
    private let condition = NSCondition()
    private var inbox: [Submission] = []
    private var cancellations: [(ticket: Int, cause: FinishCause)] = []
    private var nextTicket = 0
    private var state = State.warming
    private var shared = EngineSnapshot()
    private var cancelAllRequested = false
    private var stopRequested = false
    private var thread: Thread?
    private var stopped = false

    private enum State { case warming, ready, draining }

    // The engine thread's own.
    private var live: [RequestID: Live] = [:]
    private var byTicket: [Int: RequestID] = [:]

    private let stepLog: StepLogWriter?

    public init(engine: ServingEngine, maxQueue: Int, requestTimeout: Duration, metrics: ServeMetrics?, logger: Logger,
                stepLog: StepLogWriter? = nil) {
        self.engine = engine; self.maxQueue = maxQueue; self.requestTimeout = requestTimeout
        self.metrics = metrics; self.logger = logger; self.stepLog = stepLog
        kvPoolTokens = engine.totalBlocks * engine.session.cache.blockSize
        shared.totalBlocks = engine.totalBlocks
        metrics?.kvBlocks(used: 0, total: engine.totalBlocks)
    }

    /// Starts the engine's thread; `warmUp` runs one short request first, then the loop reports ready.
    public func start(warmUp: Bool = true) {
        condition.lock()
        defer { condition.unlock() }
        guard thread == nil else { return }
        let t = Thread { [self] in self.run(warmUp: warmUp) }
        t.name = "headroom-engine"
        t.stackSize = 8 << 20
        thread = t
        t.start()
    }

    /// Whether the weights are loaded and warmed and the server is not shutting down.
    public var isReady: Bool {
        condition.lock(); defer { condition.unlock() }
        return state == .ready
    }

    public var snapshot: EngineSnapshot {
        condition.lock(); defer { condition.unlock() }
        return shared
    }

    /// Queues a request (checked by the caller: tokens in the vocabulary, parameters in range, fits the
    /// context). Refuses when not ready, shutting down, or when `maxQueue` requests already wait.
    public func submit(prompt: [Int32], parameters: GenerationParameters) throws -> Ticket {
        let (stream, continuation) = AsyncStream<GenerationEvent>.makeStream()
        condition.lock()
        defer { condition.unlock() }
        switch state {
        case .warming: throw SubmitRefusal.notReady
        case .draining: throw SubmitRefusal.shuttingDown
        case .ready: break
        }
        let waiting = shared.waiting + inbox.count
        if waiting >= maxQueue { throw SubmitRefusal.queueFull(waiting: waiting) }
        let id = nextTicket
        nextTicket += 1
        let now = clock.now
        inbox.append(Submission(ticket: id, prompt: prompt, parameters: parameters, continuation: continuation,
                                submitted: now, deadline: now + requestTimeout))
        condition.signal()
        return Ticket(id: id, events: stream)
    }

    /// Stops a request wherever it is; its blocks return to the pool before the next step. Its stream ends
    /// with `finished(cause, …)` unless it had already finished.
    public func cancel(_ ticket: Int, cause: FinishCause = .cancelled) {
        condition.lock()
        cancellations.append((ticket, cause))
        condition.signal()
        condition.unlock()
    }

    /// Refuses new requests from now on (503); what is held goes on.
    public func beginDrain() {
        condition.lock()
        state = .draining
        condition.signal()
        condition.unlock()
    }

    /// Ends every held request with `finished(.shutdown, …)` and frees its blocks.
    public func cancelAll() {
        condition.lock()
        state = .draining
        cancelAllRequested = true
        condition.signal()
        condition.unlock()
    }

    /// Whether any request is held or queued.
    public var isIdle: Bool {
        condition.lock(); defer { condition.unlock() }
        return inbox.isEmpty && shared.running == 0 && shared.waiting == 0
    }

    /// Ends the thread (after `cancelAll`, or when idle) and waits for it.
    public func stop() {
        condition.lock()
        stopRequested = true
        cancelAllRequested = true
        condition.signal()
        while thread != nil && !stopped { condition.wait() }
        condition.unlock()
    }

    // MARK: - The engine's thread

    private func run(warmUp: Bool) {
        if warmUp { self.warmUp() }
        condition.lock()
        if state == .warming { state = .ready }
        condition.unlock()
        logger.info("engine ready", metadata: ["kv_blocks": "\(engine.totalBlocks)", "block_size": "\(engine.session.cache.blockSize)"])
        while true {
            condition.lock()
            while inbox.isEmpty && cancellations.isEmpty && !cancelAllRequested && !stopRequested && live.isEmpty {
                condition.wait()
            }
            let submissions = inbox, cancels = cancellations, cancelAll = cancelAllRequested, stop = stopRequested
            inbox = []; cancellations = []; cancelAllRequested = false
            condition.unlock()

            var cancelled = Set(cancels.map(\.ticket))
            for s in submissions where cancelled.contains(s.ticket) {
                s.continuation.yield(.finished(.cancelled, RequestTimings(promptTokens: s.prompt.count, generatedTokens: 0,
                                                                          queueWait: clock.now - s.submitted, prefill: .zero,
                                                                          decode: .zero, preemptions: 0)))
                s.continuation.finish()
            }
            for s in submissions where !cancelled.contains(s.ticket) { admit(s) }
            for c in cancels { if let id = byTicket[c.ticket] { end(id, c.cause); cancelled.remove(c.ticket) } }
            if cancelAll || stop { for id in Array(live.keys) { end(id, .shutdown) } }
            expire()
            if stop { break }
            if engine.hasUnfinishedRequests { step() }
            publish()
        }
        publish()
        stepLog?.close()
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// One prompt token, one output token: the kernels' first-call costs (pools, tiles) are paid here, not by
    /// the first client.
    private func warmUp() {
        do {
            _ = try engine.submit(prompt: [0], parameters: GenerationParameters(maxTokens: 2, ignoreEOS: true))
            while engine.hasUnfinishedRequests { _ = try engine.runStep() }
        } catch {
            logger.warning("warm-up failed: \(error)")
        }
    }

    private func admit(_ s: Submission) {
        do {
            let id = try engine.submit(prompt: s.prompt, parameters: s.parameters)
            live[id] = Live(ticket: s.ticket, continuation: s.continuation, promptTokens: s.prompt.count,
                            submitted: s.submitted, deadline: s.deadline)
            byTicket[s.ticket] = id
            s.continuation.yield(.started)
        } catch {
            s.continuation.yield(.rejected("\(error)"))
            s.continuation.finish()
        }
    }

    private func step() {
        let t0 = clock.now
        let events: [ServingEvent]
        do {
            events = try engine.runStep()
        } catch let e as ServingStepError {
            let message = "\(e.underlying)"
            for id in e.requests where live[id] != nil { finish(id, .failed(message)) }
            logger.error("model step failed", metadata: ["error": "\(message)", "requests": "\(e.requests.count)"])
            return
        } catch {
            logger.error("model step failed", metadata: ["error": "\(error)"])
            return
        }
        let t1 = clock.now
        let summary = engine.lastStep
        for id in summary.requests where live[id]?.firstScheduled == nil { live[id]?.firstScheduled = t0 }
        metrics?.step(duration: t1 - t0, requests: summary.requests.count, prefillTokens: summary.prefillTokens,
                      decodes: summary.decodes, preemptions: summary.preempted.count)
        stepLog?.append(start: t0, duration: t1 - t0, heldAfter: engine.runningCount + engine.waitingCount, shape: BatchShape(summary.work))
        for event in events {
            switch event {
            case .token(let id, let token):
                guard var l = live[id] else { continue }
                if l.firstToken == nil {
                    l.firstToken = t1
                    metrics?.timeToFirstToken(t1 - l.submitted)
                } else if let last = l.lastToken {
                    metrics?.interTokenLatency(t1 - last)
                }
                l.lastToken = t1
                l.generated += 1
                live[id] = l
                metrics?.generatedToken()
                l.continuation.yield(.token(token))
            case .finished(let id, let reason, let preemptions):
                finish(id, .stopped(reason), preemptions: preemptions)
            }
        }
    }

    /// Ends requests past their deadline.
    private func expire() {
        let now = clock.now
        for (id, l) in live where l.deadline <= now { end(id, .timedOut) }
    }

    /// Takes a request out of the engine (blocks freed now) and ends its stream.
    private func end(_ id: RequestID, _ cause: FinishCause) {
        guard live[id] != nil else { return }
        engine.cancel(id)
        finish(id, cause)
    }

    private func finish(_ id: RequestID, _ cause: FinishCause, preemptions: Int = 0) {
        guard let l = live.removeValue(forKey: id) else { return }
        byTicket[l.ticket] = nil
        let now = clock.now
        let scheduled = l.firstScheduled ?? now
        let timings = RequestTimings(
            promptTokens: l.promptTokens, generatedTokens: l.generated,
            queueWait: scheduled - l.submitted,
            prefill: (l.firstToken ?? now) - scheduled,
            decode: l.firstToken.map { now - $0 } ?? .zero,
            preemptions: preemptions)
        metrics?.finished(cause, promptTokens: l.promptTokens)
        l.continuation.yield(.finished(cause, timings))
        l.continuation.finish()
        logger.info("request", metadata: [
            "request": "\(l.ticket)", "finish": "\(Self.name(cause))",
            "prompt_tokens": "\(timings.promptTokens)", "generated_tokens": "\(timings.generatedTokens)",
            "queue_ms": "\(Self.ms(timings.queueWait))", "prefill_ms": "\(Self.ms(timings.prefill))",
            "decode_ms": "\(Self.ms(timings.decode))", "preemptions": "\(preemptions)",
        ])
    }

    private func publish() {
        var s = EngineSnapshot()
        s.running = engine.runningCount
        s.usedBlocks = engine.usedBlocks
        s.totalBlocks = engine.totalBlocks
        s.preemptions = engine.preemptionCount
        s.waiting = engine.waitingCount
        condition.lock()
        s.steps = shared.steps + 1
        shared = s
        let queued = inbox.count
        condition.unlock()
        metrics?.engine(running: s.running, waiting: s.waiting + queued, usedBlocks: s.usedBlocks, totalBlocks: s.totalBlocks)
    }

    static func name(_ cause: FinishCause) -> String {
        switch cause {
        case .stopped(.maxTokens): return "length"
        case .stopped: return "stop"
        case .cancelled: return "cancelled"
        case .stopString: return "stop"
        case .timedOut: return "timeout"
        case .shutdown: return "shutdown"
        case .failed: return "failed"
        }
    }

    static func ms(_ d: Duration) -> String {
        String(format: "%.1f", Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) * 1e-15)
    }
}
