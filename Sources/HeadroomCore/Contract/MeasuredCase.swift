// One measured case and its raw samples: the unit the runner produces, the store keeps and the report reads.

/// A measurement as the runner hands it over: the case and its raw samples.
///
/// `params` are the workload's inputs (what was asked for: model, M, N, K, prompt_tokens, …): two cases with
/// the same kind, name and params measured the same thing, so the gate matches on them. `facts` are what the
/// measurement recorded about itself (the ISA its kernels chose, bytes and FLOPs it counted): shown, never
/// matched.
public struct MeasuredCase: Codable, Equatable, Sendable {
    public var kind: CaseKind
    public var name: String
    public var threads: Int
    public var params: [String: String]
    public var facts: [String: String]
    public var samples: [Sample]

    public struct Sample: Codable, Equatable, Sendable {
        public var metric: String
        public var unit: String
        public var repetition: Int
        public var value: Double
        public init(metric: String, unit: String, repetition: Int, value: Double) {
            self.metric = metric; self.unit = unit; self.repetition = repetition; self.value = value
        }
    }

    public init(kind: CaseKind, name: String, threads: Int, params: [String: String], facts: [String: String] = [:],
                samples: [Sample]) {
        self.kind = kind; self.name = name; self.threads = threads; self.params = params; self.facts = facts
        self.samples = samples
    }

    enum CodingKeys: String, CodingKey { case kind, name, threads, params, facts, samples }

    /// `facts` may be absent (JSON written before it existed).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(CaseKind.self, forKey: .kind)
        name = try c.decode(String.self, forKey: .name)
        threads = try c.decode(Int.self, forKey: .threads)
        params = try c.decode([String: String].self, forKey: .params)
        facts = try c.decodeIfPresent([String: String].self, forKey: .facts) ?? [:]
        samples = try c.decode([Sample].self, forKey: .samples)
    }

    /// The values of one metric, in repetition order.
    public func values(_ metric: String) -> [Double] {
        samples.filter { $0.metric == metric }.sorted { $0.repetition < $1.repetition }.map(\.value)
    }

    public func summary(_ metric: String) -> Summary? { Summary(values(metric)) }

    public func unit(of metric: String) -> String { samples.first { $0.metric == metric }?.unit ?? "" }
}

extension MeasuredCase {
    /// "×2t" for a case measured here on 2 threads; "" for an endpoint's case (thread count 0: none here).
    public static func threadsLabel(_ threads: Int) -> String { threads == 0 ? "" : "×\(threads)t" }
}
