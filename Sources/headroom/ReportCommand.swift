import ArgumentParser
import Foundation
import HeadroomReport
import HeadroomRunner
import HeadroomStore

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Rewrite a report from the store, without measuring again.",
        discussion: """
            Writes DIR/SCENARIO/index.md, index.html and the PNG plots for RUN (default: the latest complete run). \
            With --sweep ID, merges the latest run of each shard of that sweep into one report, DIR/ID/, every case \
            once with the shard and run that measured it; while a shard has no run, or its latest run is not complete, \
            it merges nothing, names those shards and exits 1.
            """)

    @Argument(help: ArgumentHelp("Run id (see `headroom history`; default: the latest complete run).", valueName: "run"))
    var positionalRunID: Int64?

    @Option(name: .customLong("run"), help: ArgumentHelp("The run, as the other commands name it (same as the argument).", valueName: "id"))
    var optionRunID: Int64?

    var runID: Int64? { positionalRunID ?? optionRunID }

    @Option(name: .long, help: ArgumentHelp("Merge the shards of this sweep (headroom run --shard … --sweep ID) into one report.", valueName: "id"))
    var sweep: String?

    func validate() throws {
        if positionalRunID != nil && optionRunID != nil { throw ValidationError("give the run once: as the argument, or with --run") }
        if sweep != nil && runID != nil { throw ValidationError("--sweep: give a run or a sweep, not both") }
        if let sweep, !SweepID.isValid(sweep) {
            throw ValidationError("--sweep: expected letters, digits, '.', '_' or '-' (at most 128, starting with a letter or digit), got \"\(sweep)\"")
        }
    }

    @Option(name: .long, help: ArgumentHelp("Folder that receives the report folder.", valueName: "dir"))
    var reports = "Reports"

    @OptionGroup var store: StoreOptions

    @Flag(name: .long, help: "Print JSON (the files written) on standard output.")
    var json = false

    func run() throws {
        try reportingErrors {
            let db = try store.openReadOnly()
            if let sweep { return try writeSweep(sweep, db) }
            let id: Int64
            if let runID {
                id = runID
            } else {
                guard let latest = try db.completeRuns(limit: 1).first?.id else {
                    warn("no complete run in \(store.shown): run `headroom run` first")
                    throw ExitCode(2)
                }
                id = latest
            }
            let stored = try db.load(runID: id)
            let folder = (reports as NSString).appendingPathComponent(stored.run.scenarioName)
            var builders = ReportWriter.standardBuilders
            if let plan = try db.plan(runID: id) { builders.append(PlanningSection(plan: plan)) }
            let files = try ReportWriter(builders: builders).write(run: stored, folder: folder)
            if json {
                try printJSON(["run": String(id), "folder": folder, "files": files.joined(separator: ",")])
            } else {
                print("Report for run \(id) written to \(folder)/")
                for f in files { print("  \(f)") }
            }
        }
    }

    /// The merged report of every shard of `sweep`, in DIR/ID/; `SweepIncomplete` (exit 1) while a shard is missing.
    func writeSweep(_ sweep: String, _ db: any Store) throws {
        let merge = try SweepMerge.merge(sweep, in: db)
        let folder = (reports as NSString).appendingPathComponent(sweep)
        let files = try ReportWriter(builders: ReportWriter.standardBuilders + [SweepSection(merge)]).write(run: merge.run, folder: folder)
        if json {
            try printJSON(SweepReportJSON(merge, folder: folder, files: files))
        } else {
            let runs = merge.sources.map { "\($0.index): run \($0.runID)" }.joined(separator: ", ")
            print("Report for sweep \(sweep) (\(merge.count) shards; \(runs); \(merge.run.cases.count) cases) written to \(folder)/")
            for f in files { print("  \(f)") }
        }
    }
}

/// `report --sweep ID --json`: the shards merged, and every case with the shard and run that measured it.
struct SweepReportJSON: Encodable {
    struct Shard: Encodable { var index: Int; var run: Int64; var host: String; var machineFingerprint: String; var cases: Int }
    /// `shard` and `run`: the (first) shard and run that measured the case; `shards` and `runs`: all of them (a load
    /// point sent by several clients has one per client).
    struct Case: Encodable {
        var kind: String; var name: String; var threads: Int; var params: [String: String]
        var shard: Int; var run: Int64; var shards: [Int]; var runs: [Int64]
    }
    var sweep: String
    var shardCount: Int
    var folder: String
    var files: [String]
    var shards: [Shard]
    var cases: [Case]

    init(_ m: SweepMerge, folder: String, files: [String]) {
        sweep = m.sweep; shardCount = m.count; self.folder = folder; self.files = files
        shards = m.sources.map { Shard(index: $0.index, run: $0.runID, host: $0.host, machineFingerprint: $0.machineFingerprint, cases: $0.cases) }
        cases = m.run.cases.map { c in
            let shards = (c.facts[SweepMerge.shardFact] ?? "").split(separator: ",").compactMap { Int($0) }
            let runs = (c.facts[SweepMerge.runFact] ?? "").split(separator: ",").compactMap { Int64($0) }
            return Case(kind: c.kind.rawValue, name: c.name, threads: c.threads, params: c.params,
                        shard: shards.first ?? -1, run: runs.first ?? -1, shards: shards, runs: runs)
        }
    }
}
