import Foundation
import XCTest
@testable import HeadroomCore

/// What-if overrides go through the same strict reader as the file.
final class PlanOverrideTests: XCTestCase {
    let scenario = """
        schema: 1
        name: w
        measure: { model: tiny, threads: 1, prompt_tokens: [8] }
        plan:
          model: llama-3.1-8b
          demand: { users: 2000, requests_per_user_per_day: 40, peak_to_mean: 3, prompt_tokens: 800, output_tokens: 250 }
          slo: { ttft_p95_ms: 1000, tpot_p95_ms: 60 }
          hardware: [h100-sxm]
          precisions: [bf16]
        """

    func testOverridesReplaceValuesAndAddKeys() throws {
        let s = try PlanSettings.read(scenarioText: scenario, file: "w.yaml", overrides: [
            try PlanOverride("demand.users=4000"), try PlanOverride("plan.hardware=[l40s, rtx-4090]"),
            try PlanOverride("slo.tpot_p95_ms=80"), try PlanOverride("min_replicas=2"),
        ], catalog: repoCatalog())
        XCTAssertEqual(s.demand.users, 4000)
        XCTAssertEqual(s.demand.promptTokens, 800, "untouched keys stay")
        XCTAssertEqual(s.hardware, ["l40s", "rtx-4090"])
        XCTAssertEqual(s.slo.tpotP95, 0.08)
        XCTAssertEqual(s.minReplicas, 2)
    }

    func testABadOverrideGetsTheFileMessage() throws {
        XCTAssertThrowsError(try PlanSettings.read(scenarioText: scenario, file: "w.yaml", overrides: [try PlanOverride("demand.users=lots")],
                                                   catalog: repoCatalog())) { e in
            XCTAssertEqual("\(e)", "w.yaml with command-line overrides: plan.demand.users: expected an integer from 1 to 1000000000000, got \"lots\"")
        }
        XCTAssertThrowsError(try PlanSettings.read(scenarioText: scenario, file: "w.yaml", overrides: [try PlanOverride("demand.user=5")],
                                                   catalog: repoCatalog())) { e in
            XCTAssertTrue("\(e)".hasPrefix("w.yaml with command-line overrides: plan.demand.user: unknown key"), "\(e)")
        }
        XCTAssertThrowsError(try PlanOverride("users")) { e in
            XCTAssertEqual("\(e)", "--set: expected key.path=value, got \"users\"")
        }
    }

    func testAScenarioWithoutAPlanNeedsOverridesForEverything() throws {
        let bare = "schema: 1\nname: b\nmeasure: { model: tiny, threads: 1, prompt_tokens: [8] }\n"
        XCTAssertThrowsError(try PlanSettings.read(scenarioText: bare, file: "b.yaml", overrides: [], catalog: repoCatalog())) { e in
            XCTAssertEqual("\(e)", "b.yaml: plan: missing; this scenario has no plan: section (add one, or give the plan on the command line)")
        }
    }
}
