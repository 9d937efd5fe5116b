// Sweeps from the command line, as a cluster runs them: four `headroom run --shard env/4` processes at once,
// their index from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID, into one store (SQLite, and PostgreSQL when
// HEADROOM_TEST_PG is set); `report --sweep` merging them or refusing; the Slurm script run by bash; the
// Kubernetes manifest read back as YAML; bad --shard values.
import Foundation
import XCTest
import Yams
import HeadroomCore
@testable import HeadroomStore

final class SweepCommandLineTests: XCTestCase {
    static let scenario = """
        schema: 1
        name: tiny-sweep
        probe: { read_mib: 16, gemm_size: 64, repetitions: 1 }
        measure: { model: tiny, threads: [1], prompt_tokens: [4, 8], batch: [1, 2], generate_tokens: 2, repetitions: 1, warmup: 0 }
        """

    /// A fresh folder (named `name`, which may hold characters a shell cares about) with the scenario in it.
    func folder(_ name: String = "sweep") throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        try Self.scenario.write(to: dir.appendingPathComponent("s.yaml"), atomically: true, encoding: .utf8)
        return dir
    }

    func json(_ text: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(text.utf8)) }

    /// A case's identity: kind, name, threads and parameters.
    func key(_ c: [String: Any]) -> String {
        let params = (c["params"] as? [String: String] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return "\(c["kind"] ?? "")|\(c["name"] ?? "")|\(c["threads"] ?? "")|\(params.joined(separator: ","))"
    }

    /// Four shards run at once as four processes, half told their index the Kubernetes way, half the Slurm way;
    /// returns each shard's `run --json` object.
    func runFourShards(_ dir: URL, db: String, environment: [String: String] = [:]) throws -> [[String: Any]] {
        var results = [Result<(status: Int32, stdout: String, stderr: String), Error>?](repeating: nil, count: 4)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            let variable = i % 2 == 0 ? "JOB_COMPLETION_INDEX" : "SLURM_ARRAY_TASK_ID"
            let r = Result { try HeadroomCLI.run(["run", "s.yaml", "--shard", "env/4", "--db", db, "--no-report", "--json"], cwd: dir,
                                                 environment: environment.merging([variable: String(i)]) { $1 }) }
            lock.lock(); results[i] = r; lock.unlock()
        }
        return try results.enumerated().map { i, r in
            let out = try r!.get()
            XCTAssertEqual(out.status, 0, "shard \(i): " + out.stderr)
            return try XCTUnwrap((try json(out.stdout) as? [[String: Any]])?.first, out.stdout + out.stderr)
        }
    }

    func checkShardedEqualsWhole(db: String, environment: [String: String] = [:]) throws {
        let dir = try folder()
        let whole = try HeadroomCLI.run(["run", "s.yaml", "--db", "whole.sqlite", "--no-report", "--json"], cwd: dir)
        XCTAssertEqual(whole.status, 0, whole.stderr)
        let wholeCases = try XCTUnwrap((try json(whole.stdout) as? [[String: Any]])?.first?["cases"] as? [[String: Any]])
            .filter { $0["kind"] as? String != "probe" }
        XCTAssertGreaterThanOrEqual(wholeCases.count, 20)

        let shards = try runFourShards(dir, db: db, environment: environment)
        let sweep = try XCTUnwrap(shards[0]["sweep"] as? String)
        XCTAssertTrue(sweep.hasPrefix("tiny-sweep-4x-"), sweep)
        XCTAssertEqual(shards.map { $0["sweep"] as? String }, Array(repeating: sweep, count: 4), "every shard computed the same id")
        XCTAssertEqual(shards.map { $0["shard_index"] as? Int }, [0, 1, 2, 3])
        XCTAssertEqual(shards.map { $0["shard_count"] as? Int }, [4, 4, 4, 4])
        let shardCases = shards.map { ($0["cases"] as? [[String: Any]] ?? []).filter { $0["kind"] as? String != "probe" } }
        XCTAssertTrue(shardCases.allSatisfy { !$0.isEmpty }, "20 cases over 4 shards: none idle")
        XCTAssertTrue(shards.allSatisfy { ($0["cases"] as? [[String: Any]] ?? []).contains { $0["kind"] as? String == "probe" } },
                      "every shard probes its machine")

        let report = try HeadroomCLI.run(["report", "--sweep", sweep, "--db", db, "--reports", "out", "--json"], cwd: dir, environment: environment)
        XCTAssertEqual(report.status, 0, report.stderr)
        let merged = try XCTUnwrap(try json(report.stdout) as? [String: Any])
        let cases = try XCTUnwrap(merged["cases"] as? [[String: Any]]).filter { $0["kind"] as? String != "probe" }
        XCTAssertEqual(cases.count, wholeCases.count, "every case once")
        XCTAssertEqual(Set(cases.map(key)), Set(wholeCases.map(key)), "the same cases as the unsharded run")
        let runIDs = shards.map { $0["run_id"] as? Int }
        for c in cases {
            let shard = try XCTUnwrap(c["shard"] as? Int)
            XCTAssertEqual(c["run"] as? Int, runIDs[shard], "a case names the run of its shard")
            XCTAssertTrue(shardCases[shard].map(key).contains(key(c)), "and that shard measured it")
        }
        let md = try String(contentsOf: dir.appendingPathComponent("out/\(sweep)/index.md"), encoding: .utf8)
        XCTAssertTrue(md.contains("## Sweep (4 shards)"), md)
    }

    func testFourShardsAtOnceMeasureWhatOneRunMeasuresAndMergeIntoOneReport() throws {
        // The file made first: GRDB's migrator does not guard a new file's first migration against other processes
        // doing the same at once (PostgreSQL's does, under an advisory lock), so shards sharing a SQLite file need it made.
        let db = FileManager.default.temporaryDirectory.appendingPathComponent("sweep-\(UUID().uuidString).sqlite").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: db) }
        _ = try SQLiteStore(path: db)
        try checkShardedEqualsWhole(db: db)
    }

    func testFourShardsAtOnceIntoPostgreSQL() throws {
        let pg = try TestDatabase(self)
        try checkShardedEqualsWhole(db: pg.url)
    }

    func testAMissingOrInterruptedShardStopsTheMergeNamingIt() throws {
        let dir = try folder()
        let db = dir.appendingPathComponent("h.sqlite").path
        let first = try HeadroomCLI.run(["run", "s.yaml", "--shard", "0/2", "--sweep", "faulty", "--db", db, "--no-report"], cwd: dir)
        XCTAssertEqual(first.status, 0, first.stderr)
        let missing = try HeadroomCLI.run(["report", "--sweep", "faulty", "--db", db, "--reports", "out"], cwd: dir)
        XCTAssertEqual(missing.status, 1, missing.stdout + missing.stderr)
        XCTAssertTrue(missing.stderr.contains("sweep faulty: 1 of 2 shards complete; shard 1 has no run; nothing was merged"), missing.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/faulty").path), "no report")

        let second = try HeadroomCLI.run(["run", "s.yaml", "--shard", "1/2", "--sweep", "faulty", "--db", db, "--no-report"], cwd: dir)
        XCTAssertEqual(second.status, 0, second.stderr)
        let store = try SQLiteStore(path: db)
        let shard1 = try XCTUnwrap(try store.sweepRuns("faulty").first { $0.shardIndex == 1 }?.id)
        try store.finish(runID: shard1, status: .interrupted, note: "killed")
        let interrupted = try HeadroomCLI.run(["report", "--sweep", "faulty", "--db", db, "--reports", "out"], cwd: dir)
        XCTAssertEqual(interrupted.status, 1)
        XCTAssertTrue(interrupted.stderr.contains("shard 1's latest run \(shard1) is interrupted"), interrupted.stderr)

        // The killed shard run again completes the sweep.
        let again = try HeadroomCLI.run(["run", "s.yaml", "--shard", "1/2", "--sweep", "faulty", "--db", db, "--no-report"], cwd: dir)
        XCTAssertEqual(again.status, 0, again.stderr)
        let ok = try HeadroomCLI.run(["report", "--sweep", "faulty", "--db", db, "--reports", "out"], cwd: dir)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.hasPrefix("Report for sweep faulty (2 shards; 0: run "), ok.stdout)
        XCTAssertFalse(ok.stdout.contains("run \(shard1);"), "the interrupted run is replaced")
    }

    /// A shard process killed mid-run (SIGKILL: nothing of it runs after) leaves its run `running`; the merge names
    /// it, names it `interrupted` once a command that writes has reaped it, and takes the shard's next run.
    func testAShardKilledMidRunIsNamedUntilItRunsAgain() throws {
        let dir = try folder()
        let db = dir.appendingPathComponent("h.sqlite").path
        _ = try SQLiteStore(path: db)
        let done = try HeadroomCLI.run(["run", "s.yaml", "--shard", "0/2", "--sweep", "killed", "--db", db, "--no-report"], cwd: dir)
        XCTAssertEqual(done.status, 0, done.stderr)
        // Many repetitions, so the shard is still measuring when it is killed. (Its text differs from shard 0's; the
        // merge stops at the unfinished shard before it would compare them.)
        try Self.scenario.replacingOccurrences(of: "repetitions: 1, warmup: 0", with: "repetitions: 400, warmup: 0")
            .write(to: dir.appendingPathComponent("slow.yaml"), atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = HeadroomCLI.binary
        p.arguments = ["run", "slow.yaml", "--shard", "1/2", "--sweep", "killed", "--db", db, "--no-report"]
        p.currentDirectoryURL = dir
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        var running: RunRecord?
        for _ in 0..<200 where running == nil {
            Thread.sleep(forTimeInterval: 0.05)
            running = try SQLiteStore(path: db, mode: .readOnly).sweepRuns("killed").first { $0.shardIndex == 1 && $0.status == .running }
        }
        let victim = try XCTUnwrap(running?.id, "the shard's run began")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let first = try HeadroomCLI.run(["report", "--sweep", "killed", "--db", db, "--reports", "out"], cwd: dir)
        XCTAssertEqual(first.status, 1)
        XCTAssertTrue(first.stderr.contains("shard 1's latest run \(victim) is running"), first.stderr)
        XCTAssertEqual(try SQLiteStore(path: db).reapAbandonedRuns(), 1, "its process is gone")
        let reaped = try HeadroomCLI.run(["report", "--sweep", "killed", "--db", db, "--reports", "out"], cwd: dir)
        XCTAssertEqual(reaped.status, 1)
        XCTAssertTrue(reaped.stderr.contains("shard 1's latest run \(victim) is interrupted"), reaped.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/killed").path), "nothing merged")
    }

    func testBadShardValuesAreBadInputAndWriteNothing() throws {
        let dir = try folder()
        let expected = "--shard: expected I/N (a shard index I from 0 to N-1 of N shards, N from 1 to 10000) or env/N"
        for bad in ["4/4", "1/-2", "x", "2/0", "env/x"] {
            let r = try HeadroomCLI.run(["run", "s.yaml", "--shard", bad, "--db", "h.sqlite", "--no-report"], cwd: dir)
            XCTAssertEqual(r.status, 2, bad)
            XCTAssertTrue(r.stderr.contains(expected + " (I from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID), got \"\(bad)\""), r.stderr)
        }
        let unset = try HeadroomCLI.run(["run", "s.yaml", "--shard", "env/4", "--db", "h.sqlite", "--no-report"], cwd: dir,
                                        environment: ["JOB_COMPLETION_INDEX": ""])
        XCTAssertEqual(unset.status, 2)
        XCTAssertTrue(unset.stderr.contains("JOB_COMPLETION_INDEX: expected a shard index from 0 to 3 (--shard env/4), got \"\""), unset.stderr)
        let outside = try HeadroomCLI.run(["run", "s.yaml", "--shard", "env/4", "--db", "h.sqlite", "--no-report"], cwd: dir,
                                          environment: ["SLURM_ARRAY_TASK_ID": "4"])
        XCTAssertEqual(outside.status, 2)
        XCTAssertTrue(outside.stderr.contains("SLURM_ARRAY_TASK_ID: expected a shard index from 0 to 3 (--shard env/4), got \"4\""), outside.stderr)
        let sweepAlone = try HeadroomCLI.run(["run", "s.yaml", "--sweep", "x", "--db", "h.sqlite"], cwd: dir)
        XCTAssertEqual(sweepAlone.status, 2)
        XCTAssertTrue(sweepAlone.stderr.contains("--sweep: names the sweep of a shard; give --shard I/N too"), sweepAlone.stderr)
        // Distributed load splits an open loop's schedule; a closed loop or an adaptive profile has none.
        let closed = try HeadroomCLI.run(["load", "--endpoint", "http://127.0.0.1:9", "--profile", "concurrency:4", "--shard", "0/2",
                                          "--db", "h.sqlite", "--no-report"], cwd: dir)
        XCTAssertEqual(closed.status, 2)
        XCTAssertTrue(closed.stderr.contains("--shard: splits an open loop's schedule (rate:R, poisson:R or trace:FILE), got --profile concurrency:4"), closed.stderr)
        let loadBad = try HeadroomCLI.run(["load", "--endpoint", "http://127.0.0.1:9", "--profile", "rate:4", "--shard", "2/2", "--db", "h.sqlite"], cwd: dir)
        XCTAssertEqual(loadBad.status, 2)
        XCTAssertTrue(loadBad.stderr.contains(expected), loadBad.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("h.sqlite").path), "nothing written")
    }

    func testTheSlurmScriptRunsItsShardIntoTheStore() throws {
        let dir = try folder("it's a \"sweep\" $HOME")  // a path a shell would split or expand, quoted by the script
        let db = dir.appendingPathComponent("h.sqlite").path
        let emit = try HeadroomCLI.run(["sweep", "s.yaml", "--shards", "2", "--emit", "slurm", "--db", db, "--cpus", "2", "--memory", "1GiB",
                                        "--headroom-path", HeadroomCLI.binary.path, "--output", "sweep.sh", "--sweep", "slurm-test"], cwd: dir)
        XCTAssertEqual(emit.status, 0, emit.stderr)
        let script = try String(contentsOf: dir.appendingPathComponent("sweep.sh"), encoding: .utf8)
        for line in ["#!/bin/bash", "#SBATCH --array=0-1", "#SBATCH --cpus-per-task=2", "#SBATCH --mem=1024M", "#SBATCH --job-name=headroom-tiny-sweep",
                     "export HEADROOM_DB=" + shellQuoted(db)] {
            XCTAssertTrue(script.components(separatedBy: "\n").contains(line), "\(line) in\n\(script)")
        }
        for index in 0..<2 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/bash")
            p.arguments = [dir.appendingPathComponent("sweep.sh").path]
            p.currentDirectoryURL = FileManager.default.temporaryDirectory
            p.environment = ProcessInfo.processInfo.environment.merging(["SLURM_ARRAY_TASK_ID": String(index)]) { $1 }
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, "array task \(index)")
        }
        let runs = try SQLiteStore(path: db, mode: .readOnly).sweepRuns("slurm-test")
        XCTAssertEqual(runs.compactMap(\.shardIndex).sorted(), [0, 1])
        XCTAssertEqual(Set(runs.map(\.status)), [.complete])
        let report = try HeadroomCLI.run(["report", "--sweep", "slurm-test", "--db", db, "--reports", "out"], cwd: dir)
        XCTAssertEqual(report.status, 0, report.stderr)
    }

    func shellQuoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    func testAStoreURLWithAPasswordIsNeverWrittenIntoTheScript() throws {
        let dir = try folder()
        let r = try HeadroomCLI.run(["sweep", "s.yaml", "--shards", "2", "--emit", "slurm", "--db", "postgres://ci:hunter2@db/headroom",
                                     "--output", "sweep.sh"], cwd: dir)
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("--db: postgres://ci@db:5432/headroom: the URL holds a password"), r.stderr)
        XCTAssertTrue(r.stderr.contains("PGPASSWORD"), r.stderr)
        XCTAssertFalse(r.stderr.contains("hunter2"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("sweep.sh").path), "nothing written")
        let noPassword = try HeadroomCLI.run(["sweep", "s.yaml", "--shards", "2", "--emit", "slurm", "--db", "postgres://ci@db/headroom"], cwd: dir,
                                             environment: ["PGPASSWORD": "hunter2"])
        XCTAssertEqual(noPassword.status, 0, noPassword.stderr)
        XCTAssertTrue(noPassword.stdout.contains("export HEADROOM_DB='postgres://ci@db/headroom'"), noPassword.stdout)
        XCTAssertFalse(noPassword.stdout.contains("hunter2"))
        // A scenario that does not validate is refused before anything is written.
        try "schema: 1\nname: x\nmeasure:\n  model: tiny\n  threads: [1, many]\n  prompt_tokens: [8]\n".write(to: dir.appendingPathComponent("bad.yaml"), atomically: true, encoding: .utf8)
        let bad = try HeadroomCLI.run(["sweep", "bad.yaml", "--shards", "2", "--emit", "k8s", "--output", "job.yaml"], cwd: dir)
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("bad.yaml: measure.threads"), bad.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("job.yaml").path))
        for (args, message) in [(["--shards", "0", "--emit", "k8s"], "--shards: expected an integer from 1 to 10000"),
                                (["--shards", "2", "--emit", "nomad"], "--emit: expected k8s or slurm"),
                                (["--shards", "2", "--emit", "k8s", "--image", "Bad Image"], "--image: expected an image reference"),
                                (["--shards", "2", "--emit", "k8s", "--memory", "8"], "--memory: expected a size in MiB or GiB"),
                                (["--shards", "2", "--emit", "k8s", "--db", "postgres://ci@db/h"], "--db: a Kubernetes job reads the store's URL from the Secret")] {
            let r = try HeadroomCLI.run(["sweep", "s.yaml"] + args, cwd: dir)
            XCTAssertEqual(r.status, 2, args.joined(separator: " "))
            XCTAssertTrue(r.stderr.contains(message), r.stderr)
        }
    }

    func testTheKubernetesManifestIsAnIndexedJobWithItsScenario() throws {
        let dir = try folder()
        let r = try HeadroomCLI.run(["sweep", "s.yaml", "--shards", "3", "--emit", "k8s", "--image", "registry.example.com/team/headroom:1.0",
                                     "--cpus", "2", "--memory", "4GiB", "--sweep", "0123"], cwd: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let docs = try Yams.load_all(yaml: r.stdout).map { $0 as? [String: Any] }
        XCTAssertEqual(docs.count, 2)
        let configMap = try XCTUnwrap(docs[0]), job = try XCTUnwrap(docs[1])
        XCTAssertEqual(configMap["kind"] as? String, "ConfigMap")
        let data = try XCTUnwrap(configMap["data"] as? [String: Any])
        XCTAssertEqual(data["s.yaml"] as? String, Self.scenario, "the scenario's text, as it is")
        XCTAssertEqual(job["apiVersion"] as? String, "batch/v1")
        XCTAssertEqual(job["kind"] as? String, "Job")
        let spec = try XCTUnwrap(job["spec"] as? [String: Any])
        XCTAssertEqual(spec["completionMode"] as? String, "Indexed")
        XCTAssertEqual(spec["completions"] as? Int, 3)
        XCTAssertEqual(spec["parallelism"] as? Int, 3)
        let pod = try XCTUnwrap((spec["template"] as? [String: Any])?["spec"] as? [String: Any])
        XCTAssertEqual(pod["restartPolicy"] as? String, "Never")
        let container = try XCTUnwrap((pod["containers"] as? [[String: Any]])?.first)
        XCTAssertEqual(container["image"] as? String, "registry.example.com/team/headroom:1.0")
        XCTAssertEqual(container["command"] as? [String],
                       ["headroom", "run", "/scenario/s.yaml", "--shard", "env/3", "--sweep", "0123", "--no-report"], "the id stays a string")
        let env = try XCTUnwrap(container["env"] as? [[String: Any]])
        let index = try XCTUnwrap(env.first { $0["name"] as? String == "JOB_COMPLETION_INDEX" })
        XCTAssertEqual(((index["valueFrom"] as? [String: Any])?["fieldRef"] as? [String: Any])?["fieldPath"] as? String,
                       "metadata.annotations['batch.kubernetes.io/job-completion-index']")
        let db = try XCTUnwrap(env.first { $0["name"] as? String == "HEADROOM_DB" })
        let secret = try XCTUnwrap((db["valueFrom"] as? [String: Any])?["secretKeyRef"] as? [String: Any])
        XCTAssertEqual(secret["name"] as? String, "headroom-db")
        XCTAssertEqual(secret["key"] as? String, "url")
        let resources = try XCTUnwrap(container["resources"] as? [String: Any])
        for side in ["requests", "limits"] {
            let r = try XCTUnwrap(resources[side] as? [String: Any])
            XCTAssertEqual(r["cpu"] as? String, "2")
            XCTAssertEqual(r["memory"] as? String, "4096Mi")
        }
        let volume = try XCTUnwrap((pod["volumes"] as? [[String: Any]])?.first)
        XCTAssertEqual((volume["configMap"] as? [String: Any])?["name"] as? String, (configMap["metadata"] as? [String: Any])?["name"] as? String)
        XCTAssertEqual((container["volumeMounts"] as? [[String: Any]])?.first?["mountPath"] as? String, "/scenario")
    }
}
