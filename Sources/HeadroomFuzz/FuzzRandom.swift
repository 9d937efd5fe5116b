// The fuzzer's only source of randomness: SplitMix64 from a seed, so that a run is repeated exactly by its seed.
import HeadroomKernels

/// The kernels' SplitMix64 (Steele, Lea, Flood 2014), with the draws the mutators need.
public struct FuzzRandom: RandomNumberGenerator, Sendable {
    private var generator: SplitMix64

    public init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    public mutating func next() -> UInt64 { generator.next() }

    /// A value in `0..<n` (n > 0).
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// True with probability 1/n.
    public mutating func oneIn(_ n: Int) -> Bool { below(n) == 0 }

    /// One element of a non-empty array.
    public mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    /// A size that is usually small and sometimes large: 1, 2, 4, … up to `limit`, each power about equally likely.
    public mutating func size(upTo limit: Int) -> Int {
        let bits = Int.bitWidth - max(limit, 1).leadingZeroBitCount
        return min(limit, 1 + below(1 << below(bits)))
    }
}
