// `measure.finetune` in a scenario: values as written, defaults, and bad input named by key path.
import XCTest
@testable import HeadroomCore

final class FinetuneSettingsTests: XCTestCase {
    func parse(_ finetune: String) throws -> Scenario {
        try Scenario.parse("""
            schema: 1
            name: ft
            measure:
              model: tiny
              threads: [2]
              prompt_tokens: [8]
              finetune: \(finetune)
            """, file: "ft.yaml", catalog: repoCatalog())
    }

    func testValuesAsWritten() throws {
        let s = try parse("{ method: [lora, full], rank: 4, alpha: 8, dropout: 0.1, targets: [q, k, v, o], seq_len: 128, batch: 2, steps: 3, warmup: 0, checkpointing: [false, true], learning_rate: 0.01 }")
        let f = try XCTUnwrap(s.measure!.finetune)
        XCTAssertEqual(f, FinetuneSettings(methods: ["lora", "full"], rank: 4, alpha: 8, dropout: 0.1, targets: ["q", "k", "v", "o"],
                                           seqLen: 128, batch: 2, steps: 3, warmup: 0, checkpointing: [false, true], learningRate: 0.01))
    }

    func testQuantizedBaseForLoRA() throws {
        XCTAssertEqual(try parse("{ method: lora, precision: q4_0 }").measure!.finetune?.precisions, ["q4_0"])
        XCTAssertEqual(try parse("{ method: [lora, full], precision: [f32, q4_0] }").measure!.finetune?.precisions, ["f32", "q4_0"])
    }

    func testDefaultsAndAbsence() throws {
        XCTAssertEqual(try parse("{ method: lora }").measure!.finetune, FinetuneSettings())
        let none = try Scenario.parse("schema: 1\nname: x\nmeasure: { model: tiny, threads: 1, prompt_tokens: [8] }\n", file: "x.yaml", catalog: repoCatalog())
        XCTAssertNil(none.measure!.finetune)
    }

    func testBadValuesNameTheirKeyPath() {
        let cases: [(String, String)] = [
            ("{ method: sgd }", "ft.yaml: measure.finetune.method[0]: expected one of lora, full, got \"sgd\""),
            ("{ targets: [q, qq] }", "ft.yaml: measure.finetune.targets[1]: expected one of q, k, v, o, gate, up, down, got \"qq\""),
            ("{ seq_len: 4096 }", "ft.yaml: measure.finetune.seq_len: expected an integer from 1 to 2048, got \"4096\""),
            ("{ precision: q4_k_m }", "ft.yaml: measure.finetune.precision[0]: expected one of f32 (fp32), f16 (fp16), bf16, q8_0 (int8), q4_0 (int4), q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k; q4_k_m is a GGUF format the engine does not compute yet, got \"q4_k_m\""),
            ("{ method: [lora, full], precision: q4_0 }",
             "ft.yaml: measure.finetune.precision: is q4_0, but method includes full: full fine-tuning trains every weight in f32; a quantized base is for lora only (add f32 to measure full)"),
            ("{ rank: 0 }", "ft.yaml: measure.finetune.rank: expected an integer from 1 to 4096, got \"0\""),
            ("{ lr: 1 }", "ft.yaml: measure.finetune.lr: unknown key; expected one of method, rank, alpha, dropout, targets, precision, seq_len, batch, steps, warmup, checkpointing, learning_rate"),
        ]
        for (text, message) in cases {
            XCTAssertThrowsError(try parse(text), text) { e in XCTAssertEqual("\(e)", message) }
        }
    }
}
