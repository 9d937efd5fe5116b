// What `headroom history` summarises: per scenario, its complete runs only. Interrupted, failed and
// still-running runs are listed by `runs()` but never counted here.
import Foundation
import HeadroomCore

public struct ScenarioHistory: Sendable {
    public var scenario: String
    public var completeRuns: Int
    public var incompleteRuns: Int
    public var latestComplete: RunRecord?
    /// The latest complete run's probe figures (measured).
    public var latestProbe: ProbeFigures?
}

extension Store {
    /// One summary per scenario, built from complete runs only.
    public func scenarioHistories() throws -> [ScenarioHistory] {
        let all = try runs()
        let names = Array(Set(all.map(\.scenarioName))).sorted()
        return try names.map { name in
            let runs = all.filter { $0.scenarioName == name }
            let complete = runs.filter { $0.status == .complete }
            let latest = complete.first
            let probe = try latest.map { ProbeFigures(cases: try load(runID: $0.id!).cases) }
            return ScenarioHistory(scenario: name, completeRuns: complete.count, incompleteRuns: runs.count - complete.count,
                                   latestComplete: latest, latestProbe: probe)
        }
    }
}
