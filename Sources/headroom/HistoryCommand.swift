import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomReport
import HeadroomStore

struct HistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "List stored runs, and summarise each scenario from its complete runs.",
        discussion: """
            Every run is listed with its status. Runs that were interrupted, failed, or are still running \
            are shown but never counted in the per-scenario summary.
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
        var id: Int64, scenario: String, status: String, startedAt: Date, endedAt: Date?
        var gitRevision: String, machineFingerprint: String, scenarioHash: String, samples: Int, note: String
        init(_ r: RunRecord, samples: Int) {
            id = r.id!; scenario = r.scenarioName; status = r.status.rawValue; startedAt = r.startedAt; endedAt = r.endedAt
            gitRevision = r.gitRevision; machineFingerprint = r.machineFingerprint; scenarioHash = r.scenarioHash
            self.samples = samples; note = r.note
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
