// The shared history from the command line and the runner: `--db` / HEADROOM_DB read and refused as
// documented, `headroom history push` into PostgreSQL twice, and a run whose database goes away mid-run.
// The PostgreSQL tests use the server HEADROOM_TEST_PG names (`make test` starts one) and psql.
import Foundation
import XCTest
import HeadroomCore
@testable import HeadroomRunner
@testable import HeadroomStore

final class StoreLocationCommandLineTests: XCTestCase {
    func testABadStoreLocationIsBadInputNamingTheFlagOrVariable() throws {
        let dir = FileManager.default.temporaryDirectory
        let expected = "expected a SQLite path, sqlite:PATH, or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
            + "[?sslmode=disable|prefer|require|verify-ca|verify-full], got "
        let flag = try HeadroomCLI.run(["history", "--db", "postgres://ci:pw@db:notaport/headroom"], cwd: dir)
        XCTAssertEqual(flag.status, 2)
        XCTAssertEqual(flag.stderr, "headroom: --db: \(expected)\"postgres://ci:***@db:notaport/headroom\": "
                       + "not a valid URL (a port that is not a number, or a character that must be percent-encoded)\n")
        let env = try HeadroomCLI.run(["baseline", "list"], cwd: dir, environment: ["HEADROOM_DB": "mysql://root@db/headroom"])
        XCTAssertEqual(env.status, 2)
        XCTAssertEqual(env.stderr, "headroom: HEADROOM_DB: \(expected)\"mysql://root@db/headroom\": mysql:// is not a store Headroom reads\n")
        let to = try HeadroomCLI.run(["history", "push", "--to", "postgres://db/headroom", "--db", "h.sqlite"], cwd: dir)
        XCTAssertEqual(to.status, 2)
        XCTAssertEqual(to.stderr, "headroom: --to: \(expected)\"postgres://db/headroom\": no user name (postgres://USER@HOST/DATABASE)\n")
    }

    func testAServerThatIsNotThereIsAFailureNotBadInput() throws {
        let r = try HeadroomCLI.run(["history", "--db", "postgres://ci:secret@127.0.0.1:1/headroom?sslmode=disable"],
                                    cwd: FileManager.default.temporaryDirectory)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("headroom: postgres://ci@127.0.0.1:1/headroom?sslmode=disable: cannot connect to the results store: "), r.stderr)
        XCTAssertFalse(r.stderr.contains("secret"))
    }
}

struct PsqlFailed: Error { var message: String }

/// A database of the test server for one test, made and dropped with psql.
struct TestDatabase {
    let name: String
    let url: String

    static func server() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["HEADROOM_TEST_PG"], !url.isEmpty else {
            throw XCTSkip("HEADROOM_TEST_PG is not set: the shared-history tests did not run (`make test` starts a throwaway server and sets it)")
        }
        return url
    }

    @discardableResult
    static func psql(_ url: String, _ sql: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw PsqlFailed(message: String(decoding: e, as: UTF8.self)) }
        return String(decoding: o, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    init(_ test: XCTestCase) throws {
        let server = try Self.server()
        name = "headroom_r_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        try Self.psql(server, "CREATE DATABASE \(name)")
        var c = URLComponents(string: server)!
        c.path = "/" + name
        url = c.string!
        let name = name
        test.addTeardownBlock { _ = try? Self.psql(server, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
    }

    /// Ends every connection to this database, as a server restart or failover would.
    func dropConnections() throws -> Int {
        Int(try Self.psql(try Self.server(), "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '\(name)'")) ?? -1
    }
}

/// `headroom gate --baseline BRANCH@CLASS` against the latest runs of a branch on a machine class, on SQLite
/// (the store's own tests run the selection on PostgreSQL too).
final class BranchBaselineGateTests: XCTestCase {
    func testTheGateComparesWithTheLatestRunsOfABranchOnThisKindOfMachine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("branch-gate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("h.sqlite").path
        let store = try SQLiteStore(path: path)
        func run(_ branch: String, fingerprint: String = "0123456789ab", gflops: [Double]) throws -> Int64 {
            let id = try store.beginRun(RunRecord(scenarioName: "g", scenarioFile: "g.yaml", scenarioHash: "h",
                                                  scenarioText: "schema: 1\nname: g\ngate: { max_regression: 5% }\n",
                                                  gitRevision: branch, machineFingerprint: fingerprint, machineJson: "{}", headroomVersion: "test",
                                                  pid: Int(getpid()), startedAt: Date(timeIntervalSince1970: 1_000_000), branch: branch))
            try store.record(runID: id, MeasuredCase(kind: .gemm, name: "qkv", threads: 1, params: ["M": "64"],
                                                     samples: gflops.enumerated().map { .init(metric: "gflops", unit: "GFLOP/s", repetition: $0.offset, value: $0.element) }))
            try store.finish(runID: id, status: .complete)
            return id
        }
        let steady = [100.0, 101, 99, 100.5, 99.5, 100.2]
        let old = try run("main", gflops: steady.map { $0 * 2 })      // beyond --baseline-runs 2: never used
        let m1 = try run("main", gflops: steady)
        _ = try run("main", fingerprint: "ffffffffffff", gflops: steady.map { $0 * 3 })  // another class of machine
        let m2 = try run("main", gflops: steady.map { $0 + 0.3 })
        let same = try run("feature/x", gflops: steady.map { $0 + 0.1 })
        let slow = try run("feature/x", gflops: steady.map { $0 * 0.7 })

        let ok = try HeadroomCLI.run(["gate", "--run", String(same), "--baseline", "main@0123456789ab", "--baseline-runs", "2", "--db", path], cwd: dir)
        XCTAssertEqual(ok.status, 0, ok.stdout + ok.stderr)
        XCTAssertTrue(ok.stdout.contains("baseline main@0123456789ab: runs \(m2), \(m1) (pooled) of g"), ok.stdout)
        XCTAssertFalse(ok.stdout.contains("runs \(m2), \(m1), \(old)"))
        let bad = try HeadroomCLI.run(["gate", "--run", String(slow), "--baseline", "main@0123456789ab", "--baseline-runs", "2", "--db", path], cwd: dir)
        XCTAssertEqual(bad.status, 1, "a 30 % regression against main: " + bad.stdout + bad.stderr)
        let none = try HeadroomCLI.run(["gate", "--run", String(same), "--baseline", "release@this", "--db", path], cwd: dir)
        XCTAssertEqual(none.status, 2)
        XCTAssertTrue(none.stderr.contains("no complete run of branch \"release\" on machine class "), none.stderr)
        XCTAssertTrue(none.stderr.contains("branches with complete runs: feature/x, main"), none.stderr)
        let zero = try HeadroomCLI.run(["gate", "--run", String(same), "--baseline", "main@this", "--baseline-runs", "0", "--db", path], cwd: dir)
        XCTAssertEqual(zero.status, 2)
        XCTAssertTrue(zero.stderr.contains("--baseline-runs: expected an integer from 1 to 100, got 0"), zero.stderr)
    }
}

final class SharedHistoryTests: XCTestCase {
    func localStore(in dir: URL) throws -> (path: String, complete: Int64, running: Int64) {
        let path = dir.appendingPathComponent("h.sqlite").path
        let store = try SQLiteStore(path: path)
        func run(_ status: RunStatus?) throws -> Int64 {
            let id = try store.beginRun(RunRecord(scenarioName: "quick", scenarioFile: "quick.yaml", scenarioHash: "h", scenarioText: "",
                                                  gitRevision: "rev", machineFingerprint: "fp", machineJson: "{}", headroomVersion: "test",
                                                  pid: Int(getpid()), startedAt: Date(timeIntervalSince1970: 1_000_000)))
            try store.record(runID: id, MeasuredCase(kind: .gemm, name: "qkv", threads: 1, params: ["M": "4"],
                                                     samples: (0..<3).map { .init(metric: "gflops", unit: "GFLOP/s", repetition: $0, value: 10 + Double($0)) }))
            if let status { try store.finish(runID: id, status: status) }
            return id
        }
        _ = try run(.complete)
        let complete = try run(.complete)
        let running = try run(nil)
        return (path, complete, running)
    }

    func testHistoryPushCopiesLocalRunsOnceAndTheSharedHistoryListsThem() throws {
        let db = try TestDatabase(self)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("push-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let local = try localStore(in: dir)

        let first = try HeadroomCLI.run(["history", "push", "--to", db.url, "--db", local.path, "--json"], cwd: dir)
        XCTAssertEqual(first.status, 0, first.stderr)
        let pushed = try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as! [String: Any]
        XCTAssertEqual((pushed["pushed"] as! [[String: Any]]).map { $0["run"] as! Int }, [1, 2])
        XCTAssertEqual((pushed["pushed"] as! [[String: Any]]).map { $0["samples"] as! Int }, [3, 3])
        XCTAssertEqual(pushed["still_running"] as! [Int], [Int(local.running)])
        XCTAssertFalse(first.stdout.contains(URLComponents(string: db.url)!.password ?? "\u{0}"), "no password in the output")

        let again = try HeadroomCLI.run(["history", "push", "--to", db.url, "--db", local.path], cwd: dir)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stdout.hasPrefix("Pushed 0 run(s), 0 samples, from \(local.path) to postgres://"), again.stdout)
        XCTAssertTrue(again.stdout.contains("; 2 already there.\nNot pushed, still running: run \(local.running) (push again once they end).\n"), again.stdout)
        XCTAssertEqual(try TestDatabase.psql(db.url, "SELECT count(*) FROM run"), "2")
        XCTAssertEqual(try TestDatabase.psql(db.url, "SELECT count(*) FROM sample"), "6")

        // The shared store is a store like the local one: history reads it, with the runs' uids.
        let history = try HeadroomCLI.run(["history", "--json"], cwd: dir, environment: ["HEADROOM_DB": db.url])
        XCTAssertEqual(history.status, 0, history.stderr)
        let listed = (try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as! [String: Any])["runs"] as! [[String: Any]]
        let localRuns = try SQLiteStore(path: local.path, mode: .readOnly).runs().filter { $0.status == .complete }
        XCTAssertEqual(listed.map { $0["uid"] as! String }, localRuns.map(\.uid))
        XCTAssertEqual(listed.map { $0["samples"] as! Int }, [3, 3])
    }

    /// A workload that measures cases instantly; `afterFirst` runs once the first case is measured.
    struct CutWorkload: SingleCaseWorkload {
        let afterFirst: @Sendable () throws -> Void
        func cases() -> [CaseSpec] { (0..<3).map { CaseSpec(kind: "x", name: "c\($0)", threads: 1, params: [:], steps: 1) } }
        func measure(_ spec: CaseSpec, step: () throws -> Void) throws -> MeasuredCase {
            try step()
            if spec.name == "c1" { try afterFirst() }
            return MeasuredCase(kind: "x", name: spec.name, threads: 1, params: [:], samples: [.init(metric: "s", unit: "s", repetition: 0, value: 1)])
        }
    }

    /// The database going away mid-run fails the run with a clear error; no crash, and what was stored stays.
    func testTheDatabaseGoingAwayMidRunFailsTheRunAndKeepsWhatWasStored() async throws {
        let db = try TestDatabase(self)
        let store = try openStore(db.url, mode: .readWrite(createFolder: false))
        let runner = Runner(store: store, progress: Progress(enabled: false), version: "test")
        let scenario = smallScenario()
        do {
            _ = try await runner.run(scenario: scenario, workloads: [("x", CutWorkload(afterFirst: {
                XCTAssertEqual(try db.dropConnections(), 1)
            }))])
            XCTFail("the run should fail")
        } catch let e as StoreError {
            guard case .connectionLost = e else { return XCTFail("\(e)") }
            XCTAssertTrue(e.description.hasPrefix("\(store.path): lost the connection to the results store"), e.description)
        }
        let after = try openStore(db.url, mode: .readWrite(createFolder: false))
        let run = try XCTUnwrap(after.runs().first)
        XCTAssertEqual(try after.load(runID: run.id!).cases.map(\.name), ["c0"], "the case stored before stays")
        XCTAssertEqual(run.status, .running, "the failure could not be written; the next open on this host marks it interrupted")
        XCTAssertEqual(try after.reapAbandonedRuns(isAlive: { _ in false }), 1)
    }
}
