// The inference engine's report sections: tokens/s per precision and thread count against the rooflines,
// decode tokens/s against batch size, time to first token against prompt length, memory per precision.
// Every figure is a measured median of the run's raw samples; rooflines come from the same run's probe.
import Foundation
import HeadroomCore
import HeadroomStore

/// What the inference sections read from one measured case.
struct InferencePoint {
    let c: MeasuredCase
    var params: InferenceParams? { InferenceParams(params: c.params) }
    var facts: InferenceFacts? { InferenceFacts(facts: c.facts) }
    var precision: String { c.params["precision"] ?? "?" }
    var prompt: Int { params?.promptTokens ?? 0 }
    var batch: Int { params?.batch ?? Int(c.params["batch"] ?? "") ?? 1 }
    var threads: Int { c.threads }
    var decode: Summary? { c.summary("decode_tokens_per_s") }
    var prefill: Summary? { c.summary("prefill_tokens_per_s") }
    var ttft: Summary? { c.summary("ttft_ms") }
    var tpot: Summary? { c.summary("tpot_ms") }
    var weightsBytes: Double { Double(facts?.weightsBytes ?? 0) }
    var kvBytes: Double { Double(facts?.kvCacheBytes ?? 0) }
    var peakRSS: Double? { c.values("peak_rss_bytes").max() }

    /// Decode roofline tokens/s: the probe's best read bandwidth over the bytes one step reads, times the batch.
    func decodeRoofline(_ probe: ProbeFigures) -> Double? {
        guard let bw = probe.readGBps(threads: threads), let bytes = facts.map({ Double($0.decodeBytesPerStep) }), bytes > 0 else { return nil }
        return bw * 1e9 / bytes * Double(batch)
    }

    /// Prefill roofline tokens/s: the run's fastest sgemm (probe or layer GEMM) over the FLOPs per prompt token.
    func prefillRoofline(_ probe: ProbeFigures) -> Double? {
        guard let g = probe.at(threads: threads)?.computeGFLOPs, let f = facts.map({ Double($0.prefillFlopsPerToken) }), f > 0 else { return nil }
        return g * 1e9 / f
    }

    static func all(_ run: StoredRun) -> [InferencePoint] { run.cases(kind: .inference).map(InferencePoint.init) }

    /// Precisions in the order of the format's size, largest first.
    static func order(_ p: String) -> Int { ["f32": 0, "f16": 1, "q8_0": 2, "q4_0": 3][p] ?? 9 }
}

private let palette = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]

private func linkPlots(_ plots: [Gnuplot.Plot], md: inout String, html: inout String) {
    for p in plots {
        let file = (p.output as NSString).lastPathComponent
        md += "\n\(imageMarkdown(file, file))\n"
        html += imageHTML(file, file) + "\n"
    }
}

private func plural(_ t: Int) -> String { "\(t) thread\(t == 1 ? "" : "s")" }

/// Tokens/s of decode and prefill for every case, with each case's roofline and the fraction reached.
public struct InferenceThroughputSection: ReportSectionBuilder {
    public init() {}

    public func section(for run: StoredRun, folder: String) -> ReportSection? {
        let pts = InferencePoint.all(run)
        guard !pts.isEmpty else { return nil }
        let probe = ProbeFigures(cases: run.cases)
        let t = Self.table(pts, probe: probe)
        let model = pts.first?.c.params["model"] ?? "?"
        let weights = pts.first?.c.params["model_file"].map { "the weights of `\($0)` (mapped)" } ?? "synthetic weights"
        let note = "The whole model `\(model)` on \(weights): prefill of the prompt, then greedy decode of " +
            "\(pts.first?.c.params["generate_tokens"] ?? "?") tokens per sequence (a batch shares the prompt). Medians of n repetitions. " +
            "Decode roofline = the probe's best read bandwidth (every read pattern, before and after the workloads) ÷ bytes one step reads (all weights once, plus each sequence's KV cache), × batch; " +
            "prefill roofline = the probe's sgemm GFLOP/s ÷ FLOPs per prompt token."
        var md = "\(note)\n\n\(t.markdown)\n"
        var html = "<p>\(HTML.escape(note.replacingOccurrences(of: "`", with: "")))</p>\n\(t.html)\n"
        let plots = [plot(pts, probe: probe, folder: folder)].compactMap { $0 }
        linkPlots(plots, md: &md, html: &html)
        return ReportSection(title: "Inference throughput per precision and thread count (measured)", markdown: md, html: html, plots: plots)
    }

    /// One row per case: decode and prefill tokens/s (medians) beside their rooflines and the fraction reached.
    /// Also printed by `headroom run` at the end of a run.
    public static func table(_ run: StoredRun) -> TextTable? {
        let pts = InferencePoint.all(run)
        return pts.isEmpty ? nil : table(pts, probe: ProbeFigures(cases: run.cases))
    }

    static func table(_ pts: [InferencePoint], probe: ProbeFigures) -> TextTable {
        var t = TextTable(["precision", "threads", "prompt", "batch", "decode tok/s", "p95 TPOT ms", "roofline", "% roof",
                           "prefill tok/s", "roofline", "% roof", "n"], rightAligned: Set(1...11))
        let sorted = pts.sorted { (InferencePoint.order($0.precision), $0.threads, $0.prompt, $0.batch) < (InferencePoint.order($1.precision), $1.threads, $1.prompt, $1.batch) }
        for p in sorted {
            let dr = p.decodeRoofline(probe), pr = p.prefillRoofline(probe)
            t.add([p.precision, String(p.threads), String(p.prompt), String(p.batch),
                   p.decode.map { Fmt.sig($0.median) } ?? "—", p.tpot.map { Fmt.sig($0.p95) } ?? "—",
                   dr.map(Fmt.sig) ?? "—", zip2(p.decode?.median, dr).map { Fmt.percent($0 / $1) } ?? "—",
                   p.prefill.map { Fmt.sig($0.median) } ?? "—", pr.map(Fmt.sig) ?? "—",
                   zip2(p.prefill?.median, pr).map { Fmt.percent($0 / $1) } ?? "—", String(p.decode?.count ?? p.prefill?.count ?? 0)])
        }
        return t
    }

    /// Decode tokens/s at batch 1 (shortest prompt) against threads, one line per precision, its roofline dashed.
    func plot(_ pts: [InferencePoint], probe: ProbeFigures, folder: String) -> Gnuplot.Plot? {
        guard let minPrompt = pts.map(\.prompt).min() else { return nil }
        let sel = pts.filter { $0.batch == 1 && $0.prompt == minPrompt }
        let precisions = Set(sel.map(\.precision)).sorted { InferencePoint.order($0) < InferencePoint.order($1) }
        var data: [String: String] = [:], lines: [String] = []
        for (i, p) in precisions.enumerated() {
            let rows = sel.filter { $0.precision == p }.sorted { $0.threads < $1.threads }
            let measured = rows.compactMap { r in r.decode.map { "\(r.threads)\t\($0.median)" } }
            let roof = rows.compactMap { r in r.decodeRoofline(probe).map { "\(r.threads)\t\($0)" } }
            guard !measured.isEmpty else { continue }
            data["m\(i)"] = measured.joined(separator: "\n") + "\n"
            lines.append("{{m\(i)}} using 1:2 with linespoints lw 2 pt 7 lc rgb '\(palette[i % palette.count])' title '\(Gnuplot.label(p)) decode (measured)'")
            if !roof.isEmpty {
                data["r\(i)"] = roof.joined(separator: "\n") + "\n"
                lines.append("{{r\(i)}} using 1:2 with linespoints lw 1 pt 4 dt 2 lc rgb '\(palette[i % palette.count])' title '\(Gnuplot.label(p)) roofline (probe)'")
            }
        }
        guard !lines.isEmpty else { return nil }
        let script = Gnuplot.preamble(title: "Decode tokens/s at batch 1, prompt \(minPrompt) (measured medians; rooflines from the probe)") + """

            set xlabel 'threads'
            set ylabel 'tokens/s'
            set xtics 1
            set yrange [0:*]
            plot \(lines.joined(separator: ", \\\n     "))
            """
        return Gnuplot.Plot(output: (folder as NSString).appendingPathComponent("inference_tokens_per_s.png"), script: script, data: data)
    }
}

/// Decode tokens/s against batch size: how far reading each weight once for the whole batch carries.
public struct InferenceBatchSection: ReportSectionBuilder {
    public init() {}

    public func section(for run: StoredRun, folder: String) -> ReportSection? {
        let pts = InferencePoint.all(run)
        guard Set(pts.map(\.batch)).count > 1, let threads = pts.map(\.threads).max(), let prompt = pts.map(\.prompt).min() else { return nil }
        let probe = ProbeFigures(cases: run.cases)
        let sel = pts.filter { $0.threads == threads && $0.prompt == prompt }
        let precisions = Set(sel.map(\.precision)).sorted { InferencePoint.order($0) < InferencePoint.order($1) }
        var t = TextTable(["precision", "batch", "decode tok/s", "× batch 1", "roofline", "% roof", "n"], rightAligned: [1, 2, 3, 4, 5, 6])
        var data: [String: String] = [:], lines: [String] = []
        for (i, p) in precisions.enumerated() {
            let rows = sel.filter { $0.precision == p }.sorted { $0.batch < $1.batch }
            let base = rows.first { $0.batch == 1 }?.decode?.median
            for r in rows {
                let roof = r.decodeRoofline(probe)
                t.add([p, String(r.batch), r.decode.map { Fmt.sig($0.median) } ?? "—",
                       zip2(r.decode?.median, base).map { String(format: "%.1f×", $0 / $1) } ?? "—",
                       roof.map(Fmt.sig) ?? "—", zip2(r.decode?.median, roof).map { Fmt.percent($0 / $1) } ?? "—", String(r.decode?.count ?? 0)])
            }
            let measured = rows.compactMap { r in r.decode.map { "\(r.batch)\t\($0.median)" } }
            guard !measured.isEmpty else { continue }
            data["b\(i)"] = measured.joined(separator: "\n") + "\n"
            lines.append("{{b\(i)}} using 1:2 with linespoints lw 2 pt 7 lc rgb '\(palette[i % palette.count])' title '\(Gnuplot.label(p)) (measured)'")
            let roof = rows.compactMap { r in r.decodeRoofline(probe).map { "\(r.batch)\t\($0)" } }
            if !roof.isEmpty {
                data["r\(i)"] = roof.joined(separator: "\n") + "\n"
                lines.append("{{r\(i)}} using 1:2 with lines lw 1 dt 2 lc rgb '\(palette[i % palette.count])' title '\(Gnuplot.label(p)) bandwidth roofline (probe)'")
            }
        }
        guard !lines.isEmpty else { return nil }
        let script = Gnuplot.preamble(title: "Decode tokens/s against batch, \(plural(threads)), prompt \(prompt) (measured medians)") + """

            set logscale x 2
            set xlabel 'sequences decoded together (batch)'
            set ylabel 'tokens/s (all sequences)'
            set yrange [0:*]
            plot \(lines.joined(separator: ", \\\n     "))
            """
        let plot = Gnuplot.Plot(output: (folder as NSString).appendingPathComponent("inference_batch.png"), script: script, data: data)
        let note = "Each decode step reads every weight once for all sequences of the batch, so tokens/s grows with the batch until the " +
            "kernels' arithmetic, not memory, is the limit. \(plural(threads)), prompt \(prompt)."
        var md = "\(note)\n\n\(t.markdown)\n", html = "<p>\(HTML.escape(note))</p>\n\(t.html)\n"
        linkPlots([plot], md: &md, html: &html)
        return ReportSection(title: "Decode tokens/s against batch size (measured)", markdown: md, html: html, plots: [plot])
    }
}

/// Time to first token against prompt length, batch 1.
public struct InferenceTTFTSection: ReportSectionBuilder {
    public init() {}

    public func section(for run: StoredRun, folder: String) -> ReportSection? {
        let pts = InferencePoint.all(run).filter { $0.batch == 1 }
        guard Set(pts.map(\.prompt)).count > 1, let threads = pts.map(\.threads).max() else { return nil }
        let sel = pts.filter { $0.threads == threads }
        let precisions = Set(sel.map(\.precision)).sorted { InferencePoint.order($0) < InferencePoint.order($1) }
        var t = TextTable(["precision", "prompt", "TTFT ms median", "p95", "min–max", "n"], rightAligned: [1, 2, 3, 4, 5])
        var data: [String: String] = [:], lines: [String] = []
        for (i, p) in precisions.enumerated() {
            let rows = sel.filter { $0.precision == p }.sorted { $0.prompt < $1.prompt }
            for r in rows {
                guard let s = r.ttft else { continue }
                t.add([p, String(r.prompt), Fmt.sig(s.median), Fmt.sig(s.p95), "\(Fmt.sig(s.min))–\(Fmt.sig(s.max))", String(s.count)])
            }
            let measured = rows.compactMap { r in r.ttft.map { "\(r.prompt)\t\($0.median)\t\($0.min)\t\($0.max)" } }
            guard !measured.isEmpty else { continue }
            data["t\(i)"] = measured.joined(separator: "\n") + "\n"
            lines.append("{{t\(i)}} using 1:2:3:4 with yerrorlines lw 2 pt 7 lc rgb '\(palette[i % palette.count])' title '\(Gnuplot.label(p))'")
        }
        guard !lines.isEmpty else { return nil }
        let script = Gnuplot.preamble(title: "Time to first token against prompt length, batch 1, \(plural(threads)) (measured median, min–max)") + """

            set xlabel 'prompt tokens'
            set ylabel 'TTFT (ms)'
            set yrange [0:*]
            plot \(lines.joined(separator: ", \\\n     "))
            """
        let plot = Gnuplot.Plot(output: (folder as NSString).appendingPathComponent("inference_ttft.png"), script: script, data: data)
        let note = "Time from the prompt's arrival to the first sampled token: prefill of the whole prompt plus the output head and sampling."
        var md = "\(note)\n\n\(t.markdown)\n", html = "<p>\(HTML.escape(note))</p>\n\(t.html)\n"
        linkPlots([plot], md: &md, html: &html)
        return ReportSection(title: "Time to first token against prompt length (measured)", markdown: md, html: html, plots: [plot])
    }
}

/// Memory per precision: the weights, the largest KV cache of the run, and the measured peak resident set.
public struct InferenceMemorySection: ReportSectionBuilder {
    public init() {}

    public func section(for run: StoredRun, folder: String) -> ReportSection? {
        let pts = InferencePoint.all(run)
        guard !pts.isEmpty else { return nil }
        let precisions = Set(pts.map(\.precision)).sorted { InferencePoint.order($0) < InferencePoint.order($1) }
        let mib = 1048576.0
        var t = TextTable(["precision", "weights MiB", "KV cache MiB (largest case)", "peak RSS MiB (measured)", "weights + KV + 15 % + 64 MiB"],
                          rightAligned: [1, 2, 3, 4])
        var rows: [String] = []
        for p in precisions {
            let cs = pts.filter { $0.precision == p }
            let weights = cs.map(\.weightsBytes).max() ?? 0
            let kv = cs.map(\.kvBytes).max() ?? 0
            let peak = cs.compactMap(\.peakRSS).max()
            t.add([p, String(format: "%.0f", weights / mib), String(format: "%.1f", kv / mib), peak.map { String(format: "%.0f", $0 / mib) } ?? "—",
                   String(format: "%.0f", ((weights + kv) * 1.15 + 64 * mib) / mib)])
            rows.append("\(Gnuplot.label(p))\t\(weights / mib)\t\(kv / mib)\t\((peak ?? 0) / mib)")
        }
        let script = Gnuplot.preamble(title: "Memory per precision (weights and KV cache as allocated, peak RSS measured)") + """

            set style data histograms
            set style histogram clustered gap 1
            set style fill solid 0.8 border -1
            set ylabel 'MiB'
            set yrange [0:*]
            plot {{mem}} using 2:xtic(1) title 'weights' lc rgb '#4c72b0', '' using 3 title 'KV cache' lc rgb '#55a868', \\
                 '' using 4 title 'peak RSS (measured)' lc rgb '#c44e52'
            """
        let plot = Gnuplot.Plot(output: (folder as NSString).appendingPathComponent("inference_memory.png"), script: script,
                                data: ["mem": rows.joined(separator: "\n") + "\n"])
        let note = "Weights and KV cache are the bytes the engine allocated (f32 KV cache, sized for prompt + generated tokens × batch); " +
            "peak RSS is the process's VmHWM during the case (the high-water mark is reset before each case, so earlier cases' memory " +
            "that is still resident counts, e.g. the probe's arrays)."
        var md = "\(note)\n\n\(t.markdown)\n", html = "<p>\(HTML.escape(note))</p>\n\(t.html)\n"
        linkPlots([plot], md: &md, html: &html)
        return ReportSection(title: "Memory per precision", markdown: md, html: html, plots: [plot])
    }
}

private func zip2(_ a: Double?, _ b: Double?) -> (Double, Double)? {
    guard let a, let b, b != 0 else { return nil }
    return (a, b)
}
