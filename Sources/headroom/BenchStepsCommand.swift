// `headroom bench steps`: the engine's serving step timed over a grid of shapes, stored as a run, and this
// machine's execution-time model (`MeasuredStepTime`) fitted to it, with each shape's leave-one-out error.
import ArgumentParser
import Dispatch
import Foundation
import HeadroomCore
import HeadroomEngine
import HeadroomKernels
import HeadroomReport
import HeadroomRunner
import HeadroomStore

struct BenchStepsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "steps",
        abstract: "Time the engine's serving steps over a grid of shapes and fit this machine's execution-time model to them.",
        discussion: """
            Builds seeded synthetic weights of a catalog shape, then times one `ServingSession.step` — the paged KV \
            cache, kernels and batch-invariance setting `headroom serve` runs — per shape: prefill chunks alone of 1 \
            to 512 tokens at past 0 and 128 after 256 cached; decodes alone, batches of 1 to 32 (3 and 12 among them) at contexts 128 and \
            1024; and five mixed steps (a chunk and decodes together): `headroom serve`'s steps under its defaults of \
            32 sequences and 512 tokens, less what a smaller model's context cannot hold. The shapes are measured in \
            interleaved rounds, \
            one repetition of each per round (the warm-ups in the first), so load that comes and goes spreads over \
            every shape; every repetition is stored raw as a case of kind `step` (metric step_seconds) in a run of scenario bench-steps, \
            which `headroom gate --run` compares like any other. --quick measures 14 shapes, 3 repetitions.

            Then it fits the execution-time model the simulator uses for this machine: t = Fd(decode rows) + \
            e · extra kernel passes + Fc(chunk rows) + a · attended keys (chunk rows: all of a step's, padded to a \
            multiple of 16 as the engine's sgemm takes them), Fd and Fc monotone piecewise-linear over \
            the row counts measured (linear beyond them; Fd's knots at the decode batches the kernel takes in whole \
            groups of 16, 8, 4, 2, 1, and e for each pass a batch such as 3 = 2 + 1 adds), by non-negative least squares on relative errors over the decode-only and \
            prefill-only steps. The table shows each shape's measured median and the fit's prediction: for a fitted \
            shape, the fit made without it (leave-one-out); for a mixed shape, held out of the fit, the full fit.
            """)

    @Option(name: .long, help: "A model id from the catalog (tiny; small for bandwidth-bound decodes).")
    var model = "tiny"

    @Option(name: .long, help: "\(enginePrecisionHelp) Default q4_0, as `headroom serve`.")
    var precision: String?

    @Option(name: .long, help: "Threads for the kernels and OpenBLAS (default: all cores, as `headroom serve`).")
    var threads: Int?

    @Option(name: .long, help: "Timed repetitions of each shape, one per interleaved round, 1 to 1000 (default 5; 3 with --quick). The table shows the median.")
    var repetitions: Int?

    @Option(name: .long, help: "Untimed repetitions of each shape in the first round, 0 to 100.")
    var warmup = 1

    @Flag(name: .long, help: "A smaller grid (14 shapes) and 3 repetitions: a quick look, not a model to plan with.")
    var quick = false

    @OptionGroup var catalog: CatalogOptions

    @OptionGroup var store: StoreOptions

    @Flag(name: .long, help: "Print JSON on standard output instead of a table.")
    var json = false

    func validate() throws {
        if let precision { _ = try enginePrecision(precision) }
        _ = try threadCount(threads)
        if let repetitions, !(1...1000).contains(repetitions) { throw ValidationError("--repetitions: expected 1 to 1000, got \(repetitions)") }
        if !(0...100).contains(warmup) { throw ValidationError("--warmup: expected 0 to 100, got \(warmup)") }
    }

    func run() throws {
        try reportingErrors {
            let threads = try threadCount(self.threads)
            let type = try enginePrecision(precision ?? "q4_0")
            let cat = try catalog.load()
            guard let shape = cat.models[model] else {
                throw InputError(file: "--model", path: "", message: "expected a model of the catalog (\(cat.models.keys.sorted().joined(separator: ", "))), got '\(model)'")
            }
            do { try ModelConfig(shape).validate(for: type) } catch let e as EngineError {
                throw InputError(file: "catalog", path: "models.\(shape.id)", message: e.description)
            }
            let settings = StepSettings(model: shape, precision: type, threads: threads,
                                        shapes: StepSettings.grid(model: shape, precision: type, quick: quick),
                                        repetitions: repetitions ?? (quick ? 3 : 5), warmup: warmup)
            let db = try store.open()
            Interrupt.install()
            let started = DispatchTime.now().uptimeNanoseconds, loadBefore = MachineLoad.oneMinute()
            let progress = Progress()
            let workload = StepWorkload(settings)
            progress.begin("weights \(shape.id) \(type)", total: 1)
            try workload.prepare()
            progress.step(); progress.end()

            let text = (["headroom"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
            let scenario = Scenario(name: "bench-steps", description: "headroom bench steps: \(shape.id) \(type), \(threads) threads",
                                    file: "(command line)", text: text, hash: fnv1a64Hex(text), probe: ProbeSettings(), measure: nil)
            let runner = Runner(store: db, progress: progress, version: Headroom.version)
            let outcome: RunOutcome
            do {
                outcome = try ServeCommand.runBlocking { try await workload.measure(runner: runner, scenario: scenario) }
            } catch is RunInterrupted {
                throw ExitCode(Exit.interrupted)
            }
            let wall = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            let fit = try StepTimeSource.load(store: db, model: shape.id, precision: type.description, threads: threads, runID: outcome.runID)
            let result = BenchStepsJSON(fit: fit, cases: outcome.cases, settings: settings, store: store.shown, wallSeconds: wall,
                                        load: (loadBefore, MachineLoad.oneMinute()))
            if json { try printJSON(result) } else { print(result.table) }
        }
    }
}

/// `headroom bench steps --json`.
struct BenchStepsJSON: Encodable {
    struct Step: Encodable {
        var shape: String
        var prefillTokens: Int, pastTokens: Int, decodes: Int, context: Int
        /// Seconds, over the repetitions.
        var measured: SummaryJSON?
        var predictedSeconds: Double?
        var relativeError: Double?
        /// "leave-one-out" (a fitted shape, predicted by the fit without it) or "held out" (a mixed shape).
        var check: String
    }
    struct Knot: Encodable { var rows: Int; var seconds: Double }
    struct Errors: Encodable {
        var median: Double, worst: Double, count: Int, of: Int
        init?(_ e: MeasuredStepTime.ErrorSummary?) {
            guard let e else { return nil }
            median = e.median; worst = e.worst; count = e.count; of = e.of
        }
    }
    struct Fit: Encodable {
        var model = "t = Fd(decode rows) + e * extra kernel passes + Fc(chunk rows) + a * attended keys"
        var basis: String
        var secondsPerKey: Double
        /// e; null when no measured decode batch had an extra pass (then priced at 0).
        var secondsPerExtraPass: Double?
        var decodeRows: [Knot]
        var chunkRows: [Knot]
        var leaveOneOut: Errors?
        var heldOut: Errors?
    }
    var kind = "measured steps; predicted by the fit"
    var runId: Int64
    var store: String
    var model: String, precision: String, threads: Int
    var repetitions: Int, warmup: Int
    var batchInvariant: Bool
    var isa: String
    var wallSeconds: Double
    /// The 1-minute load average before and after: above 0 + the threads, other processes shared the cores.
    var loadAverageBefore: Double?
    var loadAverageAfter: Double?
    var steps: [Step]
    var fit: Fit

    init(fit f: MeasuredStepTime, cases: [MeasuredCase], settings s: StepSettings, store: String, wallSeconds: Double,
         load: (before: Double?, after: Double?)) {
        loadAverageBefore = load.before; loadAverageAfter = load.after
        runId = f.runID ?? 0; self.store = store
        model = f.model; precision = f.precision; threads = f.threads
        repetitions = s.repetitions; warmup = s.warmup; batchInvariant = s.batchInvariant; isa = QMatmul.isa
        self.wallSeconds = wallSeconds
        steps = f.checks.map { c in
            let p = c.point.params
            let measured = cases.first { StepParams(params: $0.params) == p }?.summary("step_seconds")
            return Step(shape: p.label, prefillTokens: p.prefillTokens, pastTokens: p.pastTokens, decodes: p.decodes, context: p.context,
                        measured: measured.map { SummaryJSON($0, unit: "s") }, predictedSeconds: c.predictedSeconds,
                        relativeError: c.relativeError, check: c.heldOut ? "held out" : "leave-one-out")
        }
        func knots(_ g: PiecewiseLinear) -> [Knot] { zip(g.knots, g.values).map { Knot(rows: Int($0), seconds: $1) } }
        fit = Fit(basis: f.basis, secondsPerKey: f.secondsPerKey, secondsPerExtraPass: f.extraPassesMeasured ? f.secondsPerExtraPass : nil,
                  decodeRows: knots(f.decodeRows), chunkRows: knots(f.chunkRows),
                  leaveOneOut: Errors(f.leaveOneOut), heldOut: Errors(f.heldOut))
    }

    var table: String {
        func ms(_ s: Double?) -> String {
            guard let s else { return "—" }
            let v = s * 1e3
            return String(format: v < 1 ? "%.3f" : v < 10 ? "%.2f" : v < 1000 ? "%.1f" : "%.0f", v)
        }
        func pct(_ x: Double?) -> String { x.map { String(format: "%+.1f %%", $0 * 100) } ?? "—" }
        var t = TextTable(["shape", "measured ms (median)", "min–max", "n", "predicted ms", "error", "check"], rightAligned: [1, 2, 3, 4, 5])
        for s in steps {
            t.add([s.shape, ms(s.measured?.median), s.measured.map { "\(ms($0.min))–\(ms($0.max))" } ?? "—", s.measured.map { String($0.samples) } ?? "0",
                   ms(s.predictedSeconds), pct(s.relativeError), s.predictedSeconds == nil && s.check != "held out" ? "leave-one-out: too few shapes left" : s.check])
        }
        func errors(_ e: Errors?, _ what: String) -> String {
            guard let e else { return "\(what): none" }
            return String(format: "%@: median %.1f %%, worst %.1f %% (%d of %d shapes)", what, e.median * 100, e.worst * 100, e.count, e.of)
        }
        func knots(_ k: [Knot]) -> String { k.map { "\($0.rows): \(ms($0.seconds))" }.joined(separator: ", ") }
        return """
            \(model) \(precision), \(threads) thread\(threads == 1 ? "" : "s"): \(steps.count) step shapes in \(repetitions) interleaved round\(repetitions == 1 ? "" : "s") after \(warmup) warm-up\(warmup == 1 ? "" : "s") each \
            (run \(runId) in \(store); \(String(format: "%.0f", wallSeconds)) s in all; \(isa); batch-invariant \(batchInvariant ? "on" : "off"), as headroom serve; \
            load average \(loadAverageBefore.map { String(format: "%.1f", $0) } ?? "—") before, \(loadAverageAfter.map { String(format: "%.1f", $0) } ?? "—") after)
            measured: each shape's `ServingSession.step` seconds, median and range of its repetitions. predicted: the fit below \
            (leave-one-out: fitted without that shape; held out: a mixed step, never fitted).
            \(t.rendered)
            fit (predicted): t = Fd(decode rows) + e · extra kernel passes + Fc(chunk rows) + a · attended keys; a = \(String(format: "%.3g", fit.secondsPerKey * 1e6)) µs per key; \
            e = \(fit.secondsPerExtraPass.map { "\(ms($0)) ms per pass of the batched decode kernel beyond one per started group of 16 (3 = 2 + 1 decodes: one)" } ?? "not measured (no decode batch of 3, 5, 6, 7, 12, …), priced at 0")
              Fd ms at rows \(knots(fit.decodeRows))
              Fc ms at rows \(knots(fit.chunkRows))
            \(errors(fit.leaveOneOut, "leave-one-out")); \(errors(fit.heldOut, "mixed steps held out"))
            basis: \(fit.basis)
            """
    }
}
