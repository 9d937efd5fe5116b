// The load section on synthetic load cases built per the load contract: its table worked by hand, its plots,
// and endpoint names that try to escape.
import Foundation
import XCTest
import HeadroomCore
import HeadroomStore
@testable import HeadroomReport

final class LoadSectionTests: XCTestCase {
    func samples(_ metric: String, _ unit: String, _ vs: [Double]) -> [MeasuredCase.Sample] {
        vs.enumerated().map { MeasuredCase.Sample(metric: metric, unit: unit, repetition: $0.offset, value: $0.element) }
    }

    func loadCase(_ endpoint: String, point: String, facts: [String: String], ok: [Double], ttft: [Double], tpot: [Double],
                  itl: [Double], itlPosition: [Double], outputPerS: [Double], good: [Double] = [], goodputPerS: [Double] = []) -> MeasuredCase {
        var params = ["endpoint": endpoint, "api": "completions", "model": "m", "profile": "sweep", "point": point,
                      "prompt_tokens": "128", "output_tokens": "16"]
        let s = samples("ok", "bool", ok) + samples("status", "code", ok.map { $0 == 1 ? 200 : 500 })
            + samples("ttft_ms", "ms", ttft) + samples("tpot_ms", "ms", tpot) + samples("itl_ms", "ms", itl)
            + samples("itl_position", "token", itlPosition) + samples("itl_request", "index", itlPosition.map { _ in 0 })
            + samples("output_tokens_per_s", "tokens/s", outputPerS) + samples("good", "bool", good)
            + samples("goodput_per_s", "requests/s", goodputPerS)
        return MeasuredCase(kind: "load", name: endpoint, threads: 0, params: params, facts: facts, samples: s)
    }

    func run(_ cases: [MeasuredCase]) -> StoredRun {
        let r = RunRecord(id: 5, scenarioName: "load", scenarioFile: "x.yaml", scenarioHash: "h", scenarioText: "",
                          gitRevision: "abc", machineFingerprint: "fp", machineJson: "{}", headroomVersion: "t",
                          pid: 1, startedAt: Date(), endedAt: Date(), status: .complete)
        return StoredRun(run: r, cases: cases)
    }

    /// Two open-loop points with an SLO, the second one where the client fell behind.
    func sweep(_ endpoint: String) -> [MeasuredCase] {
        [loadCase(endpoint, point: "rate:1", facts: ["offered_rate": "1", "achieved_rate": "0.95", "mean_in_flight": "1.2",
                                                     "slo": "ttft_p95=500ms", "errors": "1", "fell_behind": "false", "schedule_lag_p99_ms": "0.4"],
                  ok: [1, 1, 1, 0], ttft: [100, 300, 200], tpot: [10, 20, 30], itl: [5, 6, 7, 8], itlPosition: [1, 2, 1, 2],
                  outputPerS: [90, 110], good: [1, 1, 0], goodputPerS: [0.5, 1.0]),
         loadCase(endpoint, point: "rate:4", facts: ["offered_rate": "4", "achieved_rate": "3.1", "mean_in_flight": "6",
                                                     "slo": "ttft_p95=500ms", "errors": "0", "fell_behind": "true", "schedule_lag_p99_ms": "12.5"],
                  ok: [1, 1], ttft: [400, 800], tpot: [40, 60], itl: [30, 50], itlPosition: [1, 1],
                  outputPerS: [300, 340], good: [1, 0], goodputPerS: [1.5, 2.5])]
    }

    func testTableWorkedByHand() throws {
        let closed = loadCase("closed", point: "concurrency:4", facts: ["offered_rate": "", "achieved_rate": "2", "mean_in_flight": "4",
                                                                     "slo": "", "errors": "0", "fell_behind": "false"],
                              ok: [1], ttft: [50], tpot: [5], itl: [4], itlPosition: [1], outputPerS: [64])
        let section = try XCTUnwrap(LoadSection().section(for: run(sweep("ep") + [closed]), folder: "/nonexistent"))
        let md = section.markdown
        // Percentiles are HdrHistogram's (µs, 3 significant digits): the value at rank round(q·n) (at least 1), shown to
        // 3 digits. rate:1: TTFT {100, 200, 300}: p50 rank 2 = 200, p95 rank 3 = 300; TPOT {10, 20, 30}: 20, 30;
        // ITL {5, 6, 7, 8}: p50 rank 2 = 6, p95 rank 4 = 8; output tok/s (90 + 110)/2 = 100; goodput (0.5 + 1)/2 = 0.75;
        // SLO attained 2 good of 4 sent = 50 %; 1 error.
        XCTAssertTrue(md.contains("| rate:1 | 1.00 | 0.950 | 200 | 300 | 20.0 | 30.0 | 6.00 | 8.00 | 100 | 0.750 | 50% | 1 | 4 | no |"), md)
        // rate:4: TTFT {400, 800}: p50 rank 1 = 400, p95 rank 2 = 800; TPOT 40, 60; ITL 30, 50; 320 tok/s; goodput 2; 1 of 2 good.
        XCTAssertTrue(md.contains("| rate:4 | 4.00 | 3.10 | 400 | 800 | 40.0 | 60.0 | 30.0 | 50.0 | 320 | 2.00 | 50% | 0 | 2 | yes (lag p99 12.5 ms) |"), md)
        // A closed-loop endpoint without an SLO has no goodput columns.
        XCTAssertTrue(md.contains("| concurrency:4 | closed loop | 2.00 | 50.0 | 50.0 | 5.00 | 5.00 | 4.00 | 4.00 | 64.0 | 0 | 1 | no |"), md)
        XCTAssertTrue(md.contains("### Endpoint ep (measured)"), md)
        XCTAssertEqual(section.title, "Endpoints under load (measured)")
        // Rows are in order of achieved rate.
        let rows = md.components(separatedBy: "\n").filter { $0.hasPrefix("| rate:") }
        XCTAssertEqual(rows.map { $0.prefix(8) }, ["| rate:1", "| rate:4"])
        // ITL per position, p50 (rank 1 of 2): position 1 {5, 7} → 5, position 2 {6, 8} → 6, to HdrHistogram's resolution.
        let p = LoadCasePoint(sweep("ep")[0])
        XCTAssertEqual(p.itlByPosition.map(\.position), [1, 2])
        XCTAssertEqual(p.itlByPosition[0].medianMs, 5, accuracy: 0.005)
        XCTAssertEqual(p.itlByPosition[1].medianMs, 6, accuracy: 0.006)
        XCTAssertEqual(Set(section.plots.map { ($0.output as NSString).lastPathComponent }),
                       ["load_latency.png", "load_throughput.png", "load_ttft_cdf.png", "load_itl_position.png", "load_goodput.png"])
    }

    func testNoSectionWithoutLoadCases() {
        let other = MeasuredCase(kind: "inference", name: "small-f32", threads: 1, params: ["point": "rate:1"],
                                 samples: samples("ttft_ms", "ms", [1]))
        XCTAssertNil(LoadSection().section(for: run([other]), folder: "/tmp"))
        XCTAssertTrue(ReportWriter.standardBuilders.contains { $0 is LoadSection })
    }

    func testPlotsAreWritten() throws {
        guard Gnuplot.executable() != nil else { throw XCTSkip("gnuplot is not installed") }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("load-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let written = try ReportWriter(builders: [LoadSection()]).write(run: run(sweep("ep") + sweep("other")), folder: folder)
        let names = Set(written.map { ($0 as NSString).lastPathComponent })
        for png in ["load_latency.png", "load_throughput.png", "load_ttft_cdf.png", "load_itl_position.png", "load_goodput.png"] {
            XCTAssertTrue(names.contains(png), png)
            let data = try Data(contentsOf: URL(fileURLWithPath: (folder as NSString).appendingPathComponent(png)))
            XCTAssertEqual(Array(data.prefix(4)), [0x89, 0x50, 0x4E, 0x47], png)
        }
    }

    /// An endpoint name with quotes, newlines, Markdown, HTML and gnuplot's shell call stays text everywhere.
    func testHostileEndpointNames() throws {
        let marker = "/tmp/headroom-load-pwned-\(UUID().uuidString)"
        let hostile = "x'\"\nsystem('touch \(marker)')\n`touch \(marker)`\n# <b>|bold|</b> ]"
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("load-hostile-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder); try? FileManager.default.removeItem(atPath: marker) }
        let writer = ReportWriter(builders: [LoadSection()])
        if Gnuplot.executable() != nil {
            let written = try writer.write(run: run(sweep(hostile)), folder: folder)
            XCTAssertEqual(written.filter { $0.hasSuffix(".png") }.count, 5)
            XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "gnuplot ran the name as a command")
        }
        let section = try XCTUnwrap(LoadSection().section(for: run(sweep(hostile)), folder: folder))
        let lines = section.markdown.components(separatedBy: "\n")
        XCTAssertFalse(lines.contains { $0.hasPrefix("system(") || $0.hasPrefix("# ") || $0.hasPrefix("`touch") }, section.markdown)
        XCTAssertFalse(section.html.contains("<b>"), section.html)
        XCTAssertTrue(section.html.contains("&lt;b&gt;"), section.html)
        for plot in section.plots {
            for line in plot.script.components(separatedBy: "\n") {
                XCTAssertFalse(line.hasPrefix("system("), plot.script)
            }
            XCTAssertFalse(plot.data.values.contains { $0.contains("system") }, "names never reach the data files")
        }
    }
}
