// What every results store promises, tested on both: `StoreContractTests` runs each test on a SQLite file,
// `PostgresStoreContractTests` (a subclass) runs the same tests on a fresh PostgreSQL database of the server
// named by HEADROOM_TEST_PG (`make test` starts one), and says it skipped them when that is unset.
import Foundation
import XCTest
import HeadroomCore
@testable import HeadroomStore

class StoreContractTests: XCTestCase {
    /// The location of an empty store for one test (removed when it ends).
    func freshLocation() throws -> String { try sqliteFile() }

    /// A new SQLite file's path, removed when the test ends.
    func sqliteFile() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("headroom-contract-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir.appendingPathComponent("h.sqlite").path
    }

    /// A store at `location`, opened the way a command that writes opens it.
    func open(_ location: String) throws -> any Store {
        try openStore(location, mode: .readWrite(createFolder: false), environment: [:])
    }

    func makeStore() throws -> (store: any Store, location: String) {
        let location = try freshLocation()
        return (try open(location), location)
    }

    static let allMigrations = ["v1: runs, measurements, samples", "v2: plans", "v3: baselines", "v4: measurement facts",
                                "v5: samples indexed by measurement and metric", "v6: run uid and host", "v7: run branch",
                                "v8: run sweep and shard"]

    func testMigratesAndRoundTripsARun() throws {
        let (store, location) = try makeStore()
        XCTAssertEqual(try store.appliedMigrations(), Self.allMigrations)
        let id = try store.beginRun(sampleRun())
        let c1 = sampleCase("read_rows", values: [30.5, 31.25, 29.75])
        let c2 = sampleCase("triad", values: [40])
        try store.record(runID: id, c1)
        try store.record(runID: id, c2)
        try store.finish(runID: id, status: .complete, at: Date(timeIntervalSince1970: 1_000_010))

        // A second connection sees everything, and migrating again changes nothing.
        let reopened = try open(location)
        XCTAssertEqual(try reopened.appliedMigrations(), Self.allMigrations)
        let loaded = try reopened.load(runID: id)
        XCTAssertEqual(loaded.run.status, .complete)
        XCTAssertEqual(loaded.run.scenarioName, "s")
        XCTAssertEqual(loaded.run.gitRevision, "deadbeef")
        XCTAssertEqual(loaded.run.uid, try store.runs().first?.uid)
        XCTAssertEqual(loaded.run.uid.count, 36, "a UUID")
        XCTAssertEqual(loaded.run.host, RunRecord.thisHost)
        XCTAssertEqual(loaded.run.startedAt, Date(timeIntervalSince1970: 1_000_000))
        XCTAssertEqual(loaded.run.endedAt?.timeIntervalSince1970 ?? 0, 1_000_010, accuracy: 0.01)
        XCTAssertEqual(loaded.cases, [c1, c2])
        XCTAssertEqual(try reopened.sampleCount(runID: id), 4)
        XCTAssertThrowsError(try reopened.load(runID: 999)) { XCTAssertEqual("\($0)", "no run with id 999 in the store") }
    }

    func testInterruptedRunIsListedButNotSummarised() throws {
        let store = try makeStore().store
        let done = try store.beginRun(sampleRun("chat"))
        try store.record(runID: done, sampleCase("read_rows", values: [30]))
        try store.finish(runID: done, status: .complete)
        let cut = try store.beginRun(sampleRun("chat"))
        try store.record(runID: cut, sampleCase("read_rows", values: [99]))
        try store.finish(runID: cut, status: .interrupted, note: "interrupted by signal")
        let other = try store.beginRun(sampleRun("other"))
        try store.finish(runID: other, status: .complete)

        XCTAssertEqual(try store.runs().map(\.id), [other, cut, done])
        XCTAssertEqual(try store.runs(limit: 1).map(\.id), [other])
        XCTAssertEqual(try store.completeRuns().map(\.id), [other, done])
        XCTAssertEqual(try store.completeRuns(scenario: "chat").map(\.id), [done])
        XCTAssertEqual(try store.completeRuns(limit: 1).map(\.id), [other])
        XCTAssertEqual(try store.load(runID: cut).run.note, "interrupted by signal")
        let h = try XCTUnwrap(store.scenarioHistories().first { $0.scenario == "chat" })
        XCTAssertEqual(h.completeRuns, 1)
        XCTAssertEqual(h.incompleteRuns, 1)
        XCTAssertEqual(h.latestComplete?.id, done)
        XCTAssertEqual(h.latestProbe?.readGBps(threads: 2), 30, "the interrupted run's 99 must not leak into the summary")
    }

    /// Only this host's runs are reaped: in a shared store another machine's pid says nothing about its run.
    func testRunsLeftRunningByADeadProcessOfThisHostBecomeInterrupted() throws {
        let store = try makeStore().store
        let dead = try store.beginRun(sampleRun(pid: 111))
        let alive = try store.beginRun(sampleRun(pid: 222))
        var elsewhere = sampleRun(pid: 111)
        elsewhere.host = "another-machine"
        let remote = try store.beginRun(elsewhere)
        XCTAssertEqual(try store.reapAbandonedRuns(isAlive: { $0 == 222 }), 1)
        XCTAssertEqual(try store.load(runID: dead).run.status, .interrupted)
        XCTAssertEqual(try store.load(runID: dead).run.note, "process 111 ended without finishing the run")
        XCTAssertEqual(try store.load(runID: alive).run.status, .running)
        XCTAssertEqual(try store.load(runID: remote).run.status, .running)
        XCTAssertEqual(try store.completeRuns().count, 0)
    }

    func testBaselinesSaveReplaceListAndLoad() throws {
        let store = try makeStore().store
        let first = try store.beginRun(sampleRun("gate"))
        try store.record(runID: first, sampleCase("read_rows", values: [30, 31]))
        try store.finish(runID: first, status: .complete)
        let second = try store.beginRun(sampleRun("gate"))
        try store.record(runID: second, sampleCase("read_rows", values: [29]))
        try store.finish(runID: second, status: .complete)
        let broken = try store.beginRun(sampleRun("gate"))
        try store.finish(runID: broken, status: .interrupted)

        XCTAssertNil(try store.saveBaseline(name: "main", runID: first))
        XCTAssertEqual(try store.saveBaseline(name: "main", runID: second), first, "saving again replaces, and says what")
        XCTAssertThrowsError(try store.saveBaseline(name: "x", runID: broken)) {
            XCTAssertEqual("\($0)", "\(store.path): run \(broken) is interrupted; only a complete run can be a baseline")
        }
        XCTAssertThrowsError(try store.saveBaseline(name: "x", runID: 99)) { XCTAssertEqual("\($0)", "no run with id 99 in the store") }
        XCTAssertEqual(try store.baselines().map(\.name), ["main"])
        let b = try store.loadBaseline(named: "main")
        XCTAssertEqual(b.runID, second)
        XCTAssertEqual(b.scenarioName, "gate")
        XCTAssertEqual(b.cases.map { $0.values("gbps") }, [[29]])
        XCTAssertThrowsError(try store.loadBaseline(named: "nope")) {
            XCTAssertEqual("\($0)", "\(store.path): no baseline named \"nope\"; the store has main")
        }
    }

    func testPlanRoundTripsBesideItsRun() throws {
        let store = try makeStore().store
        let id = try store.beginRun(sampleRun())
        XCTAssertNil(try store.plan(runID: id))
        let plan = samplePlan()
        XCTAssertNotNil(plan.recommendation)
        try store.savePlan(runID: id, plan)
        XCTAssertEqual(try store.plan(runID: id), plan)
        try store.savePlan(runID: id, plan)  // replacing is allowed
        XCTAssertEqual(try store.plan(runID: id), plan)
    }

    func testLatestCompleteRunReadsTheSameCasesAsLoad() throws {
        let store = try makeStore().store
        let a = try store.beginRun(sampleRun())
        try store.record(runID: a, sampleCase("read_rows", values: [1, 2]))
        try store.finish(runID: a, status: .complete)
        let b = try store.beginRun(sampleRun())
        try store.record(runID: b, sampleCase("read_rows", values: [3, 4, 5]))
        try store.record(runID: b, sampleCase("triad", values: [6]))
        try store.finish(runID: b, status: .complete)
        let c = try store.beginRun(sampleRun())   // still running: never chosen
        try store.record(runID: c, sampleCase("triad", values: [7]))
        let latest = try XCTUnwrap(store.latestCompleteRun(fingerprint: "fp"))
        XCTAssertEqual(latest.run.id, b)
        XCTAssertEqual(latest.cases, try store.load(runID: b).cases)
        XCTAssertNil(try store.latestCompleteRun(fingerprint: "other"))
    }

    /// "Latest" is the run that started last, not the one stored last: a week-old run pushed today gets the
    /// store's next id but is not taken for the newest.
    func testTheLatestRunIsTheOneThatStartedLast() throws {
        let store = try makeStore().store
        var newer = sampleRun()
        newer.startedAt = Date(timeIntervalSince1970: 2_000_000)
        let n = try store.beginRun(newer)
        try store.record(runID: n, sampleCase("read_rows", values: [1]))
        try store.finish(runID: n, status: .complete)
        let o = try store.beginRun(sampleRun())   // started at 1,000,000 s, stored after (as a push would)
        try store.record(runID: o, sampleCase("read_rows", values: [2]))
        try store.finish(runID: o, status: .complete)
        XCTAssertGreaterThan(o, n)
        XCTAssertEqual(try store.latestCompleteRun(fingerprint: "fp")?.run.id, n)
        XCTAssertEqual(try store.runs().map(\.id), [n, o])
        XCTAssertEqual(try store.completeRuns(scenario: nil).map(\.id), [n, o])
    }

    /// The narrow reads calibration makes: the latest complete run naming each hardware, only the metrics asked for.
    func testEndpointLoadCasesAndStepCasesPickTheLatestCompleteRun() throws {
        let store = try makeStore().store
        func load(_ endpoint: String, hardware: String, ttft: Double) -> MeasuredCase {
            MeasuredCase(kind: .load, name: endpoint, threads: 0, params: ["rate": "1"], facts: ["hardware": hardware],
                         samples: [.init(metric: "ttft_ms", unit: "ms", repetition: 0, value: ttft),
                                   .init(metric: "itl_ms", unit: "ms", repetition: 0, value: 5),
                                   .init(metric: "tpot_ms", unit: "ms", repetition: 0, value: ttft / 10)])
        }
        func step(_ model: String, threads: Int, seconds: Double) -> MeasuredCase {
            MeasuredCase(kind: .step, name: "decode-1", threads: threads, params: ["model": model, "precision": "q4_0"],
                         samples: [.init(metric: "step_seconds", unit: "s", repetition: 0, value: seconds),
                                   .init(metric: "other", unit: "s", repetition: 0, value: 1)])
        }
        func run(_ cases: [MeasuredCase], _ status: RunStatus) throws -> Int64 {
            let id = try store.beginRun(sampleRun("load"))
            for c in cases { try store.record(runID: id, c) }
            try store.finish(runID: id, status: status)
            return id
        }
        let old = try run([load("a", hardware: "h100-sxm", ttft: 100), step("micro", threads: 2, seconds: 0.5)], .complete)
        let new = try run([load("b", hardware: "l40s", ttft: 200), load("b", hardware: "l40s", ttft: 210),
                           step("micro", threads: 2, seconds: 0.25), step("micro", threads: 1, seconds: 0.75)], .complete)
        let failed = try run([load("c", hardware: "h100-sxm", ttft: 999), step("micro", threads: 2, seconds: 9)], .failed)

        let found = try store.endpointLoadCases(hardware: ["h100-sxm", "l40s", "a100-80g"])
        XCTAssertEqual(found.map(\.hardware), ["h100-sxm", "l40s"])
        XCTAssertEqual(found.map(\.runID), [old, new])
        XCTAssertEqual(found[1].endpoints, ["b"])
        XCTAssertEqual(found[1].cases.map { $0.values("ttft_ms") }, [[200], [210]])
        XCTAssertEqual(found[1].cases[0].samples.map(\.metric), ["ttft_ms", "tpot_ms"], "only the calibration metrics")
        XCTAssertEqual(try store.endpointLoadCases(hardware: ["h100-sxm"], runID: failed).first?.cases.map { $0.values("ttft_ms") }, [[999]])
        XCTAssertEqual(try store.endpointLoadCases(hardware: []), [])
        XCTAssertThrowsError(try store.endpointLoadCases(hardware: ["l40s"], runID: 4242)) { XCTAssertEqual("\($0)", "no run with id 4242 in the store") }

        let steps = try XCTUnwrap(store.stepCases(model: "micro", precision: "q4_0", threads: 2))
        XCTAssertEqual(steps.runID, new)
        XCTAssertEqual(steps.cases.map { $0.samples.map(\.value) }, [[0.25]], "only step_seconds, only two threads")
        XCTAssertEqual(try store.stepCases(model: "micro", precision: "q4_0", threads: 2, runID: failed)?.cases.first?.values("step_seconds"), [9])
        XCTAssertNil(try store.stepCases(model: "micro", precision: "f32", threads: 2))
    }

    /// Writers on separate connections at once (many machines on one PostgreSQL, many processes on one file)
    /// never get the same run id and lose nothing.
    func testConcurrentWritersGetDistinctRunIDs() throws {
        let (store, location) = try makeStore()
        let other = try open(location)
        let writers = [store, other]
        let ids = NSLock()
        var all: [Int64] = []
        var failures: [String] = []
        DispatchQueue.concurrentPerform(iterations: 2) { w in
            for k in 0..<15 {
                do {
                    let id = try writers[w].beginRun(sampleRun("w\(w)"))
                    try writers[w].record(runID: id, sampleCase("c\(k)", values: [Double(k)]))
                    try writers[w].finish(runID: id, status: .complete)
                    ids.lock(); all.append(id); ids.unlock()
                } catch {
                    ids.lock(); failures.append("\(error)"); ids.unlock()
                }
            }
        }
        XCTAssertEqual(failures, [])
        XCTAssertEqual(Set(all).count, 30)
        XCTAssertEqual(Set(try store.runs().map(\.id!)), Set(all))
        XCTAssertEqual(Set(try store.runUIDs()).count, 30)
        for id in all { XCTAssertEqual(try store.sampleCount(runID: id), 1) }
    }

    /// `gate --baseline BRANCH@CLASS`: the latest complete runs of a branch on one machine class (a fingerprint,
    /// or the hardware an endpoint's load cases name), samples pooled per case.
    func testBranchBaselinePoolsTheLatestRunsOfABranchOnAMachineClass() throws {
        let store = try makeStore().store
        func run(branch: String, fingerprint: String = "0123456789ab", scenario: String = "gate", status: RunStatus = .complete,
                 values: [Double], extra: MeasuredCase? = nil) throws -> Int64 {
            var r = sampleRun(scenario)
            r.branch = branch
            r.machineFingerprint = fingerprint
            let id = try store.beginRun(r)
            try store.record(runID: id, sampleCase("read_rows", values: values))
            if let extra { try store.record(runID: id, extra) }
            try store.finish(runID: id, status: status)
            return id
        }
        let oldest = try run(branch: "main", values: [1])
        let a = try run(branch: "main", values: [2, 3])
        _ = try run(branch: "feature/x", values: [99])
        _ = try run(branch: "main", fingerprint: "ffffffffffff", values: [98])
        let other = try run(branch: "main", scenario: "other", values: [97])
        _ = try run(branch: "main", status: .failed, values: [96])
        let b = try run(branch: "main", values: [4], extra: MeasuredCase(kind: .load, name: "prod", threads: 0, params: [:],
                                                                             facts: ["hardware": "l40s"], samples: []))
        let pooled = try store.branchBaseline(branch: "main", machineClass: "0123456789ab", scenario: "gate", runs: 2)
        XCTAssertEqual(pooled.runIDs, [b, a])
        XCTAssertEqual(pooled.baseline.name, "main@0123456789ab")
        XCTAssertEqual(pooled.baseline.runID, b)
        XCTAssertEqual(pooled.baseline.cases.map(\.name), ["read_rows", "prod"])
        XCTAssertEqual(pooled.baseline.cases[0].values("gbps"), [4, 2, 3], "every pooled run's samples, newest first")
        XCTAssertEqual(try store.branchBaseline(branch: "main", machineClass: "0123456789ab", scenario: "gate", runs: 5, excluding: b).runIDs,
                       [a, oldest], "the run under test left out")
        XCTAssertEqual(try store.branchBaseline(branch: "main", machineClass: "0123456789ab", scenario: nil, runs: 5, excluding: b).runIDs,
                       [other], "no scenario named: the newest matching run's")
        XCTAssertEqual(try store.branchBaseline(branch: "feature/x", machineClass: "0123456789ab", scenario: nil, runs: 3).baseline.cases[0].values("gbps"), [99])
        XCTAssertEqual(try store.branchBaseline(branch: "main", machineClass: "l40s", scenario: nil, runs: 3).runIDs, [b], "by an endpoint's hardware")
        XCTAssertThrowsError(try store.branchBaseline(branch: "release", machineClass: "0123456789ab", scenario: "gate", runs: 3)) {
            XCTAssertEqual("\($0)", "\(store.path): no complete run of branch \"release\" on machine class 0123456789ab of scenario \"gate\"; "
                           + "branches with complete runs: feature/x, main")
        }
        XCTAssertEqual(BranchBaselineSpec("main@this"), BranchBaselineSpec("main@this"))
        XCTAssertEqual(BranchBaselineSpec("feature/x@0123456789ab")?.branch, "feature/x")
        XCTAssertNil(BranchBaselineSpec("main"))
        XCTAssertNil(BranchBaselineSpec("b@x.json"))
        XCTAssertNil(BranchBaselineSpec("@this"))
    }

    /// A local SQLite history with a complete run (and its plan), a failed one and one still running.
    func localHistory() throws -> (store: SQLiteStore, complete: Int64, failed: Int64, running: Int64) {
        let local = try SQLiteStore(path: try sqliteFile())
        let complete = try local.beginRun(sampleRun("chat"))
        try local.record(runID: complete, sampleCase("read_rows", values: [30, 31, 32]))
        try local.record(runID: complete, MeasuredCase(kind: .load, name: "prod", threads: 0, params: ["rate": "2"], facts: ["hardware": "l40s"],
                                                       samples: (0..<500).map { .init(metric: "itl_ms", unit: "ms", repetition: $0, value: Double($0) / 8) }))
        try local.savePlan(runID: complete, samplePlan())
        try local.finish(runID: complete, status: .complete, note: "", at: Date(timeIntervalSince1970: 1_000_050))
        let failed = try local.beginRun(sampleRun("chat"))
        try local.record(runID: failed, sampleCase("triad", values: [1]))
        try local.finish(runID: failed, status: .failed, note: "kernel crashed")
        let running = try local.beginRun(sampleRun("chat"))
        return (local, complete, failed, running)
    }

    func testPushCopiesEveryFinishedRunWithItsSamplesAndPushingAgainChangesNothing() throws {
        let (local, complete, failed, running) = try localHistory()
        let shared = try makeStore().store
        let before = try shared.beginRun(sampleRun("theirs"))  // another machine's run, already there
        try shared.finish(runID: before, status: .complete)

        let first = try HistoryPush.push(from: local, to: shared)
        XCTAssertEqual(first.copied.map(\.localID), [complete, failed], "oldest first")
        XCTAssertEqual(first.copied.map(\.samples), [503, 1])
        XCTAssertEqual(first.stillRunning, [running])
        XCTAssertEqual(first.alreadyThere, [])
        for c in first.copied {
            let mine = try local.load(runID: c.localID), theirs = try shared.load(runID: c.sharedID)
            XCTAssertNotEqual(c.sharedID, before)
            XCTAssertEqual(theirs.cases, mine.cases)
            var a = theirs.run, b = mine.run
            a.id = nil; b.id = nil
            XCTAssertEqual(a, b, "every column but the id")
        }
        XCTAssertEqual(try shared.plan(runID: first.copied[0].sharedID), samplePlan())
        XCTAssertNil(try shared.plan(runID: first.copied[1].sharedID))
        XCTAssertEqual(try shared.load(runID: first.copied[1].sharedID).run.note, "kernel crashed")

        let runs = try shared.runs(), samples = try runs.map { try shared.sampleCount(runID: $0.id!) }
        let again = try HistoryPush.push(from: local, to: shared)
        XCTAssertEqual(again.copied, [])
        XCTAssertEqual(again.alreadyThere, [complete, failed])
        XCTAssertEqual(try shared.runs(), runs)
        XCTAssertEqual(try runs.map { try shared.sampleCount(runID: $0.id!) }, samples)

        // Once the running run ends, the next push copies it, and only it.
        try local.finish(runID: running, status: .complete)
        XCTAssertEqual(try HistoryPush.push(from: local, to: shared).copied.map(\.localID), [running])
        XCTAssertEqual(try shared.runs().count, 4)
    }

    /// Two pushes of the same runs at once, on separate connections, store each run once.
    func testConcurrentPushesStoreEachRunOnce() throws {
        let (local, _, _, _) = try localHistory()
        for k in 0..<6 {
            let id = try local.beginRun(sampleRun("more"))
            try local.record(runID: id, sampleCase("c", values: [Double(k)]))
            try local.finish(runID: id, status: .complete)
        }
        let (shared, location) = try makeStore()
        let targets = [shared, try open(location)]
        let lock = NSLock()
        var reports: [PushReport] = []
        var failures: [String] = []
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            do {
                let r = try HistoryPush.push(from: local, to: targets[i])
                lock.lock(); reports.append(r); lock.unlock()
            } catch {
                lock.lock(); failures.append("\(error)"); lock.unlock()
            }
        }
        XCTAssertEqual(failures, [])
        XCTAssertEqual(reports.count, 2)
        let copied = reports.flatMap(\.copied)
        XCTAssertEqual(copied.count, 8, "each finished run copied by exactly one of the two pushes")
        XCTAssertEqual(Set(copied.map(\.uid)).count, 8)
        XCTAssertEqual(reports.map { $0.copied.count + $0.alreadyThere.count }, [8, 8])
        XCTAssertEqual(try shared.runs().count, 8)
        XCTAssertEqual(try shared.runUIDs(), Set(try local.runs().filter { $0.status != .running }.map(\.uid)))
    }

    /// A shard run of a sweep: a probe of its own and one gemm case per name, started `at` seconds in.
    func shardRun(_ store: any Store, _ index: Int, of count: Int, sweep: String = "sw", at: Double, gemm: [String],
                  status: RunStatus = .complete) throws -> Int64 {
        var record = sampleRun("sweepy")
        record.startedAt = Date(timeIntervalSince1970: 2_000_000 + at)
        record.sweep = sweep; record.shardIndex = index; record.shardCount = count
        let id = try store.beginRun(record)
        try store.record(runID: id, sampleCase("triad", values: [Double(40 + index)]))
        for name in gemm {
            try store.record(runID: id, MeasuredCase(kind: .gemm, name: name, threads: 1, params: ["M": "8"],
                                                     samples: [.init(metric: "gflops", unit: "GFLOP/s", repetition: 0, value: Double(index))]))
        }
        try store.finish(runID: id, status: status)
        return id
    }

    func testSweepRunsKeepTheirShardAndMergeOnlyWhenEveryShardIsComplete() throws {
        let store = try makeStore().store
        let s0 = try shardRun(store, 0, of: 3, at: 0, gemm: ["qkv", "o"])
        let s1 = try shardRun(store, 1, of: 3, at: 1, gemm: ["down"])
        _ = try store.beginRun(sampleRun("not-a-shard"))
        XCTAssertEqual(try store.sweepRuns("sw").map(\.id), [s1, s0], "newest first, only the sweep's")
        XCTAssertEqual(try store.load(runID: s1).run.shard, SweepShard(sweep: "sw", index: 1, count: 3))
        XCTAssertNil(try store.runs().first { $0.scenarioName == "not-a-shard" }?.shard)

        XCTAssertThrowsError(try SweepMerge.merge("sw", in: store)) { e in
            XCTAssertEqual(e as? SweepIncomplete, SweepIncomplete(sweep: "sw", count: 3, missing: [2], unfinished: []))
            XCTAssertTrue("\(e)".hasPrefix("sweep sw: 2 of 3 shards complete; shard 2 has no run; nothing was merged"), "\(e)")
        }
        let killed = try shardRun(store, 2, of: 3, at: 2, gemm: [], status: .interrupted)
        XCTAssertThrowsError(try SweepMerge.merge("sw", in: store)) { e in
            XCTAssertEqual((e as? SweepIncomplete)?.unfinished, [.init(index: 2, runID: killed, status: .interrupted)])
            XCTAssertTrue("\(e)".contains("shard 2's latest run \(killed) is interrupted"), "\(e)")
        }
        // Shard 2 run again: its latest run is complete, and it replaces the killed one.
        let s2 = try shardRun(store, 2, of: 3, at: 3, gemm: ["gate_up"])
        let merged = try SweepMerge.merge("sw", in: store)
        XCTAssertEqual(merged.sources.map(\.runID), [s0, s1, s2])
        XCTAssertEqual(merged.run.cases.map(\.name), ["triad", "qkv", "o", "down", "gate_up"], "one probe (shard 0's), every case once")
        XCTAssertEqual(merged.run.cases.map { $0.facts[SweepMerge.shardFact] }, ["0", "0", "0", "1", "2"])
        XCTAssertEqual(merged.run.cases.last?.facts[SweepMerge.runFact], String(s2))
        XCTAssertEqual(merged.run.run.startedAt, Date(timeIntervalSince1970: 2_000_000))
        XCTAssertNil(merged.run.run.id)

        // A sweep holding two shard counts, or two shards measuring one case, is refused rather than merged.
        _ = try shardRun(store, 0, of: 1, sweep: "mixed", at: 0, gemm: ["qkv"])
        _ = try shardRun(store, 0, of: 2, sweep: "mixed", at: 1, gemm: ["qkv"])
        XCTAssertThrowsError(try SweepMerge.merge("mixed", in: store)) { XCTAssertTrue("\($0)".contains("holds runs of 1 and 2 shards"), "\($0)") }
        _ = try shardRun(store, 0, of: 2, sweep: "twice", at: 0, gemm: ["qkv"])
        _ = try shardRun(store, 1, of: 2, sweep: "twice", at: 1, gemm: ["qkv"])
        XCTAssertThrowsError(try SweepMerge.merge("twice", in: store)) { XCTAssertTrue("\($0)".contains("shards 0 and 1 both measured gemm qkv"), "\($0)") }
        XCTAssertThrowsError(try SweepMerge.merge("none", in: store)) { XCTAssertTrue($0 is InputError, "\($0)") }

        // history push keeps a run's sweep and shard.
        let shared = try makeStore().store
        _ = try HistoryPush.push(from: store, to: shared)
        XCTAssertEqual(try shared.sweepRuns("sw").compactMap(\.shard).map(\.index), [2, 2, 1, 0])
        XCTAssertEqual(try SweepMerge.merge("sw", in: shared).run.cases.count, 5)
    }
}

/// The same tests on PostgreSQL: each on a database of its own, created on the server HEADROOM_TEST_PG names
/// and dropped after. XCTest on Linux finds only the test methods a class declares, not those it inherits,
/// so each is named here again (`testEveryContractTestRunsOnPostgreSQL` checks that none is missing).
final class PostgresStoreContractTests: StoreContractTests {
    override func setUpWithError() throws {
        _ = try PostgresTestServer.url()
    }

    override func freshLocation() throws -> String {
        let db = try PostgresTestServer.createDatabase()
        addTeardownBlock { PostgresTestServer.dropDatabase(db.database) }
        return db.location
    }

    override func open(_ location: String) throws -> any Store {
        try openStore(location, mode: .readWrite(createFolder: false), environment: PostgresTestServer.environment)
    }

    override func testMigratesAndRoundTripsARun() throws { try super.testMigratesAndRoundTripsARun() }
    override func testInterruptedRunIsListedButNotSummarised() throws { try super.testInterruptedRunIsListedButNotSummarised() }
    override func testRunsLeftRunningByADeadProcessOfThisHostBecomeInterrupted() throws { try super.testRunsLeftRunningByADeadProcessOfThisHostBecomeInterrupted() }
    override func testBaselinesSaveReplaceListAndLoad() throws { try super.testBaselinesSaveReplaceListAndLoad() }
    override func testPlanRoundTripsBesideItsRun() throws { try super.testPlanRoundTripsBesideItsRun() }
    override func testLatestCompleteRunReadsTheSameCasesAsLoad() throws { try super.testLatestCompleteRunReadsTheSameCasesAsLoad() }
    override func testTheLatestRunIsTheOneThatStartedLast() throws { try super.testTheLatestRunIsTheOneThatStartedLast() }
    override func testEndpointLoadCasesAndStepCasesPickTheLatestCompleteRun() throws { try super.testEndpointLoadCasesAndStepCasesPickTheLatestCompleteRun() }
    override func testConcurrentWritersGetDistinctRunIDs() throws { try super.testConcurrentWritersGetDistinctRunIDs() }
    override func testPushCopiesEveryFinishedRunWithItsSamplesAndPushingAgainChangesNothing() throws { try super.testPushCopiesEveryFinishedRunWithItsSamplesAndPushingAgainChangesNothing() }
    override func testConcurrentPushesStoreEachRunOnce() throws { try super.testConcurrentPushesStoreEachRunOnce() }
    override func testBranchBaselinePoolsTheLatestRunsOfABranchOnAMachineClass() throws { try super.testBranchBaselinePoolsTheLatestRunsOfABranchOnAMachineClass() }
    override func testSweepRunsKeepTheirShardAndMergeOnlyWhenEveryShardIsComplete() throws { try super.testSweepRunsKeepTheirShardAndMergeOnlyWhenEveryShardIsComplete() }
}

/// Every test of the contract is also run on PostgreSQL (read from this file: Linux's XCTest has no runtime
/// list of a class's inherited methods).
final class StoreContractCoverageTests: XCTestCase {
    func testEveryContractTestRunsOnPostgreSQL() throws {
        let text = try String(contentsOfFile: #filePath, encoding: .utf8)
        let split = try XCTUnwrap(text.range(of: "final class PostgresStoreContractTests"))
        func names(_ s: Substring, _ prefix: String) -> Set<String> {
            Set(s.components(separatedBy: "\n").compactMap { line in
                let t = line.trimmingCharacters(in: .whitespaces)
                guard t.hasPrefix(prefix + "test"), let paren = t.firstIndex(of: "(") else { return nil }
                return String(t[t.index(t.startIndex, offsetBy: prefix.count)..<paren])
            })
        }
        let base = names(text[..<split.lowerBound], "func "), overridden = names(text[split.lowerBound...], "override func ")
        XCTAssertGreaterThan(base.count, 5)
        XCTAssertEqual(base.subtracting(overridden), [], "contract tests not run on PostgreSQL")
    }
}
