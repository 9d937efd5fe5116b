// Every metric name a workload records, with its unit, which way is better (or that it is bookkeeping and
// never gated), and which roofline of this machine normalises it. The gate, the scenario's `gate.metrics`
// and the load workload read this table; nothing else restates a metric's direction.

/// Whether the gate decides a metric, and which way is better.
public enum MetricGating: Equatable, Sendable {
    case gated(Direction)
    /// Recorded for the reader (a count, an HTTP status, a loss), never gated.
    case bookkeeping
}

/// One known metric.
public struct MetricDefinition: Equatable, Sendable {
    public var name: String
    /// The unit its samples carry.
    public var unit: String
    public var gating: MetricGating
    /// How it is normalised in a case measured on this machine.
    public var normalisation: Normalisation

    public init(_ name: String, _ unit: String, _ gating: MetricGating, _ normalisation: Normalisation = .none) {
        self.name = name; self.unit = unit; self.gating = gating; self.normalisation = normalisation
    }

    /// The normalisation for a case of `kind`: a kind not measured here (`load`, on an endpoint's hardware)
    /// is never normalised by this machine's probe; a machine-independent figure stays so.
    public func normalisation(for kind: CaseKind) -> Normalisation {
        if !kind.isMeasuredHere, normalisation.roofline != nil { return .none }
        return normalisation
    }

    /// The gate's rule for a case of `kind`; nil for bookkeeping.
    public func rule(for kind: CaseKind) -> MetricRule? {
        guard case .gated(let d) = gating else { return nil }
        return MetricRule(d, normalisation(for: kind))
    }
}

public enum MetricRegistry {
    static let higher = MetricGating.gated(.higherIsBetter), lower = MetricGating.gated(.lowerIsBetter)

    /// Decode streams the weights (bounded by memory bandwidth); prefill and training multiply matrices
    /// (bounded by sgemm). The load metrics are those of the load case contract (docs/gate.md).
    public static let definitions: [MetricDefinition] = [
        // probe, gemm, fine-tuning
        MetricDefinition("gflops", "GFLOP/s", higher, .divide(.sgemm)),
        MetricDefinition("gbps", "GB/s", higher, .divide(.readBandwidth)),
        MetricDefinition("weight_gbps", "GB/s", higher, .divide(.readBandwidth)),
        MetricDefinition("seconds", "s", lower),
        // a fine-tuning step; a serving step (`step` cases): raw, since a step is bounded by bandwidth or compute by its shape
        MetricDefinition("step_seconds", "s", lower),
        MetricDefinition("step_ms", "ms", lower, .multiply(.sgemm)),
        MetricDefinition("tokens_per_s", "tokens/s", higher, .divide(.sgemm)),
        MetricDefinition("loss", "nats", .bookkeeping),
        MetricDefinition("trainable_params", "count", .bookkeeping),
        MetricDefinition("total_params", "count", .bookkeeping),
        MetricDefinition("flops_per_token", "FLOP", .bookkeeping),
        MetricDefinition("weights_bytes", "B", lower, .machineIndependent),
        MetricDefinition("adapter_bytes", "B", lower, .machineIndependent),
        MetricDefinition("gradient_bytes", "B", lower, .machineIndependent),
        MetricDefinition("optimizer_bytes", "B", lower, .machineIndependent),
        MetricDefinition("activation_bytes", "B", lower, .machineIndependent),
        MetricDefinition("rss_above_baseline_bytes", "B", lower, .machineIndependent),
        MetricDefinition("peak_rss_bytes", "bytes", lower, .machineIndependent),
        // inference (and load, where the same names are raw only)
        MetricDefinition("prefill_tokens_per_s", "tokens/s", higher, .divide(.sgemm)),
        MetricDefinition("decode_tokens_per_s", "tokens/s", higher, .divide(.readBandwidth)),
        MetricDefinition("ttft_ms", "ms", lower, .multiply(.sgemm)),
        MetricDefinition("tpot_ms", "ms", lower, .multiply(.readBandwidth)),
        // load (an endpoint: never normalised by this machine's probe)
        MetricDefinition("itl_ms", "ms", lower),
        MetricDefinition("e2e_ms", "ms", lower),
        MetricDefinition("output_tokens_per_s", "tokens/s", higher),
        MetricDefinition("requests_per_s", "requests/s", higher),
        MetricDefinition("goodput_per_s", "requests/s", higher),
        MetricDefinition("schedule_lag_ms", "ms", .bookkeeping),
        MetricDefinition("status", "code", .bookkeeping),
        MetricDefinition("ok", "bool", .bookkeeping),
        MetricDefinition("good", "bool", .bookkeeping),
        MetricDefinition("prompt_tokens", "tokens", .bookkeeping),
        MetricDefinition("output_tokens", "tokens", .bookkeeping),
        MetricDefinition("itl_position", "token", .bookkeeping),
        MetricDefinition("itl_request", "index", .bookkeeping),
    ]

    static let byName: [String: MetricDefinition] = Dictionary(uniqueKeysWithValues: definitions.map { ($0.name, $0) })

    public static func definition(_ name: String) -> MetricDefinition? { byName[name] }
}
