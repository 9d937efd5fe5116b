// One measured case and its raw samples: the unit the runner produces, the store keeps and the report reads.

/// A measurement as the runner hands it over: the case and its raw samples.
public struct MeasuredCase: Codable, Equatable, Sendable {
    public var kind: String
    public var name: String
    public var threads: Int
    public var params: [String: String]
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

    public init(kind: String, name: String, threads: Int, params: [String: String], samples: [Sample]) {
        self.kind = kind; self.name = name; self.threads = threads; self.params = params; self.samples = samples
    }

    /// The values of one metric, in repetition order.
    public func values(_ metric: String) -> [Double] {
        samples.filter { $0.metric == metric }.sorted { $0.repetition < $1.repetition }.map(\.value)
    }

    public func summary(_ metric: String) -> Summary? { Summary(values(metric)) }

    public func unit(of metric: String) -> String { samples.first { $0.metric == metric }?.unit ?? "" }
}

