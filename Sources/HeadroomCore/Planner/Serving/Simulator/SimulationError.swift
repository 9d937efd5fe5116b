// Why a simulation cannot run: a configuration field out of range, or a part (the predictor, the
// scheduler) that broke its promise during the run. Every message names the field.

/// A simulation input that is wrong, or a part that misbehaved: which field, what it had to be, what it was.
public struct SimulationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The field as a path into `SimulationConfig` ("arrivals.rate", "replicas[1].pipelineStages",
    /// "promptLengths.values[3]", "replicas[0].predictor").
    public var field: String
    /// What the value had to be ("a finite rate above 0 requests/s").
    public var expected: String
    /// What it was.
    public var got: String

    public init(field: String, expected: String, got: String) {
        self.field = field; self.expected = expected; self.got = got
    }

    public var description: String { "\(field): expected \(expected), got \(got)" }
}
