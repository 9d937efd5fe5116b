import Foundation
import XCTest
import HeadroomCore
import HeadroomStore
@testable import HeadroomReport

/// The planning section draws a plan handed to it: tables, the four plots, escaping, no planning.
final class PlanningSectionTests: XCTestCase {
    func plan() -> PlanResult {
        let model = ModelShape(id: "m", name: "Model <b>&", layers: 4, dim: 256, heads: 8, kvHeads: 4, ffnDim: 512, vocab: 1000,
                               context: 4096, source: "t")
        func gpu(_ id: String, _ bw: Double, _ mem: Double) -> HardwareProfile {
            HardwareProfile(id: id, name: id, kind: .gpu, peakTflops: ["fp32": 10, "bf16": 100], memoryGib: mem, bandwidthGbps: bw,
                            interconnect: Interconnect(kind: "pcie", bandwidthGbps: 64, latencyUs: 10), devicesPerNode: 4, powerWatts: 300,
                            efficiency: Efficiency(compute: 0.5, bandwidth: 0.6), calibration: "default", source: "t")
        }
        let local = HardwareProfile(id: "local", name: "local", kind: .local, peakTflops: ["fp32": 0.3, "int8": 0.3, "fp16": 0.3, "bf16": 0.3],
                                    memoryGib: 16, bandwidthGbps: 30, interconnect: Interconnect(kind: "none", bandwidthGbps: 0, latencyUs: 0),
                                    devicesPerNode: 1, powerWatts: 0, efficiency: Efficiency(compute: 0.8, bandwidth: 0.6), calibration: "fit", source: "t")
        let sheet = PriceSheet(file: "p", offers: [.init(hardware: "a", provider: "p", devices: 1, maxDevices: 4, onDemandUSDPerHour: 1, source: "t"),
                                                   .init(hardware: "b", provider: "q", devices: 1, onDemandUSDPerHour: 3, source: "t")],
                               onPrem: [.init(hardware: "a", purchaseUSDPerDevice: 5000, source: "t")])
        let op = OpCost(name: "g", flops: 2e9, bytes: 1e7, dtype: "fp32")
        var pt = CalibrationPoint(label: "g", kind: "gemm", ops: [op], peakFLOPs: ["fp32": 3e11], bandwidth: 3e10, measuredSeconds: 0.01, samples: 3)
        pt.measuredSeconds = pt.predicted(Efficiency(compute: 0.8, bandwidth: 0.6)) * 1.1
        var pt2 = pt
        pt2.ops = [OpCost(name: "h", flops: 2e6, bytes: 1e8, dtype: "fp32")]
        pt2.measuredSeconds = pt2.predicted(Efficiency(compute: 0.8, bandwidth: 0.6))
        let cal = Calibration.calibrate([pt, pt2, pt], fallback: Efficiency(compute: 0.5, bandwidth: 0.5), fallbackLabel: "d")
        let input = PlanInput(model: model, demand: Demand(users: 1000, requestsPerUserPerDay: 20, peakToMean: 2, promptTokens: 200, outputTokens: 100),
                              slo: SLO(ttftP95: 1, tpotP95: 0.05), hardware: [gpu("a", 500, 16), gpu("b", 2000, 80), local],
                              precisions: [.bf16, .int4], tensorParallel: [1, 2], prices: sheet,
                              finetune: FineTuneSettings(method: .lora, documents: 100, tokensPerDocument: 512, epochs: 1), calibration: cal)
        return Planner(servingModel: QueueingServingModel()).plan(input)
    }

    func testSectionHasTheTablesAndPlotsAndEscapes() throws {
        let p = plan()
        XCTAssertNotNil(p.recommendation)
        let s = PlanningSection(plan: p).section(folder: "/tmp/x")
        for heading in ["Ranked configurations", "Pareto set", "Memory per device", "Fine-tuning plan", "Calibration", "against batch"] {
            XCTAssertTrue(s.markdown.contains(heading), heading)
        }
        XCTAssertTrue(s.markdown.contains("PREDICTED"))
        XCTAssertEqual(Set(s.plots.map { ($0.output as NSString).lastPathComponent }),
                       ["plan_cost_vs_users.png", "plan_memory.png", "plan_latency_vs_load.png", "plan_roofline.png"])
        XCTAssertFalse(s.html.contains("<b>&"), "a model name is escaped in HTML")
        XCTAssertTrue(s.html.contains("Model &lt;b&gt;&amp;"))
    }

    func testAPerRegimeCalibrationGetsItsTablesAndThePredictedAgainstMeasuredPlot() throws {
        var p = plan()
        func pt(_ k: KernelRegime, _ size: Int, _ measured: Double) -> RegimePoint {
            RegimePoint(label: "\(k.rawValue) \(size)", key: RegimeKey(kernel: k, format: "int4", threads: 2), size: size,
                        memorySeconds: 0.01, computeSeconds: 0.001 * Double(size), measuredSeconds: measured, samples: 3)
        }
        p.regimeCalibration = RegimeCalibration(points: [pt(.decodeBatch, 2, 0.02), pt(.decodeBatch, 4, 0.023), pt(.decodeBatch, 8, 0.031),
                                                          pt(.prefill, 16, 0.05), pt(.prefill, 64, 0.15), pt(.prefill, 128, 0.26)], runID: 7)
        let s = PlanningSection(plan: p).section(folder: "/tmp/x")
        XCTAssertTrue(s.markdown.contains("the local execution-time model per regime"), s.markdown)
        XCTAssertTrue(s.markdown.contains("decode batch>1 int4 ×2t"))
        XCTAssertTrue(s.markdown.contains("against their regime fitted without each"))
        let plot = try XCTUnwrap(s.plots.first { $0.output.hasSuffix("plan_calibration.png") })
        XCTAssertTrue(plot.script.contains("1.1 * x") && plot.script.contains("0.9 * x"), "±10 % bands")
        XCTAssertEqual(plot.data.count, 2, "one series per kernel measured")
        let text = PlanTables.text(p, limit: 12)
        XCTAssertTrue(text.contains("Calibration of the local profile, per regime"), text)
        XCTAssertEqual(PlanTables.localCalibration(p, precision: "int8")?.contains("int8 not measured"), true)
        XCTAssertEqual(PlanTables.localCalibration(p, precision: "int4")?.hasPrefix("local calibration: 6 int4 measurements per regime"), true)
    }

    /// Figures beyond Int's range are printed from the Double, and a 64-bit user count is printed whole.
    func testHugeFiguresPrintWithoutTrapping() throws {
        XCTAssertEqual(PlanTables.money(1e19), "$1.00 × 10¹⁹")
        XCTAssertEqual(PlanTables.money(1234.5), "$1,235")
        XCTAssertEqual(PlanTables.money(nil), "—")
        XCTAssertEqual(Fmt.sig(1e20), "1e+20")
        XCTAssertEqual(Fmt.sig(-9.5e18), "-9.5e+18")
        XCTAssertEqual(Fmt.sig(123_456.5), "123457")
        var p = plan()
        p.demand.users = 999_999_999_999
        XCTAssertTrue(PlanTables.preamble(p).contains(": 1.00 T users × 20 requests/day, 200 prompt + 100 output tokens;"),
                      PlanTables.preamble(p))
        p.demand.users = 1000
        p.outputTokensPerMonth = 6.08e8
        XCTAssertTrue(PlanTables.preamble(p).contains(": 1,000 users × 20 requests/day, 200 prompt + 100 output tokens;"), PlanTables.preamble(p))
        XCTAssertTrue(PlanTables.preamble(p).contains(", 608 M output tokens/month."), PlanTables.preamble(p))
        p.training = [TrainingPlanRow(hardware: "a", flops: 1e38, devices: nil, days: nil, whyNot: "needs 1.4e+10 devices")]
        XCTAssertTrue(try XCTUnwrap(PlanTables.training(p)).rendered.contains("needs 1.4e+10 devices"))
    }

    /// The terminal's ranked table: the first rows and "N more (--all)", or every row.
    func testRankedTableEndsWithHowManyMoreUnlessAll() throws {
        let p = plan()
        let n = p.ranked.count
        XCTAssertGreaterThan(n, 2)
        let short = PlanTables.rankedText(p, limit: 2)
        XCTAssertTrue(short.hasSuffix("\n\(n - 2) more (--all)"), short)
        let lines = short.split(separator: "\n")
        XCTAssertEqual(lines.count, 2 + 2 + 1, "header, rule, two rows, the line")
        let all = PlanTables.rankedText(p, limit: nil)
        XCTAssertFalse(all.contains("more (--all)"))
        XCTAssertEqual(all.split(separator: "\n").count, 2 + n)
        for c in p.ranked { XCTAssertTrue(all.contains(c.id), c.id) }
        XCTAssertFalse(PlanTables.rankedText(p, limit: n).contains("more (--all)"))
        XCTAssertTrue(PlanTables.text(p, limit: 1).contains("\(n - 1) more (--all)"))
        XCTAssertTrue(PlanningSection(plan: p).section(folder: "/tmp/x").markdown.contains("ranked by autoscaled monthly cost, then p95 TTFT, then p95 TPOT"))
    }

    /// Fine-tuning rows that do not apply print "not applicable" and the reason, not numbers; the
    /// recommendation sentence is printed with its money formatted.
    func testFineTuningTableSaysNotApplicableAndRecommends() throws {
        var p = plan()
        var na = FineTunePlanRow(hardware: "z", method: "full", flops: 1e18)
        na.notApplicable = "`local` is this one machine (one device); the plan needs 16"
        p.finetune.append(na)
        let t = try XCTUnwrap(PlanTables.finetune(p)).rendered
        let line = try XCTUnwrap(t.split(separator: "\n").first { $0.hasPrefix("z ") })
        XCTAssertTrue(line.hasSuffix("not applicable: `local` is this one machine (one device); the plan needs 16"), String(line))
        XCTAssertFalse(line.contains("$"))
        let r = try XCTUnwrap(PlanTables.finetuneRecommendation(p))
        XCTAssertTrue(r.hasPrefix("Fine-tuning recommendation (predicted): lora on "), r)
        p.finetuneRecommendation = nil
        XCTAssertEqual(PlanTables.finetuneRecommendation(p), "No lora fine-tuning plan with a price finishes by the deadline: see the fine-tuning plan.")
    }

    func testPlanReportRendersWhenGnuplotIsThere() throws {
        guard Gnuplot.executable() != nil else { throw XCTSkip("gnuplot not installed") }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("plan-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let written = try ReportWriter.writePlan(plan(), scenario: "x", folder: folder)
        XCTAssertEqual(written.count, 6)
        for f in written { XCTAssertGreaterThan((try FileManager.default.attributesOfItem(atPath: f)[.size] as? Int) ?? 0, 0, f) }
    }
}
