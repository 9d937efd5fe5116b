// The values of `headroom serve`'s options that are not plain numbers: durations and the KV budget.
import Foundation
import HeadroomCore
import HeadroomEngine

public enum ServeArguments {
    /// A value the option cannot take; `message` says what was expected and what came.
    public struct Invalid: Error, Hashable { public var message: String }

    /// "300s", "5m", "1h", "250ms" or plain seconds (Core's `DurationText`, which scenario files use too).
    public static func duration(_ text: String) throws -> Duration {
        switch DurationText.seconds(text) {
        case .success(let s): return .milliseconds(Int64((s * 1000).rounded()))
        case .failure(let r): throw Invalid(message: "expected \(r.expected), got '\(text)'")
        }
    }

    /// "2GiB", "512MiB", "1.5GB" are bytes; a plain integer is tokens.
    public static func kvBudget(_ text: String) throws -> KVCacheBudget {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let tokens = Int(t) {
            guard (1...(1 << 30)).contains(tokens) else { throw Invalid(message: "a token count must be 1 to 1073741824, got \(t)") }
            return .tokens(tokens)
        }
        let units: [(String, Double)] = [("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("TiB", 1_099_511_627_776),
                                         ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("B", 1)]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            // Whole bytes: a positive value below one byte ("0.5B") would be an empty pool.
            if let v = Double(t.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), v.isFinite, v * scale >= 1, v * scale <= 1e15 {
                return .bytes(Int(v * scale))
            }
            break
        }
        throw Invalid(message: "expected bytes with a unit (512MiB, 2GiB) or a token count (65536), got '\(text)'")
    }
}
