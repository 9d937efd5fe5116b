// Where training tokens come from: a synthetic learnable task generated from a seed, or a token file
// (a flat binary of little-endian uint32 token ids) validated before use.
import Foundation
import HeadroomKernels

/// B sequences of T input tokens and the T tokens that follow each (the targets), row-major (B,T).
public struct TokenBatch: Sendable, Equatable {
    public var inputs: [Int32]
    public var targets: [Int32]
    public init(inputs: [Int32], targets: [Int32]) { self.inputs = inputs; self.targets = targets }
}

/// A source of batches; `batch(step:)` is deterministic in its step, so runs repeat exactly.
public protocol TrainDataSource {
    /// Largest token id plus one.
    var vocabNeeded: Int { get }
    func batch(step: Int, B: Int, T: Int) -> TokenBatch
}

/// A fixed cycle of `period` distinct tokens, each sequence starting at a seeded random phase: after
/// its first token every next token is determined by the current one, so a model can learn it and the
/// loss can fall towards zero. The first token of each sequence stays a guess (loss ≈ ln period).
public struct SyntheticPatternTask: TrainDataSource {
    public let pattern: [Int32]
    public let seed: UInt64

    public init(vocab: Int, period: Int, seed: UInt64) {
        precondition(period >= 2 && period <= vocab, "period must be in 2...vocab")
        var rng = SplitMix64(seed: seed)
        // A seeded partial shuffle of 0..<vocab: distinct tokens in a random order.
        var ids = Array(0..<Int32(vocab))
        for i in 0..<period {
            let j = i + Int(rng.next() % UInt64(vocab - i))
            ids.swapAt(i, j)
        }
        pattern = Array(ids[0..<period])
        self.seed = seed
    }

    public var vocabNeeded: Int { Int(pattern.max()!) + 1 }

    public func batch(step: Int, B: Int, T: Int) -> TokenBatch {
        var rng = SplitMix64(seed: seed &+ 0x5EED &+ UInt64(step) &* 0x9E37_79B9)
        var inputs: [Int32] = [], targets: [Int32] = []
        inputs.reserveCapacity(B * T); targets.reserveCapacity(B * T)
        let p = pattern.count
        for _ in 0..<B {
            let phase = Int(rng.next() % UInt64(p))
            for t in 0..<T {
                inputs.append(pattern[(phase + t) % p])
                targets.append(pattern[(phase + t + 1) % p])
            }
        }
        return TokenBatch(inputs: inputs, targets: targets)
    }
}

/// Tokens from a file of little-endian uint32 ids. Batches are consecutive windows of T+1 tokens
/// (stride T), wrapping at the end of the file.
public struct TokenFileSource: TrainDataSource {
    public let path: String
    public let tokens: [Int32]

    /// Reads and validates `path`: its size must be a multiple of 4, it must hold more than `seqLen`
    /// tokens, and every id must be below `vocab`.
    public init(path: String, vocab: Int, seqLen: Int) throws {
        func fail(_ m: String) -> TrainError { .tokenFile(path: path, message: m) }
        // A FIFO or device would block or stream forever: only regular files are read.
        if let type = (try? FileManager.default.attributesOfItem(atPath: path))?[.type] as? FileAttributeType, type != .typeRegular {
            throw fail("expected a regular file of token ids, got a special file (\(type.rawValue))")
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw fail("cannot read the token file (missing or unreadable)") }
        guard data.count % 4 == 0 else {
            throw fail("size \(data.count) bytes is not a multiple of 4: expected little-endian uint32 token ids")
        }
        let n = data.count / 4
        guard n > seqLen else { throw fail("holds \(n) tokens; a sequence of \(seqLen) needs at least \(seqLen + 1)") }
        var ids = [Int32](repeating: 0, count: n)
        try data.withUnsafeBytes { raw in
            for i in 0..<n {
                let id = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))
                guard id < UInt32(vocab) else {
                    throw fail("token \(i) (byte offset \(i * 4)) is \(id), outside the model's vocabulary of \(vocab)")
                }
                ids[i] = Int32(id)
            }
        }
        self.path = path
        tokens = ids
    }

    public var vocabNeeded: Int { Int(tokens.max() ?? 0) + 1 }

    public func batch(step: Int, B: Int, T: Int) -> TokenBatch {
        let windows = max(1, (tokens.count - 1) / T)
        var inputs: [Int32] = [], targets: [Int32] = []
        inputs.reserveCapacity(B * T); targets.reserveCapacity(B * T)
        for b in 0..<B {
            let start = ((step * B + b) % windows) * T
            for t in 0..<T {
                inputs.append(tokens[(start + t) % tokens.count])
                targets.append(tokens[(start + t + 1) % tokens.count])
            }
        }
        return TokenBatch(inputs: inputs, targets: targets)
    }
}
