// Shared command-line plumbing: JSON on standard output, messages on standard error, exit codes,
// where the store and reports live.
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomEngine
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

func warn(_ message: String) {
    FileHandle.standardError.write(Data("headroom: \(message)\n".utf8))
}

/// Runs `body`, turning the errors a user can cause into a message and the documented exit code:
/// 2 for bad input (a scenario, catalog or option), 1 for everything else.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as InputError {
        warn(e.description)
        throw ExitCode(2)
    } catch let e as StoreError {
        warn(e.description)
        throw ExitCode(2)
    } catch let e as GGUFError {
        warn(e.description)
        throw ExitCode(2)
    } catch let e as ExitCode {
        throw e
    } catch let e as CleanExit {
        throw e
    } catch {
        warn("\(error)")
        throw ExitCode.failure
    }
}

struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The results store (SQLite).", discussion: "Default: $HEADROOM_DB, else .headroom/history.sqlite.", valueName: "path"))
    var db: String?

    var path: String { db ?? ProcessInfo.processInfo.environment["HEADROOM_DB"] ?? ".headroom/history.sqlite" }

    func open() throws -> Store {
        let store = try Store(path: path)
        try store.reapAbandonedRuns()
        return store
    }
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
    var measured: [String: SummaryJSON]
    init(_ c: MeasuredCase) {
        kind = c.kind; name = c.name; threads = c.threads; params = c.params
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
