// The plan computed for a run, kept beside it so a report can show it without planning again: data
// moves one way (run → plan → store → report). One row per run; `headroom run` writes it.
import Foundation
import GRDB
import HeadroomCore

extension SQLiteStore {
    /// Appended to the store's migrations (after v1).
    static func registerPlanMigrations(_ m: inout DatabaseMigrator) {
        m.registerMigration("v2: plans") { db in
            try db.create(table: "plan") { t in
                t.column("run_id", .integer).primaryKey().references("run", onDelete: .cascade)
                t.column("created_at", .datetime).notNull()
                t.column("plan_json", .text).notNull()
            }
        }
    }

    public func savePlan(runID: Int64, _ plan: PlanResult, at date: Date) throws {
        let json = try PlanJSON.encode(plan)
        try dbQueue.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO plan (run_id, created_at, plan_json) VALUES (?, ?, ?)",
                           arguments: [runID, date, json])
        }
    }

    public func plan(runID: Int64) throws -> PlanResult? {
        guard let json = try dbQueue.read({ db in
            try String.fetchOne(db, sql: "SELECT plan_json FROM plan WHERE run_id = ?", arguments: [runID])
        }) else { return nil }
        return try PlanJSON.decode(json)
    }
}

extension SQLiteStore {
    /// The latest complete run whose machine fingerprint is `fingerprint`, read with two plain queries
    /// (what-if must answer fast; `load(runID:)` decodes every record through Codable).
    public func latestCompleteRun(fingerprint: String) throws -> StoredRun? {
        try dbQueue.read { db in
            guard let run = try RunRecord.filter(Column("status") == RunStatus.complete.rawValue)
                .filter(Column("machine_fingerprint") == fingerprint).order(Column("started_at").desc, Column("id").desc).fetchOne(db),
                  let runID = run.id else { return nil }
            var cases: [Int64: MeasuredCase] = [:]
            var order: [Int64] = []
            let ms = try Row.fetchAll(db, sql: "SELECT id, kind, name, threads, params_json, facts_json FROM measurement WHERE run_id = ? ORDER BY id",
                                      arguments: [runID])
            for m in ms {
                let id: Int64 = m["id"]
                cases[id] = try Self.measuredCase(kind: m["kind"], name: m["name"], threads: m["threads"],
                                                  paramsJson: m["params_json"], factsJson: m["facts_json"])
                order.append(id)
            }
            let rows = try Row.fetchCursor(db, sql: """
                SELECT measurement_id, metric, unit, repetition, value FROM sample
                WHERE measurement_id IN (SELECT id FROM measurement WHERE run_id = ?) ORDER BY id
                """, arguments: [runID])
            while let r = try rows.next() {
                let id: Int64 = r["measurement_id"]
                cases[id]?.samples.append(MeasuredCase.Sample(metric: r["metric"], unit: r["unit"], repetition: r["repetition"], value: r["value"]))
            }
            return StoredRun(run: run, cases: order.compactMap { cases[$0] })
        }
    }
}
