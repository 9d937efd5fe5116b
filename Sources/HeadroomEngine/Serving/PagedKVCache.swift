// The KV cache of a server: one allocation, sized up front from a memory budget, cut into blocks of
// `blockSize` positions that sequences take and give back as they come and go (the pool HeadroomScheduling's
// `BlockManager` hands out; this type holds the floats, the manager decides who owns which block).
import HeadroomKernels
import HeadroomScheduling

/// How big a paged KV cache to make: bytes of memory (`--kv-memory 2GiB`) or positions (`--kv-tokens`).
public enum KVCacheBudget: Hashable, Sendable {
    case bytes(Int)
    case tokens(Int)

    /// Blocks of `blockSize` positions this budget buys for `config`: whole blocks that fit the bytes, or
    /// enough blocks for the tokens (rounded up).
    public func blocks(for config: ModelConfig, blockSize: Int = PagedKVCache.defaultBlockSize) -> Int {
        switch self {
        case .bytes(let bytes): return bytes / PagedKVCache.bytesPerBlock(config, blockSize: blockSize)
        case .tokens(let tokens): return (tokens + blockSize - 1) / blockSize
        }
    }
}

/// f32 keys and values for `totalBlocks` blocks of `blockSize` positions, every layer.
///
/// Layout, for K and for V alike: [layer][block][position in block][kvDim]. One block of one layer is
/// `blockSize` contiguous rows of `kvDim` floats, so attention reads each block as one short contiguous run
/// and a block table of n blocks costs n jumps per layer.
public final class PagedKVCache {
    /// vLLM's default block size.
    public static let defaultBlockSize = EngineBytes.kvBlockSize

    public let config: ModelConfig
    public let totalBlocks: Int
    public let blockSize: Int
    let k: FloatBuffer, v: FloatBuffer

    /// Bytes one block takes (keys and values, every layer).
    public static func bytesPerBlock(_ config: ModelConfig, blockSize: Int = defaultBlockSize) -> Int {
        2 * config.layers * blockSize * config.kvDim * EngineBytes.kvElement
    }

    /// Allocates (and zero-fills, so the pages are resident before the first request) the whole pool.
    public init(config: ModelConfig, totalBlocks: Int, blockSize: Int = defaultBlockSize) throws {
        guard totalBlocks >= 1, totalBlocks <= Int(Int32.max) else {
            throw EngineError.badConfig(config.name, "a KV cache needs 1 to \(Int32.max) blocks, got \(totalBlocks)")
        }
        guard blockSize >= 1 else { throw EngineError.badConfig(config.name, "KV block size must be at least 1, got \(blockSize)") }
        self.config = config; self.totalBlocks = totalBlocks; self.blockSize = blockSize
        let floats = config.layers * totalBlocks * blockSize * config.kvDim
        k = FloatBuffer(count: floats)
        v = FloatBuffer(count: floats)
    }

    /// A pool as large as `budget` buys; throws when it buys less than one block.
    public convenience init(config: ModelConfig, budget: KVCacheBudget, blockSize: Int = defaultBlockSize) throws {
        let blocks = budget.blocks(for: config, blockSize: blockSize)
        guard blocks >= 1 else {
            throw EngineError.badConfig(config.name, "a KV budget of \(budget) holds no block of \(blockSize) positions (\(Self.bytesPerBlock(config, blockSize: blockSize)) bytes)")
        }
        try self.init(config: config, totalBlocks: blocks, blockSize: blockSize)
    }

    /// Positions the pool holds.
    public var tokenCapacity: Int { totalBlocks * blockSize }
    /// Bytes of keys and values.
    public var bytes: Int { k.bytes + v.bytes }

    /// Floats from one layer's blocks to the next.
    var layerStride: Int { totalBlocks * blockSize * config.kvDim }
    /// Layer `l`'s first key and value rows (block 0, position 0).
    func layerBase(_ l: Int) -> (k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>) {
        (k.pointer + l * layerStride, v.pointer + l * layerStride)
    }

    /// The offset, in floats from a layer's base, of the row holding position `position` of the sequence
    /// whose block table is `table`.
    @inline(__always)
    func rowOffset(_ table: UnsafePointer<Int32>, position: Int) -> Int {
        (Int(table[position / blockSize]) * blockSize + position % blockSize) * config.kvDim
    }

    /// Keys and values of `count` positions from `position` on, read back through `table` (tests and
    /// diagnostics): (count, kvDim) each.
    public func read(layer l: Int, table: [Int32], from position: Int, count: Int) -> (k: [Float], v: [Float]) {
        var ks = [Float](), vs = [Float]()
        let base = layerBase(l), kv = config.kvDim
        table.withUnsafeBufferPointer { t in
            for p in position..<position + count {
                let o = rowOffset(t.baseAddress!, position: p)
                ks.append(contentsOf: UnsafeBufferPointer(start: base.k + o, count: kv))
                vs.append(contentsOf: UnsafeBufferPointer(start: base.v + o, count: kv))
            }
        }
        return (ks, vs)
    }
}
