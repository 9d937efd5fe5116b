// The catalog: model shapes, hardware profiles and prices, each figure with its source. The binary carries
// a built-in catalog (Scenarios/catalog/ at build time); a `catalog/` folder beside a scenario and
// `--catalog DIR` override it entry by entry (same id: replaced; new id: added), and the catalog records
// which files it was read from.
import Foundation

public struct Catalog: Sendable {
    public var models: [String: ModelShape]
    /// The last folder applied, or "built-in catalog"; messages that name the catalog use it.
    public var directory: String
    /// hardware.yaml, in file order (empty when the folder has none).
    public var hardware: [HardwareProfile] = []
    public var defaultEfficiency: DefaultEfficiency? = nil
    /// prices.yaml (nil when the folder has none).
    public var prices: PriceSheet? = nil
    /// published.yaml: inference measurements of catalog GPUs that others published, in file order.
    public var published: [PublishedMeasurement] = []
    /// The files this catalog was read from, in the order they were applied: "built-in models.yaml", then
    /// each override folder's files that exist.
    public var files: [String] = []

    public init(models: [ModelShape], directory: String) {
        self.models = Dictionary(models.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        self.directory = directory
    }

    /// The built-in catalog with `directory`'s files applied over it (see `load(layers:)`).
    public static func load(directory: String) throws -> Catalog {
        try load(layers: [directory])
    }

    /// The built-in catalog, then each folder of `layers` in order: its models.yaml, hardware.yaml,
    /// prices.yaml and published.yaml (each optional) replace entries of the same id and add new ones. A folder that does not
    /// exist is an error; a missing file in it is not.
    public static func load(layers: [String]) throws -> Catalog {
        var catalog = try builtin()
        for folder in layers { try catalog.apply(folder: folder) }
        return catalog
    }

    /// The catalog compiled into the binary (parsed once per process).
    public static func builtin() throws -> Catalog { try builtinParsed.get() }

    private static let builtinParsed: Result<Catalog, Error> = Result {
        var catalog = Catalog(models: [], directory: "built-in catalog")
        for name in ["models.yaml", "hardware.yaml", "prices.yaml", "published.yaml"] {
            try catalog.apply(text: BuiltinCatalog.files[name]!, name: name, label: "built-in \(name)", isBase: true)
        }
        return catalog
    }

    /// The text of the built-in default scenario (Scenarios/default.yaml at build time).
    public static var builtinDefaultScenario: String { BuiltinCatalog.defaultScenario }

    /// Applies the catalog files in `folder` over this catalog.
    public mutating func apply(folder: String) throws {
        switch FileKind.of(folder) {
        case .directory: break
        case .missing: throw InputError(file: folder, path: "", message: "the catalog folder does not exist")
        case let kind: throw InputError(file: folder, path: "", message: "expected a catalog folder, got \(kind.phrase)")
        }
        for name in ["models.yaml", "hardware.yaml", "prices.yaml", "published.yaml"] {
            let path = (folder as NSString).appendingPathComponent(name)
            guard FileKind.of(path) != .missing else { continue }
            try apply(text: try FileChecks.readText(path, what: "catalog file"), name: name, label: path, isBase: false)
        }
        directory = folder
    }

    /// Applies one catalog file: `name` says which kind it is, `label` names it in messages and in `files`.
    mutating func apply(text: String, name: String, label: String, isBase: Bool) throws {
        let doc = try YAMLField.document(text, file: label)
        switch name {
        case "models.yaml":
            let root = try doc.mapping(allowed: ["schema", "models"])
            let schema = try root.required("schema").int(min: 1, max: Int.max)
            guard schema == 1 else { throw try root.required("schema").fail("schema version 1") }
            var seen = Set<String>()
            let list = try root.required("models").list { field -> ModelShape in
                let shape = try Self.readModel(field)
                if seen.contains(shape.id) { throw field.error("model id \"\(shape.id)\" appears twice") }
                seen.insert(shape.id)
                return shape
            }
            for m in list { models[m.id] = m }
        case "hardware.yaml":
            let (list, defaults) = try HardwareProfile.readCatalog(doc, inherited: isBase ? nil : defaultEfficiency)
            defaultEfficiency = defaults
            for h in list {
                if let i = hardware.firstIndex(where: { $0.id == h.id }) { hardware[i] = h } else { hardware.append(h) }
            }
        case "published.yaml":
            // An entry for the same configuration, measurement and source replaces the earlier one; others are added.
            for m in try PublishedMeasurement.read(doc, models: models, hardware: hardware) {
                if let i = published.firstIndex(where: { $0.key == m.key }) { published[i] = m } else { published.append(m) }
            }
        default:
            let sheet = try PriceSheet.read(doc, file: label, hardware: hardware)
            if isBase || prices == nil {
                prices = sheet
            } else {
                prices!.merge(sheet, stated: try doc.mapping(allowed: PriceSheet.topLevelKeys))
            }
        }
        files.append(label)
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
            id: try m.required("id").identifier("a model id"),
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
