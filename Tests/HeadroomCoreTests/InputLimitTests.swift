import Foundation
import XCTest
@testable import HeadroomCore

/// Numbers the readers accept are numbers the planner can hold: every field has a stated bound, non-finite
/// values are refused, and a plan at the bounds is answered (with "needs more than …" where it must be),
/// never trapped on a Double → Int conversion.
final class InputLimitTests: XCTestCase {
    // MARK: the conversion helpers

    func testCheckedConversionRefusesWhatIntCannotHold() {
        XCTAssertEqual(Int(checking: 2.2, rounding: .up), 3)
        XCTAssertEqual(Int(checking: -2.5, rounding: .toNearestOrAwayFromZero), -3)
        XCTAssertNil(Int(checking: .nan, rounding: .up))
        XCTAssertNil(Int(checking: .infinity, rounding: .down))
        XCTAssertNil(Int(checking: -.infinity, rounding: .down))
        XCTAssertNil(Int(checking: 9_223_372_036_854_775_808.0, rounding: .down), "2^63 is one past Int.max")
        XCTAssertNil(Int(checking: 1e300, rounding: .up))
        XCTAssertEqual(Int(checking: 1e9, rounding: .up, within: 0...1_000_000_000), 1_000_000_000)
        XCTAssertNil(Int(checking: 1e9 + 0.5, rounding: .up, within: 0...1_000_000_000))
    }

    func testSaturatingConversionClampsAndSaysWhereNaNGoes() {
        XCTAssertEqual(Int(saturating: 3.2, rounding: .up, into: 1...10), 4)
        XCTAssertEqual(Int(saturating: 1e300, rounding: .up, into: 1...10), 10)
        XCTAssertEqual(Int(saturating: .infinity, rounding: .up, into: 1...10), 10)
        XCTAssertEqual(Int(saturating: -.infinity, rounding: .up, into: 1...10), 1)
        XCTAssertEqual(Int(saturating: .nan, rounding: .up, into: 1...10), 1)
        XCTAssertEqual(Int(saturating: 1e300, rounding: .down, into: 0...Int.max), Int.max)
        XCTAssertEqual(Int(saturating: -1e300, rounding: .down, into: Int.min...Int.max), Int.min)
    }

    // MARK: readers

    func message(_ demand: String = "users: 2000, requests_per_user_per_day: 40, prompt_tokens: 800, output_tokens: 250",
                 extra: String = "") throws -> String {
        let text = """
            schema: 1
            name: p
            measure: { model: tiny, threads: 1, prompt_tokens: [8] }
            plan:
              model: llama-3.1-8b
              demand: { \(demand) }
              slo: { ttft_p95_ms: 1000, tpot_p95_ms: 60 }
              hardware: [h100-sxm]
              precisions: [bf16]
            \(extra)
            """
        do { _ = try Scenario.parse(text, file: "Scenarios/x.yaml", catalog: repoCatalog()) } catch let e as InputError {
            return e.description
        }
        return "no error"
    }

    func testPlanNumbersBeyondTheirBoundsNameTheBound() throws {
        XCTAssertEqual(try message("users: 9223372036854775807, requests_per_user_per_day: 40, prompt_tokens: 800, output_tokens: 250"),
                       "Scenarios/x.yaml: plan.demand.users: expected an integer from 1 to 1000000000000, got \"9223372036854775807\"")
        XCTAssertEqual(try message("users: 2000, requests_per_user_per_day: 1e300, prompt_tokens: 800, output_tokens: 250"),
                       "Scenarios/x.yaml: plan.demand.requests_per_user_per_day: expected a positive number of at most 1000000, got \"1e300\"")
        XCTAssertEqual(try message("users: 2000, requests_per_user_per_day: 40, peak_to_mean: 1e6, prompt_tokens: 800, output_tokens: 250"),
                       "Scenarios/x.yaml: plan.demand.peak_to_mean: expected a number from 1 to 1000, got \"1e6\"")
        // Int.max + Int.max would overflow the context check before it could refuse.
        XCTAssertEqual(try message("users: 2000, requests_per_user_per_day: 40, prompt_tokens: 9223372036854775807, output_tokens: 9223372036854775807"),
                       "Scenarios/x.yaml: plan.demand.prompt_tokens: expected an integer from 1 to 10000000, got \"9223372036854775807\"")
        XCTAssertEqual(try message(extra: "  training: { tokens: 1e300, days: 30 }"),
                       "Scenarios/x.yaml: plan.training.tokens: expected a positive number of at most 1e+16, got \"1e300\"")
        XCTAssertEqual(try message(extra: "  training: { tokens: 15e12, days: 1e-300 }"),
                       "Scenarios/x.yaml: plan.training.days: expected a number from 0.001 to 36500, got \"1e-300\"")
        XCTAssertEqual(try message(extra: "  finetune: { method: lora, documents: 10000, tokens_per_document: 1024, epochs: 1e9 }"),
                       "Scenarios/x.yaml: plan.finetune.epochs: expected a positive number of at most 1000, got \"1e9\"")
    }

    func testNonFiniteNumbersAreRefusedEverywhere() throws {
        for v in [".inf", "-.inf", ".nan", ".NaN", "inf", "nan", "1e999"] {
            XCTAssertEqual(try message("users: 2000, requests_per_user_per_day: \(v), prompt_tokens: 800, output_tokens: 250"),
                           "Scenarios/x.yaml: plan.demand.requests_per_user_per_day: expected a positive number of at most 1000000, got \"\(v)\"", v)
        }
        let field = try YAMLField.document("x: .inf", file: "f.yaml").mapping(allowed: ["x"]).required("x")
        XCTAssertThrowsError(try field.double(min: -Double.greatestFiniteMagnitude, max: .greatestFiniteMagnitude))
    }

    /// A model file may state any context; the token counts measured against it are bounded all the same,
    /// so prompt + generate cannot overflow before the context check.
    func testMeasureTokensAreBoundedWhateverTheModelFileSays() throws {
        let huge = ModelShape(id: "f", name: "f", layers: 1, dim: 64, heads: 4, kvHeads: 2, ffnDim: 96, vocab: 300, context: Int.max, source: "file")
        let resolver: ModelResolver = { _, _ in ResolvedModel(shape: huge, file: ModelFile(path: "f.gguf", bytes: 1, precision: "f32")) }
        let text = """
            schema: 1
            name: m
            measure: { model: f.gguf, threads: 1, prompt_tokens: [9223372036854775807], generate_tokens: 9223372036854775807 }
            """
        XCTAssertThrowsError(try Scenario.parse(text, file: "m.yaml", catalog: repoCatalog(), resolveModel: resolver)) { e in
            XCTAssertEqual("\(e)", "m.yaml: measure.generate_tokens: expected an integer from 0 to 10000000, got \"9223372036854775807\"")
        }
    }

    func priceMessage(_ onPrem: String) throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("prices-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: file) }
        try """
            schema: 1
            offers:
              - { hardware: h100-sxm, provider: p, devices: 1, on_demand_usd_per_hour: 2, source: s }
            on_prem:
              - { hardware: h100-sxm, purchase_usd_per_device: \(onPrem), source: s }
            """.write(to: file, atomically: true, encoding: .utf8)
        do { _ = try PriceSheet.load(file.path, hardware: repoCatalog().hardware) } catch let e as InputError {
            return e.description.replacingOccurrences(of: file.path, with: "prices.yaml")
        }
        return "no error"
    }

    func testOnPremisesPricesBeyondTheBoundAreRefused() throws {
        XCTAssertEqual(try priceMessage("1e19"),
                       "prices.yaml: on_prem[0].purchase_usd_per_device: expected a positive number of at most 1000000000, got \"1e19\"")
        XCTAssertEqual(try priceMessage(".inf"),
                       "prices.yaml: on_prem[0].purchase_usd_per_device: expected a positive number of at most 1000000000, got \".inf\"")
        XCTAssertEqual(try priceMessage("35000"), "no error")
    }

    func testTheShippedCatalogIsWithinEveryBound() throws {
        let c = try repoCatalog()
        XCTAssertGreaterThanOrEqual(c.models.count, 14)
        XCTAssertFalse(c.hardware.isEmpty)
        XCTAssertNotNil(c.prices)
    }

    // MARK: the planner at the bounds

    func extremeInput(_ demand: Demand, context: Int = 131_072) throws -> PlanInput {
        let c = try repoCatalog()
        var model = try c.model("llama-3.1-8b")
        model.context = context
        let sheet = PriceSheet(file: "max", hoursPerMonth: PriceLimits.hoursPerMonth, amortisationMonths: PriceLimits.amortisationMonthsMin,
                               usdPerKWh: PriceLimits.usdPerKWh, pue: PriceLimits.pue,
                               offers: ["h100-sxm", "l4", "xeon-8480"].map {
                                   .init(hardware: $0, provider: "p", devices: 1, maxDevices: 8, onDemandUSDPerHour: PriceLimits.usdPerHour, source: "t")
                               },
                               onPrem: [.init(hardware: "h100-sxm", purchaseUSDPerDevice: PriceLimits.purchaseUSD, source: "t")])
        return PlanInput(model: model, demand: demand, slo: SLO(ttftP95: PlanLimits.sloMs / 1000, tpotP95: PlanLimits.sloMs / 1000),
                         hardware: try ["h100-sxm", "l4", "xeon-8480"].map { try c.hardware($0) }, precisions: [.bf16, .int4],
                         tensorParallel: [1, 8], minReplicas: 10_000, prices: sheet,
                         finetune: FineTuneSettings(method: .full, documents: PlanLimits.documents, tokensPerDocument: PlanLimits.tokensPerRequest,
                                                    epochs: PlanLimits.epochs, seqLen: 2048),
                         training: TrainingSettings(tokens: PlanLimits.trainingTokens, days: PlanLimits.trainingDaysMin))
    }

    /// Every figure of a plan is finite or absent, and what cannot be sized says why.
    func assertAnswered(_ plan: PlanResult, file: StaticString = #filePath, line: UInt = #line) {
        for c in plan.candidates {
            XCTAssertTrue(c.meetsSlo || c.whyNot != nil, "\(c.id) neither meets the SLO nor says why", file: file, line: line)
            for v in [c.predictedTtftP95Ms, c.predictedTpotP95Ms, c.monthlyCostUsd?.alwaysOn, c.monthlyCostUsd?.autoscaled,
                      c.cost?.onPrem?.purchaseUSD, c.cost?.onPrem?.monthlyUSD, c.capacityRpsPerReplica].compactMap({ $0 }) {
                XCTAssertTrue(v.isFinite, "\(c.id): \(v)", file: file, line: line)
            }
        }
        for r in plan.training {
            XCTAssertTrue(r.devices != nil || r.whyNot != nil || r.notApplicable != nil, r.hardware, file: file, line: line)
            XCTAssertTrue(r.flops.isFinite, file: file, line: line)
        }
        for r in plan.finetune { XCTAssertTrue(r.flops.isFinite && (r.hours ?? 0).isFinite && (r.usd ?? 0).isFinite, file: file, line: line) }
    }

    func testAPlanAtTheUpperBoundsIsAnsweredNotTrapped() throws {
        let demand = Demand(users: PlanLimits.users, requestsPerUserPerDay: PlanLimits.requestsPerUserPerDay, peakToMean: PlanLimits.peakToMean,
                            promptTokens: 800, outputTokens: 250)
        let plan = Planner().plan(try extremeInput(demand))
        assertAnswered(plan)
        XCTAssertTrue(plan.candidates.contains { $0.whyNot?.contains("replicas for the peak") == true && $0.whyNot!.contains("1000000000") },
                      plan.candidates.compactMap(\.whyNot).joined(separator: "\n"))
        XCTAssertTrue(plan.training.contains { $0.whyNot?.contains("devices to finish") == true })
        XCTAssertTrue(plan.peakRequestsPerSecond.isFinite && plan.outputTokensPerMonth.isFinite)
        // The cost curve scales users up to 8 × the bound without overflowing.
        XCTAssertTrue(plan.costCurves.allSatisfy { $0.points.allSatisfy { $0.users >= 1 } })
    }

    func testAPlanWithTheLongestRequestsIsAnsweredNotTrapped() throws {
        let demand = Demand(users: PlanLimits.users, requestsPerUserPerDay: PlanLimits.requestsPerUserPerDay,
                            hourlyProfile: [PlanLimits.hourlyWeight] + Array(repeating: 0, count: 23),
                            promptTokens: PlanLimits.tokensPerRequest, outputTokens: PlanLimits.tokensPerRequest)
        assertAnswered(Planner().plan(try extremeInput(demand, context: CatalogLimits.context)))
    }

    /// A demand the planner can size at a price: costs beyond Int's range are printed, not converted.
    func testAPlanWithCostsBeyondIntsRangeIsAnswered() throws {
        let demand = Demand(users: 200_000_000, requestsPerUserPerDay: 1000, peakToMean: 3, promptTokens: 800, outputTokens: 250)
        let plan = Planner().plan(try extremeInput(demand), curves: false)
        assertAnswered(plan)
        let priced = try XCTUnwrap(plan.ranked.first)
        XCTAssertGreaterThan(priced.monthlyCostUsd!.alwaysOn, 1e13)
    }
}
