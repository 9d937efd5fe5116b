// The seam through which `measure.model` may name a model file: the resolver sees the value and the scenario's
// folder, a file's precision becomes the measured one, and its errors are reported at `measure.model`.
import XCTest
@testable import HeadroomCore

final class ModelResolverTests: XCTestCase {
    struct Refused: Error, CustomStringConvertible { var description: String }

    let shape = ModelShape(id: "m.gguf", name: "m", layers: 2, dim: 64, heads: 4, kvHeads: 2, ffnDim: 96, vocab: 300,
                           context: 64, source: "GGUF file")

    func scenario(_ measureExtra: String = "") -> String {
        "schema: 1\nname: r\nmeasure:\n  model: m.gguf\n  threads: [1]\n  prompt_tokens: [8]\n  generate_tokens: 4\n" + measureExtra
    }

    func testAResolvedFileSetsTheShapeAndPrecisionAndNilFallsBackToTheCatalog() throws {
        let seen = Box()
        let resolver: ModelResolver = { [shape] value, dir in
            seen.set("\(dir)|\(value)")
            guard value.hasSuffix(".gguf") else { return nil }
            return ResolvedModel(shape: shape, file: ModelFile(path: dir + "/" + value, bytes: 1234, precision: "q8_0"))
        }
        let s = try Scenario.parse(scenario("  finetune: { method: [lora, full] }\n"), file: "Scenarios/sub/r.yaml",
                                   catalog: repoCatalog(), resolveModel: resolver)
        XCTAssertEqual(seen.value, "Scenarios/sub|m.gguf")
        XCTAssertEqual(s.measure!.model, shape)
        XCTAssertEqual(s.measure!.modelFile, ModelFile(path: "Scenarios/sub/m.gguf", bytes: 1234, precision: "q8_0"))
        XCTAssertEqual(s.measure!.precisions, ["q8_0"])
        XCTAssertEqual(s.measure!.finetune?.precisions, ["q8_0"], "the file's base; full is measured on it dequantized")
        let tiny = try Scenario.parse(scenario().replacingOccurrences(of: "m.gguf", with: "tiny"), file: "r.yaml",
                                      catalog: repoCatalog(), resolveModel: resolver)
        XCTAssertEqual(tiny.measure!.model.id, "tiny")
        XCTAssertNil(tiny.measure!.modelFile)
    }

    func testErrorsNameTheScenarioAndKey() throws {
        let refusing: ModelResolver = { _, _ in throw Refused(description: "m.gguf: not a GGUF file") }
        XCTAssertThrowsError(try Scenario.parse(scenario(), file: "r.yaml", catalog: repoCatalog(), resolveModel: refusing)) { e in
            XCTAssertEqual("\(e)", "r.yaml: measure.model: m.gguf: not a GGUF file")
        }
        let q4: ModelResolver = { [shape] v, _ in ResolvedModel(shape: shape, file: ModelFile(path: v, bytes: 1, precision: "q4_0")) }
        XCTAssertNoThrow(try Scenario.parse(scenario("  precisions: [q4_0]\n"), file: "r.yaml", catalog: repoCatalog(), resolveModel: q4))
        XCTAssertThrowsError(try Scenario.parse(scenario("  precisions: [q4_0, f32]\n"), file: "r.yaml", catalog: repoCatalog(),
                                                resolveModel: q4)) { e in
            XCTAssertTrue("\(e)".hasPrefix("r.yaml: measure.precisions: lists q4_0, f32, but m.gguf stores its matrices in q4_0"), "\(e)")
        }
        XCTAssertNoThrow(try Scenario.parse(scenario("  finetune: { precision: [q4_0, f32] }\n"), file: "r.yaml", catalog: repoCatalog(), resolveModel: q4))
        XCTAssertThrowsError(try Scenario.parse(scenario("  finetune: { precision: [f16] }\n"), file: "r.yaml", catalog: repoCatalog(),
                                                resolveModel: q4)) { e in
            XCTAssertTrue("\(e)".hasPrefix("r.yaml: measure.finetune.precision[0]: expected the model file's precision q4_0 or f32"), "\(e)")
        }
        // Without a resolver a file name is an unknown catalog id.
        XCTAssertThrowsError(try Scenario.parse(scenario(), file: "r.yaml", catalog: repoCatalog())) { e in
            XCTAssertTrue("\(e)".hasPrefix("r.yaml: measure.model:"), "\(e)")
        }
    }
}

/// A value set from inside a @Sendable closure.
final class Box: @unchecked Sendable {
    private(set) var value = ""
    func set(_ v: String) { value = v }
}
