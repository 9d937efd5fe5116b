// The catalog's model shapes as the trainer's configuration: the one place HeadroomCore's ModelShape
// meets HeadroomEngine's TrainConfig (the engine does not import HeadroomCore).
import HeadroomCore
import HeadroomEngine

extension TrainConfig {
    /// The trainer's configuration for a catalog shape. Tied embeddings and mixtures of experts are not
    /// trained by this trainer and are refused with the model's id.
    public init(shape: ModelShape) throws {
        guard !shape.tiedEmbeddings else {
            throw TrainError.badConfig("model \(shape.id) ties its embeddings; the trainer keeps a separate output projection")
        }
        guard shape.experts == 1 else { throw TrainError.badConfig("model \(shape.id) is a mixture of experts; the trainer runs dense models") }
        self.init(layers: shape.layers, dim: shape.dim, heads: shape.heads, kvHeads: shape.kvHeads, ffnDim: shape.ffnDim,
                  vocab: shape.vocab, context: shape.context, ropeTheta: shape.ropeTheta, normEps: Float(shape.normEps))
    }
}
