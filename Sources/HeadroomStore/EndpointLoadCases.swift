// The load cases endpoint calibration fits, read without loading whole runs: `plan` and `whatif` ask, for
// each catalog hardware they plan, for the latest complete run whose load cases name it, and read only the
// few metrics the fit uses (a sweep stores every inter-token gap, which calibration never reads).
import Foundation
import GRDB
import HeadroomCore

/// The load cases of one run's endpoints that name one catalog hardware id in their `hardware` fact.
public struct EndpointLoadCases: Equatable, Sendable {
    public var hardware: String
    public var runID: Int64
    /// Every load case of each endpoint that named `hardware` in that run (all its points, also any that name
    /// something else, so a fit can say they disagree), with only the samples of `metrics`.
    public var cases: [MeasuredCase]
    /// Those endpoints' names, sorted.
    public var endpoints: [String] { Array(Set(cases.map(\.name))).sorted() }

    /// The metrics endpoint calibration reads: TTFT and TPOT, and the lengths a dataset's requests reported.
    public static let calibrationMetrics = ["ttft_ms", "tpot_ms", "prompt_tokens", "output_tokens"]

    /// One load point (a measurement row) as both stores read it: its row id, run and case without samples.
    struct Point { var id: Int64; var run: Int64; var c: MeasuredCase }

    /// From every load point (newest run first), for each id in `hardware`: the latest run with a point whose
    /// `hardware` fact is that id, and every point of the endpoints that named it there. Returns the choices
    /// and, in the order of their cases, the row ids whose samples to read.
    static func choose(_ points: [Point], hardware: [String]) -> (found: [EndpointLoadCases], ids: [Int64]) {
        var found: [EndpointLoadCases] = []
        var ids: [Int64] = []
        for h in hardware where !found.contains(where: { $0.hardware == h }) {
            guard let run = points.first(where: { $0.c.facts["hardware"] == h })?.run else { continue }
            let inRun = points.filter { $0.run == run }
            let endpoints = Set(inRun.filter { $0.c.facts["hardware"] == h }.map(\.c.name))
            let mine = inRun.filter { endpoints.contains($0.c.name) }
            found.append(EndpointLoadCases(hardware: h, runID: run, cases: mine.map(\.c)))
            ids += mine.map(\.id)
        }
        return (found, ids)
    }

    /// Gives each chosen case the samples read for its row (`ids` as `choose` returned them).
    static func attach(_ samples: [Int64: [MeasuredCase.Sample]], to found: inout [EndpointLoadCases], ids: [Int64]) {
        var cursor = 0
        for i in found.indices {
            for j in found[i].cases.indices {
                found[i].cases[j].samples = samples[ids[cursor]] ?? []
                cursor += 1
            }
        }
    }
}

extension SQLiteStore {
    static let sampleMetricIndexMigration = "v5: samples indexed by measurement and metric"
    /// Migrations that only add indexes: a store without them reads the same (slower), so a read-only open
    /// does not refuse it.
    static let indexOnlyMigrations: Set<String> = [sampleMetricIndexMigration]

    /// Samples indexed by (measurement, metric), replacing the index by measurement alone (which the new one
    /// serves too): reading a few metrics of a load point then skips its inter-token gaps, hundreds of
    /// thousands of rows in a long sweep.
    static func migrateSampleMetricIndex(_ db: Database) throws {
        try db.create(index: "sample_on_measurement_id_metric", on: "sample", columns: ["measurement_id", "metric"])
        try db.drop(index: "sample_on_measurement_id")
    }

    public func endpointLoadCases(hardware: [String], runID: Int64?, metrics: [String]) throws -> [EndpointLoadCases] {
        guard !hardware.isEmpty else { return [] }
        return try dbQueue.read { db in
            if let runID, try RunRecord.fetchOne(db, key: runID) == nil { throw StoreError.noSuchRun(runID) }
            // One row per load point: few, even over a long history. Newest run first.
            let rows = try Row.fetchAll(db, sql: """
                SELECT m.id, m.run_id, m.name, m.threads, m.params_json, m.facts_json FROM measurement m JOIN run r ON r.id = m.run_id
                WHERE m.kind = ? AND \(runID == nil ? "r.status = 'complete'" : "r.id = ?") ORDER BY r.started_at DESC, m.run_id DESC, m.id
                """, arguments: runID.map { [CaseKind.load.rawValue, $0] } ?? [CaseKind.load.rawValue])
            var points: [EndpointLoadCases.Point] = []
            for r in rows {
                let c = try Self.measuredCase(kind: CaseKind.load.rawValue, name: r["name"], threads: r["threads"],
                                              paramsJson: r["params_json"], factsJson: r["facts_json"])
                points.append(.init(id: r["id"], run: r["run_id"], c: c))
            }
            var (found, ids) = EndpointLoadCases.choose(points, hardware: hardware)
            guard !ids.isEmpty else { return found }
            // Only the metrics asked for, of only the chosen points: with the (measurement_id, metric) index the
            // rows read are those returned; a store without it yet scans the points' samples.
            var samples: [Int64: [MeasuredCase.Sample]] = [:]
            let unique = Array(Set(ids))
            let rowsOut = try Row.fetchCursor(db, sql: """
                SELECT measurement_id, metric, unit, repetition, value FROM sample
                WHERE measurement_id IN (\(unique.map { _ in "?" }.joined(separator: ","))) AND metric IN (\(metrics.map { _ in "?" }.joined(separator: ",")))
                ORDER BY id
                """, arguments: StatementArguments(unique.map { $0 as DatabaseValueConvertible } + metrics.map { $0 as DatabaseValueConvertible }))
            while let r = try rowsOut.next() {
                samples[r["measurement_id"], default: []].append(
                    MeasuredCase.Sample(metric: r["metric"], unit: r["unit"], repetition: r["repetition"], value: r["value"]))
            }
            EndpointLoadCases.attach(samples, to: &found, ids: ids)
            return found
        }
    }
}
