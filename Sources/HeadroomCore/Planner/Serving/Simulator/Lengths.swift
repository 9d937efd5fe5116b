// How many tokens a simulated request's prompt or output has: a fixed length, a range, a lognormal (the
// shape of real chat traffic: most requests short, a long tail), or a list to draw from.
import Foundation

/// The distribution of a request's prompt or output length, in tokens.
public enum LengthDistribution: Hashable, Sendable, CustomStringConvertible {
    /// Every request `n` tokens.
    case fixed(Int)
    /// Uniform over `min...max`.
    case uniform(min: Int, max: Int)
    /// exp(N(log median, sigma²)) rounded to the nearest token and clamped to `1...maxLength`. sigma 0 is
    /// `fixed(median)` rounded.
    case lognormal(median: Double, sigma: Double)
    /// One of `values`, each equally likely (a dataset's lengths).
    case values([Int])

    /// The longest length any distribution gives, the same ceiling as a line of a load trace or dataset
    /// (`LoadInputFiles.maxTokens`, 2²⁰): a lognormal's tail is clamped to it. A request too long for the
    /// replica's KV cache is refused by its scheduler and counted as rejected, not clamped.
    public static let maxLength = LoadInputFiles.maxTokens

    /// Throws the first parameter out of range; `field` names the distribution ("promptLengths").
    public func validate(field: String) throws(SimulationError) {
        func length(_ n: Int, _ name: String) throws(SimulationError) {
            guard n >= 1 && n <= Self.maxLength else {
                throw SimulationError(field: "\(field).\(name)", expected: "a length from 1 to \(Self.maxLength) tokens", got: "\(n)")
            }
        }
        switch self {
        case .fixed(let n):
            try length(n, "fixed")
        case .uniform(let lo, let hi):
            try length(lo, "min")
            try length(hi, "max")
            guard lo <= hi else { throw SimulationError(field: "\(field).max", expected: "at least min (\(lo))", got: "\(hi)") }
        case .lognormal(let median, let sigma):
            guard median.isFinite && median >= 1 && median <= Double(Self.maxLength) else {
                throw SimulationError(field: "\(field).median", expected: "a length from 1 to \(Self.maxLength) tokens", got: "\(median)")
            }
            guard sigma.isFinite && sigma >= 0 else {
                throw SimulationError(field: "\(field).sigma", expected: "a finite value at least 0", got: "\(sigma)")
            }
        case .values(let values):
            guard !values.isEmpty else { throw SimulationError(field: "\(field).values", expected: "at least one length", got: "none") }
            for (i, n) in values.enumerated() { try length(n, "values[\(i)]") }
        }
    }

    /// One length. The distribution must be valid.
    public func sample(_ random: inout SimulationRandom) -> Int {
        switch self {
        case .fixed(let n):
            return n
        case .uniform(let lo, let hi):
            return lo + random.below(hi - lo + 1)
        case .lognormal(let median, let sigma):
            let x = (median * exp(sigma * random.normal())).rounded()
            // NaN cannot arise (median ≥ 1, sigma finite); ±∞ and huge values clamp.
            return x >= Double(Self.maxLength) ? Self.maxLength : max(1, Int(x))
        case .values(let values):
            return values[random.below(values.count)]
        }
    }

    public var description: String {
        switch self {
        case .fixed(let n): return "\(n)"
        case .uniform(let lo, let hi): return "uniform \(lo)–\(hi)"
        case .lognormal(let median, let sigma): return "lognormal (median \(median), σ \(sigma))"
        case .values(let values): return "one of \(values.count) lengths"
        }
    }
}
