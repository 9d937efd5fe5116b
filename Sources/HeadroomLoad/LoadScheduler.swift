// The scheduler: when each request of one load point is sent. A closed loop keeps N in flight; an open loop
// sends every request at its due time whatever the server does (no coordinated omission: a slow server does
// not slow the schedule), and measures how late each send was.
import Foundation
import HeadroomCore
import NIOConcurrencyHelpers

/// When a point stops sending.
public enum LoadBound: Hashable, Sendable {
    /// This many measured requests (after the warm-up).
    case requests(Int)
    /// Sending stops this many seconds after the first measured request was due; requests still in flight are
    /// awaited up to the point's grace, then end as `timeout` errors.
    case duration(Double)
}

/// How one point sends.
public enum LoadArrivals: Hashable, Sendable {
    /// Closed loop: `concurrency` requests in flight; a request is due when one ends (schedule lag 0).
    case closed(concurrency: Int)
    /// Open loop at a constant rate (requests/s): request i due at i / rate.
    case constant(rate: Double)
    /// Open loop with exponential gaps of mean 1 / rate, drawn from `seed` (the first request due at 0).
    case poisson(rate: Double, seed: UInt64)
    /// Open loop on a trace's timestamps, with its lengths (replayed once; the bound can only shorten it).
    case trace([LoadTraceEntry])

    /// True for the open loops (constant, poisson, trace).
    public var isOpen: Bool {
        if case .closed = self { return false }
        return true
    }

    /// The offered rate (requests/s) of an open loop; nil for a closed loop. For a trace, its requests over its
    /// span (nil when it has one request).
    public var offeredRate: Double? {
        switch self {
        case .closed: return nil
        case .constant(let r), .poisson(let r, _): return r
        case .trace(let t):
            guard t.count > 1, let last = t.last?.timestamp, last > 0 else { return nil }
            return Double(t.count - 1) / last
        }
    }

    /// Due times (seconds after the first) of an open loop: `warmup` warm-up requests, then measured requests
    /// until `bound`; at most `limit` in all.
    public func schedule(warmup: Int, bound: LoadBound, limit: Int = 10_000_000) -> [Double] {
        var rng: LoadRandom?
        let gap: () -> Double
        switch self {
        case .closed: return []
        case .trace(let entries):
            var out = entries.map(\.timestamp)
            switch bound {
            case .requests(let n): out = Array(out.prefix(warmup + n))
            case .duration(let d):
                if out.count > warmup { let start = out[warmup]; out = out.enumerated().filter { $0.offset < warmup || $0.element < start + d }.map(\.element) }
            }
            return out
        case .constant(let r):
            // i / r exactly, not a running sum (which drifts across a bound: 400 gaps of 5 ms end below 2 s).
            let measured: Int
            switch bound {
            case .requests(let n): measured = n
            case .duration(let d): measured = Int((d * r - 1e-9).rounded(.up))
            }
            return (0..<min(limit, warmup + max(0, measured))).map { Double($0) / r }
        case .poisson(let r, let seed):
            rng = LoadRandom(seed: seed)
            gap = { -log(rng!.nextOpenUnit()) / r }
        }
        var out: [Double] = []
        var t = 0.0
        var measuredStart: Double?
        while out.count < limit {
            if out.count == warmup { measuredStart = t }
            switch bound {
            case .requests(let n): if out.count >= warmup + n { return out }
            case .duration(let d): if let s = measuredStart, t >= s + d { return out }
            }
            out.append(t)
            t += gap()
        }
        return out
    }
}

/// One client's part of a schedule spread over `count` clients (`headroom load --shard I/N`): request i of the
/// full schedule is sent by the client whose `index` is i mod `count`, at its original due time, so the N clients
/// together send the exact schedule (each timed from its own start).
public struct LoadShard: Hashable, Sendable {
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) {
        precondition(count >= 1 && (0..<count).contains(index), "a shard index is in 0..<count")
        self.index = index; self.count = count
    }

    /// Whether request `i` of the full schedule is this client's.
    public func sends(_ i: Int) -> Bool { i % count == index }
}

/// One point to run.
public struct LoadPointPlan: Hashable, Sendable {
    /// The point's label (`params.point`): `concurrency:4`, `rate:2`, `synchronous`, `poisson:3.5`, `trace`, …
    public var point: String
    public var arrivals: LoadArrivals
    public var bound: LoadBound
    /// Requests sent first and left out of every sample and aggregate.
    public var warmup: Int
    /// How long requests still in flight when a duration-bound point ends are awaited (seconds).
    public var grace: Double
    /// This client's part of an open loop's schedule; nil: all of it. (A closed loop has no schedule to split.)
    public var shard: LoadShard?

    public init(point: String, arrivals: LoadArrivals, bound: LoadBound, warmup: Int = 0, grace: Double = 30, shard: LoadShard? = nil) {
        self.point = point; self.arrivals = arrivals; self.bound = bound; self.warmup = warmup; self.grace = grace
        self.shard = shard
    }
}

/// What a point recorded.
public struct LoadPointResult: Hashable, Sendable {
    public var plan: LoadPointPlan
    /// Every request sent, warm-up included, in schedule order.
    public var records: [LoadRequestRecord]
    /// Seconds from the point's origin to its last response.
    public var wallSeconds: Double

    public init(plan: LoadPointPlan, records: [LoadRequestRecord], wallSeconds: Double) {
        self.plan = plan; self.records = records; self.wallSeconds = wallSeconds
    }

    /// The measured requests (warm-up left out), in schedule order.
    public var measured: [LoadRequestRecord] { records.filter { !$0.warmup } }
}

/// A progress report while a point runs, for a line on standard error.
public struct LoadProgress: Hashable, Sendable {
    public var point: String
    /// Seconds since the point started.
    public var elapsed: Double
    public var sent: Int
    public var done: Int
    public var inFlight: Int
    public var errors: Int
    /// The median TTFT of the measured requests done so far (ms); nil before the first.
    public var ttftP50Ms: Double?
}

public typealias LoadProgressHandler = @Sendable (LoadProgress) -> Void

/// Runs load points.
public enum LoadScheduler {
    /// How often the progress handler is called while a point runs (seconds).
    public static let progressInterval = 1.0

    /// Sends `plan`'s requests through `client`, request i's prompt from `prompts.request(i)` (a trace's lengths
    /// override the source's), and returns every record. Never throws: failures are in the records.
    public static func run(_ plan: LoadPointPlan, client: LoadClient, prompts: PromptSource,
                           progress: LoadProgressHandler? = nil) async -> LoadPointResult {
        // A short lead, so the first due time is not already past when the first request is launched.
        let origin = ContinuousClock.now + .milliseconds(5)
        let state = PointState(warmup: plan.warmup)
        let ticker = progress.map { handler in
            Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(progressInterval))
                    if Task.isCancelled { break }
                    handler(state.progress(point: plan.point, elapsed: LoadClient.seconds(origin.duration(to: .now))))
                }
            }
        }
        defer { ticker?.cancel() }
        let graceText = "still in flight \(plan.grace) s after the point's duration ended"
        func spec(_ i: Int) -> LoadRequestSpec {
            if case .trace(let entries) = plan.arrivals, i < entries.count {
                return prompts.request(i, promptTokens: entries[i].promptTokens, outputTokens: entries[i].outputTokens)
            }
            return prompts.request(i)
        }

        switch plan.arrivals {
        case .closed(let concurrency):
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<concurrency {
                    group.addTask {
                        // A cancelled run (Ctrl-C) claims nothing more: the requests in flight end, no new one starts.
                        while !Task.isCancelled, let claim = state.claim(bound: plan.bound, origin: origin, grace: plan.grace) {
                            let record = await client.send(spec(claim.index), index: claim.index, warmup: claim.index < plan.warmup,
                                                           due: claim.due, origin: origin, deadline: claim.deadline, deadlineText: graceText)
                            state.finish(record)
                        }
                    }
                }
            }
        default:
            let due = plan.arrivals.schedule(warmup: plan.warmup, bound: plan.bound)
            var deadline: ContinuousClock.Instant?
            if case .duration = plan.bound, let last = due.last {
                // The measured period ends at the bound; a request still in flight after the grace is a timeout.
                let end: Double
                if case .duration(let d) = plan.bound, due.count > plan.warmup { end = due[plan.warmup] + d } else { end = last }
                deadline = origin + .nanoseconds(Int64((end + plan.grace) * 1e9))
            }
            // A discarding group: a finished request's task is freed at once, not kept until the point ends.
            await withDiscardingTaskGroup { group in
                for (i, t) in due.enumerated() where plan.shard?.sends(i) ?? true {
                    let at = origin + .nanoseconds(Int64(t * 1e9))
                    await sleep(until: at)
                    // Cancelled (Ctrl-C): nothing more is sent; `sleep` returns at once then, so without this check every
                    // remaining request would leave in one burst.
                    if Task.isCancelled { break }
                    state.sending()
                    group.addTask {
                        let record = await client.send(spec(i), index: i, warmup: i < plan.warmup, due: t, origin: origin,
                                                       deadline: deadline, deadlineText: graceText)
                        state.finish(record)
                    }
                }
            }
        }
        let records = state.records.sorted { $0.index < $1.index }
        let wall = records.map(\.end).max() ?? 0
        progress?(state.progress(point: plan.point, elapsed: LoadClient.seconds(origin.duration(to: .now))))
        return LoadPointResult(plan: plan, records: records, wallSeconds: wall)
    }
}

extension LoadScheduler {
    /// Sleeps until `due`, waking no later than about 0.1 ms after it. `Task.sleep` on Linux wakes late by a
    /// few percent of the time slept (libdispatch's timer leeway: 2 ms on a 50 ms sleep), so long waits are
    /// cut into sleeps of 90 % of what remains, and only the last 2 ms are slept in one go.
    static func sleep(until due: ContinuousClock.Instant) async {
        while true {
            let remaining = ContinuousClock.now.duration(to: due)
            if remaining <= .zero || Task.isCancelled { return }
            if remaining <= .milliseconds(2) {
                try? await Task.sleep(until: due, tolerance: .zero, clock: .continuous)
                return
            }
            try? await Task.sleep(until: .now + remaining * 0.9, tolerance: .zero, clock: .continuous)
        }
    }
}

/// The shared counters of a running point.
final class PointState: Sendable {
    struct Claim { var index: Int; var due: Double; var deadline: ContinuousClock.Instant? }
    struct Counters {
        var next = 0
        var sent = 0
        var done = 0
        var errors = 0
        var records: [LoadRequestRecord] = []
        var ttfts: [Double] = []
        /// When the first measured request of a closed loop was claimed (seconds since origin).
        var measuredStart: Double?
    }
    let warmup: Int
    private let box = NIOLockedValueBox(Counters())

    init(warmup: Int) { self.warmup = warmup }

    /// The next request of a closed loop, or nil when the bound is reached.
    func claim(bound: LoadBound, origin: ContinuousClock.Instant, grace: Double) -> Claim? {
        let now = LoadClient.seconds(origin.duration(to: .now))
        return box.withLockedValue { c in
            if c.next == warmup { c.measuredStart = now }
            switch bound {
            case .requests(let n): if c.next >= warmup + n { return nil }
            case .duration(let d): if let s = c.measuredStart, now >= s + d { return nil }
            }
            var deadline: ContinuousClock.Instant?
            if case .duration(let d) = bound, let s = c.measuredStart {
                deadline = origin + .nanoseconds(Int64((s + d + grace) * 1e9))
            }
            defer { c.next += 1; c.sent += 1 }
            return Claim(index: c.next, due: now, deadline: deadline)
        }
    }

    func sending() { box.withLockedValue { $0.sent += 1 } }

    func finish(_ r: LoadRequestRecord) {
        box.withLockedValue { c in
            c.done += 1
            if !r.ok { c.errors += 1 }
            if !r.warmup, r.ok, let t = r.ttftMs { c.ttfts.append(t) }
            c.records.append(r)
        }
    }

    var records: [LoadRequestRecord] { box.withLockedValue { $0.records } }

    func progress(point: String, elapsed: Double) -> LoadProgress {
        let (sent, done, errors, recent) = box.withLockedValue { ($0.sent, $0.done, $0.errors, Array($0.ttfts.suffix(1000))) }
        return LoadProgress(point: point, elapsed: elapsed, sent: sent, done: done, inFlight: sent - done, errors: errors,
                            ttftP50Ms: LatencyDistribution(recent)?.p50)
    }
}
