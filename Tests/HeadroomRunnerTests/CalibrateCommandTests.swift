import Foundation
import XCTest

/// `headroom calibrate` through the built executable: a tiny scenario measured, fitted per regime, a second run
/// held out; and its errors.
final class CalibrateCommandTests: XCTestCase {
    var repo: URL { HeadroomCLI.repo }

    func folder() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("calibrate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("catalog"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: repo.appendingPathComponent("Scenarios/catalog/models.yaml"), to: dir.appendingPathComponent("catalog/models.yaml"))
        for (name, prompts, batches) in [("cal", "[4, 8, 16]", "[1, 2, 4]"), ("held", "[6, 12]", "[3]")] {
            try """
                schema: 1
                name: \(name)
                probe: { read_mib: 16, gemm_size: 64, repetitions: 2 }
                measure: { model: tiny, threads: [1], prompt_tokens: \(prompts), batch: \(batches), precisions: [f32], generate_tokens: 2, repetitions: 1 }
                """.write(to: dir.appendingPathComponent("\(name).yaml"), atomically: true, encoding: .utf8)
        }
        return dir
    }

    func testFitsEveryRegimeOfARunAndPredictsAHeldOutRun() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        for s in ["held", "cal"] {
            let r = try HeadroomCLI.run(["run", "\(s).yaml", "--db", "h.sqlite", "--no-report"], cwd: dir)
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        let r = try HeadroomCLI.run(["calibrate", "--db", "h.sqlite", "--scenario", "cal", "--holdout-scenario", "held", "--json"], cwd: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(obj["scenario"] as? String, "cal")
        let cal = try XCTUnwrap(obj["calibration"] as? [String: Any])
        let fits = try XCTUnwrap(cal["fits"] as? [[String: Any]])
        let kernels = Set(fits.compactMap { ($0["key"] as? [String: Any])?["kernel"] as? String })
        XCTAssertEqual(kernels, ["gemm M=1", "gemm M>1", "prefill", "decode batch 1", "decode batch>1"])
        // 3 prompts: 3 prefill points (each prompt's prefill in its 3 batch cases merged into one), 9 decode points.
        let checks = try XCTUnwrap(cal["checks"] as? [[String: Any]])
        let labels = checks.compactMap { ($0["point"] as? [String: Any])?["label"] as? String }
        XCTAssertEqual(labels.filter { $0.hasPrefix("prefill") }.count, 3, "\(labels)")
        XCTAssertEqual(labels.filter { $0.hasPrefix("decode") }.count, 9, "\(labels)")
        XCTAssertTrue(checks.allSatisfy { $0["predicted_seconds"] is Double }, "every point has others in its regime")
        let held = try XCTUnwrap(obj["holdout"] as? [[String: Any]])
        XCTAssertFalse(held.isEmpty)
        XCTAssertNotNil(obj["holdout_median_abs_error_percent"] as? Double)
        // The tables name the regimes and the held-out run.
        let t = try HeadroomCLI.run(["calibrate", "--db", "h.sqlite", "--scenario", "cal", "--holdout-scenario", "held"], cwd: dir)
        XCTAssertEqual(t.status, 0, t.stderr)
        XCTAssertTrue(t.stdout.contains("decode batch>1 fp32 ×1t"), t.stdout)
        XCTAssertTrue(t.stdout.contains("Held out: run 1 (held)"), t.stdout)
    }

    func testMissingRunsAndExclusiveOptionsAreClearErrors() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let none = try HeadroomCLI.run(["calibrate", "--db", "h.sqlite"], cwd: dir)
        XCTAssertEqual(none.status, 1)
        XCTAssertTrue(none.stderr.contains("no results store yet"), none.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("h.sqlite").path), "a read-only command creates no store")
        let both = try HeadroomCLI.run(["calibrate", "--run", "1", "--scenario", "cal"], cwd: dir)
        XCTAssertEqual(both.status, 2)
        XCTAssertTrue(both.stderr.contains("--run and --scenario exclude each other"), both.stderr)
        let r = try HeadroomCLI.run(["run", "held.yaml", "--db", "h.sqlite", "--no-report"], cwd: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        for args in [["--run", "9999"], ["--scenario", "held", "--holdout-run", "9999"]] {
            let bad = try HeadroomCLI.run(["calibrate", "--db", "h.sqlite"] + args, cwd: dir)
            XCTAssertEqual(bad.status, 2, "\(args)")
            XCTAssertEqual(bad.stderr, "headroom: no run with id 9999 in the store\n", "\(args)")
        }
        let missing = try HeadroomCLI.run(["calibrate", "--db", "h.sqlite", "--scenario", "nope"], cwd: dir)
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("no complete run of scenario nope on this machine"), missing.stderr)
    }
}
