// Schema migration "v4: measurement facts": what a measurement recorded about itself (ISA, bytes and FLOPs
// it counted) moves out of `params_json` into a column of its own, so the parameters are the workload's
// inputs only. Rows written before it are split by `CaseFacts.splitLegacy`, the rule the baseline reader
// applies to files of format version 1.
import Foundation
import GRDB
import HeadroomCore

extension SQLiteStore {
    static func migrateMeasurementFacts(_ db: Database) throws {
        try db.alter(table: "measurement") { t in
            t.add(column: "facts_json", .text).notNull().defaults(to: "{}")
        }
        let rows = try Row.fetchAll(db, sql: "SELECT id, params_json FROM measurement")
        for row in rows {
            let id: Int64 = row["id"], json: String = row["params_json"]
            let params = try JSONDecoder().decode([String: String].self, from: Data(json.utf8))
            let split = CaseFacts.splitLegacy(params: params)
            guard !split.facts.isEmpty else { continue }
            try db.execute(sql: "UPDATE measurement SET params_json = ?, facts_json = ? WHERE id = ?",
                           arguments: [try encodeSorted(split.params), try encodeSorted(split.facts), id])
        }
    }

    /// A JSON object with sorted keys: how `params_json` and `facts_json` are written.
    static func encodeSorted(_ object: [String: String]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(object), as: UTF8.self)
    }

    /// A measurement row as the case it holds (samples not included).
    static func measuredCase(kind: String, name: String, threads: Int, paramsJson: String, factsJson: String) throws -> MeasuredCase {
        let decoder = JSONDecoder()
        return MeasuredCase(kind: CaseKind(kind), name: name, threads: threads,
                            params: try decoder.decode([String: String].self, from: Data(paramsJson.utf8)),
                            facts: try decoder.decode([String: String].self, from: Data(factsJson.utf8)), samples: [])
    }
}
