// Continuous batching as vLLM v1's scheduler does it (`vllm/v1/core/sched/scheduler.py`, FCFS policy):
// each step has one token budget; running requests take theirs first (a decode token, or the next chunk
// of an unfinished prefill), then waiting requests are admitted in arrival order while the budget, the
// sequence cap and the free KV blocks allow. When a running request cannot get the block its next tokens
// need, the youngest running request is preempted — its blocks freed, its tokens recomputed later — and
// no request is admitted in that step.

/// The vLLM v1-style `SchedulingPolicy`: token budget, sequence cap, chunked prefill, FCFS admission by
/// free KV blocks, preemption of the youngest by recompute.
///
/// Promises, as long as `schedule` and `complete` alternate:
/// - a plan never holds more than `maxBatchedTokens` tokens or `maxNumSeqs` sequences;
/// - a plan is never empty while a request is held, and the oldest running request is never preempted
///   (every request fits the pool alone, `add` sees to it), so every request finishes;
/// - every request added is, at any time, exactly one of waiting, running, or returned (finished by
///   `complete`, dropped by `cancel`);
/// - only running requests hold blocks, each exactly the blocks for the positions it has computed.
public struct ContinuousBatchingScheduler: SchedulingPolicy, Sendable {
    public let config: SchedulerConfig
    /// The KV pool and every running request's block table.
    public private(set) var blocks: BlockManager
    /// Preemptions since the scheduler was made (a metric: each one costs a recompute).
    public private(set) var preemptionCount = 0

    // Requests live in slots so that a step reaches each one by index, not by hashing its id; slots of
    // finished requests are reused, so the arrays stop growing at the peak number of requests held.
    private var states: [SequenceState?] = []
    private var freeSlots: [Int32] = []
    private var slotOf: [RequestID: Int32] = [:]
    /// Slots in admission order: the last is the youngest, the first preemption victim.
    private var running: [Int32] = []
    /// Slots in admission order; preempted requests go back to the front.
    private var waiting = IndexRing(capacity: 64)
    private var arrivals = 0
    private var serial = 0
    private var inFlight = false
    // Reused by every step: once the caller drops a plan, the next `schedule()` writes into the same
    // storage instead of allocating.
    private var workBuffer: [ScheduledWork] = []
    private var preemptedBuffer: [RequestID] = []

    /// A scheduler with an empty KV pool of `config.totalBlocks` blocks; throws the first invalid field.
    public init(config: SchedulerConfig) throws(SchedulerConfigError) {
        try config.validate()
        self.config = config
        blocks = BlockManager(totalBlocks: config.totalBlocks, blockSize: config.blockSize)
        workBuffer.reserveCapacity(config.maxNumSeqs)
    }

    public var waitingCount: Int { waiting.count }
    public var runningCount: Int { running.count }

    /// Running requests, oldest admission first (allocates: for diagnostics).
    public var runningRequests: [RequestID] { running.map { states[Int($0)]!.request.id } }
    /// Waiting requests in the order they will be admitted (allocates: for diagnostics).
    public var waitingRequests: [RequestID] { waiting.elements.map { states[Int($0)]!.request.id } }

    public func state(of id: RequestID) -> SequenceState? {
        guard let slot = slotOf[id] else { return nil }
        return states[Int(slot)]
    }

    public func blockTable(of id: RequestID) -> [Int32]? { blocks.table(of: id)?.blocks }

    // MARK: Arrivals and cancellations

    public mutating func add(_ request: Request) throws(AdmissionError) {
        let id = request.id
        if slotOf[id] != nil { throw .duplicateID(id) }
        if request.promptTokens < 1 { throw .emptyPrompt(id) }
        if request.maxOutputTokens < 1 { throw .noOutputTokens(id) }
        if let limit = config.maxModelLength, request.promptTokens + request.maxOutputTokens > limit {
            throw .exceedsModelLength(id, tokens: request.promptTokens + request.maxOutputTokens, maxModelLength: limit)
        }
        // A request that cannot fit the pool alone would, as the oldest, preempt everyone and still not
        // fit: refuse it now rather than livelock later.
        let neededBlocks = blocks.blocksNeeded(forTokens: request.maxCachedTokens)
        if neededBlocks > config.totalBlocks {
            throw .exceedsKVCache(id, blocksNeeded: neededBlocks, totalBlocks: config.totalBlocks)
        }
        if !config.chunkedPrefill && request.maxCachedTokens > config.maxBatchedTokens {
            throw .exceedsTokenBudget(id, tokens: request.maxCachedTokens, maxBatchedTokens: config.maxBatchedTokens)
        }
        let state = SequenceState(request: request, arrivalIndex: arrivals, phase: .waiting,
                                  generatedTokens: 0, computedTokens: 0, preemptions: 0)
        arrivals += 1
        let slot: Int32
        if let reused = freeSlots.popLast() {
            slot = reused
            states[Int(slot)] = state
        } else {
            slot = Int32(states.count)
            states.append(state)
        }
        slotOf[id] = slot
        waiting.pushBack(slot)
    }

    @discardableResult
    public mutating func cancel(_ id: RequestID) -> Bool {
        guard let slot = slotOf[id], let state = states[Int(slot)] else { return false }
        switch state.phase {
        case .running:
            running.remove(at: running.firstIndex(of: slot)!)
        case .waiting, .preempted:
            waiting.remove(at: waiting.firstIndex(of: slot)!)
        }
        blocks.free(id)
        release(slot, id)
        return true
    }

    // MARK: The step

    public mutating func schedule() -> StepPlan {
        precondition(!inFlight, "schedule() called before complete(step:) of the previous plan")
        workBuffer.removeAll(keepingCapacity: true)
        preemptedBuffer.removeAll(keepingCapacity: true)
        var budget = config.maxBatchedTokens
        let threshold = config.chunkedPrefill ? config.longPrefillTokenThreshold : 0

        // Running requests first, oldest first: a request once admitted is not starved by newer arrivals.
        var index = 0
        while index < running.count && budget > 0 {
            let slot = running[index]
            let state = states[Int(slot)]!
            var count = state.tokensToCompute
            if threshold > 0 && count > threshold { count = threshold }
            count = min(count, budget)
            if count == 0 { index += 1; continue }
            // Victims come off the end of `running`, behind `index`, so nothing already planned this step
            // loses its blocks; when the request itself is the youngest, it is the victim.
            var fits = true
            while !blocks.allocateSlots(for: state.request.id, growingBy: count) {
                let victim = running.removeLast()
                preempt(victim)
                if victim == slot { fits = false; break }
            }
            if !fits { break }
            appendWork(slot, tokens: count)
            budget -= count
            index += 1
        }

        // Then waiting requests in order. Not after a preemption: blocks just freed from a victim would
        // otherwise go to a newcomer and the victim's recompute would wait behind it (vLLM does the same).
        if preemptedBuffer.isEmpty {
            while budget > 0 && running.count < config.maxNumSeqs, let slot = waiting.first {
                let state = states[Int(slot)]!
                var count = state.tokensToCompute
                // Head-of-line: FCFS admits nobody past a request that does not fit yet.
                if !config.chunkedPrefill && count > budget { break }
                if threshold > 0 && count > threshold { count = threshold }
                count = min(count, budget)
                if !blocks.allocateSlots(for: state.request.id, growingBy: count) { break }
                _ = waiting.popFront()
                running.append(slot)
                states[Int(slot)]!.phase = .running
                appendWork(slot, tokens: count)
                budget -= count
            }
        }

        serial += 1
        inFlight = !workBuffer.isEmpty
        return StepPlan(work: workBuffer, preempted: preemptedBuffer,
                        scheduledTokens: config.maxBatchedTokens - budget, serial: serial)
    }

    /// Adds `slot`'s work to the plan and counts its tokens as computed now, as vLLM does: the blocks for
    /// them were just allocated, and the engine writes their KV during the step.
    private mutating func appendWork(_ slot: Int32, tokens count: Int) {
        let state = states[Int(slot)]!
        let isDecode = count == 1 && state.generatedTokens > 0 && state.computedTokens == state.tokenCount - 1
        workBuffer.append(ScheduledWork(id: state.request.id, kind: isDecode ? .decode : .prefill,
                                        start: state.computedTokens, tokenCount: count,
                                        yieldsToken: state.computedTokens + count == state.tokenCount,
                                        generatedTokens: state.generatedTokens,
                                        slot: slot, arrivalIndex: state.arrivalIndex))
        states[Int(slot)]!.computedTokens += count
    }

    /// Frees `slot`'s blocks and puts it at the front of the queue to be recomputed from position 0 (its
    /// generated tokens are kept and prefilled again with the prompt).
    private mutating func preempt(_ slot: Int32) {
        let id = states[Int(slot)]!.request.id
        blocks.free(id)
        states[Int(slot)]!.phase = .preempted
        states[Int(slot)]!.computedTokens = 0
        states[Int(slot)]!.preemptions += 1
        waiting.pushFront(slot)
        preemptedBuffer.append(id)
        preemptionCount += 1
    }

    public mutating func complete(step: StepPlan, results: [StepResult]) -> [FinishedRequest] {
        precondition(results.count == step.work.count, "\(results.count) results for \(step.work.count) scheduled sequences")
        for i in results.indices {
            precondition(results[i].id == step.work[i].id, "result \(i) is for \(results[i].id), the plan has \(step.work[i].id) there")
        }
        return record(step) { results[$0].stopped }
    }

    public mutating func complete(step: StepPlan) -> [FinishedRequest] {
        record(step) { _ in false }
    }

    private mutating func record(_ step: StepPlan, stopped: (Int) -> Bool) -> [FinishedRequest] {
        if step.work.isEmpty { return [] }
        precondition(inFlight && step.serial == serial, "complete(step:) takes the plan of the latest schedule(), once")
        inFlight = false
        var finished: [FinishedRequest] = []
        for i in step.work.indices where step.work[i].yieldsToken {
            let work = step.work[i]
            let slot = Int(work.slot)
            // Cancelled while the step ran (the slot may even hold a newer request by now): nothing to record.
            guard let state = states[slot], state.arrivalIndex == work.arrivalIndex, state.phase == .running else { continue }
            let generated = state.generatedTokens + 1
            states[slot]!.generatedTokens = generated
            let reason: FinishReason? = stopped(i) ? .stopped : generated >= state.request.maxOutputTokens ? .maxTokens : nil
            guard let reason else { continue }
            finished.append(FinishedRequest(request: state.request, generatedTokens: generated,
                                            reason: reason, preemptions: state.preemptions))
            blocks.free(work.id)
            release(work.slot, work.id)
        }
        if !finished.isEmpty {
            // Keep admission order among the survivors.
            var kept = 0
            for i in running.indices where states[Int(running[i])] != nil {
                running[kept] = running[i]
                kept += 1
            }
            running.removeLast(running.count - kept)
        }
        return finished
    }

    private mutating func release(_ slot: Int32, _ id: RequestID) {
        states[Int(slot)] = nil
        slotOf[id] = nil
        freeSlots.append(slot)
    }

    // MARK: Checks

    /// Every broken promise of the scheduler and its block pool, for tests and the simulator's debug checks;
    /// empty when sound. O(requests held + totalBlocks).
    public func invariantViolations() -> [String] {
        var problems = blocks.invariantViolations()
        if running.count > config.maxNumSeqs {
            problems.append("\(running.count) running, more than maxNumSeqs \(config.maxNumSeqs)")
        }
        var seen = Set<Int32>()
        for slot in running {
            if !seen.insert(slot).inserted { problems.append("slot \(slot) is running twice") }
            guard let state = states[Int(slot)] else { problems.append("running slot \(slot) is empty"); continue }
            let id = state.request.id
            if state.phase != .running { problems.append("\(id) is in the running list as \(state.phase)") }
            let held = blocks.table(of: id)?.tokenCount ?? 0
            if held != state.computedTokens || held == 0 {
                problems.append("\(id) has computed \(state.computedTokens) tokens and holds \(held) positions")
            }
            if state.computedTokens > state.tokenCount { problems.append("\(id) computed more tokens than it has") }
            if state.generatedTokens >= state.request.maxOutputTokens { problems.append("\(id) should have finished") }
        }
        for slot in waiting.elements {
            if !seen.insert(slot).inserted { problems.append("slot \(slot) is both waiting and running, or waiting twice") }
            guard let state = states[Int(slot)] else { problems.append("waiting slot \(slot) is empty"); continue }
            if state.phase == .running { problems.append("\(state.request.id) is waiting as running") }
            if state.computedTokens != 0 || blocks.table(of: state.request.id) != nil {
                problems.append("\(state.request.id) is waiting with blocks or computed tokens")
            }
        }
        if seen.count != slotOf.count { problems.append("\(slotOf.count) requests held, \(seen.count) waiting or running") }
        for (id, slot) in slotOf where states[Int(slot)]?.request.id != id {
            problems.append("\(id) maps to slot \(slot), which holds something else")
        }
        if blocks.sequenceCount != running.count {
            problems.append("\(blocks.sequenceCount) block tables for \(running.count) running requests")
        }
        return problems
    }
}
