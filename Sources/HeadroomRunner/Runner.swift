// `headroom run`: probe, measure, store, plan, report. Cases are stored one transaction each as they
// finish; the run is marked complete only at the end, after its plan (when the scenario has one) is
// computed and stored, so neither an interruption nor a failed plan ever passes for a result.
import Foundation
import HeadroomCore
import HeadroomKernels
import HeadroomStore

public struct RunOutcome: Sendable {
    public var runID: Int64
    public var status: RunStatus
    public var cases: [MeasuredCase]
    /// The plan computed from this run's measurements, when the run was given a `PlanJob`.
    public var plan: PlanResult?
}

public struct Runner {
    public var store: Store
    public var progress: Progress
    public var version: String

    public init(store: Store, progress: Progress, version: String) {
        self.store = store; self.progress = progress; self.version = version
    }

    /// The probe measures the scenario's thread counts and all cores, so every case has a roofline.
    public static func probeThreads(for scenario: Scenario, cores: Int) -> [Int] {
        Array(Set((scenario.measure?.threads ?? []) + [1, cores])).sorted()
    }

    /// Runs `workloads` in order under one run record (recorded as `shard` of its sweep when given), then plans `plan` (calibrated on this run) and
    /// stores the plan beside it. An error or interruption marks the run failed or interrupted (what was
    /// stored stays, flagged) and is rethrown; a plan that fails after measuring is `RunPlanningFailed`.
    /// Chosen over keeping such a run complete: `complete` means everything `run` promises was done, so
    /// history, baselines and calibration never pick up a run whose plan and report are missing.
    public func run(scenario: Scenario, workloads: [(label: String, workload: any Workload)],
                    machine: MachineInfo = .current(), gitRevision: String = GitRevision.current(),
                    plan job: PlanJob? = nil, shard: SweepShard? = nil) async throws -> RunOutcome {
        let machineJson = String(decoding: try JSONEncoder().encode(machine), as: UTF8.self)
        let runID = try store.beginRun(RunRecord(
            scenarioName: scenario.name, scenarioFile: scenario.file, scenarioHash: scenario.hash,
            scenarioText: scenario.text, gitRevision: gitRevision, machineFingerprint: machine.fingerprint,
            machineJson: machineJson, headroomVersion: version, pid: Int(getpid()), startedAt: Date(),
            branch: GitRevision.branch(), shard: shard))
        var all: [MeasuredCase] = []
        do {
            for (label, workload) in workloads {
                let specs = workload.cases()
                progress.begin(label, total: specs.reduce(0) { $0 + $1.steps })
                for spec in specs {
                    for measured in try await workload.measureCases(spec, step: { progress.step("\(spec.name) \(MeasuredCase.threadsLabel(spec.threads))") }) {
                        try store.record(runID: runID, measured)
                        all.append(measured)
                    }
                }
                progress.end()
            }
            var plan: PlanResult?
            if let job {
                do {
                    plan = try job.plan(calibrationRun: try store.load(runID: runID), leaveOneOut: true)
                } catch {
                    throw RunPlanningFailed(runID: runID, scenario: scenario.name, reason: "\(error)")
                }
                try store.savePlan(runID: runID, plan!)
            }
            try store.finish(runID: runID, status: .complete)
            return RunOutcome(runID: runID, status: .complete, cases: all, plan: plan)
        } catch let error as RunInterrupted {
            progress.stop()
            progress.note("interrupted: run \(runID) is recorded as interrupted")
            try? store.finish(runID: runID, status: .interrupted, note: "interrupted by signal")
            throw error
        } catch {
            progress.stop()
            try? store.finish(runID: runID, status: .failed, note: "\(error)")
            throw error
        }
    }
}

public enum GitRevision {
    /// `git rev-parse HEAD` in the current folder (with "+dirty" when the tree has changes), or "unknown".
    public static func current() -> String {
        guard let rev = git(["rev-parse", "HEAD"]), !rev.isEmpty else { return "unknown" }
        let dirty = git(["status", "--porcelain", "--untracked-files=no"]).map { !$0.isEmpty } ?? false
        return dirty ? rev + "+dirty" : rev
    }

    /// The branch being measured: HEADROOM_BRANCH, else the CI's (GitHub Actions' GITHUB_HEAD_REF for a pull
    /// request, else GITHUB_REF_NAME; GitLab's CI_COMMIT_REF_NAME), else git's current branch; "" when detached
    /// or not in a repository.
    public static func branch(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        for key in ["HEADROOM_BRANCH", "GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME"] {
            if let v = environment[key], !v.isEmpty { return v }
        }
        guard let name = git(["rev-parse", "--abbrev-ref", "HEAD"]), name != "HEAD" else { return "" }
        return name
    }

    private static func git(_ args: [String]) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git"] + args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
