import Foundation
import XCTest
import HeadroomCore
@testable import HeadroomStore

func tempPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("headroom-\(UUID().uuidString)/\(name)").path
}

func sampleRun(_ scenario: String = "s", pid: Int = Int(getpid())) -> RunRecord {
    RunRecord(scenarioName: scenario, scenarioFile: "Scenarios/\(scenario).yaml", scenarioHash: "abc", scenarioText: "schema: 1",
              gitRevision: "deadbeef", machineFingerprint: "fp", machineJson: "{}", headroomVersion: "test",
              pid: pid, startedAt: Date(timeIntervalSince1970: 1_000_000))
}

func sampleCase(_ name: String, values: [Double]) -> MeasuredCase {
    MeasuredCase(kind: "probe", name: name, threads: 2, params: ["bytes": "1024"], facts: ["isa": "avx512"],
                 samples: values.enumerated().map { .init(metric: "gbps", unit: "GB/s", repetition: $0.offset, value: $0.element) })
}

final class StoreTests: XCTestCase {
    func testMigratesAnEmptyFileAndRoundTripsARun() throws {
        let path = tempPath("h.sqlite")
        let store = try Store(path: path, mode: .readWrite(createFolder: true))
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))
        XCTAssertEqual(try store.appliedMigrations().first, "v1: runs, measurements, samples")

        let id = try store.beginRun(sampleRun())
        let c1 = sampleCase("read_rows", values: [30.5, 31.25, 29.75])
        let c2 = sampleCase("triad", values: [40])
        try store.record(runID: id, c1)
        try store.record(runID: id, c2)
        try store.finish(runID: id, status: .complete, at: Date(timeIntervalSince1970: 1_000_010))

        // A second connection to the same file sees everything, and migrating again is a no-op.
        let reopened = try Store(path: path)
        let loaded = try reopened.load(runID: id)
        XCTAssertEqual(loaded.run.status, .complete)
        XCTAssertEqual(loaded.run.scenarioName, "s")
        XCTAssertEqual(loaded.run.gitRevision, "deadbeef")
        XCTAssertEqual(loaded.run.endedAt?.timeIntervalSince1970 ?? 0, 1_000_010, accuracy: 0.01)
        XCTAssertEqual(loaded.cases, [c1, c2])
        XCTAssertEqual(try reopened.sampleCount(runID: id), 4)
        XCTAssertThrowsError(try reopened.load(runID: 999)) { XCTAssertEqual("\($0)", "no run with id 999 in the store") }
    }

    func testInterruptedRunIsListedButNotSummarised() throws {
        let store = try Store(path: ":memory:")
        let done = try store.beginRun(sampleRun("chat"))
        try store.record(runID: done, sampleCase("read_rows", values: [30]))
        try store.finish(runID: done, status: .complete)
        let cut = try store.beginRun(sampleRun("chat"))
        try store.record(runID: cut, sampleCase("read_rows", values: [99]))
        try store.finish(runID: cut, status: .interrupted, note: "interrupted by signal")

        XCTAssertEqual(try store.runs().map(\.id), [cut, done])
        XCTAssertEqual(try store.completeRuns().map(\.id), [done])
        let h = try XCTUnwrap(store.scenarioHistories().first)
        XCTAssertEqual(h.completeRuns, 1)
        XCTAssertEqual(h.incompleteRuns, 1)
        XCTAssertEqual(h.latestComplete?.id, done)
        XCTAssertEqual(h.latestProbe?.readGBps(threads: 2), 30, "the interrupted run's 99 must not leak into the summary")
    }

    func testRunsLeftRunningByADeadProcessBecomeInterrupted() throws {
        let store = try Store(path: ":memory:")
        let dead = try store.beginRun(sampleRun(pid: 111))
        let alive = try store.beginRun(sampleRun(pid: 222))
        XCTAssertEqual(try store.reapAbandonedRuns(isAlive: { $0 == 222 }), 1)
        XCTAssertEqual(try store.load(runID: dead).run.status, .interrupted)
        XCTAssertEqual(try store.load(runID: alive).run.status, .running)
        XCTAssertEqual(try store.completeRuns().count, 0)
    }

    func testStatusIsConstrainedAndCasesCascade() throws {
        let store = try Store(path: ":memory:")
        let id = try store.beginRun(sampleRun())
        try store.record(runID: id, sampleCase("x", values: [1, 2]))
        XCTAssertThrowsError(try store.dbQueue.write { db in
            try db.execute(sql: "UPDATE run SET status = 'bogus' WHERE id = ?", arguments: [id])
        })
        try store.dbQueue.write { db in try db.execute(sql: "DELETE FROM run WHERE id = ?", arguments: [id]) }
        let left = try store.dbQueue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sample") }
        XCTAssertEqual(left, 0)
    }

    func testUnopenablePathIsAClearError() {
        XCTAssertThrowsError(try Store(path: "/proc/definitely/not/here.sqlite"))
    }
}
