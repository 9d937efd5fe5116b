// The simulator's seeded randomness: one small generator and the few distributions the workload draws from
// (uniform, normal, exponential, gamma). Core cannot import HeadroomKernels, so the generator is written
// here; it is the same algorithm, constants and output as the kernels' `SplitMix64`, so a seed means the
// same stream in both.
import Foundation

/// SplitMix64 (Steele, Lea and Flood 2014), with draws from the distributions the simulator needs. A value
/// type: copying it forks the stream, and the same seed gives the same draws on every machine.
public struct SimulationRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The seed of an independent stream number `stream` under `seed`: the generator's first output after
    /// mixing the two, so nearby seeds and nearby streams still start far apart.
    public static func seed(_ seed: UInt64, stream: UInt64) -> UInt64 {
        var r = SimulationRandom(seed: seed ^ (stream &* 0xD1B5_4A32_D192_ED03))
        return r.next()
    }

    /// Uniform in [0, 1), 53 random bits.
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform integer in `0..<n` by the high word of a 64×64 product (Lemire), written out so the draw does
    /// not depend on the standard library's `random(in:)` algorithm; its bias, n / 2⁶⁴, is far below noise.
    public mutating func below(_ n: Int) -> Int {
        precondition(n > 0, "below(\(n)): n must be positive")
        return Int(next().multipliedFullWidth(by: UInt64(n)).high)
    }

    /// Standard normal, by Box–Muller (one of the pair, so a draw uses exactly two outputs).
    public mutating func normal() -> Double {
        let u1 = 1 - unit() // (0, 1]: log is finite
        let u2 = unit()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// Exponential with mean 1, by inversion.
    public mutating func exponential() -> Double { -log(1 - unit()) }

    /// Gamma with shape `k` and scale 1, by Marsaglia and Tsang (2000): for k ≥ 1 a squeezed rejection from
    /// a cubed normal (accepts over 95 % of the time); for k < 1, Gamma(k + 1) · U^(1/k).
    public mutating func gamma(shape k: Double) -> Double {
        precondition(k > 0 && k.isFinite, "gamma(shape: \(k)): the shape must be finite and positive")
        if k < 1 {
            let u = 1 - unit()
            return gamma(shape: k + 1) * pow(u, 1 / k)
        }
        let d = k - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        while true {
            var x: Double, v: Double
            repeat {
                x = normal()
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = unit()
            let x2 = x * x
            if u < 1 - 0.0331 * x2 * x2 { return d * v }
            if log(u) < 0.5 * x2 + d * (1 - v + log(v)) { return d * v }
        }
    }
}
