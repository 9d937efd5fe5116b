// The plan computed for a run, kept beside it so a report can show it without planning again: data
// moves one way (run → plan → store → report). One row per run; `headroom run` writes it.
import Foundation
import GRDB
import HeadroomCore

extension Store {
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

    /// Stores (or replaces) the plan computed for `runID`.
    public func savePlan(runID: Int64, _ plan: PlanResult, at date: Date = Date()) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let json = String(decoding: try encoder.encode(plan), as: UTF8.self)
        try dbQueue.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO plan (run_id, created_at, plan_json) VALUES (?, ?, ?)",
                           arguments: [runID, date, json])
        }
    }

    /// The plan stored for `runID`, if any.
    public func plan(runID: Int64) throws -> PlanResult? {
        guard let json = try dbQueue.read({ db in
            try String.fetchOne(db, sql: "SELECT plan_json FROM plan WHERE run_id = ?", arguments: [runID])
        }) else { return nil }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(PlanResult.self, from: Data(json.utf8))
    }
}
