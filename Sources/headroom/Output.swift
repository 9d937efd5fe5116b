// Shared command-line plumbing: JSON on standard output, messages on standard error, exit codes,
// where the store and reports live.
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomEngine
import HeadroomRunner
import HeadroomStore

/// Prints `value` as pretty JSON with sorted keys on standard output.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.keyEncodingStrategy = .convertToSnakeCase
    encoder.dateEncodingStrategy = .iso8601
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// A message on standard error, control characters escaped (it may quote names read from files).
func warn(_ message: String) {
    FileHandle.standardError.write(Data("headroom: \(TerminalText.escape(message))\n".utf8))
}

/// The documented exit codes, the same for every command.
enum Exit {
    static let ok: Int32 = 0
    /// A failure while running (and, for `gate`, a significant regression).
    static let failure: Int32 = 1
    /// Bad input: a scenario, catalog, model file, option or value.
    static let badInput: Int32 = 2
    static let interrupted: Int32 = 130

    /// The one mapping from an error to its exit code. Errors a user's input causes are 2.
    static func code(for error: Error) -> Int32 {
        switch error {
        case let e as ExitCode: return e.rawValue
        // A store location that cannot be read is bad input; a database server that cannot be reached or
        // goes away mid-run is a failure.
        case let e as StoreError: return e.isBadInput ? badInput : failure
        case is InputError, is GGUFError, is ValidationError: return badInput
        case let e as TrainError:
            if case .diverged = e { return failure }
            return badInput
        case is RunInterrupted: return interrupted
        default:
            // The argument parser's own errors (unknown option, missing value) are bad input too.
            if Headroom.exitCode(for: error) == .validationFailure { return badInput }
            return failure
        }
    }

    /// The message for `error`: our errors' descriptions, the parser's message with its usage line.
    static func message(for error: Error) -> String? {
        switch error {
        case is ExitCode: return nil
        case let e as CocoaError:
            // Foundation's file errors: name the file, which their own text leaves out.
            let path = e.filePath ?? e.url?.path
            return path.map { "\($0): \(e.localizedDescription)" } ?? e.localizedDescription
        // A flag found wrong once the command runs (a --tp the model's heads do not divide): its message alone, as
        // the command's other errors; the root's usage line would name the wrong command.
        case let e as ValidationError: return e.message
        case let e as CustomStringConvertible where Headroom.exitCode(for: error) != .validationFailure:
            return e.description
        default: return Headroom.fullMessage(for: error)
        }
    }
}

/// Runs `body`; an error becomes its message on standard error and the documented exit code (`Exit`).
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as CleanExit {
        throw e
    } catch {
        if let m = Exit.message(for: error) { warn(m) }
        throw ExitCode(Exit.code(for: error))
    }
}

struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The results store: a SQLite file, or a PostgreSQL database shared by a team (postgres://USER@HOST:PORT/DATABASE).",
        discussion: "Default: $HEADROOM_DB, else .headroom/history.sqlite. A postgres:// URL takes its password from the URL or "
            + "$PGPASSWORD, and TLS from ?sslmode=disable|prefer|require|verify-ca|verify-full (default prefer).",
        valueName: "path|url"))
    var db: String?

    /// The location as given (a path or a URL, password included): what `PlanJob` opens.
    var path: String { db ?? ProcessInfo.processInfo.environment["HEADROOM_DB"] ?? Self.defaultPath }

    /// The location for messages and `--json` output: a path, or the URL without its password.
    var shown: String {
        if case .postgres(let url)? = try? StoreLocation(path, source: source) { return url.redacted }
        return path
    }

    /// Where the location came from, for the message when it cannot be read.
    var source: String { db != nil ? "--db" : "HEADROOM_DB" }

    static let defaultPath = ".headroom/history.sqlite"

    /// For commands that write: a SQLite file is created, and its folder only when it is the default `.headroom/`;
    /// a PostgreSQL database gets its schema on first use. Runs this host left running are marked interrupted.
    func open() throws -> any Store {
        let store: any Store
        switch try StoreLocation(path, source: source) {
        case .sqlite(let file): store = try SQLiteStore(path: file, mode: .readWrite(createFolder: file == Self.defaultPath))
        case .postgres(let url): store = try PostgresStore(url)
        }
        try store.reapAbandonedRuns()
        return store
    }

    /// For commands that only read: a SQLite file is never created, migrated or written (a missing file reads as no runs).
    func openReadOnly() throws -> any Store { try openStore(path, mode: .readOnly, source: source) }
}

/// A summary as JSON: median, p95, min, max and the sample count.
struct SummaryJSON: Encodable {
    var median: Double, p95: Double, min: Double, max: Double, samples: Int, unit: String
    init(_ s: Summary, unit: String) {
        median = s.median; p95 = s.p95; min = s.min; max = s.max; samples = s.count; self.unit = unit
    }
}

struct CaseJSON: Encodable {
    var kind: String, name: String, threads: Int, params: [String: String]
    /// What the measurement recorded about itself (isa, weights_bytes, …).
    var facts: [String: String]
    var measured: [String: SummaryJSON]
    init(_ c: MeasuredCase) {
        kind = c.kind.rawValue; name = c.name; threads = c.threads; params = c.params; facts = c.facts
        var m: [String: SummaryJSON] = [:]
        for metric in Set(c.samples.map(\.metric)) {
            if let s = c.summary(metric) { m[metric] = SummaryJSON(s, unit: c.unit(of: metric)) }
        }
        measured = m
    }
}

struct ProbeFiguresJSON: Encodable {
    /// The decode roofline: the best read of every pattern (and of the closing probe, if any), GB/s, keyed by thread count.
    var memoryBandwidthGbps: [String: Double]
    var readStreamGbps: [String: Double]
    var readRowsGbps: [String: Double]
    var readPrefetchGbps: [String: Double]
    /// The best read before the workloads and after them (empty when nothing was read after): the drift.
    var readBeforeGbps: [String: Double]
    var readAfterGbps: [String: Double]
    var triadGbps: [String: Double]
    var sgemmGflops: [String: Double]
    init(_ f: ProbeFigures) {
        func table(_ get: (ProbeFigures.PerThreads) -> Double?) -> [String: Double] {
            Dictionary(uniqueKeysWithValues: f.perThreads.compactMap { p in get(p).map { (String(p.threads), $0) } })
        }
        memoryBandwidthGbps = table { p in f.readGBps(threads: p.threads) }
        readStreamGbps = table(\.readStreamGBps)
        readRowsGbps = table(\.readRowsGBps)
        readPrefetchGbps = table(\.readPrefetchGBps)
        readBeforeGbps = table(\.readBeforeGBps)
        readAfterGbps = table(\.readAfterGBps)
        triadGbps = table(\.triadGBps)
        sgemmGflops = table(\.sgemmGFLOPs)
    }
}

struct ProbeJSON: Encodable {
    var kind = "measured"
    var cpuModel: String
    var cores: Int
    var memoryBytes: Int64
    var isa: String
    var openblasCore: String
    var readMib: Int
    var gemmSize: Int
    var repetitions: Int
    var rowsPerThread: Int
    var memoryBandwidthGbps: [String: Double]
    var readStreamGbps: [String: Double]
    var readRowsGbps: [String: Double]
    var readPrefetchGbps: [String: Double]
    var triadGbps: [String: Double]
    var sgemmGflops: [String: Double]
    var cases: [CaseJSON]

    init(machine: MachineInfo, isa: String, openblasCore: String, settings: ProbeSettings, rowsPerThread: Int,
         figures: ProbeFigures, cases: [MeasuredCase]) {
        cpuModel = machine.cpuModel; cores = machine.cores; memoryBytes = machine.memoryBytes
        self.isa = isa; self.openblasCore = openblasCore
        readMib = settings.readMiB; gemmSize = settings.gemmSize; repetitions = settings.repetitions
        self.rowsPerThread = rowsPerThread
        let f = ProbeFiguresJSON(figures)
        memoryBandwidthGbps = f.memoryBandwidthGbps; readStreamGbps = f.readStreamGbps
        readRowsGbps = f.readRowsGbps; readPrefetchGbps = f.readPrefetchGbps
        triadGbps = f.triadGbps; sgemmGflops = f.sgemmGflops
        self.cases = cases.map(CaseJSON.init)
    }
}
