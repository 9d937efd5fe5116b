// The catalog under Scenarios/catalog/: model shapes (and, as the planner grows, hardware and prices),
// each figure with its source.
import Foundation

public struct Catalog: Sendable {
    public var models: [String: ModelShape]
    public let directory: String
    /// hardware.yaml, in file order (empty when the folder has none).
    public var hardware: [HardwareProfile] = []
    public var defaultEfficiency: DefaultEfficiency? = nil
    /// prices.yaml (nil when the folder has none).
    public var prices: PriceSheet? = nil

    public init(models: [ModelShape], directory: String) {
        self.models = Dictionary(models.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        self.directory = directory
    }

    /// Loads every catalog file in `directory`.
    public static func load(directory: String) throws -> Catalog {
        let modelsFile = (directory as NSString).appendingPathComponent("models.yaml")
        let root = try YAMLField.load(modelsFile).mapping(allowed: ["schema", "models"])
        let schema = try root.required("schema").int(min: 1, max: Int.max)
        guard schema == 1 else { throw try root.required("schema").fail("schema version 1") }
        var seen = Set<String>()
        let models = try root.required("models").list { field -> ModelShape in
            let shape = try Self.readModel(field)
            if seen.contains(shape.id) { throw field.error("model id \"\(shape.id)\" appears twice") }
            seen.insert(shape.id)
            return shape
        }
        var catalog = Catalog(models: models, directory: directory)
        let hardwareFile = (directory as NSString).appendingPathComponent("hardware.yaml")
        if FileManager.default.fileExists(atPath: hardwareFile) {
            (catalog.hardware, catalog.defaultEfficiency) = try HardwareProfile.loadCatalog(hardwareFile)
        }
        let pricesFile = (directory as NSString).appendingPathComponent("prices.yaml")
        if FileManager.default.fileExists(atPath: pricesFile) {
            catalog.prices = try PriceSheet.load(pricesFile, hardware: catalog.hardware)
        }
        return catalog
    }

    /// Models in file order is lost in the dictionary; this is sorted by id.
    public var modelList: [ModelShape] { models.values.sorted { $0.id < $1.id } }

    static func readModel(_ field: YAMLField) throws -> ModelShape {
        let m = try field.mapping(allowed: ["id", "name", "layers", "dim", "heads", "kv_heads", "ffn_dim", "vocab",
                                             "context", "rope_theta", "norm_eps", "tied_embeddings", "experts",
                                             "experts_per_token", "qkv_bias", "published_params", "source"])
        let dim = try m.required("dim").int(min: 1, max: CatalogLimits.dim)
        let heads = try m.required("heads").int(min: 1, max: dim)
        if dim % heads != 0 { throw try m.required("heads").fail("a divisor of dim \(dim)") }
        let kvHeads = try m.optional("kv_heads")?.int(min: 1, max: heads) ?? heads
        if heads % kvHeads != 0 { throw try m.required("kv_heads").fail("a divisor of heads \(heads)") }
        let experts = try m.optional("experts")?.int(min: 1, max: CatalogLimits.experts) ?? 1
        let perToken = try m.optional("experts_per_token")?.int(min: 1, max: experts) ?? 1
        var shape = ModelShape(
            id: try m.required("id").string(),
            name: try m.optional("name")?.string() ?? m.required("id").string(),
            layers: try m.required("layers").int(min: 1, max: CatalogLimits.layers),
            dim: dim, heads: heads, kvHeads: kvHeads,
            ffnDim: try m.required("ffn_dim").int(min: 1, max: CatalogLimits.ffnDim),
            vocab: try m.required("vocab").int(min: 1, max: CatalogLimits.vocab),
            context: try m.required("context").int(min: 1, max: CatalogLimits.context),
            ropeTheta: try m.optional("rope_theta")?.double(min: 0, exclusiveMin: true, max: CatalogLimits.ropeTheta) ?? 10_000,
            normEps: try m.optional("norm_eps")?.double(min: 0, exclusiveMin: true, max: CatalogLimits.normEps) ?? 1e-5,
            tiedEmbeddings: try m.optional("tied_embeddings")?.bool() ?? false,
            experts: experts, expertsPerToken: perToken,
            source: try m.required("source").string())
        shape.qkvBias = try m.optional("qkv_bias")?.bool() ?? false
        shape.publishedParams = try m.optional("published_params")?.double(min: 0, exclusiveMin: true, max: CatalogLimits.publishedParams)
        return shape
    }

    /// The model with this id, or an error listing the ones there are.
    public func model(_ id: String, field: YAMLField? = nil) throws -> ModelShape {
        if let shape = models[id] { return shape }
        let known = models.keys.sorted().joined(separator: ", ")
        if let field { throw field.fail("a model in the catalog (\(known))") }
        throw InputError(file: directory, path: "models", message: "no model \"\(id)\"; the catalog has \(known)")
    }
}
