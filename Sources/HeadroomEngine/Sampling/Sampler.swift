// Picking the next token from a step's logits: greedy at temperature 0, otherwise a draw from
// softmax(logits / temperature) restricted to the smallest set of tokens whose probability reaches top-p
// (nucleus sampling), from a seeded generator so that a seed reproduces a generation.
import Foundation
import HeadroomKernels

public struct Sampler: Sendable {
    public var temperature: Float
    /// Nucleus mass in (0, 1]; 1 keeps every token.
    public var topP: Float
    private var rng: SplitMix64

    public init(temperature: Float = 0, topP: Float = 1, seed: UInt64 = 1) {
        self.temperature = temperature; self.topP = topP; rng = SplitMix64(seed: seed)
    }

    /// The next token: argmax when temperature ≤ 0 (ties to the lowest id), else a seeded draw.
    public mutating func sample(logits: UnsafeBufferPointer<Float>) -> Int32 {
        if temperature <= 0 { return Self.argmax(logits) }
        var mx = -Float.infinity
        for v in logits { mx = max(mx, v) }
        var p = logits.map { Double(expf(($0 - mx) / temperature)) }
        let sum = p.reduce(0, +)
        for i in p.indices { p[i] /= sum }
        let u = Double(rng.nextUnitFloat())
        if topP < 1 {
            // The nucleus: tokens by falling probability until their mass reaches topP (at least one).
            let order = p.indices.sorted { p[$0] > p[$1] || (p[$0] == p[$1] && $0 < $1) }
            var kept = 0, mass = 0.0
            while kept < order.count && (kept == 0 || mass < Double(topP)) { mass += p[order[kept]]; kept += 1 }
            var r = u * mass
            for i in order.prefix(kept) { r -= p[i]; if r <= 0 { return Int32(i) } }
            return Int32(order[kept - 1])
        }
        var r = u
        for (i, v) in p.enumerated() { r -= v; if r <= 0 { return Int32(i) } }
        return Int32(logits.count - 1)
    }

    public mutating func sample(_ logits: UnsafeBufferPointer<Float>) -> Int32 { sample(logits: logits) }
    public mutating func sample(_ logits: [Float]) -> Int32 { logits.withUnsafeBufferPointer { sample(logits: $0) } }

    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        var best = 0
        for i in 1..<logits.count where logits[i] > logits[best] { best = i }
        return Int32(best)
    }
}
