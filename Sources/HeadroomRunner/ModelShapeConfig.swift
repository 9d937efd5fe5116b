// The catalog's model shapes as the engine's configuration: the one place HeadroomCore's ModelShape meets
// HeadroomEngine's ModelConfig (the engine does not import HeadroomCore), for inference and for training.
import HeadroomCore
import HeadroomEngine

extension ModelConfig {
    /// The engine's configuration for a catalog shape, named by the shape's id. Nothing is checked here:
    /// `validate()` says whether the inference kernels can run it, `validateForTraining()` whether the trainer can.
    public init(_ shape: ModelShape) {
        self.init(name: shape.id, layers: shape.layers, dim: shape.dim, heads: shape.heads, kvHeads: shape.kvHeads,
                  ffnDim: shape.ffnDim, vocab: shape.vocab, context: shape.context, ropeTheta: shape.ropeTheta,
                  normEps: Float(shape.normEps))
    }

    /// The trainer's configuration for a catalog shape (a tied head reads the embedding). Mixtures of experts are
    /// not trained by this trainer and are refused with the model's id.
    public init(training shape: ModelShape) throws {
        guard shape.experts == 1 else { throw TrainError.badConfig("model \(shape.id) is a mixture of experts; the trainer runs dense models") }
        self.init(shape)
        tiedEmbeddings = shape.tiedEmbeddings
    }
}
