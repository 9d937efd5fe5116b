// The step cases an execution-time model of this machine is fitted to (`MeasuredStepTime`), read without loading
// whole runs: the latest complete run that measured a model, precision and thread count with `headroom bench steps`.
import Foundation
import GRDB
import HeadroomCore

extension SQLiteStore {
    public func stepCases(model: String, precision: String, threads: Int, runID: Int64?) throws -> (runID: Int64, cases: [MeasuredCase])? {
        try dbQueue.read { db in
            if let runID, try RunRecord.fetchOne(db, key: runID) == nil { throw StoreError.noSuchRun(runID) }
            // One row per shape measured: a few dozen per run. Newest run first.
            var arguments: [DatabaseValueConvertible] = [CaseKind.step.rawValue, threads]
            if let runID { arguments.append(runID) }
            let rows = try Row.fetchAll(db, sql: """
                SELECT m.id, m.run_id, m.name, m.threads, m.params_json, m.facts_json FROM measurement m JOIN run r ON r.id = m.run_id
                WHERE m.kind = ? AND m.threads = ? AND \(runID == nil ? "r.status = 'complete'" : "r.id = ?") ORDER BY r.started_at DESC, m.run_id DESC, m.id
                """, arguments: StatementArguments(arguments))
            var chosen: Int64?
            var found: [(id: Int64, c: MeasuredCase)] = []
            for r in rows {
                let run: Int64 = r["run_id"]
                if let chosen, run != chosen { break }
                let c = try Self.measuredCase(kind: CaseKind.step.rawValue, name: r["name"], threads: r["threads"],
                                              paramsJson: r["params_json"], factsJson: r["facts_json"])
                guard c.params["model"] == model, c.params["precision"] == precision else { continue }
                chosen = run
                found.append((r["id"], c))
            }
            guard let chosen else { return nil }
            let ids = found.map(\.id)
            var samples: [Int64: [MeasuredCase.Sample]] = [:]
            let cursor = try Row.fetchCursor(db, sql: """
                SELECT measurement_id, metric, unit, repetition, value FROM sample
                WHERE measurement_id IN (\(ids.map { _ in "?" }.joined(separator: ","))) AND metric = 'step_seconds' ORDER BY id
                """, arguments: StatementArguments(ids))
            while let r = try cursor.next() {
                samples[r["measurement_id"], default: []].append(
                    MeasuredCase.Sample(metric: r["metric"], unit: r["unit"], repetition: r["repetition"], value: r["value"]))
            }
            return (chosen, found.map { f in
                var c = f.c
                c.samples = samples[f.id] ?? []
                return c
            })
        }
    }
}
