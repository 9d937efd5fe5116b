// Measuring in interleaved rounds: the probe and every workload run several times over, each with a share
// of the repetitions, and each case's samples are merged. Load that changes during a run then widens every
// case's spread (which the gate's interval sees) instead of silently shifting whichever case it hit.
import Foundation
import HeadroomCore
import HeadroomStore

public enum Rounds {
    /// The scenario one round measures: the measure and probe repetitions divided by `rounds` (rounded up);
    /// warm-ups are kept whole, since other cases ran in between.
    public static func share(of scenario: Scenario, rounds: Int) -> Scenario {
        var s = scenario
        if let measure = scenario.measure {
            s.measure?.repetitions = (measure.repetitions + rounds - 1) / rounds
            s.measure?.gemmRepetitions = (measure.gemmRepetitions + rounds - 1) / rounds
        }
        s.probe.repetitions = (scenario.probe.repetitions + rounds - 1) / rounds
        return s
    }

    /// Cases of the same kind, name, threads and parameters merged into one, in first-measured order,
    /// their repetitions renumbered to follow on.
    public static func merge(_ cases: [MeasuredCase]) -> [MeasuredCase] {
        struct Key: Hashable { var kind: CaseKind; var name: String; var threads: Int; var params: [String: String] }
        var order: [Key] = []
        var merged: [Key: MeasuredCase] = [:]
        for c in cases {
            let k = Key(kind: c.kind, name: c.name, threads: c.threads, params: c.params)
            guard var m = merged[k] else { merged[k] = c; order.append(k); continue }
            let offset = (m.samples.map(\.repetition).max() ?? -1) + 1
            m.samples += c.samples.map { .init(metric: $0.metric, unit: $0.unit, repetition: $0.repetition + offset, value: $0.value) }
            merged[k] = m
        }
        return order.map { merged[$0]! }
    }
}

extension Runner {
    /// Runs `rounds` rounds of `workloads(share of the scenario)` under one run record and stores each case
    /// once, merged, when all rounds are done. An error or interruption marks the run failed or interrupted.
    public func run(scenario: Scenario, rounds: Int, machine: MachineInfo = .current(), gitRevision: String = GitRevision.current(),
                    workloads: (Scenario) -> [(label: String, workload: any Workload)]) async throws -> RunOutcome {
        precondition(rounds >= 1)
        let machineJson = String(decoding: try JSONEncoder().encode(machine), as: UTF8.self)
        let runID = try store.beginRun(RunRecord(
            scenarioName: scenario.name, scenarioFile: scenario.file, scenarioHash: scenario.hash,
            scenarioText: scenario.text, gitRevision: gitRevision, machineFingerprint: machine.fingerprint,
            machineJson: machineJson, headroomVersion: version, pid: Int(getpid()), startedAt: Date(),
            note: "measured in \(rounds) interleaved rounds", branch: GitRevision.branch()))
        do {
            var all: [MeasuredCase] = []
            let share = Rounds.share(of: scenario, rounds: rounds)
            for round in 1...rounds {
                for (label, workload) in workloads(share) {
                    let specs = workload.cases()
                    // Endpoint load runs once, in the first round, for the duration its scenario gives: its points are
                    // not repetitions to interleave, and its per-request samples do not merge across rounds.
                    if round > 1, !specs.isEmpty, specs.allSatisfy({ !$0.kind.isMeasuredHere }) { continue }
                    progress.begin("\(label), round \(round)/\(rounds)", total: specs.reduce(0) { $0 + $1.steps })
                    for spec in specs {
                        all += try await workload.measureCases(spec, step: { progress.step("\(spec.name) \(MeasuredCase.threadsLabel(spec.threads))") })
                    }
                    progress.end()
                }
            }
            let merged = Rounds.merge(all)
            for c in merged { try store.record(runID: runID, c) }
            try store.finish(runID: runID, status: .complete, note: "measured in \(rounds) interleaved rounds")
            return RunOutcome(runID: runID, status: .complete, cases: merged)
        } catch let error as RunInterrupted {
            progress.note("interrupted: run \(runID) is recorded as interrupted")
            try? store.finish(runID: runID, status: .interrupted, note: "interrupted by signal")
            throw error
        } catch {
            try? store.finish(runID: runID, status: .failed, note: "\(error)")
            throw error
        }
    }
}
