// The GEMMs of one transformer layer: throughput per shape and thread count against the probe's sgemm
// peak, and the decode shapes' weight streaming against the read bandwidth.
import Foundation
import HeadroomCore
import HeadroomStore

public struct GemmSection: ReportSectionBuilder {
    public init() {}

    public func section(for run: StoredRun, folder: String) -> ReportSection? {
        let gemm = run.cases(kind: .gemm)
        guard !gemm.isEmpty else { return nil }
        let probe = ProbeFigures(cases: run.cases)
        let model = gemm.first?.params["model"] ?? "?"
        var table = TextTable(["phase", "proj", "M", "N", "K", "threads", "GFLOP/s median", "p95 ms", "min–max GFLOP/s",
                               "% of compute roof", "n"], rightAligned: [2, 3, 4, 5, 6, 7, 8, 9, 10])
        func m(_ c: MeasuredCase) -> Int { Int(c.params["M"] ?? "") ?? 0 }
        let sorted = gemm.sorted { ($0.threads, $0.params["phase"] ?? "", m($0), $0.name) < ($1.threads, $1.params["phase"] ?? "", m($1), $1.name) }
        for c in sorted {
            guard let g = c.summary("gflops"), let s = c.summary("seconds") else { continue }
            let peak = probe.at(threads: c.threads)?.computeGFLOPs
            table.add([c.params["phase"] ?? "", c.name, c.params["M"] ?? "", c.params["N"] ?? "", c.params["K"] ?? "",
                       String(c.threads), Fmt.sig(g.median), Fmt.ms(s.p95), "\(Fmt.sig(g.min))–\(Fmt.sig(g.max))",
                       peak.map { Fmt.percent(g.median / $0) } ?? "—", String(g.count)])
        }
        let reps = gemm.first?.values("gflops").count ?? 0
        let plots = [throughputPlot(gemm, probe: probe, folder: folder, reps: reps),
                     streamingPlot(gemm, probe: probe, folder: folder, reps: reps)].compactMap { $0 }
        let note = "Each projection of one layer of `\(model)` timed through OpenBLAS sgemm (f32), " +
            "median of n repetitions after warm-up; the percentage is of the compute roof at the same thread count: " +
            "the fastest sgemm this run timed there, the probe's square one or any layer GEMM's single call."
        var md = "\(note)\n\n\(table.markdown)\n"
        var html = "<p>\(HTML.escape(note.replacingOccurrences(of: "`", with: "")))</p>\n\(table.html)\n"
        if let warning = Self.busyProbeWarning(gemm, probe: probe) {
            md += "\n> **Warning:** \(warning)\n"
            html += "<p class=\"warn\">\(HTML.escape(warning))</p>\n"
        }
        for p in plots {
            let file = (p.output as NSString).lastPathComponent
            md += "\n\(imageMarkdown(file, file))\n"
            html += imageHTML(file, file) + "\n"
        }
        return ReportSection(title: "GEMM throughput of one \(model) layer (measured)", markdown: md, html: html, plots: plots)
    }

    /// A case faster than the probe's best sgemm at its thread count means the machine was busier
    /// during the probe than during that case: the run's rooflines understate this machine.
    public static func busyProbeWarning(_ gemm: [MeasuredCase], probe: ProbeFigures) -> String? {
        let over = gemm.filter { c in
            guard let g = c.summary("gflops")?.median, let peak = probe.at(threads: c.threads)?.sgemmGFLOPs else { return false }
            return g > peak * 1.02
        }
        guard !over.isEmpty else { return nil }
        return "\(over.count) case(s) ran faster than the probe's best sgemm at the same thread count, so the machine " +
            "was busier while the probe ran than later; the compute roof is then the fastest layer GEMM call instead of the probe's. Re-run on a quiet machine."
    }

    /// GFLOP/s against M for each projection and thread count, with each thread count's sgemm peak as a line.
    func throughputPlot(_ gemm: [MeasuredCase], probe: ProbeFigures, folder: String, reps: Int) -> Gnuplot.Plot? {
        let threads = Set(gemm.map(\.threads)).sorted()
        let names = Array(Set(gemm.map(\.name))).sorted()
        var data: [String: String] = [:]
        var plots: [String] = []
        let colors = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]
        for (ti, t) in threads.enumerated() {
            for (ni, name) in names.enumerated() {
                let pts = gemm.filter { $0.threads == t && $0.name == name }
                    .compactMap { c -> (Int, Double)? in
                        guard let m = Int(c.params["M"] ?? ""), let g = c.summary("gflops") else { return nil }
                        return (m, g.median)
                    }.sorted { $0.0 < $1.0 }
                guard !pts.isEmpty else { continue }
                let key = "g\(ti)_\(ni)"
                data[key] = pts.map { "\($0.0)\t\($0.1)" }.joined(separator: "\n") + "\n"
                plots.append("{{\(key)}} using 1:2 with linespoints lw 2 pt \(ti == 0 ? 7 : 5) dt \(ti + 1) lc rgb '\(colors[ni % colors.count])' title '\(Gnuplot.label(name)), \(t) thread\(t == 1 ? "" : "s")'")
            }
            if let peak = probe.at(threads: t)?.computeGFLOPs {
                plots.append("\(peak) with lines lw 2 dt \(ti + 1) lc rgb '#000000' title 'compute roof, \(t) thread\(t == 1 ? "" : "s") (fastest sgemm)'")
            }
        }
        guard !plots.isEmpty else { return nil }
        let file = "gemm_throughput.png"
        let script = Gnuplot.preamble(title: "GEMM throughput per projection (measured, median of n=\(reps))", width: 1000) + """

            set logscale x 2
            set xlabel 'M (prompt tokens or decode batch)'
            set ylabel 'GFLOP/s'
            set yrange [0:*]
            plot \(plots.joined(separator: ", \\\n     "))
            """
        return Gnuplot.Plot(output: (folder as NSString).appendingPathComponent(file), script: script, data: data)
    }

    /// Weight bytes streamed per second by the decode-phase GEMMs against M, with the read-bandwidth roofline.
    func streamingPlot(_ gemm: [MeasuredCase], probe: ProbeFigures, folder: String, reps: Int) -> Gnuplot.Plot? {
        let decode = gemm.filter { $0.params["phase"] == "decode" }
        guard !decode.isEmpty else { return nil }
        let threads = Set(decode.map(\.threads)).sorted()
        var data: [String: String] = [:]
        var plots: [String] = []
        for (ti, t) in threads.enumerated() {
            let byM = Dictionary(grouping: decode.filter { $0.threads == t }) { Int($0.params["M"] ?? "") ?? 0 }
            // All four projections together: total weight bytes over total median time.
            let pts = byM.keys.sorted().compactMap { m -> String? in
                let cs = byM[m]!
                let bytes = cs.reduce(0.0) { $0 + Double((Int($1.params["N"] ?? "") ?? 0) * (Int($1.params["K"] ?? "") ?? 0) * 4) }
                let secs = cs.compactMap { $0.summary("seconds")?.median }.reduce(0, +)
                return secs > 0 ? "\(m)\t\(bytes / secs / 1e9)" : nil
            }
            guard !pts.isEmpty else { continue }
            data["s\(ti)"] = pts.joined(separator: "\n") + "\n"
            plots.append("{{s\(ti)}} using 1:2 with linespoints lw 2 pt 7 dt \(ti + 1) title 'layer weights streamed, \(t) thread\(t == 1 ? "" : "s")'")
            if let bw = probe.readGBps(threads: t) {
                plots.append("\(bw) with lines lw 2 dt \(ti + 1) lc rgb '#000000' title 'read bandwidth, \(t) thread\(t == 1 ? "" : "s") (probe)'")
            }
        }
        guard !plots.isEmpty else { return nil }
        let file = "decode_weight_streaming.png"
        let script = Gnuplot.preamble(title: "Decode-shape GEMMs: weight bytes streamed per second (measured, median of n=\(reps))", width: 1000) + """

            set logscale x 2
            set xlabel 'M (decode batch)'
            set ylabel 'GB/s of f32 weights'
            set yrange [0:*]
            plot \(plots.joined(separator: ", \\\n     "))
            """
        return Gnuplot.Plot(output: (folder as NSString).appendingPathComponent(file), script: script, data: data)
    }
}
