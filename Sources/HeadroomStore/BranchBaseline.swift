// A gate baseline taken from the history rather than saved by name: `--baseline BRANCH@CLASS`, the latest
// complete runs of a branch on one class of machine, their samples pooled. With a shared store, each CI
// runner compares against what its own kind of hardware measured on the main branch.
import Foundation
import HeadroomCore

/// `BRANCH@CLASS`: CLASS is `this` (this machine's class), a machine fingerprint (12 hex digits: CPU model,
/// cores and memory, as `headroom history --json` lists it), or a catalog hardware id that the `hardware`
/// fact of a run's endpoint load cases names.
public struct BranchBaselineSpec: Equatable, Sendable {
    public var branch: String
    public var machineClass: String

    /// nil when `value` is not of the form BRANCH@CLASS (a baseline name, a file).
    public init?(_ value: String) {
        guard let at = value.lastIndex(of: "@"), !value.hasSuffix(".json") else { return nil }
        let branch = String(value[..<at]), cls = String(value[value.index(after: at)...])
        guard !branch.isEmpty, !cls.isEmpty, !cls.contains("/") else { return nil }
        self.branch = branch
        machineClass = cls
    }

    /// Whether a class names machines by fingerprint rather than an endpoint's hardware.
    public static func isFingerprint(_ s: String) -> Bool {
        s.count == 12 && s.allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }
}

/// A pooled baseline and the runs it pooled, newest first.
public struct PooledBaseline: Sendable {
    public var baseline: Baseline
    public var runIDs: [Int64]
}

extension Store {
    /// The latest `runs` complete runs of `branch` (of `scenario` when given; else of the newest matching run's
    /// scenario) whose class is `machineClass` — their machine fingerprint, or, for a catalog hardware id, a load
    /// case naming it — leaving out run `excluding`. Each case of the newest run (and any the others add) gets
    /// the samples of every run that measured it, so the gate compares against all of them.
    public func branchBaseline(branch: String, machineClass: String, scenario: String?, runs count: Int,
                               excluding: Int64? = nil) throws -> PooledBaseline {
        precondition(count >= 1)
        let byFingerprint = BranchBaselineSpec.isFingerprint(machineClass)
        var chosen: [StoredRun] = []
        var scenarioName = scenario
        for run in try completeRuns(scenario: scenario) where run.branch == branch && run.id != excluding {
            if let scenarioName, run.scenarioName != scenarioName { continue }
            if byFingerprint {
                guard run.machineFingerprint == machineClass else { continue }
                chosen.append(try load(runID: run.id!))
            } else {
                let stored = try load(runID: run.id!)
                guard stored.cases(kind: .load).contains(where: { $0.facts["hardware"] == machineClass }) else { continue }
                chosen.append(stored)
            }
            scenarioName = run.scenarioName
            if chosen.count == count { break }
        }
        guard let newest = chosen.first else {
            let branches = Set(try completeRuns(scenario: scenario).map(\.branch)).filter { !$0.isEmpty }.sorted()
            throw InputError(file: path, path: "", message: "no complete run of branch \"\(branch)\" on machine class \(machineClass)"
                             + (scenario.map { " of scenario \"\($0)\"" } ?? "") + "; "
                             + (branches.isEmpty ? "no complete run records a branch" : "branches with complete runs: \(branches.joined(separator: ", "))"))
        }
        var order: [PooledCaseKey] = []
        var pooled: [PooledCaseKey: MeasuredCase] = [:]
        for stored in chosen {
            for c in stored.cases {
                let key = PooledCaseKey(kind: c.kind, name: c.name, threads: c.threads, params: c.params)
                if pooled[key] == nil { order.append(key); pooled[key] = c } else { pooled[key]!.samples += c.samples }
            }
        }
        let r = newest.run
        return PooledBaseline(
            baseline: Baseline(name: "\(branch)@\(machineClass)", createdAt: r.endedAt ?? r.startedAt, runID: r.id!,
                               scenarioName: r.scenarioName, scenarioFile: r.scenarioFile, scenarioHash: r.scenarioHash,
                               gitRevision: r.gitRevision, startedAt: r.startedAt, machine: newest.machine,
                               cases: order.map { pooled[$0]! }),
            runIDs: chosen.map { $0.run.id! })
    }
}

/// A case's workload as the gate pairs cases: kind, name, parameters, threads.
private struct PooledCaseKey: Hashable { var kind: CaseKind; var name: String; var threads: Int; var params: [String: String] }
