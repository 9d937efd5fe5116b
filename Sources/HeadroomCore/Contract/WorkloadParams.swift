// Typed views of the workload parameters that more than one layer reads: the workloads build a case's
// `params` from them, and calibration and the report read them back, so no caller spells "M" or
// "prompt_tokens" itself.

/// A `gemm` case's inputs: one projection of a layer at M rows (prefill tokens or decode batch).
public struct GemmParams: Equatable, Sendable {
    public var model: String
    /// "prefill" or "decode".
    public var phase: String
    public var m: Int, n: Int, k: Int
    public var precision: String

    public init(model: String, phase: String, m: Int, n: Int, k: Int, precision: String = "f32") {
        self.model = model; self.phase = phase; self.m = m; self.n = n; self.k = k; self.precision = precision
    }

    /// Nil when M, N or K is missing or not an integer.
    public init?(params p: [String: String]) {
        guard let m = p["M"].flatMap(Int.init), let n = p["N"].flatMap(Int.init), let k = p["K"].flatMap(Int.init) else { return nil }
        self.init(model: p["model"] ?? "", phase: p["phase"] ?? "", m: m, n: n, k: k, precision: p["precision"] ?? "f32")
    }

    public var params: [String: String] {
        ["model": model, "phase": phase, "M": String(m), "N": String(n), "K": String(k), "precision": precision]
    }
}

/// An `inference` case's inputs.
public struct InferenceParams: Equatable, Sendable {
    public var model: String
    /// The precision's name as the scenario writes it ("q4_0", "f16").
    public var precision: String
    public var promptTokens: Int
    public var batch: Int
    public var generateTokens: Int
    /// The GGUF file whose weights were measured (path and size), so runs of different files never match.
    public var modelFile: String?
    public var modelFileBytes: Int?

    public init(model: String, precision: String, promptTokens: Int, batch: Int, generateTokens: Int,
                modelFile: String? = nil, modelFileBytes: Int? = nil) {
        self.model = model; self.precision = precision; self.promptTokens = promptTokens; self.batch = batch
        self.generateTokens = generateTokens; self.modelFile = modelFile; self.modelFileBytes = modelFileBytes
    }

    /// Nil when the model, precision or prompt length is missing; batch defaults to 1 and generate_tokens to 0
    /// (cases stored before they were recorded).
    public init?(params p: [String: String]) {
        guard let model = p["model"], let precision = p["precision"], let prompt = p["prompt_tokens"].flatMap(Int.init) else { return nil }
        self.init(model: model, precision: precision, promptTokens: prompt, batch: p["batch"].flatMap(Int.init) ?? 1,
                  generateTokens: p["generate_tokens"].flatMap(Int.init) ?? 0, modelFile: p["model_file"],
                  modelFileBytes: p["model_file_bytes"].flatMap(Int.init))
    }

    public var params: [String: String] {
        var p = ["model": model, "precision": precision, "prompt_tokens": String(promptTokens), "batch": String(batch),
                 "generate_tokens": String(generateTokens)]
        if let modelFile { p["model_file"] = modelFile }
        if let modelFileBytes { p["model_file_bytes"] = String(modelFileBytes) }
        return p
    }
}

/// A `step` case's inputs: one serving step of a prefill chunk (`prefillTokens` after `pastTokens` cached; none
/// when 0) and `decodes` decodes (one token each, `context` positions cached), on synthetic weights of `model`
/// in `precision`. The thread count is the case's own `threads`, as for every kind.
public struct StepParams: Hashable, Sendable {
    public var model: String
    /// The engine's name of the weight format ("q4_0", "f32").
    public var precision: String
    public var prefillTokens: Int
    public var pastTokens: Int
    public var decodes: Int
    public var context: Int

    public init(model: String, precision: String, prefillTokens: Int = 0, pastTokens: Int = 0, decodes: Int = 0, context: Int = 0) {
        self.model = model; self.precision = precision; self.prefillTokens = prefillTokens; self.pastTokens = pastTokens
        self.decodes = decodes; self.context = context
    }

    /// Nil when a field is missing, not an integer, or negative, or the step holds no token.
    public init?(params p: [String: String]) {
        func int(_ key: String) -> Int? { p[key].flatMap(Int.init).flatMap { $0 >= 0 ? $0 : nil } }
        guard let model = p["model"], let precision = p["precision"], let t = int("prefill_tokens"), let past = int("past_tokens"),
              let d = int("decodes"), let ctx = int("context"), t + d > 0 else { return nil }
        self.init(model: model, precision: precision, prefillTokens: t, pastTokens: past, decodes: d, context: ctx)
    }

    public var params: [String: String] {
        ["model": model, "precision": precision, "prefill_tokens": String(prefillTokens), "past_tokens": String(pastTokens),
         "decodes": String(decodes), "context": String(context)]
    }

    /// The step as the planner's predictors see it: the chunk ends its prompt (it samples a token), as the last
    /// chunk of every prompt does.
    public var shape: BatchShape {
        var s = BatchShape()
        s.addPrefill(tokens: prefillTokens, pastTokens: pastTokens)
        for _ in 0..<decodes { s.addDecode(context: context) }
        return s
    }

    /// A chunk and decodes together: the steps a fit is checked on, never fitted to.
    public var isMixed: Bool { prefillTokens > 0 && decodes > 0 }

    /// "prefill 128 after 256", "decode 8 at 1024", "prefill 64 + decode 8 at 128".
    public var label: String {
        let chunk = prefillTokens == 0 ? nil : "prefill \(prefillTokens)" + (pastTokens > 0 ? " after \(pastTokens)" : "")
        let dec = decodes == 0 ? nil : "decode \(decodes) at \(context)"
        return [chunk, dec].compactMap { $0 }.joined(separator: " + ")
    }
}
