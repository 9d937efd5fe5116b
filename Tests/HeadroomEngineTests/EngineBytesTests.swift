// `EngineBytes` (HeadroomScheduling) is what the planner reads about the engine's storage; these checks hold
// it to the kernels' format table and the KV cache's real element type, so it cannot drift from them.
import HeadroomEngine
import HeadroomKernels
import HeadroomScheduling
import XCTest

final class EngineBytesTests: XCTestCase {
    func testWeightBlocksMatchTheKernelsFormatTable() {
        for type in QuantType.allCases {
            guard let block = EngineBytes.weightBlocks[type.description] else {
                XCTFail("EngineBytes.weightBlocks has no entry for the kernels' format \(type)"); continue
            }
            XCTAssertEqual(block.weights, type.blockSize, "\(type): weights per block")
            XCTAssertEqual(block.bytes, type.blockBytes, "\(type): bytes per block")
        }
        XCTAssertEqual(EngineBytes.weightBlocks.count, QuantType.allCases.count, "EngineBytes lists a format the kernels lack")
    }

    func testKVElementIsTheCacheElement() throws {
        XCTAssertEqual(EngineBytes.kvElement, MemoryLayout<Float>.stride)
        let config = ModelConfig(name: "t", layers: 2, dim: 64, heads: 4, kvHeads: 2, ffnDim: 128, vocab: 32, context: 64)
        // One block: keys and values of every layer, `kvBlockSize` positions of kvDim elements each.
        XCTAssertEqual(PagedKVCache.bytesPerBlock(config), 2 * 2 * EngineBytes.kvBlockSize * config.kvDim * MemoryLayout<Float>.stride)
        XCTAssertEqual(PagedKVCache.defaultBlockSize, EngineBytes.kvBlockSize)
    }
}
