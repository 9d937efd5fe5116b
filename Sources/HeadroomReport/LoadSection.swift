// The load section: what `headroom load` measured on each endpoint, one table row per load point, and
// plots of latency against load, throughput against concurrency, the TTFT distribution, ITL along the
// output, and goodput against offered rate. Every figure is measured, computed from the stored samples.
import Foundation
import HeadroomCore
import HeadroomStore

/// The q-quantile (0.5, 0.9, 0.95 or 0.99) of `values` in ms (nil when there are none): the HdrHistogram
/// distribution every load table, JSON document and plot reads, so they agree with each other to the digit.
func loadPercentile(_ values: [Double], _ q: Double) -> Double? {
    LatencyDistribution(values.filter { $0.isFinite && $0 >= 0 })?.percentile(Int((q * 100).rounded()))
}

/// What the load section reads from one load case (one load point), per the load contract.
public struct LoadCasePoint {
    public let c: MeasuredCase
    public init(_ c: MeasuredCase) { self.c = c }
    public var endpoint: String { c.name }
    public var point: String { c.params["point"] ?? "?" }
    public func number(_ fact: String) -> Double? { c.loadFact(fact).flatMap(Double.init).flatMap { $0.isFinite ? $0 : nil } }
    /// Requests per second the profile offered; nil for closed loop.
    public var offeredRate: Double? { number("offered_rate") }
    public var achievedRate: Double? { number("achieved_rate") }
    public var meanInFlight: Double? { number("mean_in_flight") }
    public var sloSet: Bool { !(c.loadFact("slo") ?? "").isEmpty }
    public var fellBehind: Bool { c.loadFact("fell_behind") == "true" }
    /// Requests sent: one `ok` sample each.
    public var sent: Int { c.values("ok").count }
    public var errors: Int { number("errors").flatMap { Int(exactly: $0.rounded()) } ?? c.values("ok").filter { $0 == 0 }.count }
    /// The mean of the equal windows' rates: the whole measured period's rate.
    public func windowMean(_ metric: String) -> Double? { c.summary(metric)?.mean }
    public var outputTokensPerSecond: Double? { windowMean("output_tokens_per_s") }
    public var goodput: Double? { sloSet ? windowMean("goodput_per_s") : nil }
    /// Good requests over requests sent (a failed request is not good).
    public var sloAttainment: Double? {
        guard sloSet, sent > 0 else { return nil }
        return c.values("good").reduce(0, +) / Double(sent)
    }

    /// Median inter-token latency at each token position (1 = the gap after the first token).
    var itlByPosition: [(position: Int, medianMs: Double)] {
        var position: [Int: Int] = [:]
        for s in c.samples where s.metric == "itl_position" { position[s.repetition] = Int(s.value) }
        var byPosition: [Int: [Double]] = [:]
        for s in c.samples where s.metric == "itl_ms" {
            if let p = position[s.repetition] { byPosition[p, default: []].append(s.value) }
        }
        return byPosition.keys.sorted().compactMap { p in loadPercentile(byPosition[p]!, 0.5).map { (p, $0) } }
    }

    /// The load points of `run` by endpoint, each endpoint's in order of achieved rate.
    public static func all(_ run: StoredRun) -> [String: [LoadCasePoint]] {
        Dictionary(grouping: run.cases(kind: "load").map(LoadCasePoint.init), by: \.endpoint).mapValues { pts in
            pts.sorted { ($0.achievedRate ?? 0, $0.point) < ($1.achievedRate ?? 0, $1.point) }
        }
    }
}

private let palette = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]

/// `s` as inert inline Markdown: one line, and no character Markdown would read as markup.
private func markdownText(_ s: String) -> String {
    var out = ""
    for ch in TerminalText.escape(s, keepNewlines: false) {
        if "\\`*_{}[]()<>#+-.!|~".contains(ch) { out.append("\\") }
        out.append(ch)
    }
    return out
}

/// `headroom load`'s points, per endpoint.
public struct LoadSection: ReportSectionBuilder {
    public init() {}

    public func section(for run: StoredRun, folder: String) -> ReportSection? {
        let byEndpoint = LoadCasePoint.all(run)
        guard !byEndpoint.isEmpty else { return nil }
        let endpoints = byEndpoint.keys.sorted()
        let note = "Each row is one load point measured against the endpoint: percentiles over its successful requests " +
            "(TPOT = (E2E − TTFT) / (output tokens − 1); ITL excludes the first token), output tokens/s and goodput are the " +
            "mean of the point's equal windows, a request is good when it meets every SLO objective, and SLO attained is good " +
            "requests ÷ requests sent. \"fell behind\" marks a point whose client sent requests late (its p99 schedule lag is given): " +
            "its offered rate was not fully offered."
        var md = "\(note)\n", html = "<p>\(HTML.escape(note))</p>\n"
        for e in endpoints {
            let t = Self.table(byEndpoint[e]!)
            md += "\n### Endpoint \(markdownText(e)) (measured)\n\n\(t.markdown)\n"
            html += "<h3>Endpoint \(HTML.escape(e)) (measured)</h3>\n\(t.html)\n"
        }
        let plots = [latencyPlot(byEndpoint, endpoints, folder), throughputPlot(byEndpoint, endpoints, folder),
                     ttftCDFPlot(byEndpoint, endpoints, folder), itlPlot(byEndpoint, endpoints, folder),
                     goodputPlot(byEndpoint, endpoints, folder)].compactMap { $0 }
        for p in plots {
            let file = (p.output as NSString).lastPathComponent
            md += "\n\(imageMarkdown(file, file))\n"
            html += imageHTML(file, file) + "\n"
        }
        return ReportSection(title: "Endpoints under load (measured)", markdown: md, html: html, plots: plots)
    }

    /// One row per load point of one endpoint; the goodput columns only when some point had an SLO.
    public static func table(_ pts: [LoadCasePoint]) -> TextTable {
        let slo = pts.contains(where: \.sloSet)
        var header = ["point", "offered req/s", "achieved req/s", "TTFT p50 ms", "TTFT p95 ms", "TPOT p50 ms", "TPOT p95 ms",
                      "ITL p50 ms", "ITL p95 ms", "output tok/s"]
        if slo { header += ["goodput req/s", "SLO attained"] }
        header += ["errors", "n", "client fell behind"]
        var t = TextTable(header, rightAligned: Set(1..<(header.count - 1)))
        func p(_ metric: String, _ c: MeasuredCase, _ q: Double) -> String { loadPercentile(c.values(metric), q).map(Fmt.sig) ?? "—" }
        for x in pts {
            var row = [x.point, x.offeredRate.map(Fmt.sig) ?? "closed loop", x.achievedRate.map(Fmt.sig) ?? "—",
                       p("ttft_ms", x.c, 0.5), p("ttft_ms", x.c, 0.95), p("tpot_ms", x.c, 0.5), p("tpot_ms", x.c, 0.95),
                       p("itl_ms", x.c, 0.5), p("itl_ms", x.c, 0.95), x.outputTokensPerSecond.map(Fmt.sig) ?? "—"]
            if slo { row += [x.goodput.map(Fmt.sig) ?? "—", x.sloAttainment.map(Fmt.percent) ?? "—"] }
            let lag = x.number("schedule_lag_p99_ms").map { " (lag p99 \(Fmt.sig($0)) ms)" } ?? ""
            row += [String(x.errors), String(x.sent), x.fellBehind ? "yes\(lag)" : "no"]
            t.add(row)
        }
        return t
    }

    /// A plot whose lines are (data rows, style, title) triples; nil when no line has data.
    func plot(_ file: String, _ folder: String, title: String, setup: String, _ lines: [(rows: [String], style: String, title: String)]) -> Gnuplot.Plot? {
        var data: [String: String] = [:], specs: [String] = []
        for (i, l) in lines.enumerated() where !l.rows.isEmpty {
            data["d\(i)"] = l.rows.joined(separator: "\n") + "\n"
            specs.append("{{d\(i)}} using 1:2 \(l.style) title '\(Gnuplot.label(l.title))'")
        }
        guard !specs.isEmpty else { return nil }
        let script = Gnuplot.preamble(title: title) + "\n\(setup)\nplot \(specs.joined(separator: ", \\\n     "))\n"
        return Gnuplot.Plot(output: (folder as NSString).appendingPathComponent(file), script: script, data: data)
    }

    func color(_ i: Int) -> String { palette[i % palette.count] }

    /// (1) TTFT and TPOT, p50 and p95, against achieved request rate.
    func latencyPlot(_ by: [String: [LoadCasePoint]], _ endpoints: [String], _ folder: String) -> Gnuplot.Plot? {
        var lines: [(rows: [String], style: String, title: String)] = []
        for (i, e) in endpoints.enumerated() {
            for (metric, name, pt) in [("ttft_ms", "TTFT", 7), ("tpot_ms", "TPOT", 5)] {
                for (q, dash) in [(0.5, 1), (0.95, 2)] {
                    let rows = by[e]!.compactMap { x in
                        zip2(x.achievedRate, loadPercentile(x.c.values(metric), q)).map { "\($0)\t\($1)" }
                    }
                    lines.append((rows, "with linespoints lw 2 pt \(pt) dt \(dash) lc rgb '\(color(i))'",
                                  "\(e) \(name) p\(Int(q * 100))"))
                }
            }
        }
        return plot("load_latency.png", folder, title: "TTFT and TPOT against achieved request rate (measured p50 solid, p95 dashed)",
                    setup: "set xlabel 'achieved requests/s'\nset ylabel 'ms'\nset logscale y\nset xrange [0:*]", lines)
    }

    /// (2) Output tokens/s against concurrency (mean requests in flight).
    func throughputPlot(_ by: [String: [LoadCasePoint]], _ endpoints: [String], _ folder: String) -> Gnuplot.Plot? {
        let lines = endpoints.enumerated().map { i, e in
            (rows: by[e]!.sorted { ($0.meanInFlight ?? 0) < ($1.meanInFlight ?? 0) }.compactMap { x in
                zip2(x.meanInFlight, x.outputTokensPerSecond).map { "\($0)\t\($1)" } },
             style: "with linespoints lw 2 pt 7 lc rgb '\(color(i))'", title: e)
        }
        return plot("load_throughput.png", folder, title: "Output tokens/s against concurrency (measured)",
                    setup: "set xlabel 'mean requests in flight'\nset ylabel 'output tokens/s'\nset xrange [0:*]\nset yrange [0:*]", lines)
    }

    /// (3) The TTFT distribution of every point, as a cumulative distribution.
    func ttftCDFPlot(_ by: [String: [LoadCasePoint]], _ endpoints: [String], _ folder: String) -> Gnuplot.Plot? {
        var lines: [(rows: [String], style: String, title: String)] = []
        for (i, e) in endpoints.enumerated() {
            for (j, x) in by[e]!.enumerated() {
                let v = x.c.values("ttft_ms").filter(\.isFinite).sorted()
                let rows = v.enumerated().map { k, ms in "\(ms)\t\(Double(k + 1) / Double(v.count))" }
                lines.append((rows, "with steps lw 2 dt \(j % 5 + 1) lc rgb '\(color(i))'", "\(e) \(x.point)"))
            }
        }
        return plot("load_ttft_cdf.png", folder, title: "Distribution of time to first token per load point (measured)",
                    setup: "set xlabel 'TTFT (ms)'\nset ylabel 'fraction of requests'\nset logscale x\nset yrange [0:1]", lines)
    }

    /// (4) ITL against token position: the median over a point's requests at each position.
    func itlPlot(_ by: [String: [LoadCasePoint]], _ endpoints: [String], _ folder: String) -> Gnuplot.Plot? {
        var lines: [(rows: [String], style: String, title: String)] = []
        for (i, e) in endpoints.enumerated() {
            for (j, x) in by[e]!.enumerated() {
                lines.append((x.itlByPosition.map { "\($0.position)\t\($0.medianMs)" },
                              "with lines lw 2 dt \(j % 5 + 1) lc rgb '\(color(i))'", "\(e) \(x.point)"))
            }
        }
        return plot("load_itl_position.png", folder, title: "Inter-token latency against token position (measured median per position)",
                    setup: "set xlabel 'token position (1 = gap after the first token)'\nset ylabel 'ITL (ms)'\nset yrange [0:*]", lines)
    }

    /// (5) Goodput against offered rate, for the points that had an SLO and an offered rate.
    func goodputPlot(_ by: [String: [LoadCasePoint]], _ endpoints: [String], _ folder: String) -> Gnuplot.Plot? {
        let lines = endpoints.enumerated().map { i, e in
            (rows: by[e]!.sorted { ($0.offeredRate ?? 0) < ($1.offeredRate ?? 0) }.compactMap { x in
                zip2(x.offeredRate, x.goodput).map { "\($0)\t\($1)" } },
             style: "with linespoints lw 2 pt 7 lc rgb '\(color(i))'", title: e)
        }
        return plot("load_goodput.png", folder, title: "Goodput against offered rate (measured; requests meeting every SLO objective)",
                    setup: "set xlabel 'offered requests/s'\nset ylabel 'good requests/s'\nset xrange [0:*]\nset yrange [0:*]", lines)
    }
}

private func zip2(_ a: Double?, _ b: Double?) -> (Double, Double)? {
    guard let a, let b else { return nil }
    return (a, b)
}
