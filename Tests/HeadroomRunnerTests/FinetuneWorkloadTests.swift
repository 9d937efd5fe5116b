// The fine-tuning workload of a scenario: one case per thread count, method and checkpointing setting,
// each stored as raw per-step samples plus its memory figures.
import XCTest
import HeadroomCore
@testable import HeadroomRunner

final class FinetuneWorkloadTests: XCTestCase {
    let micro = ModelShape(id: "micro", name: "micro", layers: 2, dim: 32, heads: 4, kvHeads: 2, ffnDim: 64, vocab: 64, context: 32,
                           source: "test")

    func testCasesAndSamples() throws {
        let settings = FinetuneSettings(methods: ["lora", "full"], rank: 2, alpha: 4, targets: ["q", "v"], seqLen: 8, batch: 2,
                                        steps: 3, warmup: 1, checkpointing: [false, true])
        let w = FinetuneWorkload(model: micro, settings: settings, threads: [1, 2])
        let specs = w.cases()
        XCTAssertEqual(specs.count, 8)
        XCTAssertEqual(Set(specs.map(\.name)), ["lora", "lora+ckpt", "full", "full+ckpt"])
        XCTAssertEqual(specs[0].steps, 4)
        XCTAssertEqual(specs[0].params["targets"], "q,v")
        XCTAssertNil(specs.first { $0.name == "full" }?.params["rank"])
        var steps = 0
        let m = try w.measure(specs[1]) { steps += 1 }  // lora with checkpointing, 1 thread
        XCTAssertEqual(steps, 4)
        XCTAssertEqual(m.values("step_seconds").count, 3)
        XCTAssertEqual(m.values("loss").count, 4)
        XCTAssertEqual(m.values("trainable_params"), [Double(2 * (2 * 32 + 32 * 2 + 2 * 32 + 16 * 2))])
        XCTAssertTrue(m.values("tokens_per_s").allSatisfy { $0 > 0 })
        XCTAssertNotNil(m.values("activation_bytes").first)
    }

    /// Precisions multiply the LoRA cases; full fine-tuning is measured at f32 only; the q4_0 case runs on a q4_0 base.
    func testPrecisionsAreLoRAOnly() throws {
        let settings = FinetuneSettings(methods: ["lora", "full"], rank: 2, alpha: 4, targets: ["q", "v"], precisions: ["f32", "q4_0"],
                                        seqLen: 8, batch: 1, steps: 1, warmup: 0, checkpointing: [false])
        let specs = FinetuneWorkload(model: micro, settings: settings, threads: [1]).cases()
        XCTAssertEqual(specs.map(\.name), ["lora", "lora-q4_0", "full"])
        XCTAssertEqual(specs.map { $0.params["precision"] }, ["f32", "q4_0", "f32"])
        let w = FinetuneWorkload(model: micro, settings: settings, threads: [1])
        let f32 = try w.measure(specs[0]) {}, q4 = try w.measure(specs[1]) {}
        XCTAssertLessThan(try XCTUnwrap(q4.values("weights_bytes").first), try XCTUnwrap(f32.values("weights_bytes").first))
    }

    func testScenarioWithoutFinetuneHasNoWorkload() {
        let m = MeasureSettings(model: micro, threads: [1], promptTokens: [8], batch: [1], repetitions: 1, warmup: 0)
        XCTAssertNil(FinetuneWorkload(m))
    }
}
