// The results store as the rest of Headroom sees it: one protocol for recording a run and its samples,
// listing and loading runs, baselines, plans and the narrow reads calibration makes, with two
// implementations — `SQLiteStore` (GRDB, one file: the embedded default) and `PostgresStore` (postgres-nio:
// one history shared by many machines). Callers never know which they hold. `openStore` picks one from a
// location (`--db`, `HEADROOM_DB`).
import Foundation
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
    /// A store location (`--db`, `HEADROOM_DB`, `--to`) that is neither a path nor a URL Headroom reads.
    case badLocation(source: String, value: String, why: String)
    /// The database server could not be reached, or refused the connection (host, credentials, database).
    case cannotConnect(String, String)
    /// The connection to the database server went away while in use: the operation failed, and nothing it
    /// was writing was stored (every write is one transaction); what was stored before stays.
    case connectionLost(String, String)
    /// The database server refused a statement.
    case serverError(String, String)

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
        case .badLocation(let source, let value, let why):
            return "\(source): expected a SQLite path, sqlite:PATH, or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
                + "[?sslmode=disable|prefer|require|verify-ca|verify-full], got \"\(value)\": \(why)"
        case .cannotConnect(let url, let why): return "\(url): cannot connect to the results store: \(why)"
        case .connectionLost(let url, let why):
            return "\(url): lost the connection to the results store (\(why)); what was stored before is kept, the write in progress was not stored"
        case .serverError(let url, let why): return "\(url): the results store refused a statement: \(why)"
        }
    }

    /// Whether the user's input is at fault (exit code 2) rather than something failing while running (1):
    /// a database server that cannot be reached or goes away is a failure, not bad input.
    public var isBadInput: Bool {
        switch self {
        case .cannotConnect, .connectionLost, .serverError: return false
        default: return true
        }
    }
}

/// How a command may use the store.
public enum StoreOpenMode: Equatable, Sendable {
    /// For commands that only read. SQLite: nothing is created, migrated or written (the file is opened
    /// read-only); a missing or empty file reads as an empty store; a file that is not a Headroom store, or one
    /// older than this Headroom's schema, is refused. PostgreSQL: the schema is applied on first use by any
    /// command (a shared server has no file to leave uncreated), nothing else is written.
    case readOnly
    /// Creates the store when missing — for SQLite its folder only when `createFolder` — refuses a database
    /// that is not a Headroom store without touching it, and migrates to the latest schema.
    case readWrite(createFolder: Bool)
}

/// What Headroom needs from a results store. Every method is synchronous and every write one transaction:
/// a run is `running` until `finish` marks it complete, failed or interrupted, and only complete runs feed
/// summaries, baselines and calibration. Run ids are assigned by the store (unique within it, also across
/// the machines writing to one PostgreSQL); `RunRecord.uid` names a run in every store it is copied to.
public protocol Store: AnyObject, Sendable {
    /// Where the store is, for messages: a path, or a URL without its password.
    var path: String { get }
    /// The names of the schema migrations applied, in order.
    func appliedMigrations() throws -> [String]

    // MARK: writing
    /// Records the start of a run; returns its id. The run stays `running` until `finish`.
    func beginRun(_ run: RunRecord) throws -> Int64
    /// Stores one case and all its samples in one transaction.
    func record(runID: Int64, _ measured: MeasuredCase) throws
    /// Marks how a run ended.
    func finish(runID: Int64, status: RunStatus, note: String, at date: Date) throws
    /// Runs this host left `running` whose process no longer exists (killed, crashed) become `interrupted`;
    /// another machine's runs are never touched. Returns how many were changed.
    @discardableResult func reapAbandonedRuns(isAlive: (Int) -> Bool) throws -> Int
    /// Names `runID` (which must be complete) as baseline `name`, replacing an earlier one of that name.
    /// Returns the run it replaced, if any.
    @discardableResult func saveBaseline(name: String, runID: Int64, at date: Date) throws -> Int64?
    /// Stores (or replaces) the plan computed for `runID`.
    func savePlan(runID: Int64, _ plan: PlanResult, at date: Date) throws
    /// Stores a finished run copied from another store, with every case and sample and its plan, in one
    /// transaction — unless a run with its `uid` is already here, when nothing changes and nil is returned.
    /// Returns the id the run has here.
    func importRun(_ stored: StoredRun, plan: PlanResult?) throws -> Int64?

    // MARK: reading
    /// All runs, newest first.
    func runs(limit: Int?) throws -> [RunRecord]
    /// Complete runs only, newest first: what summaries and trends are built from.
    func completeRuns(scenario: String?, limit: Int?) throws -> [RunRecord]
    /// Every run of sweep `sweep` (the shards of `headroom run --shard`), newest first.
    func sweepRuns(_ sweep: String) throws -> [RunRecord]
    /// The `uid` of every run in the store.
    func runUIDs() throws -> Set<String>
    /// The run and everything it measured.
    func load(runID: Int64) throws -> StoredRun
    /// The number of raw samples a run holds.
    func sampleCount(runID: Int64) throws -> Int
    /// Every baseline, by name.
    func baselines() throws -> [BaselineRecord]
    /// The plan stored for `runID`, if any.
    func plan(runID: Int64) throws -> PlanResult?
    /// The latest complete run whose machine fingerprint is `fingerprint`.
    func latestCompleteRun(fingerprint: String) throws -> StoredRun?
    /// For each id in `hardware`, the latest complete run (only run `runID` when given, whatever its status)
    /// holding load cases whose `hardware` fact is that id; ids no such run names are absent. Cases carry
    /// their params and facts and only the samples of `metrics`.
    func endpointLoadCases(hardware: [String], runID: Int64?, metrics: [String]) throws -> [EndpointLoadCases]
    /// The step cases of `model` in `precision` on `threads` threads of the latest complete run that has any (of
    /// run `runID` only when given, whatever its status), with their `step_seconds` samples; nil when there is none.
    func stepCases(model: String, precision: String, threads: Int, runID: Int64?) throws -> (runID: Int64, cases: [MeasuredCase])?
}

// The shorter spellings callers use; each forwards to the requirement with every parameter.
extension Store {
    public func finish(runID: Int64, status: RunStatus) throws { try finish(runID: runID, status: status, note: "", at: Date()) }
    public func finish(runID: Int64, status: RunStatus, note: String) throws { try finish(runID: runID, status: status, note: note, at: Date()) }
    public func finish(runID: Int64, status: RunStatus, at date: Date) throws { try finish(runID: runID, status: status, note: "", at: date) }

    @discardableResult
    public func reapAbandonedRuns() throws -> Int { try reapAbandonedRuns(isAlive: { kill(pid_t($0), 0) == 0 }) }

    @discardableResult
    public func saveBaseline(name: String, runID: Int64) throws -> Int64? { try saveBaseline(name: name, runID: runID, at: Date()) }

    public func savePlan(runID: Int64, _ plan: PlanResult) throws { try savePlan(runID: runID, plan, at: Date()) }

    public func runs() throws -> [RunRecord] { try runs(limit: nil) }
    public func completeRuns() throws -> [RunRecord] { try completeRuns(scenario: nil, limit: nil) }
    public func completeRuns(scenario: String?) throws -> [RunRecord] { try completeRuns(scenario: scenario, limit: nil) }
    public func completeRuns(limit: Int?) throws -> [RunRecord] { try completeRuns(scenario: nil, limit: limit) }

    public func endpointLoadCases(hardware: [String]) throws -> [EndpointLoadCases] {
        try endpointLoadCases(hardware: hardware, runID: nil, metrics: EndpointLoadCases.calibrationMetrics)
    }
    public func endpointLoadCases(hardware: [String], runID: Int64?) throws -> [EndpointLoadCases] {
        try endpointLoadCases(hardware: hardware, runID: runID, metrics: EndpointLoadCases.calibrationMetrics)
    }

    public func stepCases(model: String, precision: String, threads: Int) throws -> (runID: Int64, cases: [MeasuredCase])? {
        try stepCases(model: model, precision: precision, threads: threads, runID: nil)
    }

    /// The baseline called `name` with its run's cases; an `InputError` listing the known names when there is none.
    public func loadBaseline(named name: String) throws -> Baseline {
        let all = try baselines()
        guard let record = all.first(where: { $0.name == name }) else {
            let known = all.map(\.name)
            throw InputError(file: path, path: "", message: "no baseline named \"\(name)\"; "
                             + (known.isEmpty ? "the store has none (`headroom baseline save NAME` makes one)"
                                              : "the store has \(known.joined(separator: ", "))"))
        }
        let stored = try load(runID: record.runId)
        return Baseline(name: record.name, createdAt: record.createdAt, runID: record.runId, scenarioName: stored.run.scenarioName,
                        scenarioFile: stored.run.scenarioFile, scenarioHash: stored.run.scenarioHash,
                        gitRevision: stored.run.gitRevision, startedAt: stored.run.startedAt, machine: stored.machine,
                        cases: stored.cases)
    }
}

/// Opens the store at `location` — a SQLite path, `sqlite:PATH`, or a `postgres://` URL (see `StoreLocation`).
/// `source` names where the location came from (`--db`, `HEADROOM_DB`) in the message when it cannot be read.
public func openStore(_ location: String, mode: StoreOpenMode, source: String = "--db",
                      environment: [String: String] = ProcessInfo.processInfo.environment) throws -> any Store {
    switch try StoreLocation(location, source: source, environment: environment) {
    case .sqlite(let path): return try SQLiteStore(path: path, mode: mode)
    case .postgres(let url): return try PostgresStore(url)
    }
}

/// Opens the store at `location` read-only when there is one: nil for a SQLite file that does not exist (none
/// is created); a PostgreSQL database always is one.
public func openExistingStore(_ location: String, source: String = "--db or HEADROOM_DB") throws -> (any Store)? {
    switch try StoreLocation(location, source: source) {
    case .sqlite(let path):
        guard path == ":memory:" || FileManager.default.fileExists(atPath: path) else { return nil }
        return try SQLiteStore(path: path, mode: .readOnly)
    case .postgres(let url): return try PostgresStore(url)
    }
}
