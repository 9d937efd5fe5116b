// Writes Reports/NAME/: index.md and index.html built from one stored run, with the gnuplot
// PNGs they link, in the same folder. The report reads the store; it never measures or plans.
import Foundation
import HeadroomCore
import HeadroomStore

/// One part of a report: its text in Markdown and HTML, and the plots it links.
public struct ReportSection {
    public var title: String
    public var markdown: String
    public var html: String
    public var plots: [Gnuplot.Plot]
    public init(title: String, markdown: String, html: String, plots: [Gnuplot.Plot] = []) {
        self.title = title; self.markdown = markdown; self.html = html; self.plots = plots
    }
}

/// Builds sections from a stored run; each later layer (inference, fine-tuning, planning) adds its own.
public protocol ReportSectionBuilder {
    /// nil when the run holds nothing for this section.
    func section(for run: StoredRun, folder: String) -> ReportSection?
}

public struct ReportWriter {
    public var builders: [any ReportSectionBuilder]

    public init(builders: [any ReportSectionBuilder] = ReportWriter.standardBuilders) { self.builders = builders }

    public static var standardBuilders: [any ReportSectionBuilder] {
        [MachineSection(), GemmSection(), InferenceThroughputSection(), InferenceBatchSection(), InferenceTTFTSection(),
         InferenceMemorySection(), FinetuneSection(), LoadSection()]
    }

    /// Writes the report into `folder` (created if needed) and returns the paths written.
    /// Files are written under temporary names and moved into place, so a failure leaves no half-written report.
    @discardableResult
    public func write(run: StoredRun, folder: String) throws -> [String] {
        let fm = FileManager.default
        try Self.prepareFolder(folder)
        let staging = (folder as NSString).appendingPathComponent(".staging-\(getpid())")
        try? fm.removeItem(atPath: staging)
        try fm.createDirectory(atPath: staging, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: staging) }

        let sections = builders.compactMap { $0.section(for: run, folder: staging) }
        var written: [String] = []
        for section in sections {
            for plot in section.plots {
                try Gnuplot.render(plot)
                written.append((plot.output as NSString).lastPathComponent)
            }
        }
        try markdown(run: run, sections: sections).write(toFile: (staging as NSString).appendingPathComponent("index.md"), atomically: true, encoding: .utf8)
        try html(run: run, sections: sections).write(toFile: (staging as NSString).appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
        written += ["index.md", "index.html"]
        var final: [String] = []
        // Every destination is checked before any is replaced: a FIFO or device at one is refused, not removed.
        for name in written { try FileChecks.requireWritableOutput((folder as NSString).appendingPathComponent(name), option: "the report") }
        for name in written {
            let dst = (folder as NSString).appendingPathComponent(name)
            try? fm.removeItem(atPath: dst)
            try fm.moveItem(atPath: (staging as NSString).appendingPathComponent(name), toPath: dst)
            final.append(dst)
        }
        return final
    }

    /// Creates `folder` (and its parents) unless it exists; refuses one that exists and is not a folder.
    static func prepareFolder(_ folder: String) throws {
        switch FileKind.of(folder) {
        case .directory: return
        case .missing:
            do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
                throw OutputError(path: folder, reason: "cannot create the report folder: \((error as NSError).localizedDescription)")
            }
        case let kind:
            throw InputError(file: "the report", path: "", message: "\(folder) is \(kind.phrase); expected a folder for the report")
        }
    }

    static func header(_ run: StoredRun) -> [(String, String)] {
        let r = run.run
        let m = run.machine
        let duration = r.endedAt.map { String(format: "%.1f s", $0.timeIntervalSince(r.startedAt)) } ?? "—"
        return [
            // A merged sweep was never stored as one run: it names its sweep and its shards' runs instead.
            ("Run", r.id.map { "\($0) (\(r.status.rawValue))" } ?? "\(r.note) (\(r.status.rawValue))"),
            ("Scenario", "\(r.scenarioName) — \(r.scenarioFile), hash \(r.scenarioHash)"),
            ("Git revision", r.gitRevision),
            ("Machine", m.map { "\($0.cpuModel), \($0.cores) cores, \(Fmt.bytes(Double($0.memoryBytes))), fingerprint \($0.fingerprint)" } ?? r.machineFingerprint),
            ("Started", ISO8601DateFormatter().string(from: r.startedAt)),
            ("Duration", duration),
            ("Headroom", r.headroomVersion),
        ]
    }

    func markdown(run: StoredRun, sections: [ReportSection]) -> String {
        var out = "# Headroom report: \(run.run.scenarioName)\n\n"
        for (k, v) in Self.header(run) { out += "- **\(k)**: \(v)\n" }
        out += "\nEvery figure here is **measured** on this machine unless it says **predicted**; "
        out += "measured figures give their sample count (n) and spread.\n"
        if run.run.status != .complete {
            out += "\n> **This run did not complete (\(run.run.status.rawValue))**: its figures are partial.\n"
        }
        for s in sections { out += "\n## \(s.title)\n\n\(s.markdown)\n" }
        return out
    }

    func html(run: StoredRun, sections: [ReportSection]) -> String {
        var out = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <title>Headroom report: \(HTML.escape(run.run.scenarioName))</title>
            <style>
            body { font-family: system-ui, sans-serif; max-width: 70em; margin: 2em auto; padding: 0 1em; color: #222; }
            table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
            th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
            th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
            img { max-width: 100%; border: 1px solid #eee; }
            .warn { background: #fff3cd; padding: 0.5em 1em; border-left: 4px solid #e0a800; }
            dt { font-weight: bold; float: left; clear: left; width: 9em; } dd { margin-left: 10em; }
            </style></head><body>
            <h1>Headroom report: \(HTML.escape(run.run.scenarioName))</h1>
            <dl>

            """
        for (k, v) in Self.header(run) { out += "<dt>\(HTML.escape(k))</dt><dd>\(HTML.escape(v))</dd>\n" }
        out += "</dl>\n<p>Every figure here is <strong>measured</strong> on this machine unless it says <strong>predicted</strong>; "
        out += "measured figures give their sample count (n) and spread.</p>\n"
        if run.run.status != .complete {
            out += "<p class=\"warn\">This run did not complete (\(HTML.escape(run.run.status.rawValue))): its figures are partial.</p>\n"
        }
        for s in sections { out += "<h2>\(HTML.escape(s.title))</h2>\n\(s.html)\n" }
        return out + "</body></html>\n"
    }
}

/// An image link in both formats.
func imageMarkdown(_ file: String, _ alt: String) -> String { "![\(alt)](\(file))" }
func imageHTML(_ file: String, _ alt: String) -> String {
    "<p><img src=\"\(HTML.escape(file))\" alt=\"\(HTML.escape(alt))\"></p>"
}
