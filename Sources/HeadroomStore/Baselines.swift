// Named baselines in the results store: a name pointing at one complete run, which `headroom gate`
// compares later runs with. Schema migration "v3: baselines".
import Foundation
import GRDB
import HeadroomCore

public struct BaselineRecord: Codable, FetchableRecord, PersistableRecord, Equatable, Sendable {
    public static let databaseTableName = "baseline"
    public var name: String
    public var runId: Int64
    public var createdAt: Date

    public init(name: String, runId: Int64, createdAt: Date) {
        self.name = name; self.runId = runId; self.createdAt = createdAt
    }

    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
}

extension SQLiteStore {
    /// Migration "v3: baselines" (after v2, the planner's): the baseline table. A baseline keeps its run from being deleted.
    static func migrateBaselines(_ db: Database) throws {
        try db.create(table: "baseline") { t in
            t.primaryKey("name", .text)
            t.column("run_id", .integer).notNull().indexed().references("run", onDelete: .restrict)
            t.column("created_at", .datetime).notNull()
        }
    }

    @discardableResult
    public func saveBaseline(name: String, runID: Int64, at date: Date) throws -> Int64? {
        try dbQueue.write { db in
            guard let run = try RunRecord.fetchOne(db, key: runID) else { throw StoreError.noSuchRun(runID) }
            guard run.status == .complete else {
                throw InputError(file: path, path: "", message: "run \(runID) is \(run.status.rawValue); only a complete run can be a baseline")
            }
            let previous = try BaselineRecord.fetchOne(db, key: name)
            try BaselineRecord(name: name, runId: runID, createdAt: date).save(db)
            return previous?.runId
        }
    }

    public func baselines() throws -> [BaselineRecord] {
        try dbQueue.read { db in try BaselineRecord.order(Column("name")).fetchAll(db) }
    }
}
