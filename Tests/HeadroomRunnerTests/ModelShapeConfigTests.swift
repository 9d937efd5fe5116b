// The one mapping from the catalog's ModelShape to the engine's ModelConfig: every field carried over (the name is
// the shape's id), and the training variant keeping a tied head and refusing what the trainer does not train, naming the model.
import XCTest
import HeadroomCore
import HeadroomEngine
import HeadroomRunner

final class ModelShapeConfigTests: XCTestCase {
    let shape = ModelShape(id: "mini", name: "Mini 1B", layers: 3, dim: 64, heads: 4, kvHeads: 2, ffnDim: 96, vocab: 300,
                           context: 128, ropeTheta: 500_000, normEps: 1e-6, source: "test")

    func testEveryFieldIsCarriedOver() throws {
        let c = ModelConfig(shape)
        XCTAssertEqual(c, ModelConfig(name: "mini", layers: 3, dim: 64, heads: 4, kvHeads: 2, ffnDim: 96, vocab: 300, context: 128,
                                      ropeTheta: 500_000, normEps: 1e-6))
        XCTAssertEqual(try ModelConfig(training: shape), c)
    }

    func testTrainingKeepsTiedEmbeddingsAndRefusesMixturesOfExperts() throws {
        var tied = shape
        tied.tiedEmbeddings = true
        XCTAssertTrue(try ModelConfig(training: tied).tiedEmbeddings)
        var moe = shape
        moe.experts = 8
        XCTAssertThrowsError(try ModelConfig(training: moe)) { e in
            XCTAssertEqual("\(e)", "fine-tuning: model mini is a mixture of experts; the trainer runs dense models")
        }
    }
}
