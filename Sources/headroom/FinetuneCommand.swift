// `headroom bench finetune`: one fine-tuning measurement — step time, tokens/s, memory breakdown
// against the measured peak, loss, and the useful FLOP rate against this machine's sgemm.
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomEngine
import HeadroomKernels
import HeadroomReport
import HeadroomRunner
import HeadroomStore

struct BenchFinetuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Measure LoRA or full fine-tuning steps on a catalog model (synthetic weights) or a GGUF file.",
        discussion: """
            Builds the model with seeded synthetic weights of a catalog shape, or takes a llama GGUF file's tensors \
            as the frozen base (mapped; f32, f16, q8_0 or q4_0 as stored — LoRA on a q4_0 file is QLoRA-style). Full \
            fine-tuning needs f32 master weights: --method full dequantizes the file's tensors into f32 (so does \
            --precision f32 with LoRA). Then it trains on a synthetic repeating-pattern task (or \
            --tokens FILE, little-endian uint32 token ids) with AdamW, and times each step after the warm-up. \
            The memory breakdown is counted from the trainer's buffers and checked against the peak resident \
            memory above the process's baseline. The roofline fraction compares useful FLOPs per second \
            (docs/finetune.md) with the sgemm throughput measured in the same process at the same thread count.
            """)

    @Option(name: .long, help: "A model id from the catalog (tiny, small), or a llama GGUF file (a path ending in .gguf) as the frozen base.")
    var model = "tiny"

    @OptionGroup var catalog: CatalogOptions

    enum Method: String, ExpressibleByArgument, CaseIterable { case lora, full }

    @Option(name: .long, help: "lora (frozen base, trained adapters) or full (every weight in f32).")
    var method: Method = .lora

    @Option(name: .long, help: "LoRA rank.")
    var rank = 8

    @Option(name: .long, help: "LoRA alpha (the adapter's output is scaled by alpha/rank).")
    var alpha: Double = 16

    @Option(name: .long, help: "LoRA dropout probability on the adapter's input.")
    var dropout: Double = 0

    @Option(name: .long, help: "Projections with adapters: some of q,k,v,o,gate,up,down, or all.")
    var targets = "q,v"

    @Option(name: .long, help: "Precision of the frozen base weights: \(PrecisionNames.engineList) (QLoRA-style); other than f32 only with --method lora. Default f32, or a GGUF file's own for lora (f32 dequantizes the file).")
    var precision: String?

    @Option(name: .customLong("seq-len"), help: "Tokens per sequence.")
    var seqLen = 256

    @Option(name: .long, help: "Sequences per step.")
    var batch = 4

    @Option(name: .long, help: "Timed steps.")
    var steps = 5

    @Option(name: .long, help: "Untimed warm-up steps before them.")
    var warmup = 1

    @Flag(name: .long, help: "Keep only each layer's input and recompute its forward during backward.")
    var checkpointing = false

    @Option(name: .long, help: "Threads for OpenBLAS and the element-wise kernels (default: all cores).")
    var threads: Int?

    @Option(name: .customLong("lr"), help: "AdamW learning rate.")
    var learningRate: Double = 1e-3

    @Option(name: .long, help: "Seed for weights, adapters, dropout and the synthetic task.")
    var seed: UInt64 = 1

    @Option(name: .long, help: ArgumentHelp("Train on this token file (little-endian uint32 ids) instead of the synthetic task.", valueName: "file"))
    var tokens: String?

    @Flag(name: .long, help: "Print JSON on standard output instead of a table.")
    var json = false

    func validate() throws {
        if let precision, try enginePrecision(precision) != .f32, method != .lora {
            throw ValidationError("--precision \(precision): full fine-tuning trains every weight in f32; a quantized frozen base is for --method lora")
        }
        if rank < 1 { throw ValidationError("--rank: expected a positive integer") }
        if !(alpha > 0) { throw ValidationError("--alpha: expected a positive number") }
        if !(dropout >= 0 && dropout < 1) { throw ValidationError("--dropout: expected a probability in [0, 1)") }
        do { _ = try TrainProjection.parseList(targets) } catch { throw ValidationError("--targets: \(error)") }
        if seqLen < 1 { throw ValidationError("--seq-len: expected a positive integer") }
        if batch < 1 { throw ValidationError("--batch: expected a positive integer") }
        if steps < 1 { throw ValidationError("--steps: expected a positive integer") }
        if warmup < 0 { throw ValidationError("--warmup: expected a non-negative integer") }
        _ = try threadCount(threads)
        if !(learningRate > 0) { throw ValidationError("--lr: expected a positive number") }
    }

    func run() throws {
        try reportingErrors {
            let file = GGUFModelSource.isFile(model) ? try GGUFModelSource.describe(model) : nil
            let shape = try file?.shape ?? catalog.load().model(model)
            let precision = try self.precision.map { try enginePrecision($0).description }
                ?? (method == .lora ? file?.precision.description ?? "f32" : "f32")
            if let file, precision != "f32", precision != file.precision.description {
                throw InputError(file: model, path: "", message: "--precision \(precision) given, but the file's matrices are \(file.precision); a frozen base from a file is kept as stored (\(file.precision)) or dequantized (f32)")
            }
            guard seqLen <= shape.context else {
                throw InputError(file: file == nil ? "catalog" : model,
                                 path: file == nil ? "models.\(shape.id).context" : "llama.context_length",
                                 message: "--seq-len \(seqLen) exceeds the model's context of \(shape.context)")
            }
            if let tokens {  // refuse a bad token file before spending time on the probe
                do { _ = try TokenFileSource(path: tokens, vocab: shape.vocab, seqLen: seqLen) } catch let e as TrainError {
                    warn(e.description)
                    throw ExitCode(2)
                }
            }
            Interrupt.install()
            let t = try threadCount(threads)
            var c = FinetuneCase(model: shape, method: method.rawValue, seqLen: seqLen, batch: batch, steps: steps, threads: t)
            c.rank = rank; c.alpha = alpha; c.dropout = dropout; c.targets = try TrainProjection.parseList(targets).map(\.rawValue)
            c.precision = precision; c.warmup = warmup; c.checkpointing = checkpointing; c.learningRate = learningRate
            c.seed = seed; c.tokenFile = tokens; c.modelFile = file == nil ? nil : model

            // The roofline: the probe's sgemm at the same thread count, in this process, before the trainer exists.
            let progress = Progress()
            let probe = ProbeWorkload(settings: ProbeSettings(repetitions: 3), threads: [t])
            let sgemmSpecs = probe.cases().filter { $0.name == "sgemm" }
            progress.begin("probe sgemm", total: sgemmSpecs.reduce(0) { $0 + $1.steps })
            let probeCases = try sgemmSpecs.map { spec in try probe.measure(spec) { progress.step() } }
            progress.end()
            let sgemm = ProbeFigures(cases: probeCases).at(threads: t)?.sgemmGFLOPs

            progress.begin("finetune \(method) \(shape.id)", total: warmup + steps)
            let result: FinetuneResult
            do {
                result = try FinetuneBench.run(c) { progress.step() }
            } catch is RunInterrupted {
                progress.stop()
                throw ExitCode(130)
            } catch let e as TrainError {
                progress.stop()
                if case .diverged = e { throw e }
                warn(e.description)
                throw ExitCode(2)
            }
            progress.end()
            let out = FinetuneJSON(c, result, sgemmGFLOPs: sgemm, openblasCore: BLASThreads.coreName)
            if json { try printJSON(out) } else { print(out.table) }
        }
    }
}

/// The `--json` contract of `headroom bench finetune`.
struct FinetuneJSON: Encodable {
    var kind = "measured"
    var model: String
    /// The GGUF file whose tensors were the frozen base, when one was given.
    var modelFile: String?
    var method: String
    var precision: String
    var rank: Int?
    var alpha: Double?
    var dropout: Double?
    var targets: [String]?
    var seqLen: Int
    var batch: Int
    var steps: Int
    var warmup: Int
    var checkpointing: Bool
    var threads: Int
    var openblasCore: String
    var stepMs: SummaryJSON?
    var tokensPerS: SummaryJSON?
    var trainableParams: Int
    var totalParams: Int
    var peakRssBytes: Int
    var baselineRssBytes: Int
    var peakWasReset: Bool
    var weightsBytes: Int
    var adapterBytes: Int
    var gradientBytes: Int
    var optimizerBytes: Int
    var activationBytes: Int
    var lossFirst: Double
    var lossLast: Double
    var losses: [Double]
    var flopsPerToken: Double
    var usefulGflops: Double?
    var sgemmGflops: Double?
    var rooflineFraction: Double?
    var memoryCheck: MemoryCheck

    struct MemoryCheck: Encodable {
        /// weights + adapters + gradients + optimizer + activations, as counted by the trainer.
        var breakdownBytes: Int
        /// Peak RSS minus the baseline measured before allocating.
        var measuredBytes: Int
        var ratio: Double
        var withinTenPercent: Bool
    }

    init(_ c: FinetuneCase, _ r: FinetuneResult, sgemmGFLOPs: Double?, openblasCore: String) {
        model = c.model.id; modelFile = c.modelFile; method = c.method; precision = c.precision
        if c.method == "lora" { rank = c.rank; alpha = c.alpha; dropout = c.dropout; targets = c.targets }
        seqLen = c.seqLen; batch = c.batch; steps = c.steps; warmup = c.warmup; checkpointing = c.checkpointing
        threads = c.threads; self.openblasCore = openblasCore
        stepMs = Summary(r.stepSeconds.map { $0 * 1000 }).map { SummaryJSON($0, unit: "ms") }
        let tps = Summary(r.stepSeconds.map { Double(r.tokensPerStep) / $0 })
        tokensPerS = tps.map { SummaryJSON($0, unit: "tokens/s") }
        trainableParams = r.trainableParams; totalParams = r.totalParams
        peakRssBytes = r.peakRSSBytes; baselineRssBytes = r.baselineRSSBytes; peakWasReset = r.peakWasReset
        weightsBytes = r.memory.weightsBytes; adapterBytes = r.memory.adapterBytes; gradientBytes = r.memory.gradientBytes
        optimizerBytes = r.memory.optimizerBytes; activationBytes = r.memory.activationBytes
        lossFirst = r.losses.first ?? .nan; lossLast = r.losses.last ?? .nan; losses = r.losses
        flopsPerToken = r.flopsPerToken
        usefulGflops = tps.map { $0.median * r.flopsPerToken / 1e9 }
        sgemmGflops = sgemmGFLOPs
        if let u = usefulGflops, let s = sgemmGFLOPs, s > 0 { rooflineFraction = u / s }
        memoryCheck = MemoryCheck(breakdownBytes: r.memory.totalBytes, measuredBytes: r.measuredBytes, ratio: r.breakdownRatio,
                                  withinTenPercent: abs(r.breakdownRatio - 1) <= 0.1)
    }

    var table: String {
        func mb(_ b: Int) -> String { String(format: "%.1f MiB", Double(b) / 1048576) }
        var t = TextTableLite()
        let desc = method == "lora" ? "lora r=\(rank ?? 0) alpha=\(alpha ?? 0) targets=\((targets ?? []).joined(separator: ","))" : "full"
        t.row("case", "\(model) \(desc) \(precision), seq \(seqLen) × batch \(batch), \(threads) thread(s)\(checkpointing ? ", checkpointing" : "")")
        if let s = stepMs {
            t.row("step time (measured)", String(format: "median %.1f ms, p95 %.1f, min %.1f, max %.1f (n=%d)", s.median, s.p95, s.min, s.max, s.samples))
        }
        if let s = tokensPerS { t.row("tokens/s (measured)", String(format: "median %.0f", s.median)) }
        t.row("parameters", "\(trainableParams) trainable of \(totalParams)")
        t.row("useful FLOPs/token", String(format: "%.3g", flopsPerToken))
        if let u = usefulGflops {
            let roof = sgemmGflops.map { String(format: " = %.0f %% of sgemm %.1f GFLOP/s (probe, same process)", 100 * u / $0, $0) } ?? ""
            t.row("useful GFLOP/s", String(format: "%.1f", u) + roof)
        }
        t.row("loss", String(format: "%.4f → %.4f over %d steps", lossFirst, lossLast, losses.count))
        t.row("memory (counted)", "weights \(mb(weightsBytes)), adapters \(mb(adapterBytes)), gradients \(mb(gradientBytes)), " +
              "optimizer \(mb(optimizerBytes)), activations \(mb(activationBytes)) = \(mb(memoryCheck.breakdownBytes))")
        t.row("memory (measured)", "peak RSS \(mb(peakRssBytes)), above baseline \(mb(memoryCheck.measuredBytes)): " +
              String(format: "%.1f %% of the breakdown", 100 * memoryCheck.ratio) + (memoryCheck.withinTenPercent ? " (within 10 %)" : " (NOT within 10 %)"))
        return t.rendered
    }
}

/// Two aligned columns, label and value.
private struct TextTableLite {
    var rows: [(String, String)] = []
    mutating func row(_ a: String, _ b: String) { rows.append((a, b)) }
    var rendered: String {
        let w = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0.padding(toLength: w, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
    }
}

extension Tables {
    /// The fine-tuning cases of a run, one line each (nil when the run has none).
    static func finetune(_ run: StoredRun) -> String? {
        let cases = run.cases(kind: .finetune).sorted { ($0.threads, $0.name) < ($1.threads, $1.name) }
        guard !cases.isEmpty else { return nil }
        let probe = ProbeFigures(cases: run.cases)
        var t = TextTable(["threads", "case", "step ms (median)", "tokens/s", "% compute roof", "peak RSS above baseline", "loss first → last", "n"],
                          rightAligned: [0, 2, 3, 4, 5, 7])
        for c in cases {
            guard let s = c.summary("step_seconds"), let tps = c.summary("tokens_per_s") else { continue }
            let roof = c.summary("gflops").flatMap { g in probe.at(threads: c.threads)?.computeGFLOPs.map { Fmt.percent(g.median / $0) } } ?? "—"
            let losses = c.values("loss")
            t.add([String(c.threads), FinetuneSection.label(c), Fmt.ms(s.median), Fmt.sig(tps.median), roof,
                   c.values("rss_above_baseline_bytes").first.map(Fmt.bytes) ?? "—",
                   losses.isEmpty ? "—" : "\(Fmt.sig(losses.first!)) → \(Fmt.sig(losses.last!))", String(s.count)])
        }
        return "Fine-tuning steps (measured)\n" + t.rendered
    }
}
