import Foundation
import XCTest
import HeadroomCore
import HeadroomStore
@testable import HeadroomRunner

final class RoundsTests: XCTestCase {
    func testRoundsShareTheRepetitionsAndMergeEachCaseOnce() async throws {
        let store = try SQLiteStore(path: ":memory:")
        var s = smallScenario()
        s.measure?.repetitions = 5
        s.measure?.gemmRepetitions = 7
        s.probe.repetitions = 3
        let share = Rounds.share(of: s, rounds: 2)
        XCTAssertEqual(share.measure!.repetitions, 3)
        XCTAssertEqual(share.measure!.gemmRepetitions, 4, "the GEMMs' own repetitions are shared out too")
        XCTAssertEqual(share.probe.repetitions, 2)
        var rounds: [Int] = []
        let runner = Runner(store: store, progress: Progress(enabled: false), version: "test")
        let outcome = try await runner.run(scenario: s, rounds: 2, gitRevision: "rev") { sc in
            rounds.append(sc.measure!.repetitions)
            return [("probe", ProbeWorkload(settings: sc.probe, threads: [1])), ("gemm", GemmWorkload(sc.measure!))]
        }
        XCTAssertEqual(rounds, [3, 3])
        let stored = try store.load(runID: outcome.runID)
        XCTAssertEqual(stored.run.status, .complete)
        XCTAssertEqual(stored.cases.count, 5 + 12, "each case stored once")
        for c in stored.cases {
            let n = c.kind == "probe" ? 4 : 8
            XCTAssertEqual(c.values("seconds").count, n, "\(c.kind) \(c.name)")
            XCTAssertEqual(c.samples.filter { $0.metric == "seconds" }.map(\.repetition).sorted(), Array(0..<n))
        }
    }

    func testMergeKeepsDistinctCasesApartAndOrder() {
        func c(_ name: String, _ t: Int, _ v: [Double]) -> MeasuredCase {
            MeasuredCase(kind: "gemm", name: name, threads: t, params: ["M": "1"],
                         samples: v.enumerated().map { .init(metric: "seconds", unit: "s", repetition: $0.offset, value: $0.element) })
        }
        let merged = Rounds.merge([c("a", 1, [1, 2]), c("b", 1, [5]), c("a", 2, [7]), c("a", 1, [3])])
        XCTAssertEqual(merged.map(\.name), ["a", "b", "a"])
        XCTAssertEqual(merged[0].values("seconds"), [1, 2, 3])
        XCTAssertEqual(merged[2].values("seconds"), [7])
    }
}
