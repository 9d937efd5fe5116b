import Foundation
import XCTest
import HeadroomCore
import HeadroomStore
@testable import HeadroomReport

final class ReportTests: XCTestCase {
    /// A stored run with probe and gemm cases whose values are given, not measured: the report only draws.
    func syntheticRun(file: String = "Scenarios/x.yaml") -> StoredRun {
        func c(_ kind: CaseKind, _ name: String, _ threads: Int, _ params: [String: String], _ metric: String, _ unit: String, _ vs: [Double]) -> MeasuredCase {
            var samples = vs.enumerated().map { MeasuredCase.Sample(metric: metric, unit: unit, repetition: $0.offset, value: $0.element) }
            samples += vs.enumerated().map { MeasuredCase.Sample(metric: "seconds", unit: "s", repetition: $0.offset, value: 1 / $0.element) }
            return MeasuredCase(kind: kind, name: name, threads: threads, params: params, samples: samples)
        }
        var cases: [MeasuredCase] = []
        for t in [1, 2] {
            cases.append(c("probe", "read_stream", t, [:], "gbps", "GB/s", [15, 16].map { $0 * Double(t) }))
            cases.append(c("probe", "read_rows", t, ["rows_per_thread": "8"], "gbps", "GB/s", [16, 17].map { $0 * Double(t) }))
            cases.append(c("probe", "triad", t, [:], "gbps", "GB/s", [20, 21].map { $0 * Double(t) }))
            cases.append(c("probe", "sgemm", t, ["size": "2048"], "gflops", "GFLOP/s", [150, 160].map { $0 * Double(t) }))
            for (phase, m) in [("decode", 1), ("decode", 8), ("prefill", 128)] {
                for (name, n, k) in [("qkv", 96, 64), ("o", 64, 64), ("gate_up", 256, 64), ("down", 64, 128)] {
                    cases.append(c("gemm", name, t, ["model": "tiny", "phase": phase, "M": String(m), "N": String(n), "K": String(k)],
                                   "gflops", "GFLOP/s", [Double(m), Double(m) * 1.1, Double(m) * 0.95]))
                }
            }
        }
        let run = RunRecord(id: 7, scenarioName: "x", scenarioFile: file, scenarioHash: "h", scenarioText: "",
                            gitRevision: "abc", machineFingerprint: "fp", machineJson: "{}", headroomVersion: "t",
                            pid: 1, startedAt: Date(), endedAt: Date(), status: .complete)
        return StoredRun(run: run, cases: cases)
    }

    func testWritesMarkdownHTMLAndNonEmptyPlots() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let written = try ReportWriter().write(run: syntheticRun(), folder: folder)
        let names = Set(written.map { ($0 as NSString).lastPathComponent })
        XCTAssertEqual(names, ["index.md", "index.html", "memory_bandwidth.png", "gemm_throughput.png", "decode_weight_streaming.png"])
        for png in names where png.hasSuffix(".png") {
            let data = try Data(contentsOf: URL(fileURLWithPath: (folder as NSString).appendingPathComponent(png)))
            XCTAssertGreaterThan(data.count, 1000, png)
            XCTAssertEqual(Array(data.prefix(4)), [0x89, 0x50, 0x4E, 0x47], "\(png) is not a PNG")
        }
        let md = try String(contentsOfFile: (folder as NSString).appendingPathComponent("index.md"), encoding: .utf8)
        for png in names where png.hasSuffix(".png") { XCTAssertTrue(md.contains("(\(png))"), "index.md does not link \(png)") }
        XCTAssertTrue(md.contains("measured"))
        // 16 GB/s × 2 threads best = 34; the table carries the sample count.
        XCTAssertTrue(md.contains("| read, rows side by side (8 rows) | 2 | 34.0 |"), md)
        // No staging folder is left behind.
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: folder).contains { $0.hasPrefix(".staging") })
    }

    func testMachineSectionShowsThePrefetchedWalkAndTheReadsAfterTheWorkloads() throws {
        // A run recorded with the decode kernels' walk, read again after the workloads (faster then: 40 GB/s at 2 threads).
        var run = syntheticRun()
        for (t, after) in [(1, false), (2, false), (2, true)] {
            let v = after ? 40.0 : 18 * Double(t)
            run.cases.append(MeasuredCase(kind: "probe", name: "read_prefetch", threads: t,
                                          params: ["row_floats": "2048"].merging(after ? [ProbeFigures.stageParam: ProbeFigures.closingStage] : [:]) { $1 },
                                          samples: [.init(metric: "gbps", unit: "GB/s", repetition: 0, value: v),
                                                    .init(metric: "seconds", unit: "s", repetition: 0, value: 1 / v)]))
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let section = try XCTUnwrap(MachineSection().section(for: run, folder: folder))
        XCTAssertTrue(section.markdown.contains("| read, decode kernels' walk (4 rows of 2048 floats, prefetched, kernel pool) | 2 | 36.0 |"),
                      section.markdown)
        XCTAssertTrue(section.markdown.contains("prefetched, kernel pool), after the workloads | 2 | 40.0 |"), section.markdown)
        // The plot's bars: each pattern's best over both probes, one column per pattern measured.
        let data = try XCTUnwrap(section.plots.first?.data["bw"])
        XCTAssertEqual(data.split(separator: "\n").first, "threads\tread_stream\tread_rows\tread_prefetch\ttriad")
        XCTAssertEqual(data.split(separator: "\n").last, "2\t32.0\t34.0\t40.0\t42.0")
        XCTAssertEqual(ProbeFigures(cases: run.cases).readGBps(threads: 2), 40)
        try ReportWriter().write(run: run, folder: folder)
        let png = try Data(contentsOf: URL(fileURLWithPath: (folder as NSString).appendingPathComponent("memory_bandwidth.png")))
        XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
    }

    func testUserTextIsEscapedInHTML() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try ReportWriter().write(run: syntheticRun(file: "<script>alert('x')</script>.yaml"), folder: folder)
        let html = try String(contentsOfFile: (folder as NSString).appendingPathComponent("index.html"), encoding: .utf8)
        XCTAssertFalse(html.contains("<script>"))
        XCTAssertTrue(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;.yaml"))
    }

    func testBusyProbeIsFlaggedWhenACaseBeatsThePeak() {
        let run = syntheticRun()
        let probe = ProbeFigures(cases: run.cases)
        XCTAssertNil(GemmSection.busyProbeWarning(run.cases(kind: "gemm"), probe: probe))
        let fast = MeasuredCase(kind: "gemm", name: "qkv", threads: 1, params: ["M": "512", "N": "8", "K": "8"],
                                samples: [.init(metric: "gflops", unit: "GFLOP/s", repetition: 0, value: 200)])
        XCTAssertNotNil(GemmSection.busyProbeWarning([fast], probe: probe), "200 GFLOP/s beats the 1-thread peak of 160")
    }

    func testTextTableFormats() {
        var t = TextTable(["a", "num"], rightAligned: [1])
        t.add(["x|y", "5"])
        t.add(["long", "123"])
        XCTAssertEqual(t.rendered, "a     num\n----  ---\nx|y     5\nlong  123")
        XCTAssertEqual(t.markdown, "| a | num |\n| --- | ---: |\n| x\\|y | 5 |\n| long | 123 |")
        XCTAssertEqual(Fmt.sig(1234.4), "1234")
        XCTAssertEqual(Fmt.sig(12.345), "12.3")
        XCTAssertEqual(Fmt.bytes(3 * 1024 * 1024), "3.00 MiB")
    }

    func testGnuplotErrorsCarryItsMessage() {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).png").path
        XCTAssertThrowsError(try Gnuplot.render(.init(output: out, script: Gnuplot.preamble(title: "t") + "\nplot nonsense(", data: [:]))) { e in
            XCTAssertTrue("\(e)".contains("gnuplot failed drawing"), "\(e)")
        }
    }
}

final class GnuplotQuotingTests: XCTestCase {
    /// A label with a newline and a gnuplot shell call stays one inert string literal.
    func testQuotedTextCannotEndTheCommand() {
        let hostile = "x'\nsystem('touch /tmp/headroom-pwned')\n#"
        let q = Gnuplot.quote(hostile)
        XCTAssertFalse(q.contains("\n"))
        XCTAssertEqual(q, "'x''\\nsystem(''touch /tmp/headroom-pwned'')\\n#'")
        XCTAssertFalse(Gnuplot.label(hostile).contains("\n"))
        XCTAssertEqual(Gnuplot.absolute("|cmd/plot.png").first, "/", "an output name never starts with a pipe")
    }

    /// The same text through gnuplot itself: the plot is drawn and no command runs.
    func testHostileTitleDrawsAndRunsNothing() throws {
        guard Gnuplot.executable() != nil else { throw XCTSkip("gnuplot is not installed") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let marker = dir.appendingPathComponent("pwned").path
        let title = "t\nsystem('touch \(marker)')\nprint 1"
        let plot = Gnuplot.Plot(output: dir.appendingPathComponent("p.png").path,
                                script: Gnuplot.preamble(title: title) + "\nplot {{d}} using 1:2 with lines title '\(Gnuplot.label(title))'\n",
                                data: ["d": "1\t2\n2\t3\n"])
        try Gnuplot.render(plot)
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "gnuplot ran a shell command from a title")
    }
}
