// The KV cache as fixed-size blocks of positions from one pool, as vLLM's block manager keeps it: a
// free-block queue and, per sequence, a block table mapping its positions to physical blocks. The
// scheduler decides with it who fits; the engine reads the tables to find where each position's keys and
// values live.

/// A pool of `totalBlocks` KV blocks of `blockSize` positions and the block table of every sequence that
/// holds some.
///
/// Promises, after any sequence of calls:
/// - blocks in tables + free blocks == `totalBlocks`;
/// - no block is in two tables, or in a table and the free queue;
/// - a sequence holding `n` positions has exactly ceil(n / `blockSize`) blocks: blocks are taken only as
///   positions need them, never reserved ahead for output that may not come;
/// - a call that cannot be satisfied changes nothing.
public struct BlockManager: Sendable {
    /// One sequence's blocks: position `p` lives in `blocks[p / blockSize]` at offset `p % blockSize`.
    public struct BlockTable: Hashable, Sendable {
        /// Physical block numbers (0..<totalBlocks), in position order.
        public internal(set) var blocks: [Int32] = []
        /// Positions the sequence holds; the last block may be partly empty.
        public internal(set) var tokenCount = 0
    }

    /// Blocks in the pool.
    public let totalBlocks: Int
    /// Positions per block (vLLM's default, 16).
    public let blockSize: Int

    // Freed blocks join the back and allocation takes from the front, so the block freed longest ago is
    // reused first (vLLM's order, which prefix caching will need).
    private var freeQueue: IndexRing
    private var tables = TableMap<BlockTable>()

    /// A pool with every block free. `totalBlocks` and `blockSize` must be at least 1 (see
    /// `SchedulerConfig.validate()` for the checked version).
    public init(totalBlocks: Int, blockSize: Int = 16) {
        precondition(totalBlocks >= 1 && totalBlocks <= Int(Int32.max), "BlockManager needs 1...Int32.max blocks, got \(totalBlocks)")
        precondition(blockSize >= 1, "BlockManager needs a block size of at least 1, got \(blockSize)")
        self.totalBlocks = totalBlocks
        self.blockSize = blockSize
        freeQueue = IndexRing(capacity: totalBlocks)
        for block in 0..<totalBlocks { freeQueue.pushBack(Int32(block)) }
    }

    /// Blocks not in any table.
    public var freeBlockCount: Int { freeQueue.count }
    /// Blocks in some table.
    public var usedBlockCount: Int { totalBlocks - freeQueue.count }
    /// Sequences that hold at least one position.
    public var sequenceCount: Int { tables.count }

    /// Blocks needed to hold `tokens` positions: ceil(tokens / blockSize).
    public func blocksNeeded(forTokens tokens: Int) -> Int {
        (tokens + blockSize - 1) / blockSize
    }

    /// Whether a new sequence of `tokens` positions would get its blocks now.
    public func canAllocate(tokens: Int) -> Bool {
        blocksNeeded(forTokens: tokens) <= freeQueue.count
    }

    /// Blocks `id` would take from the pool to grow by `tokens` positions (0 while its last block has room).
    public func newBlocksNeeded(for id: RequestID, growingBy tokens: Int) -> Int {
        let table = tables[id] ?? BlockTable()
        return blocksNeeded(forTokens: table.tokenCount + tokens) - table.blocks.count
    }

    /// Whether `id` (new or not) could grow by `tokens` positions now.
    public func canAllocateSlots(for id: RequestID, growingBy tokens: Int) -> Bool {
        newBlocksNeeded(for: id, growingBy: tokens) <= freeQueue.count
    }

    /// Grows `id`'s table (creating it for a new sequence) by `tokens` positions, taking blocks from the
    /// free queue only when the last block is full. Returns false, changing nothing, when the pool has too
    /// few free blocks.
    @discardableResult
    public mutating func allocateSlots(for id: RequestID, growingBy tokens: Int) -> Bool {
        precondition(tokens >= 0, "a sequence cannot grow by \(tokens) positions")
        if tokens == 0 { return true }
        // One lookup for the common case (a decode inside its last block): the table is grown in place rather
        // than read, copied and written back.
        let slot = tables.slot(for: id, default: BlockTable())
        let grown = Self.grow(&tables[slot: slot], by: tokens, blockSize: blockSize, from: &freeQueue)
        if !grown && tables[slot: slot].tokenCount == 0 {
            tables.removeValue(forKey: id) // a new sequence that did not fit leaves no empty table behind
        }
        return grown
    }

    private static func grow(_ table: inout BlockTable, by tokens: Int, blockSize: Int, from free: inout IndexRing) -> Bool {
        let needed = (table.tokenCount + tokens + blockSize - 1) / blockSize - table.blocks.count
        if needed > free.count { return false }
        for _ in 0..<max(needed, 0) { table.blocks.append(free.popFront()) }
        table.tokenCount += tokens
        return true
    }

    /// Returns every block of `id` to the pool at once and forgets its table; returns those blocks in
    /// table order (empty when `id` held none).
    @discardableResult
    public mutating func free(_ id: RequestID) -> [Int32] {
        guard let table = tables.removeValue(forKey: id) else { return [] }
        // Tail first, as vLLM frees: with prefix caching the shared prefix blocks then stay cached longest.
        for block in table.blocks.reversed() { freeQueue.pushBack(block) }
        return table.blocks
    }

    /// `id`'s block table, or nil when it holds no positions.
    public func table(of id: RequestID) -> BlockTable? { tables[id] }

    /// Every broken promise (see the type's documentation), for tests and debug checks; empty when sound.
    /// O(totalBlocks).
    public func invariantViolations() -> [String] {
        var problems: [String] = []
        var owner = [RequestID?](repeating: nil, count: totalBlocks)
        var isFree = [Bool](repeating: false, count: totalBlocks)
        var inTables = 0
        for (id, table) in tables.entries {
            inTables += table.blocks.count
            if table.blocks.count != blocksNeeded(forTokens: table.tokenCount) {
                problems.append("\(id) holds \(table.tokenCount) positions in \(table.blocks.count) blocks")
            }
            if table.blocks.isEmpty { problems.append("\(id) has an empty table") }
            for block in table.blocks {
                guard block >= 0 && Int(block) < totalBlocks else {
                    problems.append("\(id) holds block \(block), outside the pool"); continue
                }
                if let other = owner[Int(block)] { problems.append("block \(block) is in the tables of \(other) and \(id)") }
                owner[Int(block)] = id
            }
        }
        for block in freeQueue.elements {
            guard block >= 0 && Int(block) < totalBlocks else { problems.append("free block \(block) outside the pool"); continue }
            if isFree[Int(block)] { problems.append("block \(block) is in the free queue twice") }
            if let other = owner[Int(block)] { problems.append("block \(block) is free and in the table of \(other)") }
            isFree[Int(block)] = true
        }
        if inTables + freeQueue.count != totalBlocks {
            problems.append("\(inTables) blocks in tables + \(freeQueue.count) free != \(totalBlocks)")
        }
        return problems
    }

    /// The free queue front to back (for tests).
    var freeBlocksInOrder: [Int32] { freeQueue.elements }
    /// Every table (for tests).
    var allTables: [RequestID: BlockTable] { Dictionary(uniqueKeysWithValues: tables.entries.map { ($0.id, $0.value) }) }
}
