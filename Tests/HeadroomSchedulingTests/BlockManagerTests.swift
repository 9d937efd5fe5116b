// The KV block pool: blocks taken only as positions need them, failed calls change nothing, freeing gives
// back exactly a sequence's blocks, and blocks in use + free == total after any sequence of operations.
import XCTest
@testable import HeadroomScheduling

final class BlockManagerTests: XCTestCase {
    func testBlocksAreTakenOnlyWhenTheLastBlockIsFull() {
        var pool = BlockManager(totalBlocks: 8)
        XCTAssertEqual(pool.blockSize, 16)
        XCTAssertEqual(pool.blocksNeeded(forTokens: 16), 1)
        XCTAssertEqual(pool.blocksNeeded(forTokens: 17), 2)
        XCTAssertTrue(pool.allocateSlots(for: 1, growingBy: 17))
        XCTAssertEqual(pool.table(of: 1), .init(blocks: [0, 1], tokenCount: 17))
        XCTAssertEqual(pool.freeBlockCount, 6)
        XCTAssertEqual(pool.newBlocksNeeded(for: 1, growingBy: 15), 0, "positions 17...31 fit the second block")
        XCTAssertTrue(pool.allocateSlots(for: 1, growingBy: 15))
        XCTAssertEqual(pool.table(of: 1), .init(blocks: [0, 1], tokenCount: 32))
        XCTAssertEqual(pool.newBlocksNeeded(for: 1, growingBy: 1), 1)
        XCTAssertTrue(pool.allocateSlots(for: 1, growingBy: 1))
        XCTAssertEqual(pool.table(of: 1), .init(blocks: [0, 1, 2], tokenCount: 33))
        XCTAssertEqual(pool.usedBlockCount, 3)
        XCTAssertTrue(pool.allocateSlots(for: 2, growingBy: 0), "growing by nothing always succeeds")
        XCTAssertNil(pool.table(of: 2), "and leaves no empty table")
        XCTAssertEqual(pool.invariantViolations(), [])
    }

    func testAFailedAllocationChangesNothing() {
        var pool = BlockManager(totalBlocks: 4)
        XCTAssertTrue(pool.allocateSlots(for: 1, growingBy: 48))
        XCTAssertFalse(pool.canAllocate(tokens: 17), "17 positions need 2 blocks, 1 is free")
        XCTAssertTrue(pool.canAllocate(tokens: 16))
        XCTAssertFalse(pool.allocateSlots(for: 2, growingBy: 17))
        XCTAssertNil(pool.table(of: 2), "a new sequence that did not fit has no table")
        XCTAssertFalse(pool.canAllocateSlots(for: 1, growingBy: 17), "48 + 17 = 65 positions need 5 blocks, 3 held + 1 free")
        XCTAssertFalse(pool.allocateSlots(for: 1, growingBy: 17))
        XCTAssertEqual(pool.table(of: 1), .init(blocks: [0, 1, 2], tokenCount: 48))
        XCTAssertEqual(pool.freeBlockCount, 1)
        XCTAssertEqual(pool.sequenceCount, 1)
        XCTAssertTrue(pool.allocateSlots(for: 1, growingBy: 16), "64 positions: the last free block")
        XCTAssertEqual(pool.freeBlockCount, 0)
        XCTAssertEqual(pool.invariantViolations(), [])
    }

    func testFreeingReturnsExactlyTheSequencesBlocksAndTheyAreReusedOldestFirst() {
        var pool = BlockManager(totalBlocks: 8)
        pool.allocateSlots(for: 1, growingBy: 20) // blocks 0, 1
        pool.allocateSlots(for: 2, growingBy: 40) // blocks 2, 3, 4
        pool.allocateSlots(for: 1, growingBy: 20) // 40 positions: block 5
        XCTAssertEqual(pool.table(of: 1)?.blocks, [0, 1, 5])
        XCTAssertEqual(pool.freeBlocksInOrder, [6, 7])
        XCTAssertEqual(pool.free(1), [0, 1, 5])
        XCTAssertNil(pool.table(of: 1))
        XCTAssertEqual(pool.table(of: 2)?.blocks, [2, 3, 4], "another sequence's table is untouched")
        XCTAssertEqual(pool.freeBlocksInOrder, [6, 7, 5, 1, 0], "freed behind the never-used ones, tail block first")
        XCTAssertEqual(pool.free(1), [], "freeing twice gives nothing back")
        XCTAssertEqual(pool.freeBlockCount, 5)
        pool.allocateSlots(for: 3, growingBy: 48)
        XCTAssertEqual(pool.table(of: 3)?.blocks, [6, 7, 5])
        XCTAssertEqual(pool.invariantViolations(), [])
    }

    /// Random grows and frees over a few sequences, checked after every step against a model kept here
    /// (positions per sequence) and the pool's conservation laws.
    func testRandomOperationsKeepEveryBlockInExactlyOnePlace() {
        var rng = SplitMix64(seed: 0xB10C)
        let total = 24, size = 4
        var pool = BlockManager(totalBlocks: total, blockSize: size)
        var positions: [RequestID: Int] = [:]
        for step in 0..<3_000 {
            let id = RequestID(Int.random(in: 0..<8, using: &rng))
            if Int.random(in: 0..<4, using: &rng) == 0 {
                let before = pool.table(of: id)?.blocks ?? []
                let freeBefore = pool.freeBlockCount
                let returned = pool.free(id)
                XCTAssertEqual(returned, before, "step \(step): free returns the table it had")
                XCTAssertEqual(pool.freeBlockCount, freeBefore + before.count)
                XCTAssertEqual(Array(pool.freeBlocksInOrder.suffix(before.count)), before.reversed())
                positions[id] = nil
            } else {
                let grow = Int.random(in: 0...14, using: &rng)
                let held = positions[id] ?? 0
                let needed = (held + grow + size - 1) / size - (held + size - 1) / size
                let expected = needed <= pool.freeBlockCount
                XCTAssertEqual(pool.canAllocateSlots(for: id, growingBy: grow), expected, "step \(step)")
                XCTAssertEqual(pool.allocateSlots(for: id, growingBy: grow), expected, "step \(step)")
                if expected && held + grow > 0 { positions[id] = held + grow }
            }
            // The pool's own account, then ours from its public face.
            XCTAssertEqual(pool.invariantViolations(), [], "step \(step)")
            var owned: [Int32] = []
            for id in (0..<8).map({ RequestID($0) }) {
                let table = pool.table(of: id)
                XCTAssertEqual(table?.tokenCount, positions[id], "step \(step): \(id)")
                XCTAssertEqual(table?.blocks.count ?? 0, ((positions[id] ?? 0) + size - 1) / size, "step \(step): \(id)")
                owned += table?.blocks ?? []
            }
            XCTAssertEqual(owned.count + pool.freeBlockCount, total, "step \(step): in use + free == total")
            XCTAssertEqual(pool.usedBlockCount, owned.count)
            XCTAssertEqual((owned + pool.freeBlocksInOrder).sorted(), (0..<Int32(total)).map { $0 },
                           "step \(step): every block in exactly one table or the free queue")
        }
    }
}
