import Foundation
import XCTest
import HeadroomCore
@testable import HeadroomStore

final class BaselineStoreTests: XCTestCase {
    func testSaveReplaceListAndLoad() throws {
        let store = try Store(path: ":memory:")
        XCTAssertTrue(try store.appliedMigrations().contains("v3: baselines"))
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
            XCTAssertEqual("\($0)", ":memory:: run \(broken) is interrupted; only a complete run can be a baseline")
        }
        XCTAssertThrowsError(try store.saveBaseline(name: "x", runID: 99)) { XCTAssertEqual("\($0)", "no run with id 99 in the store") }
        XCTAssertEqual(try store.baselines().map(\.name), ["main"])
        let b = try store.loadBaseline(named: "main")
        XCTAssertEqual(b.runID, second)
        XCTAssertEqual(b.scenarioName, "gate")
        XCTAssertEqual(b.cases.map { $0.values("gbps") }, [[29]])
        XCTAssertThrowsError(try store.loadBaseline(named: "nope")) {
            XCTAssertEqual("\($0)", ":memory:: no baseline named \"nope\"; the store has main")
        }
    }
}
