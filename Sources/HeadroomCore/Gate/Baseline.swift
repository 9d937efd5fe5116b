// A baseline: a complete run's raw samples under a name, and its JSON file (`headroom baseline export`),
// which a fresh CI clone reads with `headroom gate --baseline FILE.json`.
import Foundation

/// What a gate compares against: one complete run's cases (probe included) and where they came from.
public struct Baseline: Equatable, Sendable {
    public var name: String
    public var createdAt: Date
    public var runID: Int64
    public var scenarioName: String
    public var scenarioFile: String
    public var scenarioHash: String
    public var gitRevision: String
    public var startedAt: Date
    public var machine: MachineInfo?
    public var cases: [MeasuredCase]

    public init(name: String, createdAt: Date, runID: Int64, scenarioName: String, scenarioFile: String, scenarioHash: String,
                gitRevision: String, startedAt: Date, machine: MachineInfo?, cases: [MeasuredCase]) {
        self.name = name; self.createdAt = createdAt; self.runID = runID; self.scenarioName = scenarioName
        self.scenarioFile = scenarioFile; self.scenarioHash = scenarioHash; self.gitRevision = gitRevision
        self.startedAt = startedAt; self.machine = machine; self.cases = cases
    }

    public var probe: ProbeFigures { ProbeFigures(cases: cases) }
}

/// The baseline file format, version 2: JSON with snake_case keys.
///
/// `cases` holds every raw sample (probe cases too: the normalised metrics need the rooflines), each case's
/// workload `params` and the `facts` it recorded about itself; `probe` repeats the probe's best figures per
/// thread count for a reader and is not read back. Version 1 (before facts had their own key) is still read:
/// its `params` are split into params and facts by `CaseFacts.splitLegacy`.
public enum BaselineFile {
    public static let format = "headroom-baseline"
    public static let formatVersion = 2
    /// The versions `decode` reads.
    public static let readableVersions = 1...2

    struct Document: Codable {
        var format: String
        var formatVersion: Int
        var name: String
        /// ISO 8601; read as text so a bad date is reported with its key.
        var createdAt: String
        var kind: String
        var run: Run
        var machine: Machine?
        var probe: [Probe]?
        var cases: [Case]
    }
    struct Run: Codable {
        var id: Int64
        var scenario: String
        var scenarioFile: String
        var scenarioHash: String
        var gitRevision: String
        var startedAt: String
    }
    struct Machine: Codable {
        var cpuModel: String
        var cores: Int
        var memoryBytes: Int64
        var kernel: String
        var fingerprint: String
    }
    struct Probe: Codable {
        var threads: Int
        var readGbps: Double?
        var sgemmGflops: Double?
        var readStreamGbps: Double?
        var readRowsGbps: Double?
        var readPrefetchGbps: Double?
        var triadGbps: Double?
        var repetitions: Int
    }
    struct Case: Codable {
        var kind: CaseKind
        var name: String
        var threads: Int
        var params: [String: String]
        /// Absent in version 1.
        var facts: [String: String]?
        var metrics: [Metric]
    }
    struct Metric: Codable {
        var metric: String
        var unit: String
        /// In repetition order.
        var values: [Double]
    }

    /// The file's text: pretty JSON with sorted keys, so a committed baseline diffs readably.
    public static func encode(_ b: Baseline) throws -> Data {
        let figures = b.probe
        let iso = ISO8601DateFormatter()
        let doc = Document(
            format: format, formatVersion: formatVersion, name: b.name, createdAt: iso.string(from: b.createdAt), kind: "measured",
            run: Run(id: b.runID, scenario: b.scenarioName, scenarioFile: b.scenarioFile, scenarioHash: b.scenarioHash,
                     gitRevision: b.gitRevision, startedAt: iso.string(from: b.startedAt)),
            machine: b.machine.map { Machine(cpuModel: $0.cpuModel, cores: $0.cores, memoryBytes: $0.memoryBytes, kernel: $0.kernel,
                                             fingerprint: $0.fingerprint) },
            probe: figures.perThreads.map {
                Probe(threads: $0.threads, readGbps: figures.readGBps(threads: $0.threads), sgemmGflops: $0.sgemmGFLOPs,
                      readStreamGbps: $0.readStreamGBps, readRowsGbps: $0.readRowsGBps, readPrefetchGbps: $0.readPrefetchGBps, triadGbps: $0.triadGBps,
                      repetitions: $0.repetitions)
            },
            cases: b.cases.map { c in
                var metrics: [String] = []
                for s in c.samples where !metrics.contains(s.metric) { metrics.append(s.metric) }
                return Case(kind: c.kind, name: c.name, threads: c.threads, params: c.params, facts: c.facts,
                            metrics: metrics.map { Metric(metric: $0, unit: c.unit(of: $0), values: c.values($0)) })
            })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return try encoder.encode(doc)
    }

    /// Reads and validates a baseline file; every problem is an `InputError` naming the file and the key.
    public static func load(_ path: String) throws -> Baseline {
        let data = try FileChecks.readData(path, what: "baseline file", maxBytes: 1 << 30)
        return try decode(data, file: path)
    }

    public static func decode(_ data: Data, file: String) throws -> Baseline {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        // Syntax first, so that every later complaint can name a key.
        let head: Any
        do { head = try JSONSerialization.jsonObject(with: data) } catch {
            throw InputError(file: file, path: "", message: "not valid JSON (\(error.localizedDescription))")
        }
        // The format is checked next, so a JSON file of another kind is named as such.
        if let head = head as? [String: Any] {
            if let f = head["format"] as? String, f != format {
                throw InputError(file: file, path: "format", message: "expected \"\(format)\", got \"\(f)\"")
            }
            if let v = head["format_version"] as? Int, !readableVersions.contains(v) {
                throw InputError(file: file, path: "format_version",
                                 message: "expected format version \(readableVersions.map(String.init).joined(separator: " or ")) "
                                    + "(what this Headroom reads), got \(v)")
            }
        }
        let doc: Document
        do {
            doc = try decoder.decode(Document.self, from: data)
        } catch let e as DecodingError {
            throw inputError(e, file: file)
        }
        if doc.format != format { throw InputError(file: file, path: "format", message: "expected \"\(format)\", got \"\(doc.format)\"") }
        if doc.cases.isEmpty { throw InputError(file: file, path: "cases", message: "expected at least one measured case") }
        var cases: [MeasuredCase] = []
        for (i, c) in doc.cases.enumerated() {
            let at = "cases[\(i)]"
            // An endpoint's load case has no thread count here (0).
            if c.kind.isMeasuredHere ? c.threads < 1 : c.threads < 0 {
                throw InputError(file: file, path: "\(at).threads",
                                 message: "expected a \(c.kind.isMeasuredHere ? "positive" : "non-negative") integer, got \(c.threads)")
            }
            if c.metrics.isEmpty { throw InputError(file: file, path: "\(at).metrics", message: "expected at least one metric") }
            var samples: [MeasuredCase.Sample] = []
            for (j, m) in c.metrics.enumerated() {
                if m.values.isEmpty { throw InputError(file: file, path: "\(at).metrics[\(j)].values", message: "expected at least one sample") }
                // What the gate divides must be positive where it was measured here; an endpoint's figure may be 0 (no
                // request was good in a window), and a bookkeeping figure (an HTTP status, a lag) anything finite.
                let bookkeeping = MetricRules.treatment(of: m.metric, kind: c.kind) == .bookkeeping
                let least: Double? = bookkeeping ? nil : c.kind.isMeasuredHere ? .leastNonzeroMagnitude : 0
                for (k, v) in m.values.enumerated() {
                    guard v.isFinite, least.map({ v >= $0 }) ?? true else {
                        throw InputError(file: file, path: "\(at).metrics[\(j)].values[\(k)]",
                                         message: "expected a \(least == 0 ? "non-negative" : "positive") number, got \(v)")
                    }
                    samples.append(.init(metric: m.metric, unit: m.unit, repetition: k, value: v))
                }
            }
            // Version 1 kept the facts among the params.
            let split = doc.formatVersion == 1 ? CaseFacts.splitLegacy(params: c.params, facts: c.facts ?? [:]) : (c.params, c.facts ?? [:])
            cases.append(MeasuredCase(kind: c.kind, name: c.name, threads: c.threads, params: split.0, facts: split.1, samples: samples))
        }
        func date(_ text: String, _ path: String) throws -> Date {
            guard let d = ISO8601DateFormatter().date(from: text) else {
                throw InputError(file: file, path: path, message: "expected an ISO 8601 date such as 2026-11-21T20:00:00Z, got \"\(text)\"")
            }
            return d
        }
        let createdAt = try date(doc.createdAt, "created_at"), startedAt = try date(doc.run.startedAt, "run.started_at")
        let machine = doc.machine.map {
            MachineInfo(cpuModel: $0.cpuModel, cores: $0.cores, memoryBytes: $0.memoryBytes, kernel: $0.kernel, hostname: "")
        }
        return Baseline(name: doc.name, createdAt: createdAt, runID: doc.run.id, scenarioName: doc.run.scenario,
                        scenarioFile: doc.run.scenarioFile, scenarioHash: doc.run.scenarioHash, gitRevision: doc.run.gitRevision,
                        startedAt: startedAt, machine: machine, cases: cases)
    }

    /// A decoding error as the file's key path and what was expected there.
    static func inputError(_ error: DecodingError, file: String) -> InputError {
        func path(_ keys: [CodingKey]) -> String {
            var out = ""
            for k in keys {
                if let i = k.intValue { out += "[\(i)]"; continue }
                out += (out.isEmpty ? "" : ".") + snake(k.stringValue)
            }
            return out
        }
        func expected(_ type: Any.Type) -> String {
            switch type {
            case is Double.Type, is Float.Type: return "a number"
            case is Int.Type, is Int64.Type: return "an integer"
            case is String.Type: return "a string"
            case is [Any].Type: return "a list"
            default: return "\(type)".hasPrefix("Array") ? "a list" : "an object"
            }
        }
        switch error {
        case .keyNotFound(let key, let ctx):
            return InputError(file: file, path: path(ctx.codingPath + [key]), message: "missing; this key is required")
        case .typeMismatch(let type, let ctx):
            return InputError(file: file, path: path(ctx.codingPath), message: "expected \(expected(type))")
        case .valueNotFound(let type, let ctx):
            return InputError(file: file, path: path(ctx.codingPath), message: "expected \(expected(type)), got null")
        case .dataCorrupted(let ctx):
            if ctx.codingPath.isEmpty {
                return InputError(file: file, path: "", message: "not valid JSON (\(ctx.underlyingError.map { "\($0)" } ?? ctx.debugDescription))")
            }
            return InputError(file: file, path: path(ctx.codingPath), message: ctx.debugDescription)
        @unknown default:
            return InputError(file: file, path: "", message: "\(error)")
        }
    }

    /// "formatVersion" → "format_version": the key as the file spells it.
    static func snake(_ key: String) -> String {
        var out = ""
        for ch in key {
            if ch.isUppercase { out += "_" + ch.lowercased() } else { out.append(ch) }
        }
        return out
    }
}
