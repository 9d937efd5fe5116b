// published.yaml: inference measurements of catalog GPUs that others published (throughput at maximum
// load, time to first token), each with its source and date, read strictly. `PublishedCalibration` turns
// them into calibration points and fits each GPU's efficiencies to them.
import Foundation

/// One published figure for one configuration: a catalog GPU, model shape, precision and device count.
public struct PublishedMeasurement: Codable, Equatable, Sendable {
    public enum Role: String, Codable, Sendable { case fit, check }

    public var hardware: String
    public var model: String
    public var precision: Precision
    /// Devices (tensor parallel) the configuration ran on.
    public var devices: Int
    /// The batch the source states it ran; nil: the batch the planner's memory model allows (`PublishedCalibration.batch`).
    public var batch: Int?
    public var inputTokens: Int
    /// Output tokens per request (nil for a first-token latency).
    public var outputTokens: Int?
    /// Output-token throughput at maximum load, per device (`perDevice`) or for all `devices` together.
    public var outputTokensPerSecond: Double?
    public var perDevice: Bool
    /// Time to the first token of one request alone, in milliseconds.
    public var ttftMs: Double?
    /// Bytes of a cached key or value when the source states its KV-cache dtype (`kv_cache: fp8` is 1); nil: the
    /// planner's own (`HardwareProfile.kvElementBytes`, 16-bit).
    public var kvCacheBytes: Double?
    /// `fit`: the GPU's fit uses it; `check`: the fit predicts it without having seen it.
    public var role: Role
    /// A short name of the document ("NVIDIA TensorRT-LLM performance.md"), its date (or the version it states
    /// when undated) and its URL.
    public var document: String
    public var date: String
    public var source: String

    /// What identifies an entry across catalog layers: the same configuration, figure and source.
    public var key: String {
        "\(hardware)|\(model)|\(precision.rawValue)|\(devices)|\(batch.map(String.init) ?? "-")|\(inputTokens)|\(outputTokens.map(String.init) ?? "-")|"
            + "\(ttftMs == nil ? "throughput" : "ttft")|\(kvCacheBytes.map { "\($0)" } ?? "-")|\(source)"
    }

    /// "llama-2-7b fp8 tp1, 128 in / 128 out" (the batch apart: `PublishedCalibration.batch`).
    public var configuration: String {
        var s = "\(model) \(precision.rawValue) tp\(devices)"
        if let kvCacheBytes { s += " kv\(kvCacheBytes == 1 ? "fp8" : "\(Int(kvCacheBytes * 8))-bit")" }
        s += ", \(inputTokens) in"
        if let outputTokens { s += " / \(outputTokens) out" }
        return s
    }

    /// The figure as the source gives it: "19,694 output tok/s per GPU", "36 ms TTFT".
    public var measuredText: String {
        if let ttftMs { return "\(HumanNumber.count(ttftMs)) ms TTFT" }
        return "\(HumanNumber.count(outputTokensPerSecond ?? 0)) output tok/s \(perDevice ? "per GPU" : "in total")"
    }

    /// The measured figure in its own unit (tokens/s or ms).
    public var value: Double { ttftMs ?? outputTokensPerSecond ?? .nan }

    public init(hardware: String, model: String, precision: Precision, devices: Int, batch: Int?, inputTokens: Int, outputTokens: Int?,
                outputTokensPerSecond: Double?, perDevice: Bool = false, ttftMs: Double?, role: Role = .fit,
                document: String, date: String, source: String) {
        self.hardware = hardware; self.model = model; self.precision = precision; self.devices = devices; self.batch = batch
        self.inputTokens = inputTokens; self.outputTokens = outputTokens; self.outputTokensPerSecond = outputTokensPerSecond
        self.perDevice = perDevice; self.ttftMs = ttftMs; self.role = role; self.document = document; self.date = date; self.source = source
    }

    static let keys = ["hardware", "model", "precision", "devices", "batch", "input_tokens", "output_tokens", "output_tokens_per_s", "per",
                       "ttft_ms", "kv_cache", "role", "document", "date", "source"]
    /// KV-cache dtypes a source may state, in bytes per element.
    static let kvCacheDtypes: [String: Double] = ["fp8": 1, "fp16": 2, "bf16": 2, "fp32": 4]

    /// Reads a published.yaml document against the models and hardware read so far: every entry names a catalog
    /// GPU and model shape, a precision the GPU has a peak for, and a figure the planner's ops can be derived for.
    static func read(_ doc: YAMLField, models: [String: ModelShape], hardware: [HardwareProfile]) throws -> [PublishedMeasurement] {
        let root = try doc.mapping(allowed: ["schema", "measurements"])
        let schema = try root.required("schema")
        guard try schema.int(min: 1, max: Int.max) == 1 else { throw schema.fail("schema version 1") }
        return try root.required("measurements").list { field in try readEntry(field, models: models, hardware: hardware) }
    }

    static func readEntry(_ field: YAMLField, models: [String: ModelShape], hardware: [HardwareProfile]) throws -> PublishedMeasurement {
        let m = try field.mapping(allowed: keys)
        let hwField = try m.required("hardware")
        let hwID = try hwField.string()
        guard let h = hardware.first(where: { $0.id == hwID && $0.kind != .local }) else {
            throw hwField.fail("a catalog GPU or CPU id (\(hardware.filter { $0.kind != .local }.map(\.id).joined(separator: ", ")))")
        }
        let modelField = try m.required("model")
        let modelID = try modelField.string()
        guard let shape = models[modelID] else { throw modelField.fail("a model in the catalog (\(models.keys.sorted().joined(separator: ", ")))") }
        let pField = try m.required("precision")
        guard let precision = Precision(name: try pField.string()) else { throw pField.fail("one of \(Precision.names.joined(separator: ", "))") }
        if let why = h.unsupported(precision) { throw pField.error(why) }
        let devices = try m.required("devices").int(min: 1, max: h.devicesPerNode)
        let batch = try m.optional("batch")?.int(min: 1, max: 1_000_000)
        let input = try m.required("input_tokens").int(min: 1, max: shape.context)
        let output = try m.optional("output_tokens")?.int(min: 1, max: shape.context)
        let throughput = try m.optional("output_tokens_per_s")?.double(min: 0, exclusiveMin: true, max: 1e9)
        let ttft = try m.optional("ttft_ms")?.double(min: 0, exclusiveMin: true, max: 1e7)
        switch (throughput, ttft) {
        case (nil, nil): throw field.error("states no measurement: give output_tokens_per_s (with per:) or ttft_ms")
        case (.some, .some): throw try m.required("ttft_ms").error("give one measurement per entry, not both output_tokens_per_s and ttft_ms")
        default: break
        }
        var perDevice = false
        if throughput != nil {
            guard output != nil else { throw try m.required("output_tokens").error("missing; a throughput needs the output tokens per request") }
            perDevice = try m.required("per").oneOf(["gpu", "total"]) == "gpu"
            if input + output! > shape.context {
                throw try m.required("output_tokens").error("input_tokens + output_tokens (\(input + output!)) exceed \(modelID)'s context (\(shape.context))")
            }
        } else {
            if let f = m.optional("per") { throw f.error("applies to output_tokens_per_s only") }
            if let batch, batch != 1 { throw try m.required("batch").fail("1 (ttft_ms is one request alone)") }
        }
        let role = Role(rawValue: try m.optional("role")?.oneOf(["fit", "check"]) ?? "fit")!
        let kvCache = try m.optional("kv_cache").map { kvCacheDtypes[try $0.oneOf(kvCacheDtypes.keys.sorted())]! }
        var entry = PublishedMeasurement(
            hardware: h.id, model: modelID, precision: precision, devices: devices, batch: batch, inputTokens: input,
            outputTokens: throughput == nil ? nil : output, outputTokensPerSecond: throughput, perDevice: perDevice, ttftMs: ttft, role: role,
            document: try m.required("document").string(), date: try m.required("date").string(), source: try m.required("source").string())
        entry.kvCacheBytes = kvCache
        // The figure must give a calibration point: a batch that fits and a time left after the all-reduces.
        do {
            _ = try PublishedCalibration.derive(entry, hardware: h, model: shape)
        } catch let e as PublishedCalibration.DerivationError {
            throw field.error(e.reason)
        }
        return entry
    }
}
