// The built `headroom` executable, run as a user runs it: the command-line tests' one harness.
import Foundation

enum HeadroomCLI {
    /// `swift test` builds the executable beside the test bundle.
    static var binary: URL {
        let bundle = Bundle(for: CommandLineTests.self).bundleURL
        let candidates = [bundle.appendingPathComponent("headroom"), bundle.deletingLastPathComponent().appendingPathComponent("headroom")]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]
    }

    /// The repository root (for the shipped catalog and scenarios).
    static var repo: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Runs `headroom args…` in `cwd`; returns its exit status and both outputs.
    static func run(_ args: [String], cwd: URL, environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        p.currentDirectoryURL = cwd
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }
}
