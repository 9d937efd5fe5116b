// Progress on standard error, drawn only when standard error is a terminal (never mixed into --json output).
import Foundation

public final class Progress: @unchecked Sendable {
    private let enabled: Bool
    private var label = ""
    private var total = 0
    private var done = 0
    private var started = Date()
    private var lastDraw = Date.distantPast
    private var active = false

    public init(enabled: Bool = isatty(STDERR_FILENO) == 1) { self.enabled = enabled }

    /// Starts a phase of `total` steps.
    public func begin(_ label: String, total: Int) {
        self.label = label; self.total = max(total, 1); done = 0; started = Date(); active = true
        draw(force: true)
    }

    public func step(_ detail: String = "") {
        done += 1
        draw(force: done == total, detail: detail)
    }

    public func end() {
        active = false
        guard enabled else { return }
        let secs = Date().timeIntervalSince(started)
        FileHandle.standardError.write(Data("\r\u{1B}[2K\(label): done in \(String(format: "%.1f", secs)) s\n".utf8))
    }

    /// A line of text that should not disturb the bar (always shown on standard error).
    public func note(_ text: String) {
        let prefix = enabled ? "\r\u{1B}[2K" : ""
        FileHandle.standardError.write(Data("\(prefix)\(text)\n".utf8))
        draw(force: true)
    }

    /// Abandons the current phase: clears the bar and draws no more until the next `begin`.
    public func stop() {
        if enabled && active { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
        active = false
    }

    private func draw(force: Bool, detail: String = "") {
        guard enabled, active else { return }
        let now = Date()
        guard force || now.timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = now
        let width = 28
        let filled = width * done / total
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let elapsed = String(format: "%.1f s", now.timeIntervalSince(started))
        FileHandle.standardError.write(Data("\r\u{1B}[2K\(label) [\(bar)] \(done)/\(total) \(elapsed) \(detail)".utf8))
    }
}
