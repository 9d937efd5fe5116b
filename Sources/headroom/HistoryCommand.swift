import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomReport
import HeadroomStore

/// `headroom history` lists (its default) and pushes.
struct HistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "List stored runs and summarise each scenario (the default), or push them to a shared store.",
        subcommands: [HistoryListCommand.self, HistoryPushCommand.self],
        defaultSubcommand: HistoryListCommand.self)
}

struct HistoryListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List stored runs, and summarise each scenario from its complete runs.",
        discussion: """
            Every run is listed with its status. Runs that were interrupted, failed, or are still running \
            are shown but never counted in the per-scenario summary. `headroom history list` is also plain \
            `headroom history`.
            """)

    @Option(name: .long, help: "Only runs of this scenario.")
    var scenario: String?

    @Option(name: .long, help: "At most this many runs (newest first).")
    var limit: Int = 20

    @OptionGroup var store: StoreOptions

    @Flag(name: .long, help: "Print JSON on standard output instead of tables.")
    var json = false

    func validate() throws {
        if limit < 1 { throw ValidationError("--limit: expected a positive integer") }
    }

    func run() throws {
        try reportingErrors {
            let db = try store.openReadOnly()
            let runs = try db.runs().filter { scenario == nil || $0.scenarioName == scenario }.prefix(limit)
            let summaries = try db.scenarioHistories().filter { scenario == nil || $0.scenario == scenario }
            if json {
                try printJSON(HistoryJSON(
                    runs: try runs.map { r in HistoryJSON.Run(r, samples: try db.sampleCount(runID: r.id!)) },
                    summary: summaries.map(HistoryJSON.ScenarioSummary.init)))
                return
            }
            if runs.isEmpty { print("No runs in \(store.shown) yet: `headroom run` measures and stores one."); return }
            var t = TextTable(["run", "scenario", "status", "started (UTC)", "duration", "git", "samples"], rightAligned: [0, 4, 6])
            let f = DateFormatter()
            f.dateFormat = "yyyy-MM-dd HH:mm:ss"
            f.timeZone = TimeZone(identifier: "UTC")
            for r in runs {
                t.add([String(r.id!), r.scenarioName, r.status.rawValue, f.string(from: r.startedAt),
                       r.endedAt.map { String(format: "%.1f s", $0.timeIntervalSince(r.startedAt)) } ?? "—",
                       String(r.gitRevision.prefix(12)), String(try db.sampleCount(runID: r.id!))])
            }
            print(t.rendered)
            print("\nPer scenario, from complete runs only (measured):")
            var s = TextTable(["scenario", "complete", "incomplete", "latest", "read GB/s", "sgemm GFLOP/s", "at threads"],
                              rightAligned: [1, 2, 3, 4, 5, 6])
            for h in summaries {
                let top = h.latestProbe?.perThreads.last
                s.add([h.scenario, String(h.completeRuns), String(h.incompleteRuns), h.latestComplete.map { String($0.id!) } ?? "—",
                       top.flatMap { h.latestProbe?.readGBps(threads: $0.threads) }.map(Fmt.sig) ?? "—",
                       top?.sgemmGFLOPs.map(Fmt.sig) ?? "—", top.map { String($0.threads) } ?? "—"])
            }
            print(s.rendered)
        }
    }
}

struct HistoryJSON: Encodable {
    struct Run: Encodable {
        /// `uid` names the run in every store it is copied to; `id` is its number in this one.
        var id: Int64, uid: String, host: String, branch: String, scenario: String, status: String, startedAt: Date, endedAt: Date?
        var gitRevision: String, machineFingerprint: String, scenarioHash: String, samples: Int, note: String
        /// Only for a shard of a sweep (`run --shard`, `load --shard`); absent otherwise.
        var sweep: String?, shardIndex: Int?, shardCount: Int?
        init(_ r: RunRecord, samples: Int) {
            id = r.id!; uid = r.uid; host = r.host; branch = r.branch; scenario = r.scenarioName; status = r.status.rawValue; startedAt = r.startedAt; endedAt = r.endedAt
            gitRevision = r.gitRevision; machineFingerprint = r.machineFingerprint; scenarioHash = r.scenarioHash
            self.samples = samples; note = r.note
            sweep = r.sweep; shardIndex = r.shardIndex; shardCount = r.shardCount
        }
    }
    struct ScenarioSummary: Encodable {
        var scenario: String, completeRuns: Int, incompleteRuns: Int, latestCompleteRun: Int64?
        var latestProbe: ProbeFiguresJSON?
        init(_ h: ScenarioHistory) {
            scenario = h.scenario; completeRuns = h.completeRuns; incompleteRuns = h.incompleteRuns
            latestCompleteRun = h.latestComplete?.id; latestProbe = h.latestProbe.map(ProbeFiguresJSON.init)
        }
    }
    var runs: [Run]
    var summary: [ScenarioSummary]
}

struct HistoryPushCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Copy this store's finished runs, with every sample and plan, to a shared store.",
        discussion: """
            Each run is copied in one transaction and keeps its uid, by which the shared store knows it: pushing \
            again copies only runs it does not have, and pushes from many machines at once (or the same runs \
            twice at once) store each run once. Runs still running are left for a later push. Baselines are \
            names in one store and are not copied.
            """)

    @Option(name: .long, help: ArgumentHelp("The store to copy to: postgres://USER@HOST:PORT/DATABASE (or a SQLite path).",
                                            discussion: "The password comes from the URL or $PGPASSWORD, TLS from ?sslmode=.",
                                            valueName: "url"))
    var to: String

    @Option(name: .long, help: "Only runs of this scenario.")
    var scenario: String?

    @OptionGroup var store: StoreOptions

    @Flag(name: .long, help: "Print JSON on standard output instead of a table.")
    var json = false

    func run() throws {
        try reportingErrors {
            // Both locations are read before anything is opened: a bad one is bad input, nothing connected.
            let target = try StoreLocation(to, source: "--to")
            let source = try StoreLocation(store.path, source: store.source)
            if target == source { throw ValidationError("--to: \(store.shown) is the store pushed from (--db, HEADROOM_DB)") }
            if case .sqlite(let path) = source, path != ":memory:", !FileManager.default.fileExists(atPath: path) {
                throw InputError(file: path, path: "", message: "no results store here: nothing to push (`headroom run` makes one)")
            }
            // Read-write: a store from before run uids gets them now, kept for every later push.
            let from = try store.open()
            let into = try openStore(to, mode: .readWrite(createFolder: false), source: "--to")
            let report = try HistoryPush.push(from: from, to: into, scenario: scenario)
            if json {
                try printJSON(PushJSON(from: from.path, to: into.path, report: report))
                return
            }
            if !report.copied.isEmpty {
                var t = TextTable(["run", "pushed as", "scenario", "status", "samples"], rightAligned: [0, 1, 4])
                for c in report.copied {
                    t.add([String(c.localID), String(c.sharedID), c.scenario, c.status.rawValue, String(c.samples)])
                }
                print(t.rendered)
            }
            print("Pushed \(report.copied.count) run(s), \(report.samples) samples, from \(from.path) to \(into.path); "
                  + "\(report.alreadyThere.count) already there.")
            if !report.stillRunning.isEmpty {
                print("Not pushed, still running: run \(report.stillRunning.map(String.init).joined(separator: ", ")) (push again once they end).")
            }
        }
    }
}

struct PushJSON: Encodable {
    struct Copied: Encodable {
        var run: Int64, pushedAs: Int64, uid: String, scenario: String, status: String, samples: Int
    }
    var from: String, to: String
    var pushed: [Copied]
    var alreadyThere: [Int64]
    var stillRunning: [Int64]
    init(from: String, to: String, report: PushReport) {
        self.from = from; self.to = to
        pushed = report.copied.map { Copied(run: $0.localID, pushedAs: $0.sharedID, uid: $0.uid, scenario: $0.scenario,
                                            status: $0.status.rawValue, samples: $0.samples) }
        alreadyThere = report.alreadyThere; stillRunning = report.stillRunning
    }
}
