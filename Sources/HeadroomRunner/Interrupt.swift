// Ctrl-C and SIGTERM ask the runner to stop between repetitions, so the run is recorded as
// interrupted rather than left half-written. A second Ctrl-C kills the process at once.
import Foundation

public enum Interrupt {
    nonisolated(unsafe) private static var flag: Int32 = 0

    public static var requested: Bool { flag != 0 }

    /// Installs the handlers (idempotent).
    public static func install() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { s in
                Interrupt.flag = 1
                signal(s, SIG_DFL)
            }
        }
    }

    /// For tests: ask for an interruption as a signal would.
    public static func request() { flag = 1 }
    public static func reset() { flag = 0 }
}

/// Thrown inside a run when an interruption was asked for.
public struct RunInterrupted: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "interrupted" }
}
