// The fine-tuning report section drawn from given (not measured) finetune cases: the table's figures
// and the two plots (memory breakdown bars, loss curve) as real PNGs.
import Foundation
import XCTest
import HeadroomCore
import HeadroomStore
@testable import HeadroomReport

final class FinetuneSectionTests: XCTestCase {
    func finetuneCase(_ method: String, ckpt: Bool, seconds: [Double], activation: Double) -> MeasuredCase {
        var samples: [MeasuredCase.Sample] = []
        for (i, s) in seconds.enumerated() {
            samples.append(.init(metric: "step_seconds", unit: "s", repetition: i, value: s))
            samples.append(.init(metric: "tokens_per_s", unit: "tokens/s", repetition: i, value: 1024 / s))
            samples.append(.init(metric: "gflops", unit: "GFLOP/s", repetition: i, value: 450 * 1024 / s / 1e3))
        }
        for (i, l) in [10.4, 9.0, 7.5].enumerated() { samples.append(.init(metric: "loss", unit: "nats", repetition: i, value: l)) }
        let mib = 1048576.0
        let full = method == "full"
        for (m, v) in [("weights_bytes", 512 * mib), ("adapter_bytes", full ? 0 : mib), ("gradient_bytes", full ? 512 * mib : mib),
                       ("optimizer_bytes", full ? 1024 * mib : 2 * mib), ("activation_bytes", activation * mib),
                       ("rss_above_baseline_bytes", (full ? 2048 : 516) * mib + activation * mib)] {
            samples.append(.init(metric: m, unit: "B", repetition: 0, value: v))
        }
        var params = ["model": "tiny", "method": method, "precision": "f32", "seq_len": "256", "batch": "4", "checkpointing": String(ckpt)]
        if !full { params["rank"] = "8"; params["targets"] = "q,v" }
        return MeasuredCase(kind: "finetune", name: method + (ckpt ? "+ckpt" : ""), threads: 2, params: params, samples: samples)
    }

    func testSectionTableAndPlots() throws {
        let sgemm = MeasuredCase(kind: "probe", name: "sgemm", threads: 2, params: [:],
                                 samples: [.init(metric: "gflops", unit: "GFLOP/s", repetition: 0, value: 300)])
        let cases = [sgemm, finetuneCase("lora", ckpt: false, seconds: [2, 2.2, 1.8], activation: 912),
                     finetuneCase("lora", ckpt: true, seconds: [2.5, 2.6, 2.4], activation: 284),
                     finetuneCase("full", ckpt: false, seconds: [4, 4, 4], activation: 912)]
        let run = RunRecord(id: 3, scenarioName: "ft", scenarioFile: "f.yaml", scenarioHash: "h", scenarioText: "",
                            gitRevision: "abc", machineFingerprint: "fp", machineJson: "{}", headroomVersion: "t",
                            pid: 1, startedAt: Date(), endedAt: Date(), status: .complete)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ft-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let section = try XCTUnwrap(FinetuneSection().section(for: StoredRun(run: run, cases: cases), folder: folder))
        // LoRA without checkpointing: median 2 s → 2000 ms, 512 tokens/s, 230.4 GFLOP/s = 77 % of 300.
        XCTAssertTrue(section.markdown.contains("| lora r8 q,v f32, 2t | 256 × 4 | 2000 |"), section.markdown)
        XCTAssertTrue(section.markdown.contains("| 512 | 230 | 77% |"), section.markdown)
        XCTAssertTrue(section.markdown.contains("lora r8 q,v f32, ckpt, 2t"))
        XCTAssertEqual(section.plots.count, 2)
        for p in section.plots {
            try Gnuplot.render(p)
            let data = try Data(contentsOf: URL(fileURLWithPath: p.output))
            XCTAssertEqual(Array(data.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
        }
        XCTAssertNil(FinetuneSection().section(for: StoredRun(run: run, cases: [sgemm]), folder: folder))
    }
}
