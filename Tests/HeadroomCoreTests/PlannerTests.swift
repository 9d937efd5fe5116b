import Foundation
import XCTest
@testable import HeadroomCore

/// Hand-worked cases for the planner's models, the properties any plan must have, the calibration
/// round trip, and the exact messages of bad catalog files.
final class PlannerTests: XCTestCase {
    let gib = 1_073_741_824.0

    func catalog() throws -> Catalog { try repoCatalog() }

    // MARK: catalog

    func testCatalogHasTheRequiredModelsHardwareAndPrices() throws {
        let c = try catalog()
        for id in ["tiny", "small", "llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3.1-8b", "llama-3.1-70b", "mistral-7b",
                   "mixtral-8x7b", "qwen2.5-7b", "qwen2.5-14b", "qwen2.5-72b", "deepseek-r1-distill-llama-8b", "baichuan2-13b"] {
            XCTAssertNotNil(c.models[id], id)
        }
        XCTAssertEqual(c.models["tiny"]?.dim, 768)
        XCTAssertEqual(c.models["small"]?.kvHeads, 4)
        let hw = Set(c.hardware.map(\.id))
        for id in ["h100-sxm", "h100-pcie", "h800", "h200", "a100-80g", "a100-40g", "a800", "l40s", "l4", "rtx-4090", "rtx-3090",
                   "xeon-8480", "epyc-9654", "local"] {
            XCTAssertTrue(hw.contains(id), id)
        }
        XCTAssertEqual(try c.hardware("local").peakTflops, [:], "local's figures come from the probe, not the file")
        XCTAssertNil(try c.hardware("a100-80g").peakFLOPs(.fp8), "Ampere has no fp8")
        let prices = try XCTUnwrap(c.prices)
        XCTAssertGreaterThanOrEqual(Set(prices.offers.map { $0.source.components(separatedBy: " ").first! }).count, 2)
        XCTAssertFalse(prices.onPrem.isEmpty)
    }

    /// Every model with a published total: the count from its configuration is within 1 %.
    func testParameterCountsMatchPublishedTotals() throws {
        let c = try catalog()
        let published = c.modelList.filter { $0.publishedParams != nil }
        XCTAssertGreaterThanOrEqual(published.count, 11)
        for m in published {
            let rel = abs(m.parameters.total / m.publishedParams! - 1)
            XCTAssertLessThan(rel, 0.01, "\(m.id): computed \(m.parameters.total), published \(m.publishedParams!)")
        }
        // Hand-worked: Llama-2-7B = 2 × 32000 × 4096 + 32 × (4 × 4096² + 3 × 4096 × 11008 + 2 × 4096) + 4096.
        XCTAssertEqual(c.models["llama-2-7b"]!.parameters.total, 6_738_415_616)
        // Mixtral uses 2 of 8 experts: without the 6 unused ones it has 12.9B (Mixtral paper).
        let mx = c.models["mixtral-8x7b"]!
        XCTAssertEqual((mx.parameters.total - 32 * 6 * 3 * 4096 * 14336) / 12.9e9, 1, accuracy: 0.01)
    }

    // MARK: memory

    func testKVCacheAndWeightsWorkedByHand() throws {
        let m = try catalog().models["llama-2-7b"]!
        // 2 × 32 layers × 32 heads × 128 × 2 bytes = 512 KiB per token; 2 GiB at 4096 tokens.
        XCTAssertEqual(MemoryModel.kvBytesPerToken(m, .fp16), 524_288)
        XCTAssertEqual(MemoryModel.kvBytesPerToken(m, .fp16) * 4096, 2 * gib)
        XCTAssertEqual(MemoryModel.weightBytes(m, .bf16), 6_738_415_616 * 2)
        // q4_0: 18 bytes per 32 weights.
        XCTAssertEqual(MemoryModel.weightBytes(m, .int4), 6_738_415_616 * 18 / 32)
        // Llama-3.1-8B has 8 KV heads: a quarter of that per token; tp=2 halves it per device, tp=16 cannot split 8 heads further.
        let l3 = try catalog().models["llama-3.1-8b"]!
        XCTAssertEqual(MemoryModel.kvBytesPerToken(l3, .bf16), 131_072)
        XCTAssertEqual(MemoryModel.kvBytesPerTokenPerDevice(l3, .bf16, tp: 2), 65_536)
        XCTAssertEqual(MemoryModel.kvBytesPerTokenPerDevice(l3, .bf16, tp: 16), 16_384)
    }

    func testServingMemorySplitsTheDevice() throws {
        let m = try catalog().models["llama-2-7b"]!
        let s = MemoryModel.serving(m, .fp16, deviceBytes: 80 * gib, tp: 1, contextTokens: 4096, chunkTokens: 2048)
        // usable 72 GiB − 12.55 GiB weights − 0.25 GiB workspace (2048 × (3·4096 + 12288 + 3·11008) × 2 bytes
        // + 256 sequences × 32000 fp32 logits), in 2 GiB sequences: 59.2 / 2 = 29.
        let workspace = MemoryModel.workspaceBytes(m, .fp16, tokens: 2048, sequences: 256)
        let expected = Int(((72 * gib - 6_738_415_616 * 2 - workspace) / (2 * gib)).rounded(.down))
        XCTAssertEqual(s.maxBatch, expected)
        XCTAssertEqual(s.maxBatch, 29)
        XCTAssertEqual(workspace, 2048 * 57_600 * 2 + 256 * 32_000 * 4)
        let tooSmall = MemoryModel.serving(m, .fp16, deviceBytes: 12 * gib, tp: 1, contextTokens: 4096, chunkTokens: 2048)
        XCTAssertEqual(tooSmall.maxBatch, 0)
        XCTAssertTrue(tooSmall.whyNot?.contains("exceed") ?? false)
    }

    func testFineTuningMemoryWorkedByHand() throws {
        let m = try catalog().models["llama-2-7b"]!
        // LoRA r=8 on all seven projections of Llama-2-7B: 19,988,480 trainable parameters (what PEFT prints).
        XCTAssertEqual(MemoryModel.loraParameters(m, rank: 8), 19_988_480)
        let n = 6_738_415_616.0
        // Full training, mixed precision AdamW: 2 + 2 + 12 bytes per parameter on one device.
        let full = MemoryModel.training(m, method: .full, rank: 0, seqLen: 1, microBatch: 1, checkpointing: true, devices: 1, zeroStage: 0)
        XCTAssertEqual(full.weights + full.gradients + full.optimizer, 16 * n)
        // ZeRO stages across 8 devices: 1 shards the optimizer, 2 also gradients, 3 also weights.
        let z1 = MemoryModel.training(m, method: .full, rank: 0, seqLen: 1, microBatch: 1, checkpointing: true, devices: 8, zeroStage: 1)
        XCTAssertEqual(z1.weights + z1.gradients + z1.optimizer, 2 * n + 2 * n + 12 * n / 8)
        let z2 = MemoryModel.training(m, method: .full, rank: 0, seqLen: 1, microBatch: 1, checkpointing: true, devices: 8, zeroStage: 2)
        XCTAssertEqual(z2.weights + z2.gradients + z2.optimizer, 2 * n + (2 * n + 12 * n) / 8)
        let z3 = MemoryModel.training(m, method: .full, rank: 0, seqLen: 1, microBatch: 1, checkpointing: true, devices: 8, zeroStage: 3)
        XCTAssertEqual(z3.weights + z3.gradients + z3.optimizer, 16 * n / 8, accuracy: 1)
        // LoRA: frozen bf16 base + 16 bytes per adapter parameter.
        let lora = MemoryModel.training(m, method: .lora, rank: 8, seqLen: 1, microBatch: 1, checkpointing: true, devices: 1, zeroStage: 0)
        XCTAssertEqual(lora.weights, 2 * n)
        XCTAssertEqual(lora.adapters + lora.gradients + lora.optimizer, 16 * 19_988_480)
        // QLoRA: linear layers at 4.127 bits, embeddings, head and norms at bf16.
        let q = MemoryModel.training(m, method: .qlora, rank: 8, seqLen: 1, microBatch: 1, checkpointing: true, devices: 1, zeroStage: 0)
        let p = m.parameters
        XCTAssertEqual(q.weights, p.blockLinear * 4.127 / 8 + (p.embedding + p.lmHead + p.norms) * 2, accuracy: 1)
        // Activations per token per layer: (6h + 2kv + 3f) × 2 bytes = (6·4096 + 2·4096 + 3·11008) × 2.
        XCTAssertEqual(MemoryModel.activationBytesPerTokenPerLayer(m), 131_584)
        let noCkpt = MemoryModel.training(m, method: .lora, rank: 8, seqLen: 2048, microBatch: 1, checkpointing: false, devices: 1, zeroStage: 0)
        let ckpt = MemoryModel.training(m, method: .lora, rank: 8, seqLen: 2048, microBatch: 1, checkpointing: true, devices: 1, zeroStage: 0)
        XCTAssertEqual(noCkpt.activations, 2048 * 32 * 131_584 + 2048 * 32000 * 4)
        XCTAssertEqual(ckpt.activations, 2048 * (32 * 4096 * 2 + 131_584) + 2048 * 32000 * 4)
    }

    // MARK: FLOPs and roofline

    func testDecodeFLOPsAreTwicePerParameterAtBatchOne() throws {
        let m = try catalog().models["llama-2-7b"]!
        let ops = PerformanceModel.forwardOps(m, .fp16, sequences: 1, newTokens: 1, pastTokens: 0)
        let linear = ops.filter { ["qkv", "o", "gate_up", "down", "lm_head"].contains($0.name) }.reduce(0) { $0 + $1.flops }
        let p = m.parameters
        XCTAssertEqual(linear, 2 * (p.attention + p.mlp + p.lmHead))
        // Attention at context 1000 for one new token (which also attends to itself): 4 × 1001 keys × 4096 × 32 layers.
        let a = PerformanceModel.forwardOps(m, .fp16, sequences: 1, newTokens: 1, pastTokens: 1000).first { $0.name == "attention" }!
        XCTAssertEqual(a.flops, 32 * 4 * 1001 * 4096)
        // Its KV read: 32 layers × 1001 positions × 2 × 4096 × 2 bytes.
        XCTAssertEqual(a.bytes, 32 * 1001 * 2 * 4096 * 2 + 32 * 2 * 4096 * 2)
    }

    func testRooflineTimeWorkedByHand() {
        let r = Roofline(peakFLOPs: ["bf16": 100e12], bandwidth: 1e12, efficiency: Efficiency(compute: 0.5, bandwidth: 0.5))
        // 1e12 FLOPs at 50 TFLOP/s = 20 ms; 1e9 bytes at 500 GB/s = 2 ms: compute-bound, 20 ms.
        XCTAssertEqual(r.time(OpCost(name: "a", flops: 1e12, bytes: 1e9, dtype: "bf16")), 0.02, accuracy: 1e-12)
        // 1e9 FLOPs (20 µs) but 1e10 bytes (20 ms): memory-bound.
        XCTAssertEqual(r.time(OpCost(name: "b", flops: 1e9, bytes: 1e10, dtype: "bf16")), 0.02, accuracy: 1e-12)
    }

    func testDecodeStepOnH100IsWeightStreaming() throws {
        let c = try catalog()
        let m = c.models["llama-2-7b"]!, h = try c.hardware("h100-sxm")
        let t = PerformanceModel.forwardTime(m, .fp16, sequences: 1, newTokens: 1, pastTokens: 0, tp: 1, roofline: Roofline(h),
                                             interconnect: h.interconnect)
        // Every weight but the embedding table (read one row per token): (6.738e9 − 32000 × 4096) × 2 bytes
        // at 3.35 TB/s × 0.58 = 6.80 ms; the rest (activations, sampling) is small.
        let byHand = (6_738_415_616.0 - 32000 * 4096) * 2 / (3350e9 * 0.58)
        XCTAssertEqual(t / byHand, 1, accuracy: 0.02)
    }

    /// The default bandwidth efficiency (0.58) is the A100 point of the published Llama-3.1-8B batch-1
    /// decode rates (79 tok/s, Koyeb via aihardwareindex.com): the model must reproduce that point.
    func testDefaultEfficiencyReproducesThePublishedA100DecodeRate() throws {
        let c = try catalog()
        let h = try c.hardware("a100-80g")
        let step = PerformanceModel.forwardTime(c.models["llama-3.1-8b"]!, .bf16, sequences: 1, newTokens: 1, pastTokens: 128, tp: 1,
                                                roofline: Roofline(h), interconnect: h.interconnect)
        XCTAssertEqual(1 / step, 79, accuracy: 79 * 0.05)
    }

    func testAllReduceAndPipelineWorkedByHand() {
        let nv = Interconnect(kind: "nvlink", bandwidthGbps: 900, latencyUs: 0)
        // 2(4−1)/4 × 1 GB over 450 GB/s per direction = 3.33 ms.
        XCTAssertEqual(PerformanceModel.allReduceTime(bytes: 1e9, tp: 4, interconnect: nv), 1.5e9 / 450e9, accuracy: 1e-12)
        XCTAssertEqual(PerformanceModel.allReduceTime(bytes: 1e9, tp: 1, interconnect: nv), 0)
        // 4 stages, 8 micro-batches: 11 stage times, 3/11 of them bubble.
        XCTAssertEqual(PerformanceModel.pipelineTime(stageTime: 0.01, stages: 4, microbatches: 8), 0.11, accuracy: 1e-12)
        XCTAssertEqual(PerformanceModel.pipelineBubble(stages: 4, microbatches: 8), 3.0 / 11.0)
    }

    // MARK: calibration

    /// Synthetic GEMM measurements made from known efficiencies fit back to those efficiencies, and every
    /// leave-one-out prediction matches.
    func testCalibrationRecoversKnownEfficiencies() {
        let truth = Efficiency(compute: 0.83, bandwidth: 0.57)
        let peak = ["fp32": 300e9], bw = 30e9
        var points: [CalibrationPoint] = []
        for (m, n, k) in [(1, 2560, 2048), (8, 2048, 2048), (1, 11264, 2048), (4, 2048, 5632), (128, 2560, 2048),
                          (512, 2048, 2048), (256, 11264, 2048), (512, 2048, 5632)] {
            let (M, N, K) = (Double(m), Double(n), Double(k))
            let op = OpCost(name: "g", flops: 2 * M * N * K, bytes: (M * K + N * K + M * N) * 4, dtype: "fp32")
            var p = CalibrationPoint(label: "\(m)x\(n)x\(k)", kind: "gemm", ops: [op], peakFLOPs: peak, bandwidth: bw,
                                     measuredSeconds: 0, samples: 5)
            p.measuredSeconds = p.predicted(truth)
            points.append(p)
        }
        let r = Calibration.calibrate(points, fallback: Efficiency(compute: 0.5, bandwidth: 0.5), fallbackLabel: "default")
        XCTAssertTrue(r.computeFitted && r.bandwidthFitted)
        XCTAssertEqual(r.efficiency.compute, truth.compute, accuracy: truth.compute * 0.01)
        XCTAssertEqual(r.efficiency.bandwidth, truth.bandwidth, accuracy: truth.bandwidth * 0.01)
        XCTAssertEqual(r.checks.count, points.count)
        for c in r.checks { XCTAssertLessThan(abs(c.errorPercent), 1.5, c.label) }
    }

    /// The fit's sorted, prefix-summed time of a point is the roofline's own Σ max(compute, memory) over its
    /// ops, at any efficiencies: ops of mixed intensity, two dtypes, an op that reads nothing, one that computes nothing.
    func testCalibrationTermsPriceAPointAsTheRooflineDoes() {
        var rng = SystemRandomNumberGenerator()
        let peak = ["fp32": 300e9, "fp16": 900e9]
        for trial in 0..<50 {
            var ops = (0..<Int.random(in: 1...12, using: &rng)).map { i in
                OpCost(name: "op\(i)", flops: Double.random(in: 1e6...1e11, using: &rng), bytes: Double.random(in: 1e4...1e10, using: &rng),
                       dtype: Bool.random(using: &rng) ? "fp32" : "fp16")
            }
            if trial % 5 == 0 { ops.append(OpCost(name: "flops only", flops: 1e9, bytes: 0, dtype: "fp32")) }
            if trial % 7 == 0 { ops.append(OpCost(name: "bytes only", flops: 0, bytes: 1e8, dtype: "fp32")) }
            let p = CalibrationPoint(label: "t\(trial)", kind: "gemm", ops: ops, peakFLOPs: peak, bandwidth: 30e9, measuredSeconds: 1, samples: 1)
            let terms = Calibration.Terms([p])
            for _ in 0..<20 {
                let e = Efficiency(compute: Double.random(in: 0.005...2, using: &rng), bandwidth: Double.random(in: 0.005...2, using: &rng))
                let naive = p.predicted(e)
                XCTAssertEqual(terms.seconds(0, e), naive, accuracy: naive * 1e-9, "trial \(trial), \(e)")
            }
        }
    }

    /// The step time the simulator prices per event (no op array) is the roofline time of the step's ops plus
    /// the all-reduces, for dense and mixture-of-experts models, tensor-parallel or not, any mix of work.
    func testStepTimeIsTheRooflineTimeOfTheStepOps() throws {
        let c = try catalog()
        var rng = SystemRandomNumberGenerator()
        let models = try ["llama-3.1-8b", "mixtral-8x7b", "small"].map { try XCTUnwrap(c.models[$0], $0) }
        let gpu = try XCTUnwrap(c.hardware.first { $0.id == "h100-sxm" })
        for model in models {
            for p in [Precision.fp32, .fp16, .int4] {
                for tp in [1, 2, 8] {
                    let roof = Roofline(gpu, efficiency: Efficiency(compute: 0.6, bandwidth: 0.7))
                    for _ in 0..<10 {
                        var shape = BatchShape()
                        for _ in 0..<Int.random(in: 0...6, using: &rng) { shape.addDecode(context: Int.random(in: 1...4000, using: &rng)) }
                        for _ in 0..<Int.random(in: 0...2, using: &rng) {
                            shape.addPrefill(tokens: Int.random(in: 1...512, using: &rng), pastTokens: Int.random(in: 0...512, using: &rng), samples: Bool.random(using: &rng))
                        }
                        let ops = PerformanceModel.stepOps(model, p, shape, tp: tp, kvElementBytes: 4)
                        let comm = 2 * Double(model.layers) * PerformanceModel.allReduceTime(
                            bytes: Double(shape.tokens) * Double(model.dim) * p.activationBytes, tp: tp, interconnect: gpu.interconnect)
                        let expected = shape.isEmpty ? 0 : roof.time(ops) + comm
                        let got = PerformanceModel.stepTime(model, p, shape, tp: tp, roofline: roof, interconnect: gpu.interconnect, kvElementBytes: 4)
                        XCTAssertEqual(got, expected, accuracy: expected * 1e-12, "\(model.name) \(p) tp \(tp)")
                    }
                }
            }
        }
    }

    func testCalibrationKeepsTheDefaultForWhatTheDataCannotDetermine() {
        // Only compute-bound points: bandwidth is not identified and stays at the default.
        let peak = ["fp32": 300e9]
        let points = [512, 1024, 2048].map { s -> CalibrationPoint in
            let S = Double(s)
            let op = OpCost(name: "g", flops: 2 * S * S * S, bytes: 3 * S * S * 4, dtype: "fp32")
            var p = CalibrationPoint(label: "\(s)", kind: "gemm", ops: [op], peakFLOPs: peak, bandwidth: 30e9, measuredSeconds: 0, samples: 3)
            p.measuredSeconds = p.predicted(Efficiency(compute: 0.9, bandwidth: 0.5))
            return p
        }
        let r = Calibration.calibrate(points, fallback: Efficiency(compute: 0.5, bandwidth: 0.62), fallbackLabel: "default")
        XCTAssertEqual(r.efficiency.compute, 0.9, accuracy: 0.01)
        XCTAssertFalse(r.bandwidthFitted)
        XCTAssertEqual(r.efficiency.bandwidth, 0.62)
    }

    func testCalibrationPointsFromMeasuredCases() {
        let probe = ProbeFigures(cases: [
            MeasuredCase(kind: "probe", name: "sgemm", threads: 2, params: [:], samples: [.init(metric: "gflops", unit: "GFLOP/s", repetition: 0, value: 300)]),
            MeasuredCase(kind: "probe", name: "read_rows", threads: 2, params: [:], samples: [.init(metric: "gbps", unit: "GB/s", repetition: 0, value: 30)]),
        ])
        let gemm = MeasuredCase(kind: "gemm", name: "qkv", threads: 2, params: ["M": "8", "N": "2560", "K": "2048", "phase": "decode"],
                                samples: [.init(metric: "seconds", unit: "s", repetition: 0, value: 0.002)])
        let infer = MeasuredCase(kind: "inference", name: "decode", threads: 2,
                                 params: ["model": "tiny", "precision": "q8_0", "prompt_tokens": "64", "batch": "4"],
                                 samples: [.init(metric: "decode_tokens_per_s", unit: "tok/s", repetition: 0, value: 100),
                                           .init(metric: "prefill_tokens_per_s", unit: "tok/s", repetition: 0, value: 1000)])
        let unknownThreads = MeasuredCase(kind: "gemm", name: "o", threads: 7, params: ["M": "1", "N": "2", "K": "3"],
                                          samples: [.init(metric: "seconds", unit: "s", repetition: 0, value: 1)])
        let tiny = ModelShape(id: "tiny", name: "tiny", layers: 2, dim: 64, heads: 4, kvHeads: 4, ffnDim: 128, vocab: 100, context: 256, source: "t")
        let pts = Calibration.points(cases: [gemm, infer, unknownThreads], probe: probe, models: ["tiny": tiny])
        XCTAssertEqual(pts.count, 3)
        XCTAssertEqual(pts[0].flops, 2 * 8 * 2560 * 2048)
        XCTAssertEqual(pts[0].bandwidth, 30e9)
        XCTAssertEqual(pts[1].measuredSeconds, 64.0 / 1000, "the benchmark prefills one sequence of the prompt, whatever the batch")
        XCTAssertEqual(pts[2].measuredSeconds, 4.0 / 100)
    }

    // MARK: serving, demand, cost

    func testQueueingModelAtZeroLoadIsPrefillPlusOneStep() {
        let r = ReplicaPerformance(maxBatch: 64, prefillSeconds: 0.1) { b in 0.01 + 0.0001 * Double(b) }
        let q = QueueingServingModel()
        let p = q.load(r, requestsPerSecond: 1e-9, outputTokens: 100)!
        XCTAssertEqual(p.ttftP95Seconds, 0.1 + 0.0101, accuracy: 1e-6)
        XCTAssertEqual(p.tpotP95Seconds, 0.0101, accuracy: 1e-6)
        XCTAssertNil(q.load(r, requestsPerSecond: 10, outputTokens: 100), "ρ = 1: the prefill queue grows without bound")
        let cap = q.capacity(r, outputTokens: 100, ttftP95: 0.5, tpotP95: 0.05)
        XCTAssertGreaterThan(cap, 0)
        let at = q.load(r, requestsPerSecond: cap, outputTokens: 100)!
        XCTAssertLessThanOrEqual(at.ttftP95Seconds, 0.5 + 1e-6)
        XCTAssertLessThanOrEqual(at.tpotP95Seconds, 0.05 + 1e-6)
        XCTAssertNil(q.load(r, requestsPerSecond: cap * 1.01, outputTokens: 100).flatMap { $0.ttftP95Seconds <= 0.5 && $0.tpotP95Seconds <= 0.05 ? $0 : nil })
    }

    func testDemandWorkedByHand() {
        let d = Demand(users: 2000, requestsPerUserPerDay: 40, peakToMean: 3, promptTokens: 800, outputTokens: 250)
        // 80,000 requests a day = 0.926 req/s on average, 2.78 at the peak.
        XCTAssertEqual(d.meanRequestsPerSecond, 80_000 / 86_400)
        XCTAssertEqual(d.peakRequestsPerSecond, 3 * 80_000 / 86_400)
        // 80,000 × 250 tokens × 730/24 days.
        XCTAssertEqual(d.outputTokensPerMonth(hoursPerMonth: 730), 80_000 * 250 * 730 / 24)
        let flat = Demand(users: 24, requestsPerUserPerDay: 3600, hourlyProfile: Array(repeating: 1, count: 24), promptTokens: 1, outputTokens: 1)
        XCTAssertEqual(flat.peakRequestsPerSecond, 1, accuracy: 1e-12)
    }

    /// A custom sheet expresses a $39.33/hour 8-GPU instance exactly, and the cost follows from it by hand.
    func testCustomSheetPricesAn8GPUInstanceAt3933() throws {
        let c = try catalog()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("headroom-prices-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let file = dir.appendingPathComponent("gov.yaml").path
        try """
            schema: 1
            offers:
              - { hardware: h100-sxm, provider: gov-cloud, devices: 8, on_demand_usd_per_hour: 39.33, source: "published LoRA experiment" }
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let sheet = try PriceSheet.load(file, hardware: c.hardware)
        XCTAssertEqual(sheet.offers[0].onDemandUSDPerHour, 39.33)
        let h = try c.hardware("h100-sxm")
        let demand = Demand(users: 100, requestsPerUserPerDay: 10, promptTokens: 100, outputTokens: 100)
        // One replica of 8 devices = one instance, all month: 39.33 × 730 = $28,710.90.
        let cost = try XCTUnwrap(CostModel.estimate(demand: demand, capacityRPS: 10, replicas: 1, minReplicas: 1, devicesPerReplica: 8,
                                                    hardware: h, sheet: sheet, mode: .onDemand))
        XCTAssertEqual(cost.alwaysOnUSD, 39.33 * 730, accuracy: 1e-6)
        // Three 2-device replicas share one 8-device instance; five need two.
        let instance = try XCTUnwrap(sheet.bestInstance(hardware: "h100-sxm", devicesPerReplica: 2, mode: .onDemand))
        XCTAssertEqual(instance.usdPerHour, 39.33)
        XCTAssertEqual(CostModel.instances(replicas: 3, devicesPerReplica: 2, instance: instance), 1)
        XCTAssertEqual(CostModel.instances(replicas: 5, devicesPerReplica: 2, instance: instance), 2)
        // An offer that rents multiples of one device up to 8 hosts a tp=4 replica on 4 devices at 4× the rate.
        let flexible = PriceSheet(file: "f", offers: [.init(hardware: "h100-sxm", provider: "p", devices: 1, onDemandUSDPerHour: 2, source: "t")])
        XCTAssertNil(flexible.bestInstance(hardware: "h100-sxm", devicesPerReplica: 4, mode: .onDemand))
        var up8 = flexible
        up8.offers[0].maxDevices = 8
        XCTAssertEqual(up8.bestInstance(hardware: "h100-sxm", devicesPerReplica: 4, mode: .onDemand)?.usdPerHour, 8)
        XCTAssertEqual(up8.bestInstance(hardware: "h100-sxm", devicesPerReplica: 4, mode: .onDemand)?.devices, 4)
        // The fine-tuning plan pays 39.33 per instance-hour, and runs on all 8 devices it pays for.
        let input = PlanInput(model: c.models["llama-2-7b"]!, demand: demand, slo: SLO(ttftP95: 1, tpotP95: 0.1), hardware: [h],
                              precisions: [.bf16], prices: sheet,
                              finetune: FineTuneSettings(method: .lora, documents: 1000, tokensPerDocument: 1024, epochs: 1))
        let row = try XCTUnwrap(Planner().finetunePlan(input, input.finetune!).first)
        XCTAssertEqual(row.devices, 8)
        XCTAssertEqual(row.billedDevices, 8)
        XCTAssertEqual(try XCTUnwrap(row.usd), try XCTUnwrap(row.hours) * 39.33, accuracy: 1e-9)
    }

    func testCostWorkedByHand() throws {
        let c = try catalog()
        let h = try c.hardware("l40s")
        let sheet = PriceSheet(file: "t", hoursPerMonth: 730, offers: [.init(hardware: "l40s", provider: "p", devices: 1, onDemandUSDPerHour: 1.0, source: "t")],
                               onPrem: [.init(hardware: "l40s", purchaseUSDPerDevice: 10_000, source: "t")])
        // Peak 3 req/s for 8 hours (peak_to_mean 3), idle otherwise; replicas of 1 req/s, at least 1.
        let d = Demand(users: 86_400, requestsPerUserPerDay: 1, peakToMean: 3, promptTokens: 1, outputTokens: 1000)
        let cost = try XCTUnwrap(CostModel.estimate(demand: d, capacityRPS: 1, replicas: 3, minReplicas: 1, devicesPerReplica: 1,
                                                    hardware: h, sheet: sheet, mode: .onDemand))
        XCTAssertEqual(cost.alwaysOnUSD, 3 * 730)
        // 8 h × 3 + 16 h × 1 = 40 instance-hours a day, × 730/24 days.
        XCTAssertEqual(cost.autoscaledUSD, 40 * 730 / 24, accuracy: 1e-9)
        // 86,400 requests × 1000 tokens × 30.42 days = 2.628e9 tokens.
        let monthly: Double = 40.0 * 730 / 24
        let millions: Double = 86_400.0 * 1000 * 730 / 24 / 1e6
        XCTAssertEqual(cost.usdPerMillionOutputTokens, monthly / millions, accuracy: 1e-9)
        // Owning 3 L40S: $30,000; power 3 × 0.35 kW × PUE 1.3 × 730 h × $0.13.
        let owned = try XCTUnwrap(cost.onPrem)
        let power: Double = 3.0 * 0.35 * 1.3 * 730 * 0.13
        XCTAssertEqual(owned.powerUSDPerMonth, power, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(owned.breakEvenMonths), 30_000 / (3 * 730 - power), accuracy: 1e-9)
    }

    // MARK: properties

    func input(users: Int, slo: SLO = SLO(ttftP95: 1, tpotP95: 0.06), priceScale: Double = 1) throws -> PlanInput {
        let c = try catalog()
        var sheet = try XCTUnwrap(c.prices)
        for i in sheet.offers.indices { sheet.offers[i].onDemandUSDPerHour *= priceScale }
        let hw = try ["h100-sxm", "a100-80g", "l40s", "rtx-4090"].map { try c.hardware($0) }
        return PlanInput(model: c.models["llama-3.1-8b"]!,
                         demand: Demand(users: users, requestsPerUserPerDay: 40, peakToMean: 3, promptTokens: 800, outputTokens: 250),
                         slo: slo, hardware: hw, precisions: [.bf16, .int4], tensorParallel: [1, 2], prices: sheet)
    }

    func testMoreUsersNeverNeedFewerReplicas() throws {
        var last: [String: Int] = [:]
        for users in [10, 100, 1000, 5000, 20_000, 100_000] {
            let plan = Planner(servingModel: QueueingServingModel()).plan(try input(users: users), curves: false)
            for c in plan.candidates where c.meetsSlo {
                if let before = last[c.id] { XCTAssertGreaterThanOrEqual(c.replicas, before, "\(c.id) at \(users) users") }
                last[c.id] = c.replicas
            }
        }
        XCTAssertFalse(last.isEmpty)
    }

    func testACheaperPriceNeverRaisesTheCost() throws {
        let full = Planner(servingModel: QueueingServingModel()).plan(try input(users: 5000), curves: false)
        let half = Planner(servingModel: QueueingServingModel()).plan(try input(users: 5000, priceScale: 0.5), curves: false)
        for (a, b) in zip(full.candidates, half.candidates) where a.monthlyCostUsd != nil {
            XCTAssertLessThanOrEqual(b.monthlyCostUsd!.autoscaled, a.monthlyCostUsd!.autoscaled, a.id)
            XCTAssertLessThanOrEqual(b.monthlyCostUsd!.alwaysOn, a.monthlyCostUsd!.alwaysOn, a.id)
        }
        XCTAssertLessThanOrEqual(half.recommendation!.candidate.monthlyCostUsd!.autoscaled,
                                 full.recommendation!.candidate.monthlyCostUsd!.autoscaled)
    }

    func testALargerSLONeverLowersCapacity() throws {
        let tight = Planner(servingModel: QueueingServingModel()).plan(try input(users: 5000, slo: SLO(ttftP95: 0.5, tpotP95: 0.03)), curves: false)
        let loose = Planner(servingModel: QueueingServingModel()).plan(try input(users: 5000, slo: SLO(ttftP95: 2, tpotP95: 0.1)), curves: false)
        var compared = 0
        for (a, b) in zip(tight.candidates, loose.candidates) where a.fits {
            XCTAssertGreaterThanOrEqual(b.capacityRpsPerReplica, a.capacityRpsPerReplica, a.id)
            compared += 1
        }
        XCTAssertGreaterThan(compared, 0)
    }

    func testPlanRecommendsTheCheapestThatMeetsTheSLOAndExplainsTheRest() throws {
        // The simulator as the serving model, small enough for a debug build.
        let plan = Planner(servingModel: try SimulatorServingModel(requests: 100, replications: 2, capacityProbes: 3)).plan(try input(users: 2000), curves: false)
        let rec = try XCTUnwrap(plan.recommendation)
        XCTAssertEqual(rec.candidate, plan.ranked.first)
        for c in plan.ranked { XCTAssertGreaterThanOrEqual(c.monthlyCostUsd!.autoscaled, rec.candidate.monthlyCostUsd!.autoscaled) }
        for c in plan.candidates where !c.fits { XCTAssertNotNil(c.whyNot, c.id) }
        XCTAssertTrue(plan.candidates.contains { $0.pareto })
        XCTAssertTrue(rec.candidate.pareto, "the cheapest is never dominated")
        // The recommended configuration meets the SLO at its planned load.
        XCTAssertLessThanOrEqual(rec.candidate.predictedTtftP95Ms!, 1000 + 1e-6)
        XCTAssertLessThanOrEqual(rec.candidate.predictedTpotP95Ms!, 60 + 1e-6)
        XCTAssertEqual(rec.candidate.servingModel, plan.servingModel, "the recommendation is among the simulated leaders")
        XCTAssertNotNil(rec.candidate.predictedTtftP95IntervalMs?.low, "the simulator's p95 carries its interval")
        XCTAssertTrue(plan.candidates.contains { $0.servingModel == QueueingServingModel().name }, "the rest keep the approximation's figures")
    }

    func testThePlansCurvesAreDrawnForTheReport() throws {
        let plan = Planner(servingModel: QueueingServingModel()).plan(try input(users: 2000))
        XCTAssertFalse(plan.costCurves.isEmpty)
        XCTAssertFalse(plan.latencyCurves.isEmpty)
        XCTAssertFalse(plan.batchCurves.isEmpty)
    }

    /// Property tests above run on the approximation (fast, and one model for every candidate); the simulator
    /// keeps the same promise on one candidate: a looser SLO never lowers capacity.
    func testTheSimulatorsCapacityGrowsWithTheSLO() throws {
        let i = try input(users: 2000)
        let (_, spec) = Planner().replica(i, i.hardware[0], .bf16, tp: 1)
        let work = ServingWorkload(promptTokens: 800, outputTokens: 250)
        let sim = try SimulatorServingModel(requests: 100, replications: 2, capacityProbes: 5)
        let tight = sim.capacity(spec, work, slo: SLO(ttftP95: 0.3, tpotP95: 0.03))
        let loose = sim.capacity(spec, work, slo: SLO(ttftP95: 2, tpotP95: 0.1))
        XCTAssertGreaterThan(tight, 0)
        XCTAssertGreaterThanOrEqual(loose, tight)
    }

    // MARK: scenario plan section and bad files

    func testScenarioPlanSectionParses() throws {
        let s = try Scenario.parse("""
            schema: 1
            name: p
            measure: { model: tiny, threads: 1, prompt_tokens: [8] }
            plan:
              model: llama-3.1-8b
              demand: { users: 2000, requests_per_user_per_day: 40, peak_to_mean: 3, prompt_tokens: 800, output_tokens: 250 }
              slo: { ttft_p95_ms: 1000, tpot_p95_ms: 60 }
              hardware: [h100-sxm, local]
              precisions: [bf16, int4]
              finetune: { method: lora, rank: 8, documents: 10000, tokens_per_document: 1024, epochs: 3 }
            """, file: "p.yaml", catalog: catalog())
        let plan = try XCTUnwrap(s.plan)
        XCTAssertEqual(plan.model.id, "llama-3.1-8b")
        XCTAssertEqual(plan.slo, SLO(ttftP95: 1, tpotP95: 0.06))
        XCTAssertEqual(plan.hardware, ["h100-sxm", "local"])
        XCTAssertEqual(plan.precisions, [.bf16, .int4])
        XCTAssertEqual(plan.finetune?.tokens, 10000 * 1024 * 3)
        XCTAssertEqual(plan.finetune?.seqLen, 1024)
    }

    func testBadPlanSectionGivesItsExactMessage() throws {
        func message(_ plan: String) throws -> String {
            do {
                _ = try Scenario.parse("schema: 1\nname: p\nmeasure: { model: tiny, threads: 1, prompt_tokens: [8] }\nplan:\n" + plan,
                                       file: "x.yaml", catalog: catalog())
            } catch let e as InputError { return e.description }
            return "no error"
        }
        let good = """
              model: llama-3.1-8b
              slo: { ttft_p95_ms: 1000, tpot_p95_ms: 60 }
              hardware: [h100-sxm]
              precisions: [bf16]

            """
        XCTAssertEqual(try message(good + "  demand: { users: many, requests_per_user_per_day: 4, prompt_tokens: 8, output_tokens: 8 }\n"),
                       "x.yaml: plan.demand.users: expected an integer from 1 to 1000000000000, got \"many\"")
        XCTAssertEqual(try message(good.replacingOccurrences(of: "[h100-sxm]", with: "[h100-sxm, tpu-v9]")
                                    + "  demand: { users: 1, requests_per_user_per_day: 4, prompt_tokens: 8, output_tokens: 8 }\n"),
                       "x.yaml: plan.hardware[1]: expected hardware in the catalog (h100-sxm, h100-pcie, h800, h200, a100-80g, a100-40g, a800, l40s, l4, rtx-4090, rtx-3090, xeon-8480, epyc-9654, local), got \"tpu-v9\"")
        XCTAssertEqual(try message(good.replacingOccurrences(of: "[bf16]", with: "[bf16, fp4]")
                                    + "  demand: { users: 1, requests_per_user_per_day: 4, prompt_tokens: 8, output_tokens: 8 }\n"),
                       "x.yaml: plan.precisions[1]: expected one of fp32 (f32), bf16, fp16 (f16), fp8, int8 (q8_0), int4 (q4_0), got \"fp4\"")
    }

    /// A catalog folder with one file broken: the message names the file, the key path and what was expected.
    func testBadCatalogFilesGiveTheirExactMessage() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Scenarios/catalog")
        func broken(_ name: String, _ edit: (String) -> String) throws -> String {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("headroom-catalog-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for f in ["models.yaml", "hardware.yaml", "prices.yaml"] {
                var text = try String(contentsOf: repo.appendingPathComponent(f), encoding: .utf8)
                if f == name { text = edit(text) }
                try text.write(to: dir.appendingPathComponent(f), atomically: true, encoding: .utf8)
            }
            do { _ = try Catalog.load(directory: dir.path) } catch let e as InputError {
                return e.description.replacingOccurrences(of: dir.path + "/", with: "")
            }
            return "no error"
        }
        XCTAssertEqual(try broken("hardware.yaml") { $0.replacingOccurrences(of: "memory_gib: 80\n    memory_bandwidth_gbps: 3350\n    interconnect: { kind: nvlink, bandwidth_gbps: 900",
                                                                               with: "memory_gib: lots\n    memory_bandwidth_gbps: 3350\n    interconnect: { kind: nvlink, bandwidth_gbps: 900") },
                       "hardware.yaml: hardware[0].memory_gib: expected a positive number of at most 1000000, got \"lots\"")
        XCTAssertEqual(try broken("hardware.yaml") { $0.replacingOccurrences(of: "    source: \"measured at run time", with: "    memory_gib: 16\n    source: \"measured at run time") },
                       "hardware.yaml: hardware[13].memory_gib: unknown key; expected one of id, name, kind, source")
        XCTAssertEqual(try broken("hardware.yaml") { $0.replacingOccurrences(of: "network: { kind: infiniband-ndr, bandwidth_gbps: 100, latency_us: 10, source: \"NVIDIA DGX H100 ",
                                                                               with: "network: { kind: infiniband-ndr, bandwidth_gbps: fast, latency_us: 10, source: \"NVIDIA DGX H100 ") },
                       "hardware.yaml: hardware[0].network.bandwidth_gbps: expected a number from 0.001 to 10000000, got \"fast\"")
        XCTAssertEqual(try broken("prices.yaml") { $0.replacingOccurrences(of: "on_demand_usd_per_hour: 0.39", with: "on_demand_usd_per_hour: free") },
                       "prices.yaml: offers[0].on_demand_usd_per_hour: expected a positive number of at most 10000000, got \"free\"")
        XCTAssertEqual(try broken("prices.yaml") { $0.replacingOccurrences(of: "hardware: rtx-3090, provider: runpod", with: "hardware: rtx-9090, provider: runpod") },
                       "prices.yaml: offers[0].hardware: expected hardware in the catalog (h100-sxm, h100-pcie, h800, h200, a100-80g, a100-40g, a800, l40s, l4, rtx-4090, rtx-3090, xeon-8480, epyc-9654, local), got \"rtx-9090\"")
        XCTAssertEqual(try broken("models.yaml") { $0.replacingOccurrences(of: "qkv_bias: true", with: "qkv_bias: maybe") },
                       "models.yaml: models[9].qkv_bias: expected true or false, got \"maybe\"")
    }
}
