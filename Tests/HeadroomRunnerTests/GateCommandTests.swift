import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest

/// `headroom gate` and `headroom baseline` end to end, on a scenario small enough to measure in a second.
final class GateCommandTests: XCTestCase {
    var binary: URL { HeadroomCLI.binary }
    var repo: URL { HeadroomCLI.repo }

    func run(_ args: [String], cwd: URL) throws -> (status: Int32, stdout: String, stderr: String) {
        try HeadroomCLI.run(args, cwd: cwd)
    }

    /// A folder with the catalog and a tiny scenario, measured once and saved as baseline `b`.
    func measuredFolder() throws -> (dir: URL, runID: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("catalog"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: repo.appendingPathComponent("Scenarios/catalog/models.yaml"),
                                         to: dir.appendingPathComponent("catalog/models.yaml"))
        try """
            schema: 1
            name: quick
            probe: { read_mib: 16, gemm_size: 64, repetitions: 5 }
            measure: { model: tiny, threads: [1], prompt_tokens: [4], batch: [1], repetitions: 5, warmup: 1 }
            """.write(to: dir.appendingPathComponent("quick.yaml"), atomically: true, encoding: .utf8)
        let r = try run(["run", "quick.yaml", "--db", "h.sqlite", "--no-report", "--json"], cwd: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]]
        let id = try XCTUnwrap(obj?.first?["run_id"] as? Int)
        let s = try run(["baseline", "save", "b", "--db", "h.sqlite"], cwd: dir)
        XCTAssertEqual(s.status, 0, s.stderr)
        XCTAssertTrue(s.stdout.hasPrefix("Baseline b: run \(id) (scenario quick"), s.stdout)
        return (dir, String(id))
    }

    func testExportImportRoundTripAndJUnitFailures() throws {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: binary.path), "headroom not built at \(binary.path)")
        let (dir, id) = try measuredFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let list = try run(["baseline", "list", "--db", "h.sqlite"], cwd: dir)
        let line = list.stdout.split(separator: "\n").first { $0.hasPrefix("b ") }.map { $0.split(separator: " ").map(String.init) }
        XCTAssertEqual(line.map { Array($0.prefix(3)) }, ["b", id, "quick"], list.stdout)
        let export = try run(["baseline", "export", "b", "--db", "h.sqlite", "-o", "b.json"], cwd: dir)
        XCTAssertEqual(export.status, 0, export.stderr)

        // The run against its own exported baseline: every ratio is exactly 1.
        let same = try run(["gate", "--baseline", "b.json", "--run", id, "--db", "h.sqlite", "--junit", "same.xml", "--json"], cwd: dir)
        XCTAssertEqual(same.status, 0, same.stderr)
        let obj = try JSONSerialization.jsonObject(with: Data(same.stdout.utf8)) as? [String: Any]
        let rows = try XCTUnwrap(obj?["rows"] as? [[String: Any]])
        XCTAssertEqual(rows.count, 8 * 5 + 9, "8 GEMM cases × (seconds, gflops, gflops ÷ sgemm, weight_gbps, weight_gbps ÷ read) " +
                       "+ 1 inference case × (4 timing metrics raw and normalised, peak_rss_bytes)")
        XCTAssertTrue(rows.allSatisfy { ($0["ratio"] as? Double).map { abs($0 - 1) < 1e-12 } ?? false })
        // Identical samples: nothing regresses (a noisy case may be "not significant", never worse).
        XCTAssertTrue(rows.allSatisfy { ["pass", "not significant"].contains($0["verdict"] as? String) })
        // The stored baseline by name gives the same answer.
        XCTAssertEqual(try run(["gate", "--baseline", "b", "--run", id, "--db", "h.sqlite"], cwd: dir).status, 0)

        // A baseline whose GEMMs were a thousand times as fast as this run's best sample (beyond any noise of
        // microsecond GEMMs on a busy machine): gflops, raw and normalised, regress; time and bandwidth are
        // left as they were.
        var doc = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("b.json"))) as! [String: Any]
        var cases = doc["cases"] as! [[String: Any]]
        for i in cases.indices where cases[i]["kind"] as? String == "gemm" {
            var metrics = cases[i]["metrics"] as! [[String: Any]]
            for j in metrics.indices where metrics[j]["metric"] as? String == "gflops" {
                let values = metrics[j]["values"] as! [Double]
                metrics[j]["values"] = values.map { _ in values.max()! * 1000 }
            }
            cases[i]["metrics"] = metrics
        }
        doc["cases"] = cases
        try JSONSerialization.data(withJSONObject: doc).write(to: dir.appendingPathComponent("fast.json"))
        let slow = try run(["gate", "--baseline", "fast.json", "--run", id, "--db", "h.sqlite", "--junit", "slow.xml",
                            "--markdown", "slow.md", "--json"], cwd: dir)
        XCTAssertEqual(slow.status, 1, slow.stdout + slow.stderr)
        let slowJSON = try JSONSerialization.jsonObject(with: Data(slow.stdout.utf8)) as? [String: Any]
        XCTAssertEqual((slowJSON?["counts"] as? [String: Int])?["regression"], 16, slow.stdout)
        XCTAssertEqual(slowJSON?["exit_code"] as? Int, 1)
        let xml = try XMLDocument(contentsOf: dir.appendingPathComponent("slow.xml"), options: [])
        XCTAssertEqual(try xml.nodes(forXPath: "//testcase").count, 8 * 5 + 9)
        XCTAssertEqual(try xml.nodes(forXPath: "//testcase/failure").count, 16)
        XCTAssertEqual(xml.rootElement()?.attribute(forName: "failures")?.stringValue, "16")
        let sameXML = try XMLDocument(contentsOf: dir.appendingPathComponent("same.xml"), options: [])
        XCTAssertEqual(try sameXML.nodes(forXPath: "//testcase/failure").count, 0)
        let md = try String(contentsOf: dir.appendingPathComponent("slow.md"), encoding: .utf8)
        XCTAssertTrue(md.hasPrefix("## Headroom gate: **regression**"), md)
        // Only normalised gflops: 8 figures, all regressions; a threshold of 100 % tolerates any drop in throughput.
        let norm = try run(["gate", "--baseline", "fast.json", "--run", id, "--db", "h.sqlite", "--normalised-only", "--metric", "gflops"], cwd: dir)
        XCTAssertEqual(norm.status, 1)
        XCTAssertTrue(norm.stdout.contains("FAIL: 8 figures gated (8 regression)"), norm.stdout)
        let lenient = try run(["gate", "--baseline", "fast.json", "--run", id, "--db", "h.sqlite", "--normalised-only",
                               "--metric", "gflops", "--threshold", "100%"], cwd: dir)
        XCTAssertEqual(lenient.status, 0, lenient.stdout)
    }

    func testHelpExplainsGateAndBaselineCommands() throws {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: binary.path), "headroom not built at \(binary.path)")
        for cmd in [["gate"], ["baseline"], ["baseline", "record"], ["baseline", "save"], ["baseline", "list"], ["baseline", "export"]] {
            let r = try run(cmd + ["--help"], cwd: repo)
            XCTAssertEqual(r.status, 0, "\(cmd)")
            XCTAssertTrue(r.stdout.contains("OVERVIEW:") && r.stdout.contains("USAGE:"), "\(cmd): \(r.stdout)")
        }
    }

    func testMalformedBaselineExitsTwoNamingFileAndKey() throws {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: binary.path), "headroom not built at \(binary.path)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try """
            {"format": "headroom-baseline", "format_version": 1, "name": "b", "created_at": "2026-11-21T20:00:00Z", "kind": "measured",
             "run": {"id": 1, "scenario": "gate", "scenario_file": "Scenarios/gate.yaml", "scenario_hash": "h", "git_revision": "g",
                     "started_at": "2026-11-21T20:00:00Z"},
             "cases": [{"kind": "gemm", "name": "qkv", "threads": 2, "params": {}, "metrics": [{"metric": "gflops", "unit": "GFLOP/s", "values": [1, "fast"]}]}]}
            """.write(to: dir.appendingPathComponent("bad.json"), atomically: true, encoding: .utf8)
        let r = try run(["gate", "--baseline", "bad.json", "--run", "1", "--db", "h.sqlite"], cwd: dir)
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "headroom: bad.json: cases[0].metrics[0].values[1]: expected a number\n")
        XCTAssertEqual(r.stdout, "")
        let missing = try run(["gate", "--baseline", "nope.json", "--run", "1", "--db", "h.sqlite"], cwd: dir)
        XCTAssertEqual(missing.status, 2)
        XCTAssertEqual(missing.stderr, "headroom: nope.json: cannot read the baseline file: no such file\n")
        let threshold = try run(["gate", "--baseline", "bad.json", "--threshold", "five", "--db", "h.sqlite"], cwd: dir)
        XCTAssertEqual(threshold.status, 2)
        XCTAssertEqual(threshold.stderr, "headroom: command line: --threshold: expected a percentage such as 5%, got \"five\"\n")
    }
}
