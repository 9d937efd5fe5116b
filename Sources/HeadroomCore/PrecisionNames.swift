// One vocabulary for numeric formats, shared by every command and file: the engine's GGUF names
// (f32, f16, q8_0, q4_0, bf16, the other legacy blocks and the K-quants), the planner's (fp32, fp16, bf16, fp8,
// int8, int4), each an alias of the other where they are the same bytes, and the GGUF names of mixes and
// activation formats, recognised so that a user who types one is told plainly that the engine does not compute it.
// The K-quant mixes (q4_k_m, …) are also names `model export` writes: llama-quantize's per-tensor mixtures.

public enum PrecisionNames {
    public struct Entry: Sendable, Equatable {
        /// The name Headroom prints.
        public let name: String
        /// Other spellings accepted for it.
        public let aliases: [String]
        /// The engine runs weights in this format (bench, scenarios' measure section, model files).
        public let engine: Bool
        /// The planner's precision of the same bytes per weight, if it plans this format.
        public let planner: Precision?
        /// A llama-quantize mixture of formats (q4_k_m, …): `model export` writes it, nothing runs it as one format.
        public var exportMixture = false
    }

    public static let entries: [Entry] = [
        Entry(name: "f32", aliases: ["fp32"], engine: true, planner: .fp32),
        Entry(name: "f16", aliases: ["fp16"], engine: true, planner: .fp16),
        Entry(name: "bf16", aliases: [], engine: true, planner: .bf16),
        Entry(name: "fp8", aliases: [], engine: false, planner: .fp8),
        Entry(name: "q8_0", aliases: ["int8"], engine: true, planner: .int8),
        Entry(name: "q4_0", aliases: ["int4"], engine: true, planner: .int4),
    ] + ["q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"].map { Entry(name: $0, aliases: [], engine: true, planner: nil) }
      + ["q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m"].map {
          Entry(name: $0, aliases: [], engine: false, planner: nil, exportMixture: true) }
      + [Entry(name: "q8_k", aliases: [], engine: false, planner: nil)]

    /// The entry for any spelling (case-insensitive), or nil for a name nobody uses.
    public static func entry(_ s: String) -> Entry? {
        let k = s.lowercased()
        return entries.first { $0.name == k || $0.aliases.contains(k) }
    }

    /// The engine's formats, as `--help` lists them: "f32 (fp32), f16 (fp16), bf16, q8_0 (int8), q4_0 (int4), q4_1, …".
    public static var engineList: String {
        entries.filter(\.engine).map { $0.aliases.isEmpty ? $0.name : "\($0.name) (\($0.aliases.joined(separator: ", ")))" }
            .joined(separator: ", ")
    }

    /// What `model export` writes, as `--help` lists them: the engine's formats, then the mixtures.
    public static var exportList: String {
        engineList + ", " + entries.filter(\.exportMixture).map(\.name).joined(separator: ", ")
    }

    /// The name `model export` writes for `s` (an engine format or a mixture), or a message saying why it is not one.
    public static func exportName(_ s: String) -> Result<String, Refusal> {
        guard let e = entry(s) else { return .failure(Refusal("one of \(exportList)")) }
        guard e.engine || e.exportMixture else {
            return .failure(Refusal("one of \(exportList); \(e.name) is " +
                                    (e.planner != nil ? "a planner precision the engine does not run" : "a GGUF format the engine does not compute yet")))
        }
        return .success(e.name)
    }

    /// The planner's precisions, as `--help` lists them: "fp32 (f32), fp16 (f16), bf16, fp8, int8 (q8_0), int4 (q4_0)".
    public static var plannerList: String {
        Precision.allCases.map { p in
            let e = entries.first { $0.planner == p }!
            let others = ([e.name] + e.aliases).filter { $0 != p.rawValue }
            return others.isEmpty ? p.rawValue : "\(p.rawValue) (\(others.joined(separator: ", ")))"
        }.joined(separator: ", ")
    }

    /// The engine's name for `s`, or a message saying why it is not one (for an error naming the option or key).
    public static func engineName(_ s: String) -> Result<String, Refusal> {
        guard let e = entry(s) else { return .failure(Refusal("one of \(engineList)")) }
        guard e.engine else {
            return .failure(Refusal("one of \(engineList); \(e.name) is " +
                                    (e.planner != nil ? "a planner precision the engine does not run" : "a GGUF format the engine does not compute yet")))
        }
        return .success(e.name)
    }

    /// The planner's precision for `s`, or a message saying why it is not one.
    public static func plannerPrecision(_ s: String) -> Result<Precision, Refusal> {
        guard let e = entry(s) else { return .failure(Refusal("one of \(plannerList)")) }
        guard let p = e.planner else { return .failure(Refusal("one of \(plannerList); \(e.name) is a GGUF format the planner does not model yet")) }
        return .success(p)
    }

    /// What was expected instead of a name (the text after "expected").
    public struct Refusal: Error, Sendable, Equatable {
        public let expected: String
        init(_ expected: String) { self.expected = expected }
    }
}
