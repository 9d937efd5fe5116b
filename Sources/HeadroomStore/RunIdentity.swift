// Schema migration "v6: run uid and host": every run gets a uid (a UUID) that names it in every store it is
// copied to — the key `headroom history push` deduplicates on — and the host that ran it, so that reaping
// abandoned runs only ever asks this host's process table about this host's runs (a shared store holds runs
// of many machines, and another machine's pid means nothing here).
import Foundation
import GRDB
import HeadroomCore

extension SQLiteStore {
    static let runIdentityMigration = "v6: run uid and host"

    /// Runs stored before the migration get a fresh uid and the host their machine JSON recorded.
    static func migrateRunIdentity(_ db: Database) throws {
        try db.alter(table: "run") { t in
            t.add(column: "uid", .text).notNull().defaults(to: "")
            t.add(column: "host", .text).notNull().defaults(to: "")
        }
        struct Host: Decodable { var hostname: String? }
        let rows = try Row.fetchAll(db, sql: "SELECT id, machine_json FROM run")
        for row in rows {
            let id: Int64 = row["id"], json: String = row["machine_json"]
            let host = (try? JSONDecoder().decode(Host.self, from: Data(json.utf8)))?.hostname ?? ""
            try db.execute(sql: "UPDATE run SET uid = ?, host = ? WHERE id = ?", arguments: [RunRecord.newUID(), host, id])
        }
        try db.create(index: "run_on_uid", on: "run", columns: ["uid"], unique: true)
    }

    static let runBranchMigration = "v7: run branch"

    /// The git branch a run measured; runs from before it have none ("").
    static func migrateRunBranch(_ db: Database) throws {
        try db.alter(table: "run") { t in t.add(column: "branch", .text).notNull().defaults(to: "") }
    }
}

/// How a plan is kept in either store: JSON with sorted keys, infinities as strings.
enum PlanJSON {
    static func encode(_ plan: PlanResult) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(plan), as: UTF8.self)
    }

    static func decode(_ json: String) throws -> PlanResult {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(PlanResult.self, from: Data(json.utf8))
    }
}
