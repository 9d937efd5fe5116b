// The embedded results store: one SQLite file through GRDB, the default (nothing to set up). Every write is
// a transaction; a run is `running` until it is marked complete, failed or interrupted, and only complete
// runs are summarised.
import Foundation
import GRDB
import HeadroomCore

public final class SQLiteStore: Store, @unchecked Sendable {
    public typealias OpenMode = StoreOpenMode

    public let dbQueue: DatabaseQueue
    public let path: String
    public let mode: OpenMode

    /// Opens read-write, creating the file (not its folder) as needed, and migrates to the latest schema.
    public convenience init(path: String) throws {
        try self.init(path: path, mode: .readWrite(createFolder: false))
    }

    /// Opens `path` (`:memory:` for a private in-memory store) as `mode` says.
    public init(path: String, mode: OpenMode) throws {
        self.path = path
        self.mode = mode
        do {
            dbQueue = try Self.openQueue(path: path, mode: mode)
        } catch let error as DatabaseError {
            throw StoreError.cannotOpen(path, error.message ?? "\(error)")
        }
    }

    static func configuration(readonly: Bool) -> Configuration {
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.readonly = readonly
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA foreign_keys = ON") }
        return config
    }

    /// An empty store of the latest schema that lives in memory only.
    static func emptyQueue() throws -> DatabaseQueue {
        let queue = try DatabaseQueue(configuration: configuration(readonly: false))
        try migrator.migrate(queue)
        return queue
    }

    static func openQueue(path: String, mode: OpenMode) throws -> DatabaseQueue {
        if path == ":memory:" { return try emptyQueue() }
        let fm = FileManager.default
        switch mode {
        case .readOnly:
            let size = (try? fm.attributesOfItem(atPath: path))?[.size] as? Int
            guard let size, size > 0 else { return try emptyQueue() }  // no store yet: no runs, and nothing created
            let queue = try DatabaseQueue(path: path, configuration: configuration(readonly: true))
            switch try queue.read({ db in try recognise(db, path: path) }) {
            case .empty:
                return try emptyQueue()
            case .headroom(let applied):
                let missing = migrator.migrations.filter { !applied.contains($0) && !indexOnlyMigrations.contains($0) }
                if !missing.isEmpty { throw StoreError.olderSchema(path, missing: missing) }
                return queue
            }
        case .readWrite(let createFolder):
            let dir = (path as NSString).deletingLastPathComponent
            var isDirectory: ObjCBool = false
            if !dir.isEmpty && !(fm.fileExists(atPath: dir, isDirectory: &isDirectory) && isDirectory.boolValue) {
                guard createFolder else { throw StoreError.folderMissing(path, folder: dir) }
                try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            }
            let queue = try DatabaseQueue(path: path, configuration: configuration(readonly: false))
            // Recognised in a read, before the migrator runs and outside any write transaction, so another
            // program's database is refused exactly as it was (no migrations table, no Headroom tables).
            _ = try queue.read { db in try recognise(db, path: path) }
            try migrator.migrate(queue)
            return queue
        }
    }

    enum Recognised: Equatable {
        /// No tables at all (a new or zero-length file), or only an empty migrations table.
        case empty
        /// A Headroom store with these migrations applied.
        case headroom(applied: Set<String>)
    }

    /// A store is recognised by its migrations table holding Headroom's first migration; anything else with
    /// tables is another program's database.
    static func recognise(_ db: Database, path: String) throws -> Recognised {
        let tables = try String.fetchAll(db, sql: """
            SELECT name FROM sqlite_master
            WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'grdb_migrations' ORDER BY name
            """)
        let applied = try migrator.appliedIdentifiers(db)
        if tables.isEmpty && applied.isEmpty { return .empty }
        guard let first = migrator.migrations.first, applied.contains(first) else {
            let listed = tables.prefix(5).joined(separator: ", ") + (tables.count > 5 ? ", …" : "")
            let why = applied.isEmpty ? "it holds tables \(listed) and no Headroom migrations"
                                      : "its migrations (\(applied.sorted().joined(separator: ", "))) are not Headroom's"
            throw StoreError.notAHeadroomStore(path, why)
        }
        return .headroom(applied: applied)
    }

    /// Append-only list of schema migrations.
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1: runs, measurements, samples") { db in
            try db.create(table: "run") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("scenario_name", .text).notNull()
                t.column("scenario_file", .text).notNull()
                t.column("scenario_hash", .text).notNull()
                t.column("scenario_text", .text).notNull()
                t.column("git_revision", .text).notNull()
                t.column("machine_fingerprint", .text).notNull()
                t.column("machine_json", .text).notNull()
                t.column("headroom_version", .text).notNull()
                t.column("pid", .integer).notNull()
                t.column("started_at", .datetime).notNull()
                t.column("ended_at", .datetime)
                t.column("status", .text).notNull()
                    .check { ["running", "complete", "failed", "interrupted"].contains($0) }
                t.column("note", .text).notNull().defaults(to: "")
            }
            try db.create(table: "measurement") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("run_id", .integer).notNull().indexed().references("run", onDelete: .cascade)
                t.column("kind", .text).notNull()
                t.column("name", .text).notNull()
                t.column("threads", .integer).notNull()
                t.column("params_json", .text).notNull()
            }
            try db.create(table: "sample") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("measurement_id", .integer).notNull().indexed().references("measurement", onDelete: .cascade)
                t.column("metric", .text).notNull()
                t.column("unit", .text).notNull()
                t.column("repetition", .integer).notNull()
                t.column("value", .double).notNull()
            }
        }
        registerPlanMigrations(&m)
        m.registerMigration("v3: baselines", migrate: migrateBaselines)
        m.registerMigration("v4: measurement facts", migrate: migrateMeasurementFacts)
        m.registerMigration(sampleMetricIndexMigration, migrate: migrateSampleMetricIndex)
        m.registerMigration(runIdentityMigration, migrate: migrateRunIdentity)
        m.registerMigration(runBranchMigration, migrate: migrateRunBranch)
        m.registerMigration(runSweepMigration, migrate: migrateRunSweep)
        return m
    }

    /// The names of the migrations applied to this file, in order.
    public func appliedMigrations() throws -> [String] {
        try dbQueue.read { db in try Self.migrator.appliedMigrations(db) }
    }

    // MARK: writing

    public func beginRun(_ run: RunRecord) throws -> Int64 {
        try dbQueue.write { db in
            var r = run
            r.status = .running
            try r.insert(db)
            return r.id!
        }
    }

    public func record(runID: Int64, _ measured: MeasuredCase) throws {
        try dbQueue.write { db in try Self.insert(measured, runID: runID, db) }
    }

    static func insert(_ measured: MeasuredCase, runID: Int64, _ db: Database) throws {
            var m = MeasurementRecord(id: nil, runId: runID, kind: measured.kind.rawValue, name: measured.name,
                                      threads: measured.threads, paramsJson: try Self.encodeSorted(measured.params),
                                      factsJson: try Self.encodeSorted(measured.facts))
            try m.insert(db)
            for s in measured.samples {
                var row = SampleRecord(id: nil, measurementId: m.id!, metric: s.metric, unit: s.unit,
                                       repetition: s.repetition, value: s.value)
                try row.insert(db)
            }
    }

    public func importRun(_ stored: StoredRun, plan: PlanResult?) throws -> Int64? {
        try dbQueue.write { db in
            var run = stored.run
            run.id = nil
            // The unique uid decides: a run already here (pushed before, or by a concurrent push) is left as it is.
            try db.execute(sql: """
                INSERT INTO run (uid, host, branch, scenario_name, scenario_file, scenario_hash, scenario_text, git_revision,
                                 machine_fingerprint, machine_json, headroom_version, pid, started_at, ended_at, status, note,
                                 sweep, shard_index, shard_count)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (uid) DO NOTHING
                """, arguments: [run.uid, run.host, run.branch, run.scenarioName, run.scenarioFile, run.scenarioHash, run.scenarioText,
                                 run.gitRevision, run.machineFingerprint, run.machineJson, run.headroomVersion, run.pid,
                                 run.startedAt, run.endedAt, run.status.rawValue, run.note, run.sweep, run.shardIndex, run.shardCount])
            guard db.changesCount == 1 else { return nil }
            let id = db.lastInsertedRowID
            for c in stored.cases { try Self.insert(c, runID: id, db) }
            if let plan {
                try db.execute(sql: "INSERT INTO plan (run_id, created_at, plan_json) VALUES (?, ?, ?)",
                               arguments: [id, run.endedAt ?? run.startedAt, try PlanJSON.encode(plan)])
            }
            return id
        }
    }

    public func runUIDs() throws -> Set<String> {
        try dbQueue.read { db in Set(try String.fetchAll(db, sql: "SELECT uid FROM run")) }
    }

    public func finish(runID: Int64, status: RunStatus, note: String, at date: Date) throws {
        try dbQueue.write { db in
            try db.execute(sql: "UPDATE run SET status = ?, ended_at = ?, note = ? WHERE id = ?",
                           arguments: [status.rawValue, date, note, runID])
        }
    }

    @discardableResult
    public func reapAbandonedRuns(isAlive: (Int) -> Bool) throws -> Int {
        try dbQueue.write { db in
            let stale = try RunRecord.filter(Column("status") == RunStatus.running.rawValue)
                .filter([RunRecord.thisHost, ProcessInfo.processInfo.hostName, ""].contains(Column("host"))).fetchAll(db)
                .filter { !isAlive($0.pid) }
            for r in stale {
                try db.execute(sql: "UPDATE run SET status = 'interrupted', note = ? WHERE id = ?",
                               arguments: ["process \(r.pid) ended without finishing the run", r.id])
            }
            return stale.count
        }
    }

    // MARK: reading

    public func runs(limit: Int?) throws -> [RunRecord] {
        try dbQueue.read { db in
            var q = RunRecord.order(Column("started_at").desc, Column("id").desc)
            if let limit { q = q.limit(limit) }
            return try q.fetchAll(db)
        }
    }

    public func completeRuns(scenario: String?, limit: Int?) throws -> [RunRecord] {
        try dbQueue.read { db in
            var q = RunRecord.filter(Column("status") == RunStatus.complete.rawValue)
            if let scenario { q = q.filter(Column("scenario_name") == scenario) }
            q = q.order(Column("started_at").desc, Column("id").desc)
            if let limit { q = q.limit(limit) }
            return try q.fetchAll(db)
        }
    }

    public func load(runID: Int64) throws -> StoredRun {
        try dbQueue.read { db in
            guard let run = try RunRecord.fetchOne(db, key: runID) else { throw StoreError.noSuchRun(runID) }
            let ms = try MeasurementRecord.filter(Column("run_id") == runID).order(Column("id")).fetchAll(db)
            let samples = try SampleRecord
                .filter(sql: "measurement_id IN (SELECT id FROM measurement WHERE run_id = ?)", arguments: [runID])
                .order(Column("id")).fetchAll(db)
            let byCase = Dictionary(grouping: samples, by: \.measurementId)
            let cases = try ms.map { m -> MeasuredCase in
                var c = try Self.measuredCase(kind: m.kind, name: m.name, threads: m.threads, paramsJson: m.paramsJson, factsJson: m.factsJson)
                c.samples = (byCase[m.id!] ?? []).map {
                    MeasuredCase.Sample(metric: $0.metric, unit: $0.unit, repetition: $0.repetition, value: $0.value)
                }
                return c
            }
            return StoredRun(run: run, cases: cases)
        }
    }

    public func sampleCount(runID: Int64) throws -> Int {
        try dbQueue.read { db in
            try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM sample JOIN measurement ON sample.measurement_id = measurement.id
                WHERE measurement.run_id = ?
                """, arguments: [runID]) ?? 0
        }
    }
}
