// What only the SQLite store has: one file, SQLite's own constraints. The tests every store passes are in
// StoreContractTests.
import Foundation
import GRDB
import XCTest
@testable import HeadroomCore
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

/// A small real plan (one GPU, two precisions): what `headroom run` stores beside a run.
func samplePlan() -> PlanResult {
    let model = ModelShape(id: "m", name: "m", layers: 2, dim: 64, heads: 4, kvHeads: 2, ffnDim: 128, vocab: 100, context: 512, source: "t")
    let h = HardwareProfile(id: "g", name: "g", kind: .gpu, peakTflops: ["fp32": 10, "bf16": 100], memoryGib: 8, bandwidthGbps: 500,
                            interconnect: Interconnect(kind: "pcie", bandwidthGbps: 64, latencyUs: 10), devicesPerNode: 4,
                            powerWatts: 200, efficiency: Efficiency(compute: 0.5, bandwidth: 0.6), calibration: "default", source: "t")
    let sheet = PriceSheet(file: "p", offers: [.init(hardware: "g", provider: "p", devices: 1, onDemandUSDPerHour: 1, source: "t")])
    let input = PlanInput(model: model, demand: Demand(users: 100, requestsPerUserPerDay: 10, promptTokens: 100, outputTokens: 50),
                          slo: SLO(ttftP95: 1, tpotP95: 0.1), hardware: [h], precisions: [.bf16, .int4], tensorParallel: [1, 2], prices: sheet)
    return Planner(servingModel: QueueingServingModel()).plan(input)
}

final class StoreTests: XCTestCase {
    func testCreatesTheFileAndAnotherConnectionSeesTheRun() throws {
        let path = tempPath("h.sqlite")
        let store = try SQLiteStore(path: path, mode: .readWrite(createFolder: true))
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))
        let id = try store.beginRun(sampleRun())
        try store.record(runID: id, sampleCase("read_rows", values: [1, 2]))
        XCTAssertEqual(try SQLiteStore(path: path).sampleCount(runID: id), 2)
        XCTAssertEqual(try SQLiteStore(path: "sqlite:" + path, mode: .readOnly).runs().count, 0, "sqlite: is read by StoreLocation, not SQLiteStore")
    }

    func testStatusIsConstrainedAndCasesAndPlansCascade() throws {
        let store = try SQLiteStore(path: ":memory:")
        let id = try store.beginRun(sampleRun())
        try store.record(runID: id, sampleCase("x", values: [1, 2]))
        try store.savePlan(runID: id, samplePlan())
        XCTAssertThrowsError(try store.dbQueue.write { db in
            try db.execute(sql: "UPDATE run SET status = 'bogus' WHERE id = ?", arguments: [id])
        })
        try store.dbQueue.write { db in try db.execute(sql: "DELETE FROM run WHERE id = ?", arguments: [id]) }
        let left = try store.dbQueue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sample") }
        XCTAssertEqual(left, 0)
        XCTAssertNil(try store.plan(runID: id))
    }

    /// Runs stored before "v6: run uid and host" get a uid each and the host their machine JSON names.
    func testRunsFromBeforeUIDsGetThemOnMigration() throws {
        let path = tempPath("v5.sqlite")
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let q = try DatabaseQueue(path: path)
        try SQLiteStore.migrator.migrate(q, upTo: "v5: samples indexed by measurement and metric")
        try q.write { db in
            for host in ["box-a", "box-b"] {
                try db.execute(sql: """
                    INSERT INTO run (scenario_name, scenario_file, scenario_hash, scenario_text, git_revision, machine_fingerprint,
                                     machine_json, headroom_version, pid, started_at, status, note)
                    VALUES ('old', 'old.yaml', 'h', '', 'rev', 'fp', ?, '0.1', 1, '2026-01-01 00:00:00.000', 'complete', '')
                    """, arguments: [#"{"cpuModel":"x","cores":2,"memoryBytes":1,"kernel":"k","hostname":"\#(host)"}"#])
            }
        }
        try q.close()
        let store = try SQLiteStore(path: path)
        let runs = try store.runs()
        XCTAssertEqual(runs.map(\.host), ["box-b", "box-a"])
        XCTAssertEqual(Set(runs.map(\.uid)).count, 2)
        XCTAssertTrue(runs.allSatisfy { UUID(uuidString: $0.uid) != nil }, "\(runs.map(\.uid))")
        XCTAssertEqual(try store.appliedMigrations(), StoreContractTests.allMigrations)
    }

    func testUnopenablePathIsAClearError() {
        XCTAssertThrowsError(try SQLiteStore(path: "/proc/definitely/not/here.sqlite"))
    }
}
