import ArgumentParser
import Foundation
import HeadroomReport
import HeadroomStore

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Rewrite a report from the store, without measuring again.",
        discussion: "Writes DIR/SCENARIO/index.md, index.html and the PNG plots for RUN (default: the latest complete run).")

    @Argument(help: ArgumentHelp("Run id (see `headroom history`; default: the latest complete run).", valueName: "run"))
    var positionalRunID: Int64?

    @Option(name: .customLong("run"), help: ArgumentHelp("The run, as the other commands name it (same as the argument).", valueName: "id"))
    var optionRunID: Int64?

    var runID: Int64? { positionalRunID ?? optionRunID }

    func validate() throws {
        if positionalRunID != nil && optionRunID != nil { throw ValidationError("give the run once: as the argument, or with --run") }
    }

    @Option(name: .long, help: ArgumentHelp("Folder that receives the report folder.", valueName: "dir"))
    var reports = "Reports"

    @OptionGroup var store: StoreOptions

    @Flag(name: .long, help: "Print JSON (the files written) on standard output.")
    var json = false

    func run() throws {
        try reportingErrors {
            let db = try store.openReadOnly()
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
}
