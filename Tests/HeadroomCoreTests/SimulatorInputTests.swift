import Foundation
import HeadroomScheduling
import XCTest
@testable import HeadroomCore

/// Every invalid simulation input throws a `SimulationError` naming its field; so does a predictor that
/// returns a time no step can take.
final class SimulatorInputTests: XCTestCase {
    let spec = replicaSpec(StepTimes { _ in 0.01 })

    func good() -> SimulationConfig { simulation(spec, arrivals: .poisson(rate: 10), requests: 5) }

    func field(_ edit: (inout SimulationConfig) -> Void) -> String? {
        var c = good()
        edit(&c)
        do {
            _ = try Simulation.run(c)
            return nil
        } catch {
            return error.field
        }
    }

    func testEachBadFieldIsNamed() {
        XCTAssertNil(field { _ in })
        let entry = LoadTraceEntry(timestamp: 1, promptTokens: 8, outputTokens: 2)
        let cases: [(String, (inout SimulationConfig) -> Void)] = [
            ("arrivals.rate", { $0.arrivals = .poisson(rate: 0) }),
            ("arrivals.rate", { $0.arrivals = .constant(rate: .infinity) }),
            ("arrivals.rate", { $0.arrivals = .gamma(rate: .nan, cv: 1) }),
            ("arrivals.cv", { $0.arrivals = .gamma(rate: 1, cv: 0) }),
            ("arrivals.trace", { $0.arrivals = .trace([]) }),
            ("arrivals.trace[1].timestamp", { $0.arrivals = .trace([entry, LoadTraceEntry(timestamp: 0.5, promptTokens: 8, outputTokens: 2)]) }),
            ("arrivals.trace[0].timestamp", { $0.arrivals = .trace([LoadTraceEntry(timestamp: -1, promptTokens: 8, outputTokens: 2)]) }),
            ("arrivals.trace[0].outputTokens", { $0.arrivals = .trace([LoadTraceEntry(timestamp: 0, promptTokens: 8, outputTokens: 0)]) }),
            ("promptLengths.fixed", { $0.promptLengths = .fixed(0) }),
            ("promptLengths.max", { $0.promptLengths = .uniform(min: 5, max: 3) }),
            ("promptLengths.min", { $0.promptLengths = .uniform(min: 0, max: 3) }),
            ("outputLengths.sigma", { $0.outputLengths = .lognormal(median: 10, sigma: -1) }),
            ("outputLengths.median", { $0.outputLengths = .lognormal(median: 0.5, sigma: 1) }),
            ("outputLengths.values", { $0.outputLengths = .values([]) }),
            ("outputLengths.values[1]", { $0.outputLengths = .values([3, 0]) }),
            ("replicas", { $0.replicas = [] }),
            ("replicas[1].pipelineStages", { $0.replicas = [.init(self.spec), .init(self.spec, pipelineStages: 0)] }),
            ("replicas[0].scheduler.totalBlocks", { $0.replicas = [.init(replicaSpec(StepTimes { _ in 0.01 }, blocks: 3), pipelineStages: 4)] }),
            ("replicas[0].scheduler.maxBatchedTokens", { $0.replicas = [.init(replicaSpec(StepTimes { _ in 0.01 }, maxNumSeqs: 8, budget: 4))] }),
            ("requests", { $0.requests = 0 }),
            ("slo.ttftP95", { $0.slo = SLO(ttftP95: 0, tpotP95: 1) }),
            ("slo.tpotP95", { $0.slo = SLO(ttftP95: 1, tpotP95: .infinity) }),
            ("replicas[0].predictor", { $0.replicas = [.init(replicaSpec(StepTimes { _ in .nan }))] }),
            ("replicas[0].predictor", { $0.replicas = [.init(replicaSpec(StepTimes { $0.decodes > 0 ? 0 : 0.01 }))] }),
        ]
        for (expected, edit) in cases { XCTAssertEqual(field(edit), expected) }
    }

    func testTheMessageSaysWhatWasExpectedAndWhatCame() throws {
        var c = good()
        c.arrivals = .gamma(rate: 1, cv: 0)
        XCTAssertThrowsError(try Simulation.run(c)) { error in
            XCTAssertEqual("\(error)", "arrivals.cv: expected a coefficient of variation from 1e-6 to 1e6 (1 is Poisson), got 0.0")
        }
        c = good()
        c.replicas = [.init(replicaSpec(StepTimes { _ in 0.01 }, blocks: 3), pipelineStages: 4)]
        XCTAssertThrowsError(try Simulation.run(c)) { error in
            XCTAssertEqual("\(error)", "replicas[0].scheduler.totalBlocks: expected at least 1, got 3 over 4 stages, 0 each")
        }
        c = good()
        c.replicas = [.init(replicaSpec(StepTimes { _ in -1 }))]
        XCTAssertThrowsError(try Simulation.run(c)) { error in
            XCTAssertEqual("\(error)", "replicas[0].predictor: expected a finite step time above 0 seconds, got -1.0 for a step of 32 tokens (prefill chunks: 1, decodes: 0)")
        }
    }

    func testReplicationCountsAndServingModelSizesAreChecked() {
        XCTAssertThrowsError(try Simulation.replicate(good(), replications: 0)) { XCTAssertEqual(($0 as? SimulationError)?.field, "replications") }
        XCTAssertThrowsError(try SimulatorServingModel(requests: 10)) { XCTAssertEqual(($0 as? SimulationError)?.field, "requests") }
        XCTAssertThrowsError(try SimulatorServingModel(requests: 500, replications: 0)) {
            XCTAssertEqual(($0 as? SimulationError)?.field, "replications")
        }
        XCTAssertThrowsError(try SimulatorBenchmark.run(spec, load: 1.5)) { XCTAssertEqual(($0 as? SimulationError)?.field, "load") }
    }
}
