// Which format each matrix of an exported model gets: one format throughout, or one of llama-quantize's K-quant
// mixtures (Q4_K_M, Q5_K_S, …) chosen tensor by tensor as llama.cpp's `llama_tensor_get_type` does for a llama
// model without experts and without an importance matrix, including its fallback for rows that a 256-element
// super-block does not divide.
import HeadroomKernels

/// The precision of an exported model file: the format of its matrices, tensor by tensor, and the
/// `general.file_type` llama.cpp records for it.
public struct GGUFExportPrecision: Sendable, Equatable, CustomStringConvertible {
    /// llama-quantize's K-quant mixtures: each a default format with some tensors given more bits.
    public enum Mixture: String, CaseIterable, Sendable {
        case q3_k_s, q3_k_m, q3_k_l, q4_k_s, q4_k_m, q5_k_s, q5_k_m

        /// The format of the tensors no rule singles out.
        public var base: QuantType {
            switch self {
            case .q3_k_s, .q3_k_m, .q3_k_l: return .q3_K
            case .q4_k_s, .q4_k_m: return .q4_K
            case .q5_k_s, .q5_k_m: return .q5_K
            }
        }

        /// llama.cpp's `LLAMA_FTYPE_MOSTLY_*` number (llama.h).
        public var llamaFileType: UInt32 {
            switch self {
            case .q3_k_s: return 11
            case .q3_k_m: return 12
            case .q3_k_l: return 13
            case .q4_k_s: return 14
            case .q4_k_m: return 15
            case .q5_k_s: return 16
            case .q5_k_m: return 17
            }
        }
    }

    /// The format of the matrices, or the mixture's default one.
    public let base: QuantType
    /// nil: every matrix in `base` (llama-quantize's `--pure`), except where a row width needs the fallback.
    public let mixture: Mixture?

    public init(_ type: QuantType) { base = type; mixture = nil }
    public init(_ mixture: Mixture) { base = mixture.base; self.mixture = mixture }

    /// A format's name (`q4_k`) or a mixture's (`q4_k_m`), any case; nil for anything else.
    public init?(name: String) {
        if let m = Mixture(rawValue: name.lowercased()) { self.init(m) }
        else if let t = QuantType(name: name) { self.init(t) }
        else { return nil }
    }

    public var description: String { mixture?.rawValue ?? base.description }

    /// `general.file_type`: the mixture's number, or the format's "mostly this type" number.
    public var llamaFileType: UInt32 { mixture?.llamaFileType ?? base.llamaFileType }

    /// What a tensor is, for the rules.
    public enum Role: Sendable, Equatable {
        case tokenEmbedding, output, attnQ, attnK, attnV, attnOutput, ffnGate, ffnUp, ffnDown
        /// A 1-D tensor (norms, biases, rope factors): never quantized.
        case vector

        /// The role of a llama GGUF tensor name and its layer ("blk.3.attn_v.weight" → attnV, 3).
        public init(name: String) {
            switch name {
            case ModelWeights.Name.tokenEmbedding: self = .tokenEmbedding
            case ModelWeights.Name.output: self = .output
            default:
                let parts = name.split(separator: ".")
                guard parts.count == 4, parts[0] == "blk", parts[3] == "weight" else { self = .vector; return }
                switch parts[2] {
                case "attn_q": self = .attnQ
                case "attn_k": self = .attnK
                case "attn_v": self = .attnV
                case "attn_output": self = .attnOutput
                case "ffn_gate": self = .ffnGate
                case "ffn_up": self = .ffnUp
                case "ffn_down": self = .ffnDown
                default: self = .vector
                }
            }
        }
    }

    /// The layer of a "blk.N.…" name, nil for the others.
    public static func layer(of name: String) -> Int? {
        let parts = name.split(separator: ".")
        return parts.count >= 2 && parts[0] == "blk" ? Int(parts[1]) : nil
    }

    /// The format of matrix `name` (`cols` wide: GGUF's ne[0]) in a model of `config`, and whether it is the
    /// fallback for a width that the chosen format's block does not divide.
    public func type(of name: String, cols: Int, config: ModelConfig) -> (type: QuantType, fallback: Bool) {
        let role = Role(name: name)
        var t = base
        if let mixture { t = Self.mixed(mixture, role: role, layer: Self.layer(of: name) ?? 0, cols: cols, config: config) }
        return Self.fallback(t, cols: cols)
    }

    /// llama.cpp's `use_more_bits`: the first and last eighth of the layers and every third one between.
    public static func useMoreBits(_ layer: Int, of layers: Int) -> Bool {
        layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2
    }

    /// llama_tensor_get_type_impl for a llama model without experts. The attention-V and FFN-down counters that
    /// llama.cpp keeps are the layer index here: the file holds one of each per layer, in layer order.
    static func mixed(_ m: Mixture, role: Role, layer i: Int, cols: Int, config c: ModelConfig) -> QuantType {
        let n = c.layers
        // llama.cpp's LLM_TYPE_70B for the llama architecture: 80 layers with grouped-query attention.
        let is70B = c.layers == 80 && c.heads != c.kvHeads
        switch role {
        case .output:
            return cols % m.base.blockSize != 0 ? .q8_0 : .q6_K
        case .tokenEmbedding where c.tiedEmbeddings:
            // One tensor serves as both: llama.cpp gives it the output's format.
            return cols % m.base.blockSize != 0 ? .q8_0 : .q6_K
        case .attnV:
            var t = m.base
            switch m {
            case .q3_k_m: t = i < 2 ? .q5_K : .q4_K
            case .q3_k_l: t = .q5_K
            case .q4_k_m, .q5_k_m: if useMoreBits(i, of: n) { t = .q6_K }
            case .q4_k_s: if i < 4 { t = .q5_K }
            case .q3_k_s, .q5_k_s: break
            }
            if is70B && (t == .q3_K || t == .q4_K) { t = .q5_K }
            return t
        case .ffnDown:
            switch m {
            case .q3_k_m: return i < n / 16 ? .q5_K : .q4_K
            case .q3_k_l: return .q5_K
            case .q4_k_m, .q5_k_m: return useMoreBits(i, of: n) ? .q6_K : m.base
            case .q4_k_s: return i < n / 8 ? .q5_K : m.base
            case .q3_k_s, .q5_k_s: return m.base
            }
        case .attnOutput:
            switch m {
            case .q3_k_m: return .q4_K
            case .q3_k_l: return .q5_K
            default: return m.base
            }
        default:
            return m.base
        }
    }

    /// llama.cpp's tensor_type_fallback: a K-quant whose 256-element block does not divide the row width becomes
    /// the 32-element format it names (q2_K, q3_K → q4_0; q4_K → q5_0; q5_K → q5_1; q6_K → q8_0), and f16 when
    /// 32 does not divide it either.
    public static func fallback(_ t: QuantType, cols: Int) -> (type: QuantType, fallback: Bool) {
        guard cols % t.blockSize != 0 else { return (t, false) }
        let f: QuantType
        switch t {
        case .q2_K, .q3_K: f = .q4_0
        case .q4_K: f = .q5_0
        case .q5_K: f = .q5_1
        case .q6_K: f = .q8_0
        default: f = t
        }
        return (cols % f.blockSize == 0 ? f : .f16, true)
    }
}
