import XCTest
@testable import HeadroomCore

/// A pipelined replica's memory: each stage holds its share of the layers, weights and KV.
final class PipelineMemoryTests: XCTestCase {
    let gib = 1_073_741_824.0

    /// Llama-2-7B fp16 on 80 GiB devices, 4096-token requests, two stages of one device each. Worked by hand:
    /// 16 of the 32 layers a device, so KV is 16 × 2 × 32 heads × 128 × 2 bytes = 256 KiB a token (1 GiB a
    /// request); weights 6,738,415,616 × 2 / 2 bytes = 6.28 GiB; usable 72 GiB − 6.28 − the workspace
    /// (2048 × 57,600 × 2 + 256 × 32,000 × 4 bytes = 0.25 GiB) = 65.5 GiB: 65 requests, against 29 on one device.
    func testTwoStagesHoldHalfTheLayersEach() throws {
        let m = try repoCatalog().models["llama-2-7b"]!
        XCTAssertEqual(MemoryModel.kvBytesPerTokenPerDevice(m, .fp16, tp: 1, stages: 2), 262_144)
        XCTAssertEqual(MemoryModel.kvBytesPerTokenPerDevice(m, .fp16, tp: 1, stages: 3), 11 * 2 * 32 * 128 * 2, "32 layers over 3 stages: 11 on the busiest")
        let one = MemoryModel.serving(m, .fp16, deviceBytes: 80 * gib, tp: 1, contextTokens: 4096, chunkTokens: 2048)
        let two = MemoryModel.serving(m, .fp16, deviceBytes: 80 * gib, tp: 1, stages: 2, contextTokens: 4096, chunkTokens: 2048)
        let workspace = 2048.0 * 57_600 * 2 + 256 * 32_000 * 4
        XCTAssertEqual(two.weightBytes, 6_738_415_616.0)
        XCTAssertEqual(two.kvBytesPerSequence, gib)
        XCTAssertEqual(two.maxBatch, Int(((72 * gib - 6_738_415_616 - workspace) / gib).rounded(.down)))
        XCTAssertEqual(two.maxBatch, 65)
        XCTAssertEqual(one.maxBatch, 29)
    }

    /// The planner's replica for the simulator: two stages give the scheduler about twice the KV blocks of one.
    func testAPipelinedReplicaGetsTheBlocksOfItsStages() throws {
        let c = try repoCatalog()
        let h = try c.hardware("h100-sxm")
        let demand = Demand(users: 1000, requestsPerUserPerDay: 20, promptTokens: 1000, outputTokens: 200)
        let input = PlanInput(model: c.models["llama-2-7b"]!, demand: demand, slo: SLO(ttftP95: 1, tpotP95: 0.1), hardware: [h],
                              precisions: [.bf16], prices: nil)
        let (_, one) = Planner().replica(input, h, .bf16, tp: 1)
        let (_, two) = Planner().replica(input, h, .bf16, tp: 1, stages: 2)
        XCTAssertGreaterThan(Double(two.scheduler.totalBlocks) / Double(one.scheduler.totalBlocks), 2, "half the weights per device leaves more than twice the room")
        XCTAssertLessThan(Double(two.scheduler.totalBlocks) / Double(one.scheduler.totalBlocks), 3)
    }
}
