import Foundation
import XCTest
@testable import HeadroomCore
@testable import HeadroomStore

final class PlanStoreTests: XCTestCase {
    func testPlanRoundTripsBesideItsRunAndGoesWithIt() throws {
        let store = try Store(path: ":memory:")
        XCTAssertTrue(try store.appliedMigrations().contains("v2: plans"))
        let id = try store.beginRun(sampleRun())
        XCTAssertNil(try store.plan(runID: id))
        let model = ModelShape(id: "m", name: "m", layers: 2, dim: 64, heads: 4, kvHeads: 2, ffnDim: 128, vocab: 100, context: 512, source: "t")
        let h = HardwareProfile(id: "g", name: "g", kind: .gpu, peakTflops: ["fp32": 10, "bf16": 100], memoryGib: 8, bandwidthGbps: 500,
                                interconnect: Interconnect(kind: "pcie", bandwidthGbps: 64, latencyUs: 10), devicesPerNode: 4,
                                powerWatts: 200, efficiency: Efficiency(compute: 0.5, bandwidth: 0.6), calibration: "default", source: "t")
        let sheet = PriceSheet(file: "p", offers: [.init(hardware: "g", provider: "p", devices: 1, onDemandUSDPerHour: 1, source: "t")])
        let input = PlanInput(model: model, demand: Demand(users: 100, requestsPerUserPerDay: 10, promptTokens: 100, outputTokens: 50),
                              slo: SLO(ttftP95: 1, tpotP95: 0.1), hardware: [h], precisions: [.bf16, .int4], tensorParallel: [1, 2], prices: sheet)
        let plan = Planner(servingModel: QueueingServingModel()).plan(input)
        XCTAssertNotNil(plan.recommendation)
        try store.savePlan(runID: id, plan)
        XCTAssertEqual(try store.plan(runID: id), plan)
        try store.savePlan(runID: id, plan)  // replacing is allowed
        try store.dbQueue.write { db in try db.execute(sql: "DELETE FROM run WHERE id = ?", arguments: [id]) }
        XCTAssertNil(try store.plan(runID: id))
    }
}

final class LatestRunTests: XCTestCase {
    func testLatestCompleteRunReadsTheSameCasesAsLoad() throws {
        let store = try Store(path: ":memory:")
        var first = sampleRun()
        first.machineFingerprint = "fp"
        let a = try store.beginRun(first)
        try store.record(runID: a, sampleCase("read_rows", values: [1, 2]))
        try store.finish(runID: a, status: .complete)
        let b = try store.beginRun(first)
        try store.record(runID: b, sampleCase("read_rows", values: [3, 4, 5]))
        try store.record(runID: b, sampleCase("triad", values: [6]))
        try store.finish(runID: b, status: .complete)
        let c = try store.beginRun(first)   // still running: never chosen
        try store.record(runID: c, sampleCase("triad", values: [7]))
        let latest = try XCTUnwrap(store.latestCompleteRun(fingerprint: "fp"))
        XCTAssertEqual(latest.run.id, b)
        XCTAssertEqual(latest.cases, try store.load(runID: b).cases)
        XCTAssertNil(try store.latestCompleteRun(fingerprint: "other"))
    }
}
