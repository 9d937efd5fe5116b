// `headroom bench`: single measurements outside a scenario. `bench infer` runs the inference engine
// once (prefill, decode, batch) with its rooflines; `bench summary` holds saved results against the bars.
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomEngine
import HeadroomKernels
import HeadroomReport
import HeadroomRunner

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run one measurement outside a scenario.",
        subcommands: [BenchInferCommand.self, BenchFinetuneCommand.self, BenchSummaryCommand.self, BenchMatvecCommand.self, BenchServeCommand.self,
                      BenchLoadCommand.self, BenchStepsCommand.self, BenchSimCommand.self])
}

struct BenchInferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Measure inference: prefill and decode throughput, TTFT, TPOT, memory, against this machine's rooflines.",
        discussion: """
            Builds seeded synthetic weights of a catalog shape in the chosen precision (or maps a GGUF file, every \
            page touched before timing), then repeats: prefill the \
            prompt, decode --generate-tokens tokens (greedy) for --batch sequences that share the prompt. Before the \
            weights are built and again after the model is freed, it probes this machine's read bandwidth at the same \
            thread count over --read-mib MiB (one stream, several rows, and the decode kernels' own prefetched walk on \
            their thread pool); afterwards it also times a square sgemm. The decode roofline is the best read of both \
            probes divided by the bytes one decode step reads (every weight once, plus each sequence's KV cache at the \
            middle of the generation), times the batch; both probes' figures are printed, so drift shows. The prefill \
            roofline is the sgemm throughput divided by the FLOPs per prompt token (weights and causal attention). \
            Every figure is measured; the rooflines are this run's probes, whose buffers never count in the peak RSS.
            """)

    @Option(name: .long, help: "A model id from the catalog (tiny; small for bandwidth rooflines), or a llama GGUF file (a path ending in .gguf).")
    var model = "tiny"

    @Option(name: .long, help: "\(enginePrecisionHelp) Default q4_0; a GGUF file's own, which this must match if given.")
    var precision: String?

    @Option(name: .long, help: "Threads for the kernels and OpenBLAS (default: all cores).")
    var threads: Int?

    @Option(name: .customLong("prompt-tokens"), help: "Prompt length.")
    var promptTokens = 128

    @Option(name: .customLong("generate-tokens"), help: "Tokens decoded after the prompt.")
    var generateTokens = 32

    @Option(name: .long, help: "Sequences decoded together (1 to 64).")
    var batch = 1

    @Option(name: .long, help: "Timed repetitions (after one warm-up).")
    var repetitions = 3

    @Option(name: .customLong("read-mib"), help: "MiB the roofline's bandwidth probe reads (beyond the last-level cache).")
    var readMiB = 1024

    @OptionGroup var catalog: CatalogOptions

    @Flag(name: .long, help: "Print JSON on standard output instead of a table.")
    var json = false

    func validate() throws {
        if let precision { _ = try enginePrecision(precision) }
        _ = try threadCount(threads)
        if promptTokens < 1 { throw ValidationError("--prompt-tokens: expected at least 1") }
        if generateTokens < 1 { throw ValidationError("--generate-tokens: expected at least 1") }
        if !(1...64).contains(batch) { throw ValidationError("--batch: expected 1 to 64") }
        if repetitions < 1 { throw ValidationError("--repetitions: expected at least 1") }
        if readMiB < 16 { throw ValidationError("--read-mib: expected at least 16") }
    }

    func run() throws {
        try reportingErrors {
            let threads = try threadCount(self.threads)
            let file = GGUFModelSource.isFile(model) ? try GGUFModelSource.describe(model) : nil
            let asked = try precision.map { try enginePrecision($0) }
            if let file, let asked, asked != file.precision {
                throw InputError(file: model, path: "", message: "--precision \(asked) given, but the file's matrices are \(file.precision)")
            }
            let shape = try file?.shape ?? catalog.load().model(model)
            let precision = (file?.precision ?? asked ?? .q4_0).description
            if promptTokens + generateTokens + 1 > shape.context {
                throw InputError(file: "--prompt-tokens", path: "", message: "prompt \(promptTokens) + generate \(generateTokens) exceed the context of \(shape.id) (\(shape.context))")
            }
            Interrupt.install()
            var spec = InferenceSpec(model: shape, precision: QuantType(name: precision)!, threads: threads, promptTokens: promptTokens,
                                     generateTokens: generateTokens, batch: batch, repetitions: repetitions, warmup: 1)
            spec.modelFile = file == nil ? nil : model
            let progress = Progress()
            let settings = ProbeSettings(readMiB: readMiB, gemmSize: 2048, repetitions: 3)
            func probe(_ workload: ProbeWorkload, _ label: String, _ keep: (CaseSpec) -> Bool) throws -> [MeasuredCase] {
                let specs = workload.cases().filter(keep)
                progress.begin(label, total: specs.reduce(0) { $0 + $1.steps })
                defer { progress.end() }
                return try specs.map { s in try workload.measure(s) { progress.step() } }
            }
            let isRead = { (s: CaseSpec) in ProbeFigures.readPatterns.contains(s.name) }
            var m: InferenceMeasurement
            var probed: [MeasuredCase]
            do {
                // Read bandwidth before the weights exist: its buffer is freed when the workload goes, and the peak
                // is reset after the weights are built.
                probed = try probe(ProbeWorkload(settings: settings, threads: [threads]), "probe before", isRead)
                progress.begin("weights \(shape.id) \(precision)", total: 1)
                var weights: ModelWeights? = try InferenceBench.weights(spec)
                progress.step(); progress.end()
                MemoryStats.resetPeak()
                progress.begin("infer", total: 1 + repetitions)
                m = try InferenceBench.measure(spec, weights: weights!) { try checkInterrupt(); progress.step() }
                progress.end()
                weights = nil
                // Again after the model is freed, so its buffers never count in the peak above.
                probed += try probe(ProbeWorkload(settings: settings, threads: [threads], closing: true), "probe after", isRead)
                probed += try probe(ProbeWorkload(settings: settings, threads: [threads]), "sgemm") { $0.name == "sgemm" }
            } catch is RunInterrupted { throw ExitCode(130) }
            let figures = ProbeFigures(cases: probed)
            let result = BenchInferJSON(spec: spec, m: m, probe: figures, readMiB: readMiB)
            if json { try printJSON(result) } else { print(result.table) }
        }
    }
}

/// `headroom bench infer --json`: the contract CI scripts and `bench summary` read.
struct BenchInferJSON: Codable {
    struct Stat: Codable {
        var median: Double, p95: Double, min: Double, max: Double, samples: Int
        init?(_ values: [Double]) {
            guard let s = Summary(values) else { return nil }
            median = s.median; p95 = s.p95; min = s.min; max = s.max; samples = s.count
        }
    }
    var kind = "measured"
    var model: String
    var precision: String
    var threads: Int
    var promptTokens: Int
    var generateTokens: Int
    var batch: Int
    var repetitions: Int
    var isa: String
    var openblasCore: String
    var prefillTokensPerS: Stat?
    var decodeTokensPerS: Stat?
    var ttftMs: Stat?
    var tpotMs: Stat?
    var weightsBytes: Int
    var kvCacheBytes: Int
    var activationBytes: Int
    var peakRssBytes: Int
    /// The decode roofline's bandwidth: the best read of the probes before and after the measurement.
    var probeReadGbps: Double?
    /// Each probe's best read (nil in files written before there were two), and the pattern that read fastest.
    var probeReadBeforeGbps: Double?
    var probeReadAfterGbps: Double?
    var probeReadPattern: String?
    var probeReadMib: Int
    var probeSgemmGflops: Double?
    var decodeBytesPerStep: Double
    var prefillFlopsPerToken: Double
    var decodeRooflineTokensPerS: Double?
    var prefillRooflineTokensPerS: Double?
    var decodeRooflineFraction: Double?
    var prefillRooflineFraction: Double?
    var sampleTokens: [Int32]

    init(spec: InferenceSpec, m: InferenceMeasurement, probe: ProbeFigures, readMiB: Int) {
        model = spec.model.id; precision = spec.precision.description; threads = spec.threads
        promptTokens = spec.promptTokens; generateTokens = spec.generateTokens; batch = spec.batch; repetitions = spec.repetitions
        isa = QMatmul.isa; openblasCore = BLASThreads.coreName
        prefillTokensPerS = Stat(m.prefillTokensPerS); decodeTokensPerS = Stat(m.decodeTokensPerS)
        ttftMs = Stat(m.ttftMs); tpotMs = Stat(m.tpotMs)
        weightsBytes = m.weightsBytes; kvCacheBytes = m.kvCacheBytes; activationBytes = m.activationBytes; peakRssBytes = m.peakRSSBytes
        let p = probe.at(threads: spec.threads)
        probeReadGbps = probe.readGBps(threads: spec.threads)
        probeReadBeforeGbps = p?.readBeforeGBps; probeReadAfterGbps = p?.readAfterGBps; probeReadPattern = p?.bestRead?.pattern
        probeReadMib = readMiB
        probeSgemmGflops = probe.at(threads: spec.threads)?.sgemmGFLOPs
        decodeBytesPerStep = spec.decodeBytesPerStep
        prefillFlopsPerToken = spec.prefillFlopsPerToken
        sampleTokens = m.sampleTokens
        let bytes = decodeBytesPerStep, flops = prefillFlopsPerToken
        decodeRooflineTokensPerS = probeReadGbps.map { $0 * 1e9 / bytes * Double(spec.batch) }
        prefillRooflineTokensPerS = probeSgemmGflops.map { $0 * 1e9 / flops }
        if let r = decodeRooflineTokensPerS, let d = decodeTokensPerS { decodeRooflineFraction = d.median / r }
        if let r = prefillRooflineTokensPerS, let p = prefillTokensPerS { prefillRooflineFraction = p.median / r }
    }

    var table: String {
        func stat(_ s: Stat?, _ digits: Int = 1) -> String {
            guard let s else { return "—" }
            return String(format: "%.\(digits)f (p95 %.\(digits)f, %.\(digits)f–%.\(digits)f)", s.median, s.p95, s.min, s.max)
        }
        func pct(_ x: Double?) -> String { x.map { String(format: "%.0f %%", $0 * 100) } ?? "—" }
        func gbps(_ x: Double?) -> String { x.map { String(format: "%.1f GB/s", $0) } ?? "—" }
        var t = TextTable(["figure (measured)", "median (p95, min–max)", "roofline", "of roofline"], rightAligned: [2, 3])
        t.add(["prefill tokens/s", stat(prefillTokensPerS), prefillRooflineTokensPerS.map { String(format: "%.1f", $0) } ?? "—", pct(prefillRooflineFraction)])
        t.add(["decode tokens/s", stat(decodeTokensPerS), decodeRooflineTokensPerS.map { String(format: "%.1f", $0) } ?? "—", pct(decodeRooflineFraction)])
        t.add(["TTFT ms", stat(ttftMs), "", ""])
        t.add(["TPOT ms", stat(tpotMs, 2), "", ""])
        let mib = { (b: Int) in String(format: "%.1f MiB", Double(b) / 1048576) }
        return """
            \(model) \(precision), \(threads) thread\(threads == 1 ? "" : "s"), prompt \(promptTokens), generate \(generateTokens), batch \(batch), \
            n=\(repetitions) (\(isa), OpenBLAS \(openblasCore))
            \(t.rendered)
            memory: weights \(mib(weightsBytes)), KV cache \(mib(kvCacheBytes)), activations \(mib(activationBytes)), peak RSS \(mib(peakRssBytes)) (measured, VmHWM)
            rooflines (probe, this run, \(threads) thread\(threads == 1 ? "" : "s")): read \(gbps(probeReadGbps)) \
            (best of before \(gbps(probeReadBeforeGbps)) and after \(gbps(probeReadAfterGbps)), \(probeReadPattern ?? "—")) over \(probeReadMib) MiB, \
            sgemm \(probeSgemmGflops.map { String(format: "%.0f GFLOP/s", $0) } ?? "—"); \
            \(String(format: "%.0f", decodeBytesPerStep / 1e6)) MB read per decode step, \(String(format: "%.2f", prefillFlopsPerToken / 1e9)) GFLOP per prompt token
            """
    }
}

struct BenchSummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary",
        abstract: "Hold saved `bench infer --json` results against the inference bars.",
        discussion: """
            Reads the JSON files and prints one row per file: decode and prefill against their rooflines, and peak \
            memory against weights + KV cache + 15 % + 64 MiB. The bars: decode at \
            batch 1 ≥ 80 % of the bandwidth roofline for f32/f16, ≥ 60 % for bf16, q8_0/q4_0 and the K-quants q4_k, \
            q5_k, q6_k (other formats are reported without a bar); prefill ≥ 60 % of sgemm for \
            f32, ≥ 50 % for q8_0/q4_0; batch 16 ≥ 8× batch 1 decode tokens/s in q4_0 (from files of the same model, \
            precision and prompt). Every decode and prefill, at any batch, must also be at most 100 % of the roofline \
            measured with it: a figure above its roofline means the roofline does not bound it, and is reported as \
            measured, never capped. Exits 1 when a bar is missed (prints everything first).
            """)

    @Argument(help: "JSON files written by `headroom bench infer --json`.")
    var files: [String]

    @Flag(name: .long, help: "Print the verdicts as JSON on standard output instead of a table.")
    var json = false

    /// One file's verdicts, for `--json`.
    struct Row: Encodable {
        var file: String, model: String, precision: String, threads: Int, promptTokens: Int, batch: Int
        var decodeRooflineFraction: Double?, decodeBar: Double?, decodeVerdict: String
        var prefillRooflineFraction: Double?, prefillBar: Double?, prefillVerdict: String
        var peakRssBytes: Int, peakRssLimitBytes: Double, memoryVerdict: String
    }
    struct Scaling: Encodable { var model: String, precision: String, threads: Int, promptTokens: Int, ratio: Double, bar: Double?, verdict: String }

    func run() throws {
        try reportingErrors {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            let results = try files.map { f -> BenchInferJSON in
                let data = try FileChecks.readData(f, what: "bench infer JSON file")
                do { return try decoder.decode(BenchInferJSON.self, from: data) } catch {
                    throw InputError(file: f, path: "", message: "expected the JSON of `headroom bench infer --json` (\(error))")
                }
            }
            var missed = 0
            func verdict(_ ok: Bool?) -> String {
                guard let ok else { return "—" }
                if !ok { missed += 1 }
                return ok ? "pass" : "MISS"
            }
            func pct(_ x: Double?) -> String { x.map { String(format: "%.0f %%", $0 * 100) } ?? "—" }
            var unbounded: [String] = []
            // A fraction is held against its bar (if the configuration has one) and against 100 %: above it, the
            // roofline measured with the figure does not bound it, which is a wrong roofline, not a fast engine.
            func judge(_ fraction: Double?, _ bar: Double?, _ what: String, _ r: BenchInferJSON, _ file: String) -> (text: String, verdict: String) {
                let text = bar.map { "\(Int(($0 * 100).rounded()))–100 %" } ?? "≤ 100 %"
                guard let fraction else { return (text, verdict(nil)) }
                if fraction > 1 {
                    unbounded.append("\(file): \(what) at \(pct(fraction)) of the roofline measured with it (\(r.model) \(r.precision), " +
                                     "\(r.threads) threads, prompt \(r.promptTokens), batch \(r.batch)): the roofline does not bound it")
                }
                return (text, verdict(fraction >= (bar ?? 0) && fraction <= 1))
            }
            var t = TextTable(["model", "precision", "thr", "prompt", "batch", "decode tok/s", "roofline", "% roof", "bar", "",
                               "prefill tok/s", "roofline", "% roof", "bar", "", "peak RSS MiB", "limit MiB", ""],
                              rightAligned: [2, 3, 4, 5, 6, 7, 10, 11, 12, 15, 16])
            var rows: [Row] = [], scaling: [Scaling] = []
            for (file, r) in zip(files, results) {
                let decodeBar: Double? = r.batch != 1 ? nil : ["f32": 0.8, "f16": 0.8, "bf16": 0.6, "q8_0": 0.6, "q4_0": 0.6,
                                                               "q4_k": 0.6, "q5_k": 0.6, "q6_k": 0.6][r.precision]
                let prefillBar: Double? = r.promptTokens < 512 ? nil : [ "f32": 0.6, "q8_0": 0.5, "q4_0": 0.5 ][r.precision]
                let limit = Double(r.weightsBytes + r.kvCacheBytes) * 1.15 + 64 * 1048576
                let decode = judge(r.decodeRooflineFraction, decodeBar, "decode", r, file)
                let prefill = judge(r.prefillRooflineFraction, prefillBar, "prefill", r, file)
                t.add([r.model, r.precision, String(r.threads), String(r.promptTokens), String(r.batch),
                       r.decodeTokensPerS.map { String(format: "%.1f", $0.median) } ?? "—",
                       r.decodeRooflineTokensPerS.map { String(format: "%.1f", $0) } ?? "—", pct(r.decodeRooflineFraction),
                       decode.text, decode.verdict,
                       r.prefillTokensPerS.map { String(format: "%.1f", $0.median) } ?? "—",
                       r.prefillRooflineTokensPerS.map { String(format: "%.1f", $0) } ?? "—", pct(r.prefillRooflineFraction),
                       prefill.text, prefill.verdict,
                       String(format: "%.0f", Double(r.peakRssBytes) / 1048576), String(format: "%.0f", limit / 1048576),
                       verdict(Double(r.peakRssBytes) <= limit)])
                rows.append(Row(file: file, model: r.model, precision: r.precision, threads: r.threads, promptTokens: r.promptTokens,
                                batch: r.batch, decodeRooflineFraction: r.decodeRooflineFraction, decodeBar: decodeBar,
                                decodeVerdict: decode.verdict, prefillRooflineFraction: r.prefillRooflineFraction, prefillBar: prefillBar,
                                prefillVerdict: prefill.verdict, peakRssBytes: r.peakRssBytes, peakRssLimitBytes: limit,
                                memoryVerdict: t.rows.last?.last ?? "—"))
            }
            var lines: [String] = unbounded.map { "MISS \($0)" }
            // Batch scaling: B=16 against B=1 of the same model, precision, threads and prompt.
            for big in results where big.batch == 16 {
                guard let one = results.first(where: { $0.batch == 1 && $0.model == big.model && $0.precision == big.precision
                    && $0.threads == big.threads && $0.promptTokens == big.promptTokens }),
                      let a = one.decodeTokensPerS?.median, let b = big.decodeTokensPerS?.median else { continue }
                let ratio = b / a
                let bar = big.precision == "q4_0" ? verdict(ratio >= 8) : "—"
                scaling.append(Scaling(model: big.model, precision: big.precision, threads: big.threads, promptTokens: big.promptTokens,
                                       ratio: ratio, bar: big.precision == "q4_0" ? 8 : nil, verdict: bar))
                lines.append(String(format: "batch 16 vs 1, %@ %@, %d threads, prompt %d: %.1f vs %.1f decode tokens/s = %.1f× (bar ≥ 8× for q4_0: %@)",
                             big.model, big.precision, big.threads, big.promptTokens, b, a, ratio, bar))
            }
            if json {
                struct Out: Encodable { var kind = "measured"; var rows: [Row]; var batchScaling: [Scaling]; var unbounded: [String]; var missed: Int }
                try printJSON(Out(rows: rows, batchScaling: scaling, unbounded: unbounded, missed: missed))
            } else {
                print("Inference bars (all figures measured; medians; rooflines from each run's own probes)")
                print(t.rendered)
                for line in lines { print(line) }
                if missed > 0 { print("\(missed) bar\(missed == 1 ? "" : "s") missed.") }
            }
            if missed > 0 { throw ExitCode(1) }
        }
    }
}
