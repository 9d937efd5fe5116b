// `headroom baseline save|list|export`: name a complete run as the baseline later runs are gated
// against, and export it as a JSON file a fresh CI clone can read.
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomReport
import HeadroomRunner
import HeadroomStore

struct BaselineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baseline",
        abstract: "Save, list and export the baselines `headroom gate` compares with.",
        subcommands: [Record.self, Save.self, List.self, Export.self])

    static func validName(_ name: String) throws {
        guard name.range(of: "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", options: .regularExpression) != nil else {
            throw ValidationError("NAME: expected letters, digits, '.', '_' or '-' (at most 64, starting with a letter or digit), got \"\(name)\"")
        }
    }

    struct Record: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure a scenario the way `headroom gate` does (in its gate.rounds) and save the run as a baseline.")

        @Argument(help: "The baseline's name.")
        var name: String

        @Argument(help: ArgumentHelp("The scenario file (default: the built-in default scenario).", valueName: "scenario"))
        var scenario: String?

        @Option(name: .long, parsing: .upToNextOption,
                help: ArgumentHelp("Thread counts to measure, overriding the scenario's measure.threads (\(listHelp)).", valueName: "n"))
        var threads: [String] = []

        @OptionGroup var catalog: CatalogOptions
        @OptionGroup var store: StoreOptions

        @Flag(name: .long, help: "Print JSON on standard output instead of tables.")
        var json = false

        func validate() throws {
            try BaselineCommand.validName(name)
            _ = try threadCounts(threads)
        }

        func run() throws {
            try reportingErrors {
                var sc = try catalog.scenario(scenario)
                let threads = try threadCounts(self.threads)
                if !threads.isEmpty { sc.measure?.threads = threads }
                let db = try store.open()
                let stored = try GateCommand.measure(sc, store: db)
                let id = stored.run.id!
                let replaced = try db.saveBaseline(name: name, runID: id)
                if json {
                    try printJSON(BaselineJSON(name: name, run: stored, samples: try db.sampleCount(runID: id), replacedRun: replaced))
                    return
                }
                print("Baseline \(name): run \(id) (scenario \(sc.name), \(try db.sampleCount(runID: id)) samples, "
                      + "\(sc.gate.rounds) round\(sc.gate.rounds == 1 ? "" : "s"))" + (replaced.map { ", replacing run \($0)" } ?? ""))
                print(Tables.runSummary(stored))
            }
        }
    }

    struct Save: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Name a complete run as a baseline (replacing an earlier baseline of that name).")

        @Argument(help: "The baseline's name.")
        var name: String

        @Option(name: .customLong("run"), help: ArgumentHelp("The run (default: the latest complete run).", valueName: "id"))
        var runID: Int64?

        @OptionGroup var store: StoreOptions

        @Flag(name: .long, help: "Print JSON on standard output instead of a line of text.")
        var json = false

        func validate() throws { try BaselineCommand.validName(name) }

        func run() throws {
            try reportingErrors {
                let db = try store.open()
                let id: Int64
                if let runID { id = runID } else {
                    guard let latest = try db.completeRuns(limit: 1).first?.id else {
                        throw InputError(file: store.shown, path: "", message: "no complete run to save: `headroom run` or `headroom gate` makes one")
                    }
                    id = latest
                }
                let replaced = try db.saveBaseline(name: name, runID: id)
                let stored = try db.load(runID: id)
                if json {
                    try printJSON(BaselineJSON(name: name, run: stored, samples: try db.sampleCount(runID: id), replacedRun: replaced))
                    return
                }
                print("Baseline \(name): run \(id) (scenario \(stored.run.scenarioName), \(try db.sampleCount(runID: id)) samples)"
                      + (replaced.map { $0 == id ? "" : ", replacing run \($0)" } ?? ""))
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the stored baselines.")

        @OptionGroup var store: StoreOptions

        @Flag(name: .long, help: "Print JSON on standard output instead of a table.")
        var json = false

        func run() throws {
            try reportingErrors {
                let db = try store.openReadOnly()
                let records = try db.baselines()
                let runs = try records.map { try db.load(runID: $0.runId).run }
                if json {
                    try printJSON(zip(records, runs).map { b, r in
                        ["name": b.name, "run_id": String(b.runId), "created_at": ISO8601DateFormatter().string(from: b.createdAt),
                         "scenario": r.scenarioName, "git_revision": r.gitRevision, "machine_fingerprint": r.machineFingerprint]
                    })
                    return
                }
                if records.isEmpty { print("No baselines in \(store.shown): `headroom baseline save NAME` makes one."); return }
                var t = TextTable(["name", "run", "scenario", "created (UTC)", "git", "machine"], rightAligned: [1])
                let f = DateFormatter()
                f.dateFormat = "yyyy-MM-dd HH:mm:ss"
                f.timeZone = TimeZone(identifier: "UTC")
                for (b, r) in zip(records, runs) {
                    t.add([b.name, String(b.runId), r.scenarioName, f.string(from: b.createdAt), String(r.gitRevision.prefix(12)), r.machineFingerprint])
                }
                print(t.rendered)
            }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a baseline as JSON: its raw samples and the machine's probe figures.",
            discussion: "The file is what `headroom gate --baseline FILE.json` reads, e.g. from a repository on a fresh CI clone.")

        @Argument(help: "The baseline's name.")
        var name: String

        @Option(name: [.short, .long], help: ArgumentHelp("Write to this file instead of standard output.", valueName: "file"))
        var output: String?

        @OptionGroup var store: StoreOptions

        func run() throws {
            try reportingErrors {
                if let output { try FileChecks.requireWritableOutput(output, option: "--output") }
                let db = try store.openReadOnly()
                let data = try BaselineFile.encode(try db.loadBaseline(named: name))
                if let output {
                    try FileChecks.writeAtomically(data + Data("\n".utf8), to: output, option: "--output")
                    warn("baseline \(name) written to \(output)")
                } else {
                    FileHandle.standardOutput.write(data + Data("\n".utf8))
                }
            }
        }
    }
}

/// `baseline record --json` and `baseline save --json`.
struct BaselineJSON: Encodable {
    var name: String
    var runId: Int64
    var scenario: String
    var samples: Int
    /// The run an earlier baseline of this name pointed to, when one was replaced.
    var replacedRun: Int64?
    init(name: String, run: StoredRun, samples: Int, replacedRun: Int64?) {
        self.name = name; runId = run.run.id ?? 0; scenario = run.run.scenarioName; self.samples = samples
        self.replacedRun = replacedRun == runId ? nil : replacedRun
    }
}
