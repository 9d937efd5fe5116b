// The engine's serving step timed alone (`headroom bench steps`): `ServingSession.step` — the session, kernels,
// paged KV cache and batch-invariance setting `headroom serve` runs — over a grid of step shapes (prefill chunks,
// decode batches, a few of both at once) on synthetic weights, in interleaved rounds. Each shape is one `step` case
// whose raw samples are its repetitions' seconds; `MeasuredStepTime` is fitted to them.
import Dispatch
import HeadroomCore
import HeadroomEngine
import HeadroomKernels
import HeadroomStore

/// What `headroom bench steps` measures.
public struct StepSettings: Sendable {
    public var model: ModelShape
    public var precision: QuantType
    public var threads: Int
    /// The shapes, in the order measured (their model and precision are this one's).
    public var shapes: [StepParams]
    public var repetitions: Int
    public var warmup: Int
    /// As `headroom serve` runs the engine: off, a lone decode takes the single-sequence kernel.
    public var batchInvariant: Bool = StepSettings.serveBatchInvariant

    /// The engine's default, which `headroom serve` keeps.
    public static let serveBatchInvariant = ServingEngine.Configuration(kvCache: .tokens(1)).batchInvariant

    public init(model: ModelShape, precision: QuantType, threads: Int, shapes: [StepParams], repetitions: Int, warmup: Int) {
        self.model = model; self.precision = precision; self.threads = threads; self.shapes = shapes
        self.repetitions = repetitions; self.warmup = warmup
    }

    /// The standard grid for `model` (or the quick one): prefill chunks alone at past 0 and one after cached
    /// context, decodes alone at a short and a long context (batches the kernel takes in whole groups, and two
    /// that cost it an extra pass), and mixed steps to check the fit with. Lengths that
    /// do not fit the model's context are left out, and the contexts shrink with it.
    public static func grid(model: ModelShape, precision: QuantType, quick: Bool = false) -> [StepParams] {
        let ctx = model.context
        let long = min(1024, ctx / 2), short = max(1, min(128, long / 4))
        func p(_ t: Int, after past: Int = 0, _ d: Int = 0, at context: Int = 0) -> StepParams {
            StepParams(model: model.id, precision: precision.description, prefillTokens: t, pastTokens: past, decodes: d,
                       context: d > 0 ? context : 0)
        }
        // OpenBLAS's sgemm is not linear in its rows between 64 and 128 (2 threads, `small`'s gate_up: 13.9 ms at
        // 64 rows, 18.2 at 96, 29.5 at 112, 24.7 at 128), so the chunk knots are dense there. The engine pads a
        // step's chunk rows to a multiple of 16 (`PrefillKernel`), so the knots are such multiples.
        // 1024: without chunked prefill a step takes every waiting prompt up to the context, and past the last knot
        // the model extends its last segment's slope, which priced the whole-prefill server's 960-row steps
        // (15 prompts of 64) at 0.78-0.87 x what they took (`bench sim`, AMD EPYC, 2026-12-01).
        let chunks = quick ? [1, 16, 128] : [1, 16, 32, 64, 80, 96, 112, 128, 256, 512, 1024]
        // 3 (2 + 1) and 12 (8 + 4) take the batched decode kernel's extra passes (`BatchedDecodeKernel`).
        let batches = quick ? [1, 3, 4, 16] : [1, 2, 3, 4, 8, 12, 16, 32]
        var out = chunks.filter { $0 <= ctx }.map { p($0) }
        if 384 <= ctx { out.append(p(128, after: quick ? 128 : 256)) }
        for context in [short, long] { out += batches.map { p(0, $0, at: context) } }
        out += quick ? [p(16, 8, at: long), p(96, 4, at: short)]
                     : [p(8, 32, at: long), p(64, 8, at: short), p(128, after: 256, 16, at: min(512, long)), p(224, 32, at: short),
                        p(32, 5, at: long)]
        return out.filter { $0.pastTokens + $0.prefillTokens <= ctx && $0.context + 1 <= ctx }
    }

    /// Blocks of the KV pool the largest shape needs: its chunk's and every decode's positions, each sequence its own.
    public func poolBlocks(blockSize: Int = PagedKVCache.defaultBlockSize) -> Int {
        shapes.map { Self.blocks($0, blockSize: blockSize).total }.max() ?? 1
    }

    static func blocks(_ p: StepParams, blockSize bs: Int) -> (chunk: Int, decode: Int, total: Int) {
        let chunk = p.prefillTokens > 0 ? (p.pastTokens + p.prefillTokens + bs - 1) / bs : 0
        let decode = (p.context + 1 + bs - 1) / bs
        return (chunk, decode, chunk + p.decodes * decode)
    }
}

public struct StepWorkload: SingleCaseWorkload {
    public var settings: StepSettings

    /// The weights and the session are built once and serve every shape (one measurement at a time).
    final class Cache: @unchecked Sendable {
        var weights: ModelWeights?
        var session: ServingSession?
    }
    private let cache = Cache()

    public init(_ settings: StepSettings) { self.settings = settings }

    public func cases() -> [CaseSpec] {
        settings.shapes.map {
            CaseSpec(kind: .step, name: "\(settings.model.id)-\(settings.precision)", threads: settings.threads, params: $0.params,
                     steps: settings.warmup + settings.repetitions)
        }
    }

    /// Builds the weights and the session now (else the first shape does): its time is never a step's.
    public func prepare() throws { _ = try session() }

    /// The session over a KV pool that holds the largest shape, on `weights` (built here when nil).
    func session(weights: ModelWeights? = nil) throws -> ServingSession {
        if let s = cache.session { return s }
        let w = try weights ?? ModelWeights.synthetic(ModelConfig(settings.model), type: settings.precision, threads: settings.threads)
        let pool = try PagedKVCache(config: w.config, totalBlocks: settings.poolBlocks())
        let s = try ServingSession(weights: w, cache: pool, threads: settings.threads)
        s.batchInvariant = settings.batchInvariant
        self.cache.weights = w
        self.cache.session = s
        return s
    }

    /// The work items of one shape: the decodes first (the scheduler's running requests), then the chunk, each
    /// sequence on blocks of its own; tokens from a seeded generator.
    static func work(_ p: StepParams, blockSize bs: Int, vocab: Int) -> [SequenceWork] {
        var rng = SplitMix64(seed: 0x5354_4550 &+ UInt64(p.prefillTokens * 7919 + p.decodes))
        func token() -> Int32 { Int32(rng.next() % UInt64(vocab)) }
        let b = StepSettings.blocks(p, blockSize: bs)
        var next: Int32 = 0
        func table(_ n: Int) -> [Int32] {
            defer { next += Int32(n) }
            return (0..<Int32(n)).map { next + $0 }
        }
        var work: [SequenceWork] = []
        for i in 0..<p.decodes {
            work.append(SequenceWork(sequence: i + 1, blockTable: table(b.decode), tokens: [token()], start: p.context))
        }
        if p.prefillTokens > 0 {
            work.append(SequenceWork(sequence: 0, blockTable: table(b.chunk), tokens: (0..<p.prefillTokens).map { _ in token() },
                                     start: p.pastTokens))
        }
        return work
    }

    public func measure(_ c: CaseSpec, step: () throws -> Void) throws -> MeasuredCase {
        guard let p = StepParams(params: c.params) else { preconditionFailure("step case without its shape") }
        let session = try session()
        let work = Self.work(p, blockSize: session.cache.blockSize, vocab: session.config.vocab)
        var seconds: [Double] = []
        for rep in -settings.warmup..<settings.repetitions {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try session.step(work)
            let t1 = DispatchTime.now().uptimeNanoseconds
            try checkInterrupt()
            try step()
            if rep >= 0 { seconds.append(Double(t1 - t0) / 1e9) }
        }
        let samples = seconds.enumerated().map { MeasuredCase.Sample(metric: "step_seconds", unit: "s", repetition: $0, value: $1) }
        let facts = [CaseFacts.isa: QMatmul.isa, CaseFacts.weightsBytes: String(session.weights.bytes),
                     CaseFacts.kvCacheBytes: String(session.cache.bytes), "batch_invariant": String(session.batchInvariant)]
        return MeasuredCase(kind: c.kind, name: c.name, threads: c.threads, params: c.params, facts: facts, samples: samples)
    }
}

extension StepWorkload {
    /// Measures every shape in `settings.repetitions` interleaved rounds under one run of `scenario`: each round
    /// times every shape once, in grid order, the warm-ups all in the first round. Load that comes and goes on a
    /// shared machine then lands on a repetition of many shapes instead of on every repetition of the few shapes
    /// measured while it lasted; a shape's median is robust to it when it hits fewer than half the rounds.
    public func measure(runner: Runner, scenario: Scenario, machine: MachineInfo = .current()) async throws -> RunOutcome {
        final class Round { var index = 0 }
        let round = Round()
        let label = "steps \(settings.model.id) \(settings.precision)"
        return try await runner.run(scenario: scenario, rounds: settings.repetitions, machine: machine) { _ in
            round.index += 1
            var w = self   // shares the weights and the session
            w.settings.repetitions = 1
            w.settings.warmup = round.index == 1 ? settings.warmup : 0
            return [(label: label, workload: w)]
        }
    }
}

/// The execution-time model of this machine's engine from the store.
public enum StepTimeSource {
    /// `MeasuredStepTime` fitted to the step cases of the latest complete run that measured `model` in `precision`
    /// on `threads` threads (run `runID` only, when given). Throws `StepFitError.notMeasured` when there is none.
    public static func load(store: Store, model: String, precision: String, threads: Int, runID: Int64? = nil) throws -> MeasuredStepTime {
        guard let found = try store.stepCases(model: model, precision: precision, threads: threads, runID: runID) else {
            throw StepFitError.notMeasured(model: model, precision: precision, threads: threads, store: store.path)
        }
        return try MeasuredStepTime(cases: found.cases, runID: found.runID)
    }
}

/// How busy this machine is, as Linux counts it: a step timed while other processes hold the cores is slower.
public enum MachineLoad {
    /// The 1-minute load average (/proc/loadavg), nil where there is none.
    public static func oneMinute() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return nil }
        return text.split(separator: " ").first.flatMap { Double($0) }
    }
}
