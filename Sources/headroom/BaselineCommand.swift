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
            throw InputError(file: "command line", path: "NAME", message: "expected letters, digits, '.', '_' or '-', got \"\(name)\"")
        }
    }

    struct Record: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure a scenario the way `headroom gate` does (in its gate.rounds) and save the run as a baseline.")

        @Argument(help: "The baseline's name.")
        var name: String

        @Argument(help: "The scenario file.")
        var scenario: String

        @Option(name: .long, parsing: .upToNextOption, help: "Thread counts to measure, overriding the scenario's measure.threads.")
        var threads: [Int] = []

        @OptionGroup var store: StoreOptions

        func run() throws {
            try reportingErrors {
                try BaselineCommand.validName(name)
                if threads.contains(where: { $0 < 1 || $0 > 256 }) {
                    throw InputError(file: "command line", path: "--threads", message: "expected integers from 1 to 256")
                }
                var sc = try Scenario.load(scenario, resolveModel: GGUFModelSource.resolver)
                if !threads.isEmpty { sc.measure.threads = threads }
                let db = try store.open()
                let stored = try GateCommand.measure(sc, store: db)
                let id = stored.run.id!
                let replaced = try db.saveBaseline(name: name, runID: id)
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

        func run() throws {
            try reportingErrors {
                try BaselineCommand.validName(name)
                let db = try store.open()
                let id: Int64
                if let runID { id = runID } else {
                    guard let latest = try db.completeRuns(limit: 1).first?.id else {
                        throw InputError(file: store.path, path: "", message: "no complete run to save: `headroom run` or `headroom gate` makes one")
                    }
                    id = latest
                }
                let replaced = try db.saveBaseline(name: name, runID: id)
                let stored = try db.load(runID: id)
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
                if records.isEmpty { print("No baselines in \(store.path): `headroom baseline save NAME` makes one."); return }
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
                let db = try store.openReadOnly()
                let data = try BaselineFile.encode(try db.loadBaseline(named: name))
                if let output {
                    let dir = (output as NSString).deletingLastPathComponent
                    if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
                    try (data + Data("\n".utf8)).write(to: URL(fileURLWithPath: output))
                    warn("baseline \(name) written to \(output)")
                } else {
                    FileHandle.standardOutput.write(data + Data("\n".utf8))
                }
            }
        }
    }
}
