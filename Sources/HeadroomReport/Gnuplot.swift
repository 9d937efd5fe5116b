// Draws plots by piping a script to gnuplot; data goes through files in a temporary folder.
// Every string that enters a script — titles, labels, file names — goes through `quote` or `label`,
// which make it one inert single-quoted literal: gnuplot does no backquote or macro substitution
// inside single quotes, `''` is its only escape, and control characters (a newline would end the
// command and start another) are replaced. File names are made absolute, so none can start with
// `|` or `<` (gnuplot's pipes to and from a shell).
import Foundation
import HeadroomCore

public enum GnuplotError: Error, CustomStringConvertible {
    case notInstalled
    case failed(plot: String, status: Int32, stderr: String)
    case noOutput(String)

    public var description: String {
        switch self {
        case .notInstalled:
            return "gnuplot was not found on PATH: install Debian's gnuplot-nox (`make` installs it)"
        case .failed(let plot, let status, let err):
            return "gnuplot failed drawing \(plot) (exit \(status)): \(err.trimmingCharacters(in: .whitespacesAndNewlines))"
        case .noOutput(let path):
            return "gnuplot wrote no image at \(path)"
        }
    }
}

public struct Gnuplot {
    /// One plot: data blocks (named, tab-separated rows) and a script that refers to them as `$NAME`-style
    /// file paths via the `{{NAME}}` placeholders.
    public struct Plot {
        public var output: String
        public var script: String
        public var data: [String: String]
        public init(output: String, script: String, data: [String: String]) {
            self.output = output; self.script = script; self.data = data
        }
    }

    public static func executable() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/gnuplot"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Renders `plot` to its PNG output path; throws with gnuplot's own message when it fails.
    public static func render(_ plot: Plot) throws {
        guard let exe = executable() else { throw GnuplotError.notInstalled }
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("headroom-plot-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        var script = plot.script
        for (name, text) in plot.data {
            let file = tmp.appendingPathComponent("\(name).dat")
            try text.write(to: file, atomically: true, encoding: .utf8)
            script = script.replacingOccurrences(of: "{{\(name)}}", with: quote(absolute(file.path)))
        }
        script = script.replacingOccurrences(of: "{{OUTPUT}}", with: quote(absolute(plot.output)))

        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        let input = Pipe(), errors = Pipe()
        p.standardInput = input
        p.standardError = errors
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        input.fileHandleForWriting.write(Data(script.utf8))
        try input.fileHandleForWriting.close()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let message = String(decoding: err, as: UTF8.self)
        guard p.terminationStatus == 0 else {
            throw GnuplotError.failed(plot: (plot.output as NSString).lastPathComponent, status: p.terminationStatus, stderr: message)
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: plot.output)[.size] as? Int) ?? 0
        guard size > 0 else { throw GnuplotError.noOutput(plot.output) }
    }

    /// A gnuplot single-quoted string literal holding `s` as inert text.
    public static func quote(_ s: String) -> String {
        "'" + inert(s) + "'"
    }

    /// Text to put between single quotes in a title or label: inert, and with `_` shown as itself
    /// rather than as enhanced text's subscript.
    public static func label(_ s: String) -> String {
        inert(s).replacingOccurrences(of: "_", with: "\\_")
    }

    /// `s` with control characters written as visible escapes (so it stays on one line) and `'` doubled.
    static func inert(_ s: String) -> String {
        TerminalText.escape(s, keepNewlines: false).replacingOccurrences(of: "'", with: "''")
    }

    /// An absolute path: gnuplot reads a file name that starts with `|` or `<` as a shell command.
    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(path)
    }

    /// The common preamble: PNG via cairo, readable fonts, a grid.
    public static func preamble(title: String, width: Int = 900, height: Int = 520) -> String {
        """
        set terminal pngcairo size \(width),\(height) enhanced font 'DejaVu Sans,10'
        set output {{OUTPUT}}
        set title '\(label(title))'
        set grid ytics lc rgb '#dddddd'
        set key outside right top
        set border 3
        set tics nomirror
        """
    }
}
