// `headroom history push`: a machine's local runs copied, with every sample and plan, into a shared store.
// Idempotent by the run's uid: a run the target has (from an earlier push, or a concurrent one) is left alone.
import Foundation
import HeadroomCore

/// What one push did.
public struct PushReport: Sendable, Equatable {
    public struct Copied: Sendable, Equatable {
        /// The run's id in the store pushed from, and the id it got in the store pushed to.
        public var localID: Int64
        public var sharedID: Int64
        public var uid: String
        public var scenario: String
        public var status: RunStatus
        public var samples: Int
    }
    /// Runs copied by this push, oldest first.
    public var copied: [Copied] = []
    /// Local ids of finished runs the target already had.
    public var alreadyThere: [Int64] = []
    /// Local ids of runs still running: not copied (a copy is never updated), to push once they end.
    public var stillRunning: [Int64] = []

    public var samples: Int { copied.reduce(0) { $0 + $1.samples } }
}

public enum HistoryPush {
    /// Copies every finished run of `source` (of `scenario` only, when given) that `target` lacks, oldest first,
    /// each run in one transaction of `target`. Pushing again copies nothing; two pushes at once copy each run once.
    public static func push(from source: any Store, to target: any Store, scenario: String? = nil) throws -> PushReport {
        var report = PushReport()
        let have = try target.runUIDs()
        for run in try source.runs().reversed() where scenario == nil || run.scenarioName == scenario {
            guard let localID = run.id else { continue }
            if run.status == .running { report.stillRunning.append(localID); continue }
            if have.contains(run.uid) { report.alreadyThere.append(localID); continue }
            let stored = try source.load(runID: localID)
            // nil: a push running at the same time stored it first.
            guard let sharedID = try target.importRun(stored, plan: try source.plan(runID: localID)) else {
                report.alreadyThere.append(localID)
                continue
            }
            report.copied.append(.init(localID: localID, sharedID: sharedID, uid: run.uid, scenario: run.scenarioName,
                                       status: run.status, samples: stored.cases.reduce(0) { $0 + $1.samples.count }))
        }
        return report
    }
}
