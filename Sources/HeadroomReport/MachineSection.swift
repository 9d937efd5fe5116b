// The report's first section: this machine's limits as the probe measured them, and a bandwidth plot.
import Foundation
import HeadroomCore
import HeadroomStore

public struct MachineSection: ReportSectionBuilder {
    public init() {}

    static let order = ["read_stream", "read_rows", "read_prefetch", "triad", "sgemm"]
    static let labels = ["read_stream": "read, 1 stream/thread", "read_rows": "read, rows side by side",
                         "read_prefetch": "read, decode kernels' walk", "triad": "STREAM triad", "sgemm": "sgemm"]

    public func section(for run: StoredRun, folder: String) -> ReportSection? {
        let probe = run.cases(kind: .probe)
        guard !probe.isEmpty else { return nil }
        var table = TextTable(["measured", "threads", "best", "median", "p95", "min", "unit", "n"], rightAligned: [1, 2, 3, 4, 5, 7])
        // The closing probe's reads follow the opening probe's at each thread count.
        func key(_ c: MeasuredCase) -> (Int, Int, Int) {
            (c.threads, ProbeFigures.isClosing(c) ? 1 : 0, Self.order.firstIndex(of: c.name) ?? 9)
        }
        let sorted = probe.sorted { key($0) < key($1) }
        for c in sorted {
            let metric = c.name == "sgemm" ? "gflops" : "gbps"
            guard let s = c.summary(metric) else { continue }
            var label = Self.labels[c.name] ?? c.name
            if let rows = c.params["rows_per_thread"] { label += " (\(rows) rows)" }
            if let width = c.params["row_floats"] { label += " (4 rows of \(width) floats, prefetched, kernel pool)" }
            if ProbeFigures.isClosing(c) { label += ", after the workloads" }
            if let size = c.params["size"] { label += " \(size)³" }
            table.add([label, String(c.threads), Fmt.sig(s.max), Fmt.sig(s.median), Fmt.sig(s.p95), Fmt.sig(s.min),
                       c.unit(of: metric), String(s.count)])
        }
        // Clustered bars: one cluster per thread count, one bar per read pattern (best, with min as error bar).
        let threads = Set(probe.map(\.threads)).sorted()
        // Only the patterns this run measured: gnuplot refuses a column with no valid point (a run recorded before
        // read_prefetch existed has none).
        let styles = ["read_stream": ("read, 1 stream/thread", "#4c72b0"), "read_rows": ("read, rows side by side", "#dd8452"),
                      "read_prefetch": ("read, decode kernels' walk", "#c44e52"), "triad": ("STREAM triad", "#55a868")]
        let patterns = (ProbeFigures.readPatterns + ["triad"]).filter { p in probe.contains { $0.name == p } }
        let plots = patterns.enumerated().map { i, p in
            "\(i == 0 ? "{{bw}}" : "''") using \(i + 2)\(i == 0 ? ":xtic(1)" : "") title \"\(styles[p]!.0)\" lc rgb '\(styles[p]!.1)'"
        }
        var data = "threads\t" + patterns.joined(separator: "\t") + "\n"
        for t in threads {
            // Best over every case of the pattern: before and after the workloads.
            let vals = patterns.map { p in probe.filter { $0.name == p && $0.threads == t }.flatMap { $0.values("gbps") }.max() ?? .nan }
            data += "\(t)\t" + vals.map { $0.isFinite ? String($0) : "NaN" }.joined(separator: "\t") + "\n"
        }
        let n = probe.first { $0.name == "read_rows" && !ProbeFigures.isClosing($0) }?.values("gbps").count ?? 0
        let file = "memory_bandwidth.png"
        let script = Gnuplot.preamble(title: "Memory bandwidth per thread count (measured, best of n=\(n))", width: 700) + """

            set style data histogram
            set style histogram cluster gap 1
            set style fill solid 0.8 border -1
            set boxwidth 0.9
            set ylabel 'GB/s'
            set xlabel 'threads'
            set yrange [0:*]
            set key inside left top
            set offsets 0.3, 0.3, 0, 0
            plot \(plots.joined(separator: ", \\\n     "))
            """
        let plot = Gnuplot.Plot(output: (folder as NSString).appendingPathComponent(file), script: script, data: ["bw": data])
        let note = "Best of the repetitions is the machine's limit (an upper bound); GB = 10⁹ bytes. " +
            "The decode roofline is the best of the three read patterns, before and after the workloads (when the run read " +
            "again after them): one stream per thread, several rows side by side per thread, and the decode kernels' own walk " +
            "(four rows at a time with software prefetch, shared out by their thread pool), whichever this machine serves fastest."
        guard !patterns.isEmpty else {   // sgemm alone: the table, no bandwidth plot
            return ReportSection(title: "Machine limits (measured by the probe)", markdown: "\(note)\n\n\(table.markdown)\n",
                                 html: "<p>\(HTML.escape(note))</p>\n\(table.html)", plots: [])
        }
        return ReportSection(
            title: "Machine limits (measured by the probe)",
            markdown: "\(note)\n\n\(table.markdown)\n\n\(imageMarkdown(file, "memory bandwidth per thread count"))\n",
            html: "<p>\(HTML.escape(note))</p>\n\(table.html)\n\(imageHTML(file, "memory bandwidth per thread count"))",
            plots: [plot])
    }
}
