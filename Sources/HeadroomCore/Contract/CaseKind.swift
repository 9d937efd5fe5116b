// The kinds of measured case: the one owner of the words "probe", "gemm", "inference", "finetune",
// "load" and "step" that the runner stores, the gate matches on, calibration reads and the report groups by.

/// What a measured case is. Stored and written to baseline files as its raw text ("gemm").
///
/// A string-backed struct, not an enum: a store or baseline written by another Headroom may hold a kind
/// this one does not know, and such a case must still load (and be shown, stored and compared as the text
/// it is) instead of failing the whole file. The known kinds are the static constants.
public struct CaseKind: RawRepresentable, Hashable, Comparable, Codable, Sendable, ExpressibleByStringLiteral,
                        CustomStringConvertible {
    public var rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { rawValue = value }

    /// This machine's limits (bandwidth, sgemm): the rooflines, never gated.
    public static let probe: CaseKind = "probe"
    /// One GEMM shape of a transformer layer through OpenBLAS.
    public static let gemm: CaseKind = "gemm"
    /// Prefill and decode of the engine at one precision, prompt length and batch.
    public static let inference: CaseKind = "inference"
    /// A real fine-tuning run (LoRA or full).
    public static let finetune: CaseKind = "finetune"
    /// One load point against an OpenAI-compatible endpoint (another machine).
    public static let load: CaseKind = "load"
    /// One serving step of the engine (`ServingSession.step`: a prefill chunk, decodes, or both), timed alone:
    /// what `MeasuredStepTime` is fitted to.
    public static let step: CaseKind = "step"

    public static let known: [CaseKind] = [.probe, .gemm, .inference, .finetune, .load, .step]
    public var isKnown: Bool { Self.known.contains(self) }

    /// Whether this kind runs on this machine, so the probe's rooflines bound it: false for `load`, whose
    /// figures belong to the endpoint's hardware. Unknown kinds are assumed local (as every kind was before
    /// `load`).
    public var isMeasuredHere: Bool { self != .load }

    public var description: String { rawValue }
    public static func < (a: CaseKind, b: CaseKind) -> Bool { a.rawValue < b.rawValue }

    public init(from decoder: Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}
