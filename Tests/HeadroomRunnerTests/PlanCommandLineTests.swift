import Foundation
import XCTest

/// `plan`, `whatif`, `models`, `hardware` through the built executable: the JSON contract and exit codes.
final class PlanCommandLineTests: XCTestCase {
    let cli = HeadroomCLI.self
    var repo: URL { HeadroomCLI.repo }

    func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cli-plan-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    func testWhatifJSONCarriesTheCandidateContract() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try cli.run(["whatif", "--json", "--db", dir.appendingPathComponent("none.sqlite").path, "--users", "5000",
                             "--hardware", "h100-sxm", "l40s", "a100-80g", "--precision", "bf16", "fp8"], cwd: repo)
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(obj["kind"] as? String, "predicted")
        let candidates = try XCTUnwrap(obj["candidates"] as? [[String: Any]])
        XCTAssertEqual(candidates.count, 3 * 2 * 4)
        for c in candidates {
            for key in ["hardware", "precision", "tensor_parallel", "replicas", "fits", "max_batch", "capacity_rps_per_replica"] {
                XCTAssertNotNil(c[key], key)
            }
            if c["fits"] as? Bool == false { XCTAssertNotNil(c["why_not"] as? String) }
            if c["meets_slo"] as? Bool == true, let cost = c["monthly_cost_usd"] as? [String: Double] {
                XCTAssertNotNil(cost["always_on"]); XCTAssertNotNil(cost["autoscaled"])
                XCTAssertNotNil(c["predicted_ttft_p95_ms"]); XCTAssertNotNil(c["predicted_tpot_p95_ms"])
                XCTAssertNotNil(c["usd_per_million_output_tokens"])
            }
        }
        XCTAssertTrue(candidates.contains { $0["hardware"] as? String == "a100-80g" && $0["precision"] as? String == "fp8" && $0["fits"] as? Bool == false })
        let rec = try XCTUnwrap(obj["recommendation"] as? [String: Any])
        XCTAssertNotNil(rec["reason"] as? String)
        // The default serving model is the simulator: the leaders carry its name and their p95s an interval.
        XCTAssertTrue((obj["serving_model"] as? String)?.hasPrefix("discrete-event simulator") ?? false)
        let best = try XCTUnwrap(rec["candidate"] as? [String: Any])
        XCTAssertEqual(best["serving_model"] as? String, obj["serving_model"] as? String)
        XCTAssertNotNil((best["predicted_ttft_p95_interval_ms"] as? [String: Double])?["low"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("none.sqlite").path), "what-if creates no store")
    }

    /// A sheet with one 8-GPU instance at $39.33/hour: a tp=8 replica costs exactly that per hour.
    func testWhatifWithAGovernmentCloudSheet() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let sheet = dir.appendingPathComponent("gov.yaml")
        try """
            schema: 1
            offers:
              - { hardware: h100-sxm, provider: gov-cloud, devices: 8, on_demand_usd_per_hour: 39.33, source: "published LoRA experiment" }
            """.write(to: sheet, atomically: true, encoding: .utf8)
        let r = try cli.run(["whatif", "--json", "--db", dir.appendingPathComponent("none.sqlite").path, "--prices", sheet.path,
                             "--hardware", "h100-sxm", "--precision", "bf16", "--set", "tensor_parallel=[8]", "--set", "min_replicas=1"], cwd: repo)
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let c = try XCTUnwrap((obj["candidates"] as? [[String: Any]])?.first)
        XCTAssertEqual(c["tensor_parallel"] as? Int, 8)
        let replicas = try XCTUnwrap(c["replicas"] as? Int)
        let cost = try XCTUnwrap(c["monthly_cost_usd"] as? [String: Double])
        XCTAssertEqual(try XCTUnwrap(cost["always_on"]), Double(replicas) * 39.33 * 730, accuracy: 1e-6)
    }

    /// The default table ends with "N more (--all)"; `--all` prints every ranked row; a bad deadline exits 2 naming the key.
    func testWhatifAllListsEveryCandidateAndADeadlineIsChecked() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("none.sqlite").path
        let args = ["whatif", "--db", db, "--serving-model", "queueing", "--hardware", "h100-sxm", "l40s", "--precision", "bf16", "int8"]
        func rows(_ out: String) -> [Substring] { out.split(separator: "\n").filter { $0.range(of: #"^ *\d+ +(h100-sxm|l40s)/"#, options: .regularExpression) != nil } }
        let short = try cli.run(args, cwd: repo)
        XCTAssertEqual(short.status, 0, short.stderr)
        XCTAssertEqual(rows(short.stdout).count, 8)
        let all = try cli.run(args + ["--all"], cwd: repo)
        XCTAssertEqual(all.status, 0, all.stderr)
        let n = rows(all.stdout).count
        XCTAssertGreaterThan(n, 8)
        XCTAssertTrue(short.stdout.contains("\n\(n - 8) more (--all)\n"), short.stdout)
        XCTAssertFalse(all.stdout.contains("more (--all)"))
        let bad = try cli.run(["whatif", "--db", db, "--set",
                               "finetune={method: lora, documents: 10, tokens_per_document: 10, epochs: 1, deadline_hours: tomorrow}"], cwd: repo)
        XCTAssertEqual(bad.status, 2)
        XCTAssertEqual(bad.stderr, "headroom: built-in default scenario with command-line overrides: plan.finetune.deadline_hours: "
                       + "expected a number from 0.01 to 876000, got \"tomorrow\"\n")
    }

    func testBadInputExitsTwoWithItsMessage() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("none.sqlite").path
        let r = try cli.run(["whatif", "--db", db, "--users", "many"], cwd: repo)
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "headroom: built-in default scenario with command-line overrides: plan.demand.users: expected an integer from 1 to 1000000000000, got \"many\"\n")
        XCTAssertEqual(r.stdout, "")
        let bad = dir.appendingPathComponent("bad.yaml")
        try "schema: 1\noffers:\n  - { hardware: l40s, provider: x, devices: 0, on_demand_usd_per_hour: 1, source: s }\n"
            .write(to: bad, atomically: true, encoding: .utf8)
        let p = try cli.run(["plan", "Scenarios/default.yaml", "--db", db, "--prices", bad.path, "--reports", dir.appendingPathComponent("out").path],
                            cwd: repo)
        XCTAssertEqual(p.status, 2)
        XCTAssertEqual(p.stderr, "headroom: \(bad.path): offers[0].devices: expected an integer from 1 to 1024, got \"0\"\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out").path), "nothing is written")
    }

    /// A count the reader accepts is printed for people (it was -727379969 through %d); one past the bound exits 2 naming it.
    func testWhatifUserCountsAtAndBeyondTheBound() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("none.sqlite").path
        let r = try cli.run(["whatif", "--db", db, "--users", "999999999999", "--hardware", "h100-sxm", "--precision", "bf16"], cwd: repo)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains(": 1.00 T users × 40 requests/day"), r.stdout)
        let big = try cli.run(["whatif", "--db", db, "--users", "9223372036854775807"], cwd: repo)
        XCTAssertEqual(big.status, 2)
        XCTAssertEqual(big.stderr, "headroom: built-in default scenario with command-line overrides: plan.demand.users: expected an integer "
                       + "from 1 to 1000000000000, got \"9223372036854775807\"\n")
        let inf = try cli.run(["whatif", "--db", db, "--set", "finetune={method: lora, documents: 10, tokens_per_document: 10, epochs: .inf}"],
                              cwd: repo)
        XCTAssertEqual(inf.status, 2)
        XCTAssertTrue(inf.stderr.hasSuffix("plan.finetune.epochs: expected a positive number of at most 1000, got \".inf\"\n"), inf.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: db))
    }

    /// `run` checks the plan with the scenario: out-of-range plan input exits 2 before the store or a report exists.
    func testRunWithAnOutOfRangePlanExitsTwoAndWritesNothing() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent("catalog"),
                                                   withDestinationURL: repo.appendingPathComponent("Scenarios/catalog"))
        let text = try String(contentsOf: repo.appendingPathComponent("Scenarios/default.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "users: 2000", with: "users: 9223372036854775807")
        try text.write(to: dir.appendingPathComponent("big.yaml"), atomically: true, encoding: .utf8)
        let r = try cli.run(["run", "big.yaml", "--db", "h.sqlite", "--reports", "out"], cwd: dir)
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "headroom: big.yaml: plan.demand.users: expected an integer from 1 to 1000000000000, got \"9223372036854775807\"\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("h.sqlite").path), "no store")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out").path), "no report")
    }

    func testCatalogCommands() throws {
        let m = try cli.run(["models", "--json"], cwd: repo)
        XCTAssertEqual(m.status, 0, m.stderr)
        let models = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(m.stdout.utf8)) as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(models.count, 14)
        let llama = try XCTUnwrap(models.first { $0["id"] as? String == "llama-2-7b" })
        XCTAssertEqual(llama["kv_cache_bytes_per_token_bf16"] as? Double, 524_288)
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let h = try cli.run(["hardware", "--json", "--db", dir.appendingPathComponent("none.sqlite").path], cwd: repo)
        XCTAssertEqual(h.status, 0, h.stderr)
        let hw = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(h.stdout.utf8)) as? [[String: Any]])
        let h100 = try XCTUnwrap(hw.first { $0["id"] as? String == "h100-sxm" })
        XCTAssertEqual(h100["bandwidth_gbps"] as? Double, 3350)
        XCTAssertEqual(h100["memory_gib"] as? Double, 80)
        for cmd in ["plan", "whatif", "models", "hardware"] {
            let r = try cli.run([cmd, "--help"], cwd: repo)
            XCTAssertEqual(r.status, 0, cmd)
            XCTAssertTrue(r.stdout.contains("OVERVIEW:"), cmd)
        }
    }

    /// `simulate` through the built executable: a small run's JSON says what it is and keeps its promises.
    func testSimulateJSONIsPredictedWithIntervals() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try cli.run(["simulate", "--json", "--db", dir.appendingPathComponent("none.sqlite").path, "--hardware", "h100-sxm",
                             "--precision", "bf16", "--rate", "5", "--requests", "60", "--replications", "3",
                             "--prompt-tokens", "uniform:100-300", "--output-tokens", "16", "--replicas", "2", "--router", "least-outstanding"],
                            cwd: repo)
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(obj["kind"] as? String, "predicted")
        XCTAssertEqual(obj["configuration"] as? String, "h100-sxm/bf16/tp1")
        XCTAssertEqual(obj["replicas"] as? Int, 2)
        XCTAssertEqual(obj["replications"] as? Int, 3)
        let latency = try XCTUnwrap(obj["latency_seconds"] as? [[String: Any]])
        let ttft = try XCTUnwrap(latency.first { $0["metric"] as? String == "ttft" })
        let p50 = try XCTUnwrap(ttft["p50"] as? [String: Double]), p99 = try XCTUnwrap(ttft["p99"] as? [String: Double])
        XCTAssertLessThanOrEqual(try XCTUnwrap(p50["low"]), try XCTUnwrap(p50["value"]))
        XCTAssertLessThanOrEqual(try XCTUnwrap(p50["value"]), try XCTUnwrap(p99["value"]))
        let rps = try XCTUnwrap(obj["requests_per_second"] as? [String: Double])
        XCTAssertEqual(try XCTUnwrap(rps["value"]), 5, accuracy: 2.5, "60 Poisson arrivals at 5/s, all served")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("none.sqlite").path), "simulate creates no store")
        // A precision the hardware lacks is refused naming the flag, before anything runs.
        let bad = try cli.run(["simulate", "--db", dir.appendingPathComponent("none.sqlite").path, "--hardware", "a100-80g", "--precision", "fp8"], cwd: repo)
        XCTAssertEqual(bad.status, 2, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("--precision"), bad.stderr)
    }
}
