// The fuzzer's only source of randomness: SplitMix64 from a seed, so that a run is repeated exactly by its seed.

/// SplitMix64 (Steele, Lea, Flood 2014): fast, and every seed gives a full-period stream.
public struct FuzzRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

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
