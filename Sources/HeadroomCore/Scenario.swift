// A scenario file: what to measure on this machine (and, as Headroom grows, what to plan and gate).
// Versioned (`schema: 1`) and validated strictly: every mistake names its file and key path.
import Foundation

public struct Scenario: Sendable {
    public static let schemaVersion = 1

    public var name: String
    public var description: String
    /// The file it came from, its text as read, and a hash of that text (FNV-1a 64, hex).
    public var file: String
    public var text: String
    public var hash: String
    public var probe: ProbeSettings
    /// What it measures on this machine; nil when `measure:` lists only `load` (endpoints measured elsewhere).
    public var measure: MeasureSettings?
    /// The endpoint load measurements (`measure.load`), in order.
    public var load: [LoadSettings] = []
    /// The `plan:` section, when the scenario has one.
    public var plan: PlanSettings?
    /// What `headroom gate` compares (the `gate:` section; defaults when absent).
    public var gate = GateSettings()
    /// The OpenAI-compatible servers it declares (`endpoints:`), by name.
    public var endpoints: [EndpointSpec] = []

    public init(name: String, description: String, file: String, text: String, hash: String,
                probe: ProbeSettings, measure: MeasureSettings?) {
        self.name = name; self.description = description; self.file = file; self.text = text
        self.hash = hash; self.probe = probe; self.measure = measure
    }

    /// Loads and validates `path`; models are looked up in `catalog`, or in the `catalog/` folder
    /// beside the scenario file when none is given, after `resolveModel` (a model file) when given.
    public static func load(_ path: String, catalog: Catalog? = nil, resolveModel: ModelResolver? = nil) throws -> Scenario {
        let text = try FileChecks.readText(path, what: "scenario file")
        let catalog = try catalog ?? Catalog.load(layers: Self.catalogLayers(forScenario: path))
        return try parse(text, file: path, catalog: catalog, resolveModel: resolveModel)
    }

    /// The `name:` of a scenario's text, read alone (what-if reads only the plan section and the name).
    public static func name(inText text: String, file: String) throws -> String {
        let root = try YAMLField.document(text, file: file)
        guard case .mapping(let m)? = root.node, let node = m.first(where: { $0.key.string == "name" })?.value else {
            throw InputError(file: file, path: "name", message: "missing")
        }
        return try YAMLField(node: node, path: "name", file: file).identifier("a name (it names the report folder)")
    }

    /// How messages and reports name the built-in default scenario.
    public static let builtinDefaultLabel = "built-in default scenario"

    /// The default scenario the binary carries (Scenarios/default.yaml at build time).
    public static func builtinDefault(catalog: Catalog? = nil, resolveModel: ModelResolver? = nil) throws -> Scenario {
        try parse(Catalog.builtinDefaultScenario, file: builtinDefaultLabel, catalog: catalog ?? Catalog.builtin(), resolveModel: resolveModel)
    }

    /// The catalog folders that apply to the scenario at `path`: its `catalog/` folder, when there is one
    /// (anything else at that path, a file say, is named so that the error says what it is).
    public static func catalogLayers(forScenario path: String) -> [String] {
        let dir = defaultCatalogDirectory(forScenario: path)
        return FileKind.of(dir) == .missing ? [] : [dir]
    }

    public static func defaultCatalogDirectory(forScenario path: String) -> String {
        let dir = (path as NSString).deletingLastPathComponent
        return ((dir.isEmpty ? "." : dir) as NSString).appendingPathComponent("catalog")
    }

    public static func parse(_ text: String, file: String, catalog: Catalog, resolveModel: ModelResolver? = nil) throws -> Scenario {
        let doc = try YAMLField.document(text, file: file)
        let root = try doc.mapping(allowed: ["schema", "name", "description", "endpoints", "probe", "measure", "plan", "gate"])
        let schemaField = try root.required("schema")
        let schema = try schemaField.int(min: 1, max: Int.max)
        guard schema == schemaVersion else { throw schemaField.fail("schema version \(schemaVersion)") }

        let nameField = try root.required("name")
        let name = try nameField.identifier("a name (it names the report folder)")
        let description = try root.optional("description")?.string() ?? ""
        let probe = try root.optional("probe").map(ProbeSettings.read) ?? ProbeSettings()
        let endpoints = try root.optional("endpoints").map { try EndpointSpec.readList($0, catalog: catalog) } ?? []
        let directory = (file as NSString).deletingLastPathComponent
        let measureField = try root.required("measure")
        let measureMap = try measureField.mapping(allowed: MeasureSettings.keys + ["load"])
        let load = try measureMap.optional("load").map { try LoadSettings.readList($0, endpoints: endpoints, directory: directory) } ?? []
        // The local keys are read as a group: all of them, or none when the scenario measures endpoints only.
        let localKeys = MeasureSettings.keys.filter { measureMap.has($0) }
        let measure: MeasureSettings?
        if localKeys.isEmpty && !load.isEmpty {
            measure = nil
        } else {
            measure = try MeasureSettings.read(measureField, catalog: catalog, resolveModel: resolveModel, directory: directory,
                                               ignoring: ["load"])
        }
        var scenario = Scenario(name: name, description: description, file: file, text: text,
                                hash: fnv1a64Hex(text), probe: probe, measure: measure)
        scenario.plan = try root.optional("plan").map { try PlanSettings.read($0, catalog: catalog) }
        scenario.gate = try root.optional("gate").map(GateSettings.read) ?? GateSettings()
        scenario.endpoints = endpoints
        scenario.load = load
        return scenario
    }
}

/// How hard `headroom probe` works: array sizes and repetitions.
public struct ProbeSettings: Codable, Equatable, Sendable {
    /// Bytes read per bandwidth timing; must dwarf the last-level cache.
    public var readMiB: Int = 1024
    /// Side of the square sgemm.
    public var gemmSize: Int = 2048
    public var repetitions: Int = 5

    public init(readMiB: Int = 1024, gemmSize: Int = 2048, repetitions: Int = 5) {
        self.readMiB = readMiB; self.gemmSize = gemmSize; self.repetitions = repetitions
    }

    static func read(_ field: YAMLField) throws -> ProbeSettings {
        let m = try field.mapping(allowed: ["read_mib", "gemm_size", "repetitions"])
        var s = ProbeSettings()
        if let f = m.optional("read_mib") { s.readMiB = try f.int(min: 16, max: 16_384) }
        if let f = m.optional("gemm_size") { s.gemmSize = try f.int(min: 64, max: 16_384) }
        if let f = m.optional("repetitions") { s.repetitions = try f.int(min: 1, max: 1000) }
        return s
    }
}

/// What to measure here: the GEMMs of one layer of `model`, at prefill token counts and decode batch sizes.
public struct MeasureSettings: Sendable {
    public var model: ModelShape
    public var threads: [Int]
    public var promptTokens: [Int]
    public var batch: [Int]
    public var repetitions: Int
    public var warmup: Int
    /// Timed and untimed calls per OpenBLAS GEMM case (`gemm_repetitions`, `gemm_warmup`; default: `repetitions`
    /// and `warmup`): a GEMM takes milliseconds where an inference case takes seconds, so a scenario can give
    /// the GEMMs the repetitions that make their median robust without repeating the inference as often.
    public var gemmRepetitions: Int
    public var gemmWarmup: Int
    /// Fine-tuning steps to measure (`measure.finetune`), if any.
    public var finetune: FinetuneSettings?
    /// Weight precisions the inference measurements run (GGUF names), default [f32].
    public var precisions: [String]
    /// Tokens decoded after each prompt in the inference measurements.
    public var generateTokens: Int
    /// The GGUF file `model` was read from, when `measure.model` names one: its precision is the one measured.
    public var modelFile: ModelFile?

    public static let knownPrecisions = ["f32", "f16", "q8_0", "q4_0"]

    public init(model: ModelShape, threads: [Int], promptTokens: [Int], batch: [Int], repetitions: Int, warmup: Int,
                precisions: [String] = ["f32"], generateTokens: Int = 32, finetune: FinetuneSettings? = nil,
                gemmRepetitions: Int? = nil, gemmWarmup: Int? = nil) {
        self.model = model; self.threads = threads; self.promptTokens = promptTokens; self.batch = batch
        self.repetitions = repetitions; self.warmup = warmup
        self.gemmRepetitions = gemmRepetitions ?? repetitions; self.gemmWarmup = gemmWarmup ?? warmup; self.precisions = precisions; self.generateTokens = generateTokens
        self.finetune = finetune
    }

    /// The keys of what is measured on this machine (`measure.load` is read beside them, by the scenario).
    public static let keys = ["model", "threads", "prompt_tokens", "batch", "repetitions", "warmup", "gemm_repetitions",
                              "gemm_warmup", "precisions", "generate_tokens", "finetune"]

    static func read(_ field: YAMLField, catalog: Catalog, resolveModel: ModelResolver? = nil, directory: String = "",
                     ignoring: [String] = []) throws -> MeasureSettings {
        let m = try field.mapping(allowed: keys + ignoring)
        let modelField = try m.required("model")
        let modelName = try modelField.string()
        let resolved: ResolvedModel?
        do { resolved = try resolveModel?(modelName, directory) } catch let e as InputError { throw e } catch {
            throw modelField.error("\(error)")
        }
        let model = try resolved?.shape ?? catalog.model(modelName, field: modelField)
        let modelFile = resolved?.file
        func distinct(_ values: [Int], _ f: YAMLField) throws -> [Int] {
            if Set(values).count != values.count { throw f.error("lists a value twice") }
            return values
        }
        let threadsField = try m.required("threads")
        let promptField = try m.required("prompt_tokens")
        let batchField = m.optional("batch")
        let precisionsField = m.optional("precisions")
        let precisions = try precisionsField.map { f in
            try distinctStrings(f.list { p -> String in
                switch PrecisionNames.engineName(try p.string()) {
                case .success(let name): return name
                case .failure(let refusal): throw p.fail(refusal.expected)
                }
            }, f)
        } ?? [modelFile?.precision ?? "f32"]
        if let modelFile, let precisionsField, precisions != [modelFile.precision] {
            throw precisionsField.error("lists \(precisions.joined(separator: ", ")), but \(modelFile.path) stores its matrices in \(modelFile.precision): a model file is measured in its own precision (remove precisions, or write [\(modelFile.precision)])")
        }
        func distinctStrings(_ values: [String], _ f: YAMLField) throws -> [String] {
            if Set(values).count != values.count { throw f.error("lists a value twice") }
            return values
        }
        let generateField = m.optional("generate_tokens")
        // A model file states its own context, which may be any integer: bounded here, so the sum below cannot overflow.
        let maxTokens = min(model.context, PlanLimits.tokensPerRequest)
        let generate = try generateField?.int(min: 0, max: maxTokens) ?? 32
        let prompts = try promptField.list { try $0.int(min: 1, max: maxTokens) }
        if let longest = prompts.max(), longest + generate > model.context {
            throw (generateField ?? promptField).error("prompt_tokens \(longest) + generate_tokens \(generate) exceed the context of \(model.id) (\(model.context))")
        }
        let repetitions = try m.optional("repetitions")?.int(min: 1, max: 10_000) ?? 5
        let warmup = try m.optional("warmup")?.int(min: 0, max: 1000) ?? 1
        var settings = MeasureSettings(
            model: model,
            threads: try distinct(threadsField.list { try $0.int(min: 1, max: 256) }, threadsField),
            promptTokens: try distinct(promptField.list { try $0.int(min: 1, max: maxTokens) }, promptField),
            batch: try batchField.map { try distinct($0.list { try $0.int(min: 1, max: 1024) }, $0) } ?? [1],
            repetitions: repetitions, warmup: warmup,
            precisions: precisions, generateTokens: generate,
            finetune: try m.optional("finetune").map { try FinetuneSettings.read($0, context: model.context, filePrecision: modelFile?.precision) },
            gemmRepetitions: try m.optional("gemm_repetitions")?.int(min: 1, max: 10_000) ?? repetitions,
            gemmWarmup: try m.optional("gemm_warmup")?.int(min: 0, max: 1000) ?? warmup)
        settings.modelFile = modelFile
        return settings
    }
}

/// FNV-1a, 64 bits, as hex: a stable fingerprint of a text (not a security hash).
public func fnv1a64Hex(_ text: String) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in text.utf8 {
        h ^= UInt64(b)
        h = h &* 0x0000_0100_0000_01B3
    }
    let hex = String(h, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}
