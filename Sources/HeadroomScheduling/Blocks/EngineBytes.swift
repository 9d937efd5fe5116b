// The byte sizes the engine stores and the planner counts, in the one module both import: the planner's
// memory and execution-time models read them here rather than restating them (the engine keeps its KV
// cache in f32, four bytes a value, where a GPU server keeps 16-bit values; a q4_0 block is 18 bytes for
// 32 weights). HeadroomEngineTests checks the weight table against the kernels' own format table.

/// What `headroom serve`'s engine stores, byte for byte.
public enum EngineBytes {
    /// Bytes of one cached key or value element: the paged KV cache holds f32.
    public static let kvElement = 4
    /// Positions per KV block (vLLM's default, the engine's and the scheduler's).
    public static let kvBlockSize = 16

    /// A weight format's block: `bytes` bytes hold `weights` weights (scales included).
    public struct WeightBlock: Hashable, Sendable {
        public var weights: Int
        public var bytes: Int
        public var bytesPerWeight: Double { Double(bytes) / Double(weights) }
    }

    /// The engine's weight formats by the kernels' format names (lower case): bytes per block of weights, scales included.
    public static let weightBlocks: [String: WeightBlock] = [
        "f32": WeightBlock(weights: 1, bytes: 4),
        "f16": WeightBlock(weights: 1, bytes: 2),
        "bf16": WeightBlock(weights: 1, bytes: 2),
        "q8_0": WeightBlock(weights: 32, bytes: 34),
        "q4_0": WeightBlock(weights: 32, bytes: 18),
        "q4_1": WeightBlock(weights: 32, bytes: 20),
        "q5_0": WeightBlock(weights: 32, bytes: 22),
        "q5_1": WeightBlock(weights: 32, bytes: 24),
        "q2_k": WeightBlock(weights: 256, bytes: 84),
        "q3_k": WeightBlock(weights: 256, bytes: 110),
        "q4_k": WeightBlock(weights: 256, bytes: 144),
        "q5_k": WeightBlock(weights: 256, bytes: 176),
        "q6_k": WeightBlock(weights: 256, bytes: 210),
    ]
}
