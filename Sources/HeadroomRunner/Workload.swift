// The seam between the runner and what it measures: a workload lists its cases and measures one
// at a time. The runner neither knows nor cares whether a case is a GEMM, a decode, a training step or
// requests to an endpoint; `measure` is async so a workload that waits on the network need not block a thread
// (a synchronous `measure` still conforms).
import HeadroomCore

/// One case a workload will measure, known before anything runs (so progress can count them).
public struct CaseSpec: Sendable {
    public var kind: CaseKind
    public var name: String
    public var threads: Int
    public var params: [String: String]
    /// Timed repetitions plus warm-ups: the progress steps this case takes.
    public var steps: Int

    public init(kind: CaseKind, name: String, threads: Int, params: [String: String], steps: Int) {
        self.kind = kind; self.name = name; self.threads = threads; self.params = params; self.steps = steps
    }
}

public protocol Workload {
    /// The cases this workload will measure, in order.
    func cases() -> [CaseSpec]
    /// Measures one spec and returns the cases it yields, in the order the runner stores them: one for a
    /// workload measured here; each point of a load sweep, whose later rates depend on what the first achieved.
    /// Calls `step()` once per warm-up or repetition; throws `RunInterrupted` when `Interrupt.requested` becomes true.
    func measureCases(_ spec: CaseSpec, step: () throws -> Void) async throws -> [MeasuredCase]
}

/// A workload whose every spec is one case (all those measured on this machine).
public protocol SingleCaseWorkload: Workload {
    /// Measures one case; calls `step()` once per warm-up or repetition and returns every raw sample.
    func measure(_ spec: CaseSpec, step: () throws -> Void) async throws -> MeasuredCase
}

extension SingleCaseWorkload {
    public func measureCases(_ spec: CaseSpec, step: () throws -> Void) async throws -> [MeasuredCase] {
        [try await measure(spec, step: step)]
    }
}

/// Checks for an interruption; call between repetitions.
public func checkInterrupt() throws {
    if Interrupt.requested { throw RunInterrupted() }
}
