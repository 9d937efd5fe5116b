// The report's fine-tuning section: step time and tokens/s per method, rank and precision against the
// probe's sgemm; the memory breakdown per case (LoRA vs full, with and without checkpointing) beside the
// measured peak; and the loss curve of every case.
import Foundation
import HeadroomCore
import HeadroomStore

public struct FinetuneSection: ReportSectionBuilder {
    public init() {}

    static let parts = [("weights_bytes", "weights", "#4c72b0"), ("adapter_bytes", "adapters", "#55a868"),
                        ("gradient_bytes", "gradients", "#c44e52"), ("optimizer_bytes", "optimizer states", "#8172b3"),
                        ("activation_bytes", "activations", "#dd8452")]

    /// "lora r8 q,v, ckpt, 2t": how a case is named in tables and plots.
    public static func label(_ c: MeasuredCase) -> String {
        var s = c.params["method"] ?? c.name
        if s == "lora" { s += " r\(c.params["rank"] ?? "?") \(c.params["targets"] ?? "")" }
        s += " \(c.params["precision"] ?? "")"
        if c.params["checkpointing"] == "true" { s += ", ckpt" }
        return s + ", \(c.threads)t"
    }

    static func once(_ c: MeasuredCase, _ metric: String) -> Double? { c.values(metric).first }

    public func section(for run: StoredRun, folder: String) -> ReportSection? {
        let cases = run.cases(kind: .finetune).sorted { ($0.threads, $0.name) < ($1.threads, $1.name) }
        guard !cases.isEmpty else { return nil }
        let probe = ProbeFigures(cases: run.cases)
        var table = TextTable(["case", "seq × batch", "step ms median", "p95", "min–max", "tokens/s", "useful GFLOP/s",
                               "% of compute roof", "loss first → last", "memory counted", "peak RSS above baseline", "n"],
                              rightAligned: [2, 3, 4, 5, 6, 7, 9, 10, 11])
        for c in cases {
            guard let s = c.summary("step_seconds"), let tps = c.summary("tokens_per_s") else { continue }
            let g = c.summary("gflops")?.median
            let peak = probe.at(threads: c.threads)?.computeGFLOPs
            let losses = c.values("loss")
            let counted = Self.parts.compactMap { Self.once(c, $0.0) }.reduce(0, +)
            table.add([Self.label(c), "\(c.params["seq_len"] ?? "?") × \(c.params["batch"] ?? "?")",
                       Fmt.ms(s.median), Fmt.ms(s.p95), "\(Fmt.ms(s.min))–\(Fmt.ms(s.max))", Fmt.sig(tps.median),
                       g.map(Fmt.sig) ?? "—", g.flatMap { g in peak.map { Fmt.percent(g / $0) } } ?? "—",
                       losses.isEmpty ? "—" : "\(Fmt.sig(losses.first!)) → \(Fmt.sig(losses.last!))",
                       Fmt.bytes(counted), Self.once(c, "rss_above_baseline_bytes").map(Fmt.bytes) ?? "—", String(s.count)])
        }
        let plots = [memoryPlot(cases, folder: folder), lossPlot(cases, folder: folder)].compactMap { $0 }
        let base = cases[0].params["model_file"].map { "the tensors of `\($0)` (full fine-tuning: dequantized to f32)" }
            ?? "synthetic weights of `\(cases[0].params["model"] ?? "?")`"
        let note = "Each case is a real training run on \(base) and the " +
            "synthetic repeating-pattern task: step time is the median of n timed steps after warm-up; useful GFLOP/s counts " +
            "the matrix products the step needs (docs/finetune.md), as a percentage of the probe's best sgemm at the same " +
            "thread count. Memory counted is the trainer's buffers (weights, adapters, gradients, optimizer states, " +
            "activations); the peak RSS is measured (VmHWM) above the process's resident memory before allocating."
        var md = "\(note)\n\n\(table.markdown)\n"
        var html = "<p>\(HTML.escape(note.replacingOccurrences(of: "`", with: "")))</p>\n\(table.html)\n"
        for p in plots {
            let file = (p.output as NSString).lastPathComponent
            md += "\n\(imageMarkdown(file, file))\n"
            html += imageHTML(file, file) + "\n"
        }
        return ReportSection(title: "Fine-tuning (measured)", markdown: md, html: html, plots: plots)
    }

    /// Stacked bars of the counted breakdown per case, with the measured peak above baseline as a point.
    func memoryPlot(_ cases: [MeasuredCase], folder: String) -> Gnuplot.Plot? {
        var rows = ""  // case, then one column per part, then the measured peak above baseline (MiB)
        for c in cases {
            let vals = Self.parts.map { (Self.once(c, $0.0) ?? 0) / 1048576 }
            let measured = Self.once(c, "rss_above_baseline_bytes").map { $0 / 1048576 } ?? .nan
            rows += "\"\(Self.label(c).replacingOccurrences(of: "\"", with: ""))\"\t" + vals.map { String($0) }.joined(separator: "\t") +
                "\t\(measured.isFinite ? String(measured) : "NaN")\n"
        }
        var cols: [String] = []
        for (i, p) in Self.parts.enumerated() {
            cols.append("{{mem}} using \(i + 2)\(i == 0 ? ":xtic(1)" : "") title '\(p.1)' lc rgb '\(p.2)'")
        }
        cols.append("{{mem}} using ($0):\(Self.parts.count + 2) with points pt 7 ps 1.5 lc rgb '#000000' title 'peak RSS above baseline (measured)'")
        let script = Gnuplot.preamble(title: "Fine-tuning memory per case (counted buffers, and measured peak)", width: 1000) + """

            set style data histogram
            set style histogram rowstacked
            set style fill solid 0.85 border -1
            set boxwidth 0.6
            set ylabel 'MiB'
            set yrange [0:*]
            set xtics rotate by -20
            set xrange [-0.6:\(Double(cases.count) - 0.4)]
            plot \(cols.joined(separator: ", \\\n     "))
            """
        return Gnuplot.Plot(output: (folder as NSString).appendingPathComponent("finetune_memory.png"), script: script, data: ["mem": rows])
    }

    /// Loss against step for every case.
    func lossPlot(_ cases: [MeasuredCase], folder: String) -> Gnuplot.Plot? {
        var data: [String: String] = [:]
        var plots: [String] = []
        for (i, c) in cases.enumerated() {
            let losses = c.values("loss")
            guard !losses.isEmpty else { continue }
            data["l\(i)"] = losses.enumerated().map { "\($0.offset)\t\($0.element)" }.joined(separator: "\n") + "\n"
            plots.append("{{l\(i)}} using 1:2 with linespoints lw 2 pt 7 title '\(Gnuplot.label(Self.label(c)))'")
        }
        guard !plots.isEmpty else { return nil }
        let script = Gnuplot.preamble(title: "Training loss per step (measured; warm-up steps included)", width: 1000) + """

            set xlabel 'step'
            set ylabel 'cross-entropy (nats)'
            plot \(plots.joined(separator: ", \\\n     "))
            """
        return Gnuplot.Plot(output: (folder as NSString).appendingPathComponent("finetune_loss.png"), script: script, data: data)
    }
}
