// The shared results store: PostgreSQL through postgres-nio, for a team whose machines (CI runners, a
// fleet of hardware types) keep one history. Same tables and migrations as the SQLite store; every write
// one transaction; ids from identity sequences, so concurrent writers on many machines never collide.
import Foundation
import HeadroomCore
import PostgresNIO

public final class PostgresStore: Store, @unchecked Sendable {
    public let path: String
    let session: PostgresSession

    /// Connects and applies the migrations this database lacks (on first use, by any command).
    public init(_ url: PostgresURL) throws {
        path = url.redacted
        session = try PostgresSession(url)
        try migrate()
    }

    /// Applies the missing migrations in one transaction under an advisory lock, so machines starting at once
    /// migrate once. A database whose tables are not Headroom's is refused as it is.
    func migrate() throws {
        try session.transaction {
            try session.query("SELECT pg_advisory_xact_lock(\(PostgresSchema.migrationLock))")
            let hasLog = try session.query("SELECT to_regclass('headroom_migrations') IS NOT NULL")[0].decode(Bool.self)
            if !hasLog {
                let tables = try session.query("""
                    SELECT table_name::text FROM information_schema.tables
                    WHERE table_schema = current_schema() ORDER BY table_name
                    """).map { try $0.decode(String.self) }
                if tables.contains("run") || tables.contains("measurement") || tables.contains("sample") {
                    let listed = tables.prefix(5).joined(separator: ", ") + (tables.count > 5 ? ", …" : "")
                    throw StoreError.notAHeadroomStore(path, "it holds tables \(listed) and no Headroom migrations")
                }
                try session.query("""
                    CREATE TABLE headroom_migrations (
                        position INTEGER PRIMARY KEY, identifier TEXT NOT NULL UNIQUE,
                        applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                    """)
            }
            let applied = Set(try appliedMigrationsInTransaction())
            for (position, migration) in PostgresSchema.migrations.enumerated() where !applied.contains(migration.name) {
                for statement in migration.statements { try session.query(PostgresQuery(unsafeSQL: statement)) }
                try session.query("INSERT INTO headroom_migrations (position, identifier) VALUES (\(position), \(migration.name))")
            }
        }
    }

    private func appliedMigrationsInTransaction() throws -> [String] {
        try session.query("SELECT identifier FROM headroom_migrations ORDER BY position").map { try $0.decode(String.self) }
    }

    public func appliedMigrations() throws -> [String] { try appliedMigrationsInTransaction() }

    // MARK: writing

    public func beginRun(_ run: RunRecord) throws -> Int64 {
        try session.transaction { try insertRun(run, status: .running, onConflictDoNothing: false)! }
    }

    /// Inserts `run` (its id ignored) and returns the id it got; nil when `onConflictDoNothing` and its uid is here.
    private func insertRun(_ r: RunRecord, status: RunStatus, onConflictDoNothing: Bool) throws -> Int64? {
        let rows = try session.query("""
            INSERT INTO run (uid, host, branch, scenario_name, scenario_file, scenario_hash, scenario_text, git_revision,
                             machine_fingerprint, machine_json, headroom_version, pid, started_at, ended_at, status, note,
                             sweep, shard_index, shard_count)
            VALUES (\(r.uid), \(r.host), \(r.branch), \(r.scenarioName), \(r.scenarioFile), \(r.scenarioHash), \(r.scenarioText),
                    \(r.gitRevision), \(r.machineFingerprint), \(r.machineJson), \(r.headroomVersion), \(r.pid),
                    \(r.startedAt), \(r.endedAt), \(status.rawValue), \(r.note),
                    \(r.sweep), \(r.shardIndex.map(Int64.init)), \(r.shardCount.map(Int64.init)))
            \(unescaped: onConflictDoNothing ? "ON CONFLICT (uid) DO NOTHING" : "") RETURNING id
            """)
        return try rows.first?.decode(Int64.self)
    }

    public func record(runID: Int64, _ measured: MeasuredCase) throws {
        try session.transaction { try insert(measured, runID: runID) }
    }

    /// One case: its row, then all its samples in one statement (a load sweep stores hundreds of thousands of
    /// inter-token gaps; one round trip each would take minutes against a remote server).
    private func insert(_ c: MeasuredCase, runID: Int64) throws {
        let params = try SQLiteStore.encodeSorted(c.params), facts = try SQLiteStore.encodeSorted(c.facts)
        guard let row = try session.query("""
            INSERT INTO measurement (run_id, kind, name, threads, params_json, facts_json)
            VALUES (\(runID), \(c.kind.rawValue), \(c.name), \(c.threads), \(params), \(facts)) RETURNING id
            """).first else { throw StoreError.noSuchRun(runID) }
        let id = try row.decode(Int64.self)
        guard !c.samples.isEmpty else { return }
        try session.query("""
            INSERT INTO sample (measurement_id, metric, unit, repetition, value)
            SELECT \(id), m, u, r, v
            FROM UNNEST(\(c.samples.map(\.metric))::text[], \(c.samples.map(\.unit))::text[],
                        \(c.samples.map { Int64($0.repetition) })::int8[], \(c.samples.map(\.value))::float8[])
                 WITH ORDINALITY AS t (m, u, r, v, o)
            ORDER BY o
            """)
    }

    public func finish(runID: Int64, status: RunStatus, note: String, at date: Date) throws {
        try session.transaction {
            try session.query("UPDATE run SET status = \(status.rawValue), ended_at = \(date), note = \(note) WHERE id = \(runID)")
        }
    }

    @discardableResult
    public func reapAbandonedRuns(isAlive: (Int) -> Bool) throws -> Int {
        try session.transaction {
            let running = try session.query("""
                SELECT id, pid FROM run WHERE status = 'running' AND host = \(RunRecord.thisHost) FOR UPDATE
                """).map { try $0.decode((Int64, Int).self) }
            let stale = running.filter { !isAlive($0.1) }
            for (id, pid) in stale {
                try session.query("""
                    UPDATE run SET status = 'interrupted', note = \("process \(pid) ended without finishing the run") WHERE id = \(id)
                    """)
            }
            return stale.count
        }
    }

    @discardableResult
    public func saveBaseline(name: String, runID: Int64, at date: Date) throws -> Int64? {
        try session.transaction {
            guard let status = try session.query("SELECT status FROM run WHERE id = \(runID) FOR SHARE").first?.decode(String.self) else {
                throw StoreError.noSuchRun(runID)
            }
            guard status == RunStatus.complete.rawValue else {
                throw InputError(file: path, path: "", message: "run \(runID) is \(status); only a complete run can be a baseline")
            }
            let previous = try session.query("SELECT run_id FROM baseline WHERE name = \(name) FOR UPDATE").first?.decode(Int64.self)
            try session.query("""
                INSERT INTO baseline (name, run_id, created_at) VALUES (\(name), \(runID), \(date))
                ON CONFLICT (name) DO UPDATE SET run_id = EXCLUDED.run_id, created_at = EXCLUDED.created_at
                """)
            return previous
        }
    }

    public func savePlan(runID: Int64, _ plan: PlanResult, at date: Date) throws {
        let json = try PlanJSON.encode(plan)
        try session.transaction {
            try session.query("""
                INSERT INTO plan (run_id, created_at, plan_json) VALUES (\(runID), \(date), \(json))
                ON CONFLICT (run_id) DO UPDATE SET created_at = EXCLUDED.created_at, plan_json = EXCLUDED.plan_json
                """)
        }
    }

    public func importRun(_ stored: StoredRun, plan: PlanResult?) throws -> Int64? {
        let planJSON = try plan.map(PlanJSON.encode)
        return try session.transaction {
            // Another push of the same run, committed or still in flight, holds the uid: this insert waits for
            // it and then does nothing, so the run is stored once.
            guard let id = try insertRun(stored.run, status: stored.run.status, onConflictDoNothing: true) else { return nil }
            for c in stored.cases { try insert(c, runID: id) }
            if let planJSON {
                try session.query("""
                    INSERT INTO plan (run_id, created_at, plan_json)
                    VALUES (\(id), \(stored.run.endedAt ?? stored.run.startedAt), \(planJSON))
                    """)
            }
            return id
        }
    }

    // MARK: reading

    private static let runColumns = """
        id, uid, host, branch, scenario_name, scenario_file, scenario_hash, scenario_text, git_revision, machine_fingerprint,
        machine_json, headroom_version, pid, started_at, ended_at, status, note, sweep, shard_index, shard_count
        """

    private static func runRecord(_ row: PostgresRow) throws -> RunRecord {
        let r = row.makeRandomAccess()
        let status = try r["status"].decode(String.self)
        guard let s = RunStatus(rawValue: status) else { throw StoreError.serverError("run", "unknown status \(status)") }
        return RunRecord(id: try r["id"].decode(Int64.self), scenarioName: try r["scenario_name"].decode(String.self),
                         scenarioFile: try r["scenario_file"].decode(String.self), scenarioHash: try r["scenario_hash"].decode(String.self),
                         scenarioText: try r["scenario_text"].decode(String.self), gitRevision: try r["git_revision"].decode(String.self),
                         machineFingerprint: try r["machine_fingerprint"].decode(String.self),
                         machineJson: try r["machine_json"].decode(String.self), headroomVersion: try r["headroom_version"].decode(String.self),
                         pid: try r["pid"].decode(Int.self), startedAt: try r["started_at"].decode(Date.self),
                         endedAt: try r["ended_at"].decode(Date?.self), status: s, note: try r["note"].decode(String.self),
                         uid: try r["uid"].decode(String.self), host: try r["host"].decode(String.self),
                         branch: try r["branch"].decode(String.self),
                         shard: try Self.shard(r))
    }

    /// The run's shard, when its three sweep columns are set.
    private static func shard(_ r: PostgresRandomAccessRow) throws -> SweepShard? {
        guard let sweep = try r["sweep"].decode(String?.self), let index = try r["shard_index"].decode(Int?.self),
              let count = try r["shard_count"].decode(Int?.self) else { return nil }
        return SweepShard(sweep: sweep, index: index, count: count)
    }

    public func runs(limit: Int?) throws -> [RunRecord] {
        try session.query("""
            SELECT \(unescaped: Self.runColumns) FROM run ORDER BY started_at DESC, id DESC LIMIT \(limit.map(Int64.init))
            """).map(Self.runRecord)
    }

    public func completeRuns(scenario: String?, limit: Int?) throws -> [RunRecord] {
        try session.query("""
            SELECT \(unescaped: Self.runColumns) FROM run
            WHERE status = 'complete' AND (\(scenario)::text IS NULL OR scenario_name = \(scenario))
            ORDER BY started_at DESC, id DESC LIMIT \(limit.map(Int64.init))
            """).map(Self.runRecord)
    }

    public func sweepRuns(_ sweep: String) throws -> [RunRecord] {
        try session.query("""
            SELECT \(unescaped: Self.runColumns) FROM run WHERE sweep = \(sweep) ORDER BY started_at DESC, id DESC
            """).map(Self.runRecord)
    }

    public func runUIDs() throws -> Set<String> {
        Set(try session.query("SELECT uid FROM run").map { try $0.decode(String.self) })
    }

    public func load(runID: Int64) throws -> StoredRun {
        guard let row = try session.query("SELECT \(unescaped: Self.runColumns) FROM run WHERE id = \(runID)").first else {
            throw StoreError.noSuchRun(runID)
        }
        return StoredRun(run: try Self.runRecord(row), cases: try cases(runID: runID))
    }

    /// Every case of a run with all its samples, in the order they were stored.
    private func cases(runID: Int64) throws -> [MeasuredCase] {
        let measurements = try session.query("""
            SELECT id, kind, name, threads, params_json, facts_json FROM measurement WHERE run_id = \(runID) ORDER BY id
            """)
        var ids: [Int64] = []
        var cases: [Int64: MeasuredCase] = [:]
        for m in measurements {
            let (id, kind, name, threads, params, facts) = try m.decode((Int64, String, String, Int, String, String).self)
            cases[id] = try SQLiteStore.measuredCase(kind: kind, name: name, threads: threads, paramsJson: params, factsJson: facts)
            ids.append(id)
        }
        for (id, sample) in try samples(sql: """
            SELECT s.measurement_id, s.metric, s.unit, s.repetition, s.value FROM sample s
            JOIN measurement m ON m.id = s.measurement_id WHERE m.run_id = \(runID) ORDER BY s.id
            """) {
            cases[id]?.samples.append(sample)
        }
        return ids.compactMap { cases[$0] }
    }

    private func samples(sql: PostgresQuery) throws -> [(Int64, MeasuredCase.Sample)] {
        try session.query(sql).map { row in
            let (id, metric, unit, repetition, value) = try row.decode((Int64, String, String, Int, Double).self)
            return (id, MeasuredCase.Sample(metric: metric, unit: unit, repetition: repetition, value: value))
        }
    }

    public func sampleCount(runID: Int64) throws -> Int {
        try session.query("""
            SELECT COUNT(*) FROM sample JOIN measurement ON sample.measurement_id = measurement.id WHERE measurement.run_id = \(runID)
            """)[0].decode(Int.self)
    }

    public func baselines() throws -> [BaselineRecord] {
        try session.query("SELECT name, run_id, created_at FROM baseline ORDER BY name").map { row in
            let (name, runID, created) = try row.decode((String, Int64, Date).self)
            return BaselineRecord(name: name, runId: runID, createdAt: created)
        }
    }

    public func plan(runID: Int64) throws -> PlanResult? {
        guard let row = try session.query("SELECT plan_json FROM plan WHERE run_id = \(runID)").first else { return nil }
        return try PlanJSON.decode(try row.decode(String.self))
    }

    public func latestCompleteRun(fingerprint: String) throws -> StoredRun? {
        guard let row = try session.query("""
            SELECT \(unescaped: Self.runColumns) FROM run WHERE status = 'complete' AND machine_fingerprint = \(fingerprint)
            ORDER BY started_at DESC, id DESC LIMIT 1
            """).first else { return nil }
        let run = try Self.runRecord(row)
        return StoredRun(run: run, cases: try cases(runID: run.id!))
    }

    /// Measurement rows of `kind` (with `threads` when given), of complete runs — or of run `runID` only,
    /// whatever its status, when given — newest run first.
    private func points(kind: CaseKind, threads: Int? = nil, runID: Int64?) throws -> [EndpointLoadCases.Point] {
        if let runID, try session.query("SELECT 1 FROM run WHERE id = \(runID)").isEmpty { throw StoreError.noSuchRun(runID) }
        return try session.query("""
            SELECT m.id, m.run_id, m.name, m.threads, m.params_json, m.facts_json FROM measurement m JOIN run r ON r.id = m.run_id
            WHERE m.kind = \(kind.rawValue) AND (\(threads.map(Int64.init))::int8 IS NULL OR m.threads = \(threads.map(Int64.init)))
              AND (CASE WHEN \(runID)::int8 IS NULL THEN r.status = 'complete' ELSE r.id = \(runID) END)
            ORDER BY r.started_at DESC, m.run_id DESC, m.id
            """).map { row in
            let (id, run, name, threads, params, facts) = try row.decode((Int64, Int64, String, Int, String, String).self)
            return .init(id: id, run: run, c: try SQLiteStore.measuredCase(kind: kind.rawValue, name: name, threads: threads,
                                                                            paramsJson: params, factsJson: facts))
        }
    }

    /// The samples of `metrics` of measurement rows `ids`, by row, in the order they were stored.
    private func samples(of ids: [Int64], metrics: [String]) throws -> [Int64: [MeasuredCase.Sample]] {
        var out: [Int64: [MeasuredCase.Sample]] = [:]
        guard !ids.isEmpty else { return out }
        for (id, s) in try samples(sql: """
            SELECT measurement_id, metric, unit, repetition, value FROM sample
            WHERE measurement_id = ANY(\(Array(Set(ids)))::int8[]) AND metric = ANY(\(metrics)::text[]) ORDER BY id
            """) {
            out[id, default: []].append(s)
        }
        return out
    }

    public func endpointLoadCases(hardware: [String], runID: Int64?, metrics: [String]) throws -> [EndpointLoadCases] {
        guard !hardware.isEmpty else { return [] }
        var (found, ids) = EndpointLoadCases.choose(try points(kind: .load, runID: runID), hardware: hardware)
        EndpointLoadCases.attach(try samples(of: ids, metrics: metrics), to: &found, ids: ids)
        return found
    }

    public func stepCases(model: String, precision: String, threads: Int, runID: Int64?) throws -> (runID: Int64, cases: [MeasuredCase])? {
        var chosen: Int64?
        var found: [EndpointLoadCases.Point] = []
        for p in try points(kind: .step, threads: threads, runID: runID) {
            if let chosen, p.run != chosen { break }
            guard p.c.params["model"] == model, p.c.params["precision"] == precision else { continue }
            chosen = p.run
            found.append(p)
        }
        guard let chosen else { return nil }
        let samples = try samples(of: found.map(\.id), metrics: ["step_seconds"])
        return (chosen, found.map { p in
            var c = p.c
            c.samples = samples[p.id] ?? []
            return c
        })
    }
}
