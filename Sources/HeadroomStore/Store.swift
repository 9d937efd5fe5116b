// The results store: one SQLite file through GRDB. Every write is a transaction; a run is
// `running` until it is marked complete, failed or interrupted, and only complete runs are summarised.
import Foundation
import GRDB
import HeadroomCore

/// A stored run with everything it measured.
public struct StoredRun: Sendable {
    public var run: RunRecord
    public var cases: [MeasuredCase]

    public init(run: RunRecord, cases: [MeasuredCase]) {
        self.run = run
        self.cases = cases
    }

    public var machine: MachineInfo? {
        try? JSONDecoder().decode(MachineInfo.self, from: Data(run.machineJson.utf8))
    }

    public func cases(kind: CaseKind) -> [MeasuredCase] { cases.filter { $0.kind == kind } }
}

public enum StoreError: Error, CustomStringConvertible {
    case noSuchRun(Int64)
    case cannotOpen(String, String)
    /// A database that is not a Headroom store (another program's), left exactly as it was.
    case notAHeadroomStore(String, String)
    /// A store path whose folder does not exist (only the default `.headroom/` folder is created).
    case folderMissing(String, folder: String)
    /// Opened read-only, a Headroom store written before these migrations, which only a write can apply.
    case olderSchema(String, missing: [String])

    public var description: String {
        switch self {
        case .noSuchRun(let id): return "no run with id \(id) in the store"
        case .cannotOpen(let path, let why): return "\(path): cannot open the results store: \(why)"
        case .notAHeadroomStore(let path, let why):
            return "\(path): not a Headroom results store (\(why)); it was left unchanged: name a new file or a Headroom store"
        case .folderMissing(let path, let folder):
            return "\(path): cannot create the results store: the folder \(folder) does not exist"
        case .olderSchema(let path, let missing):
            return "\(path): the results store was written by an older Headroom (it lacks migrations \(missing.joined(separator: ", "))); "
                + "a command that writes to it (headroom run, baseline save) upgrades it"
        }
    }
}

public final class Store: @unchecked Sendable {
    /// How a command may use the store file.
    public enum OpenMode: Equatable, Sendable {
        /// For commands that only read: nothing is created, migrated or written (SQLite opens the file read-only,
        /// abandoned runs are not reaped). A missing or empty file reads as an empty store; a file that is not a
        /// Headroom store, or one older than this Headroom's schema, is refused.
        case readOnly
        /// Creates the file when missing — and its folder only when `createFolder` — refuses a database that is
        /// not a Headroom store without touching it, and migrates to the latest schema.
        case readWrite(createFolder: Bool)
    }

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
        return m
    }

    /// The names of the migrations applied to this file, in order.
    public func appliedMigrations() throws -> [String] {
        try dbQueue.read { db in try Self.migrator.appliedMigrations(db) }
    }

    // MARK: writing

    /// Records the start of a run; returns its id. The run stays `running` until `finish`.
    public func beginRun(_ run: RunRecord) throws -> Int64 {
        try dbQueue.write { db in
            var r = run
            r.status = .running
            try r.insert(db)
            return r.id!
        }
    }

    /// Stores one case and all its samples in one transaction.
    public func record(runID: Int64, _ measured: MeasuredCase) throws {
        try dbQueue.write { db in
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
    }

    /// Marks how a run ended.
    public func finish(runID: Int64, status: RunStatus, note: String = "", at date: Date = Date()) throws {
        try dbQueue.write { db in
            try db.execute(sql: "UPDATE run SET status = ?, ended_at = ?, note = ? WHERE id = ?",
                           arguments: [status.rawValue, date, note, runID])
        }
    }

    /// Runs left `running` by a process that no longer exists (killed, crashed) become `interrupted`.
    /// Returns how many were changed.
    @discardableResult
    public func reapAbandonedRuns(isAlive: (Int) -> Bool = { kill(pid_t($0), 0) == 0 }) throws -> Int {
        try dbQueue.write { db in
            let stale = try RunRecord.filter(Column("status") == RunStatus.running.rawValue).fetchAll(db)
                .filter { !isAlive($0.pid) }
            for r in stale {
                try db.execute(sql: "UPDATE run SET status = 'interrupted', note = ? WHERE id = ?",
                               arguments: ["process \(r.pid) ended without finishing the run", r.id])
            }
            return stale.count
        }
    }

    // MARK: reading

    /// All runs, newest first.
    public func runs(limit: Int? = nil) throws -> [RunRecord] {
        try dbQueue.read { db in
            var q = RunRecord.order(Column("id").desc)
            if let limit { q = q.limit(limit) }
            return try q.fetchAll(db)
        }
    }

    /// Complete runs only, newest first: what summaries and trends are built from.
    public func completeRuns(scenario: String? = nil, limit: Int? = nil) throws -> [RunRecord] {
        try dbQueue.read { db in
            var q = RunRecord.filter(Column("status") == RunStatus.complete.rawValue)
            if let scenario { q = q.filter(Column("scenario_name") == scenario) }
            q = q.order(Column("id").desc)
            if let limit { q = q.limit(limit) }
            return try q.fetchAll(db)
        }
    }

    /// The run and everything it measured.
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

    /// The number of raw samples a run holds.
    public func sampleCount(runID: Int64) throws -> Int {
        try dbQueue.read { db in
            try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM sample JOIN measurement ON sample.measurement_id = measurement.id
                WHERE measurement.run_id = ?
                """, arguments: [runID]) ?? 0
        }
    }
}
