// The catalog under Scenarios/catalog/: model shapes (and, as the planner grows, hardware and prices),
// each figure with its source.
import Foundation

public struct Catalog: Sendable {
    public var models: [String: ModelShape]
    public let directory: String

    public init(models: [ModelShape], directory: String) {
        self.models = Dictionary(models.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        self.directory = directory
    }

    /// Loads every catalog file in `directory`.
    public static func load(directory: String) throws -> Catalog {
        let modelsFile = (directory as NSString).appendingPathComponent("models.yaml")
        let root = try YAMLField.load(modelsFile).mapping(allowed: ["schema", "models"])
        let schema = try root.required("schema").int(min: 1)
        guard schema == 1 else { throw try root.required("schema").fail("schema version 1") }
        var seen = Set<String>()
        let models = try root.required("models").list { field -> ModelShape in
            let shape = try Self.readModel(field)
            if seen.contains(shape.id) { throw field.error("model id \"\(shape.id)\" appears twice") }
            seen.insert(shape.id)
            return shape
        }
        return Catalog(models: models, directory: directory)
    }

    static func readModel(_ field: YAMLField) throws -> ModelShape {
        let m = try field.mapping(allowed: ["id", "name", "layers", "dim", "heads", "kv_heads", "ffn_dim", "vocab",
                                             "context", "rope_theta", "norm_eps", "tied_embeddings", "experts",
                                             "experts_per_token", "source"])
        let dim = try m.required("dim").int(min: 1)
        let heads = try m.required("heads").int(min: 1)
        if dim % heads != 0 { throw try m.required("heads").fail("a divisor of dim \(dim)") }
        let kvHeads = try m.optional("kv_heads")?.int(min: 1) ?? heads
        if heads % kvHeads != 0 { throw try m.required("kv_heads").fail("a divisor of heads \(heads)") }
        let experts = try m.optional("experts")?.int(min: 1) ?? 1
        let perToken = try m.optional("experts_per_token")?.int(min: 1, max: experts) ?? 1
        return ModelShape(
            id: try m.required("id").string(),
            name: try m.optional("name")?.string() ?? m.required("id").string(),
            layers: try m.required("layers").int(min: 1),
            dim: dim, heads: heads, kvHeads: kvHeads,
            ffnDim: try m.required("ffn_dim").int(min: 1),
            vocab: try m.required("vocab").int(min: 1),
            context: try m.required("context").int(min: 1),
            ropeTheta: try m.optional("rope_theta")?.double(min: 0, exclusiveMin: true) ?? 10_000,
            normEps: try m.optional("norm_eps")?.double(min: 0, exclusiveMin: true) ?? 1e-5,
            tiedEmbeddings: try m.optional("tied_embeddings")?.bool() ?? false,
            experts: experts, expertsPerToken: perToken,
            source: try m.required("source").string())
    }

    /// The model with this id, or an error listing the ones there are.
    public func model(_ id: String, field: YAMLField? = nil) throws -> ModelShape {
        if let shape = models[id] { return shape }
        let known = models.keys.sorted().joined(separator: ", ")
        if let field { throw field.fail("a model in the catalog (\(known))") }
        throw InputError(file: directory, path: "models", message: "no model \"\(id)\"; the catalog has \(known)")
    }
}
