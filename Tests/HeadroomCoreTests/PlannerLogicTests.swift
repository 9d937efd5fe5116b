import Foundation
import XCTest
@testable import HeadroomCore

/// The planner's logic rules, each worked by hand: devices billed are devices used, communication makes
/// scaling sub-linear, plans that do not apply say so, the stated tie-break, the fine-tuning deadline.
final class PlannerLogicTests: XCTestCase {
    func catalog() throws -> Catalog { try repoCatalog() }

    /// The catalog's only fixed 8-GPU instance (AWS p5.48xlarge, 8 × H100 SXM at $98.32/h; the issue's
    /// $39.33/h instance is not in the built-in sheet, so it is the second sheet here).
    func p5Sheet() throws -> PriceSheet {
        var sheet = try XCTUnwrap(try catalog().prices)
        sheet.offers = sheet.offers.filter { $0.hardware == "h100-sxm" && $0.devices == 8 }
        XCTAssertEqual(sheet.offers.count, 1)
        XCTAssertEqual(sheet.offers.first?.provider, "aws p5.48xlarge")
        XCTAssertEqual(sheet.offers.first?.onDemandUSDPerHour, 98.32)
        return sheet
    }

    func loraInput(_ sheet: PriceSheet, deadline: Double? = nil, hardware: [String] = ["h100-sxm"]) throws -> PlanInput {
        let c = try catalog()
        return PlanInput(model: c.models["llama-3.1-8b"]!, demand: Demand(users: 10, requestsPerUserPerDay: 1, promptTokens: 100, outputTokens: 100),
                         slo: SLO(ttftP95: 1, tpotP95: 0.1), hardware: try hardware.map { try c.hardware($0) }, precisions: [.bf16], prices: sheet,
                         finetune: FineTuneSettings(method: .lora, rank: 1, documents: 10_000, tokensPerDocument: 1024, epochs: 3, seqLen: 1024,
                                                    deadlineHours: deadline))
    }

    // MARK: devices billed are devices used

    /// Llama-3.1-8B, LoRA r=1 on 10,000 documents × 1024 tokens × 3 epochs = 30,720,000 tokens, on an
    /// instance of 8 H100 SXM rented whole.
    ///
    /// N (parameters a token multiplies with) = 32 × (2·4096² + 2·4096·1024 + 3·4096·14336) + 128256·4096
    ///   = 32 × 218,103,808 + 525,336,576 = 7,504,658,432.
    /// LoRA with checkpointing: 4N + 2N = 45,027,950,592 FLOPs a token, + attention 6·32·1024·4096·4/3 =
    ///   1,073,741,824 → 46,101,692,416. Full: 8N + attention = 61,111,009,280.
    /// A step of one 1024-token sequence per device at 989.4 TFLOP/s × MFU 0.40 = 395.76 TFLOP/s:
    ///   LoRA 46,101,692,416 × 1024 / 395.76e12 = 0.119285 s; full 0.158120 s.
    /// Steps on 8 devices: 30,720,000 / (8 × 1024) = 3750.
    /// LoRA fits one device whole (16.1 GB bf16 base), so the 8 devices run plain data parallelism and
    ///   all-reduce the adapters' gradients: 2,621,440 parameters (32 × (r·(2·4096 + 2·(4096+1024) + 2·4096)
    ///   + r·3·(4096 + 14336))) × 2 bytes = 5,242,880 bytes; ring over NVLink (450 GB/s a direction,
    ///   8 µs a step): 2·7/8 × 5,242,880 / 450e9 + 14 × 8 µs = 20.4 µs + 112 µs = 0.132389 ms.
    ///   Hours: 3750 × (0.119285 + 0.000132) / 3600 = 0.124393 h; × $98.32 = $12.23.
    /// Full fine-tuning needs 16 bytes × 8,030,261,248 parameters = 128 GB, more than one device: ZeRO-2
    ///   (bf16 weights whole, gradients and AdamW states sharded: 16.06 GB + 112.4 GB / 8 + activations
    ///   fits 72 GiB), filled to 8 devices; per step the gradients' traffic, as an all-reduce of
    ///   16,060,522,496 bytes: 2·7/8 × 16,060,522,496 / 450e9 + 14 × 8 µs = 0.062570 s.
    ///   Hours: 3750 × (0.158120 + 0.062570) / 3600 = 0.229885 h; × $98.32 = $22.60 — LoRA is cheaper.
    /// (Before: LoRA on 1 device for 0.994 h and the whole instance billed: $97.73, more than full.)
    func testLoRAUsesAllEightBilledDevicesAndCostsLessThanFullFineTuning() throws {
        let input = try loraInput(try p5Sheet())
        let rows = Planner(servingModel: QueueingServingModel()).finetunePlan(input, input.finetune!)
        let lora = try XCTUnwrap(rows.first { $0.method == "lora" })
        let full = try XCTUnwrap(rows.first { $0.method == "full" })
        XCTAssertEqual(lora.devices, 8)
        XCTAssertEqual(lora.billedDevices, 8)
        XCTAssertEqual(lora.zeroStage, 0)
        XCTAssertEqual(lora.steps, 3750)
        XCTAssertEqual(try XCTUnwrap(lora.communicationHours) * 3600 / 3750, 0.000132389, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(lora.hours), 0.124393, accuracy: 1e-6)
        XCTAssertEqual(try XCTUnwrap(lora.usd), 12.2303, accuracy: 1e-3)
        XCTAssertEqual(full.devices, 8)
        XCTAssertEqual(full.zeroStage, 2)
        XCTAssertEqual(try XCTUnwrap(full.communicationHours) * 3600 / 3750, 0.062570, accuracy: 1e-6)
        XCTAssertEqual(try XCTUnwrap(full.hours), 0.229885, accuracy: 1e-6)
        XCTAssertEqual(try XCTUnwrap(full.usd), 22.6023, accuracy: 1e-3)
        XCTAssertLessThan(try XCTUnwrap(lora.usd), try XCTUnwrap(full.usd))
        // The issue's $39.33/h instance: the same hours, LoRA $4.89 against full $9.04.
        var gov = try p5Sheet()
        gov.offers[0].onDemandUSDPerHour = 39.33
        let govInput = try loraInput(gov)
        let govRows = Planner(servingModel: QueueingServingModel()).finetunePlan(govInput, govInput.finetune!)
        XCTAssertEqual(try XCTUnwrap(govRows.first { $0.method == "lora" }?.usd), 0.124393 * 39.33, accuracy: 1e-3)
        XCTAssertEqual(try XCTUnwrap(govRows.first { $0.method == "full" }?.usd), 0.229885 * 39.33, accuracy: 1e-3)
        XCTAssertEqual(govRows.first { $0.method == "lora" }?.devices, 8)
    }

    /// An 8-card instance of a card whose node holds 4 and that has no network: 4 used, and the row says why.
    func testDevicesBilledButNotUsableAreExplained() throws {
        let c = try catalog()
        let sheet = PriceSheet(file: "t", offers: [.init(hardware: "rtx-4090", provider: "box", devices: 8, onDemandUSDPerHour: 4.8, source: "t")])
        var input = try loraInput(sheet, hardware: ["rtx-4090"])
        input.model = c.models["llama-2-7b"]!
        input.finetune!.method = .qlora
        let row = try XCTUnwrap(Planner().finetunePlan(input, input.finetune!).first)
        XCTAssertEqual(row.method, "qlora")
        XCTAssertEqual(row.billedDevices, 8)
        XCTAssertEqual(row.devices, 4)
        XCTAssertTrue(row.note?.hasPrefix("uses 4 of the 8 devices billed: needs 8 devices, more than one NVIDIA") ?? false, row.note ?? "nil")
    }

    /// Serving: an instance of 8 devices at tp=2 runs 4 replicas, even when the peak needs 1.
    func testServingFillsTheInstanceWithReplicas() throws {
        let c = try catalog()
        var sheet = try p5Sheet()
        sheet.offers[0].onDemandUSDPerHour = 39.33
        let input = PlanInput(model: c.models["llama-3.1-8b"]!, demand: Demand(users: 100, requestsPerUserPerDay: 10, promptTokens: 200, outputTokens: 100),
                              slo: SLO(ttftP95: 1, tpotP95: 0.1), hardware: [try c.hardware("h100-sxm")], precisions: [.bf16],
                              tensorParallel: [2], prices: sheet)
        let cand = Planner(servingModel: QueueingServingModel()).evaluate(input, input.hardware[0], .bf16, tp: 2)
        XCTAssertTrue(cand.meetsSlo)
        XCTAssertEqual(cand.replicasForPeak, 1)
        XCTAssertEqual(cand.replicas, 4)
        XCTAssertEqual(cand.devices, 8)
        XCTAssertEqual(cand.monthlyCostUsd?.alwaysOn ?? 0, 39.33 * 730, accuracy: 1e-6)
    }

    // MARK: communication

    func testCommunicationWorkedByHand() throws {
        let c = try catalog()
        let h100 = try c.hardware("h100-sxm"), l40s = try c.hardware("l40s"), rtx = try c.hardware("rtx-4090")
        // NVLink, 8 devices, 1 GB of gradients: 2·7/8 × 1e9 / 450e9 + 14 × 8 µs = 3.8889 ms + 0.112 ms.
        let nv = try XCTUnwrap(DataParallel.link(h100, devices: 8))
        XCTAssertEqual(DataParallel.stepSeconds(gradientBytes: 1e9, parameterBytes: 0, devices: 8, zeroStage: 0, link: nv),
                       1.75e9 / 450e9 + 112e-6, accuracy: 1e-12)
        // PCIe 4 (64 GB/s both ways), 8 devices: 2·7/8 × 1e9 / 32e9 + 14 × 15 µs = 54.6875 ms + 0.21 ms — 14× NVLink's.
        let pcie = try XCTUnwrap(DataParallel.link(l40s, devices: 8))
        XCTAssertEqual(DataParallel.stepSeconds(gradientBytes: 1e9, parameterBytes: 0, devices: 8, zeroStage: 0, link: pcie),
                       0.0546875 + 210e-6, accuracy: 1e-12)
        // 16 H100s span two nodes: the ring runs at the network's 100 GB/s (50 a direction), 10 µs a step:
        // 2·15/16 × 1e9 / 50e9 + 30 × 10 µs = 37.5 ms + 0.3 ms.
        let net = try XCTUnwrap(DataParallel.link(h100, devices: 16))
        XCTAssertEqual(DataParallel.stepSeconds(gradientBytes: 1e9, parameterBytes: 0, devices: 16, zeroStage: 0, link: net),
                       0.0375 + 300e-6, accuracy: 1e-12)
        // ZeRO-3 on 4 NVLink devices, 2 GB of parameters and 2 GB of gradients: two all-gathers and a
        // reduce-scatter, each 3/4 × 2e9 / 450e9 + 3 × 8 µs: 3 × (3.3333 ms + 0.024 ms) = 10.072 ms.
        XCTAssertEqual(DataParallel.stepSeconds(gradientBytes: 2e9, parameterBytes: 2e9, devices: 4, zeroStage: 3, link: nv),
                       3 * (1.5e9 / 450e9 + 24e-6), accuracy: 1e-12)
        XCTAssertEqual(DataParallel.stepSeconds(gradientBytes: 1e9, parameterBytes: 1e9, devices: 1, zeroStage: 3, link: nv), 0)
        // 8 RTX 4090s are two nodes of 4 and the catalog states no network between them.
        XCTAssertNil(DataParallel.link(rtx, devices: 8))
        XCTAssertNotNil(DataParallel.link(rtx, devices: 4))
    }

    /// Full fine-tuning of Llama-3.1-8B: 8 devices finish sooner than 2 but spend more device-hours; 16,
    /// over the network between two nodes, finish later than 8.
    func testScalingIsNotLinear() throws {
        let c = try catalog()
        let h = try c.hardware("h100-sxm"), m = c.models["llama-3.1-8b"]!
        let job = TrainingJob(model: m, method: .full, rank: 0, flopsPerToken: MemoryModel.trainingFLOPsPerToken(m, method: .full, seqLen: 1024, checkpointing: true),
                              tokens: 30_720_000, seqLen: 1024, microBatch: 1, checkpointing: true)
        func hours(_ n: Int) throws -> Double {
            try XCTUnwrap(job.option(on: h, peak: 989.4e12, devices: n, billed: n, usdPerHour: nil, provider: nil, note: nil)).seconds / 3600
        }
        let (h2, h8, h16) = (try hours(2), try hours(8), try hours(16))
        XCTAssertLessThan(h8, h2)
        XCTAssertGreaterThan(8 * h8, 2 * h2 * 1.05, "8 devices cost more device-hours than 2")
        XCTAssertGreaterThan(h16, h8, "past one node the ring runs at the network's speed: 16 devices finish later than 8")
        // 16 devices, ZeRO-2 over the network: 1875 steps × (0.158120 s + 2·15/16 × 16,060,522,496 / 50e9 + 30 × 10 µs)
        // = 1875 × (0.158120 + 0.602570) s = 0.396193 h; 2 devices over NVLink: 15,000 × (0.158120 + 0.035690) s = 0.807610 h.
        XCTAssertEqual(h16, 0.396193, accuracy: 1e-6)
        XCTAssertEqual(h2, 0.807610, accuracy: 1e-6)
    }

    /// Llama-3.1-70B in full: two bytes a parameter do not fit on an 80 GB device, so only ZeRO-3 does,
    /// and each step gathers the parameters twice and reduce-scatters the gradients.
    func testZeRO3WhenTheWeightsThemselvesDoNotFit() throws {
        let c = try catalog()
        let h = try c.hardware("h100-sxm"), m = c.models["llama-3.1-70b"]!
        let job = TrainingJob(model: m, method: .full, rank: 0, flopsPerToken: 8 * m.parameters.activePerToken, tokens: 1e6, seqLen: 1024,
                              microBatch: 1, checkpointing: true)
        XCTAssertNil(job.stage(on: h, devices: 8), "16 bytes × 70.6e9 / 8 = 141 GB a device")
        let (stage, mem) = try XCTUnwrap(job.stage(on: h, devices: 16))
        XCTAssertEqual(stage, 3)
        let o = try XCTUnwrap(job.option(on: h, peak: 989.4e12, devices: 16, billed: 16, usdPerHour: nil, provider: nil, note: nil))
        let bytes = m.parameters.total * 2
        XCTAssertEqual(mem.weights * 16, bytes, accuracy: 1)
        XCTAssertEqual(o.communicationSeconds / Double(o.steps), 3 * (15.0 / 16 * bytes / 50e9 + 15 * 10e-6), accuracy: 1e-9)
    }

    // MARK: not applicable

    func local() -> HardwareProfile {
        HardwareProfile(id: "local", name: "this machine (2 threads)", kind: .local, peakTflops: ["fp32": 0.1, "bf16": 0.1, "fp16": 0.1, "int8": 0.1],
                        memoryGib: 16, bandwidthGbps: 20, interconnect: Interconnect(kind: "none", bandwidthGbps: 0, latencyUs: 0),
                        devicesPerNode: 1, powerWatts: 0, efficiency: Efficiency(compute: 0.8, bandwidth: 0.6), calibration: "fit", source: "t")
    }

    func testMultiDevicePlansOnLocalAndPreTrainingOnConsumerCardsAreNotApplicable() throws {
        let c = try catalog()
        let m = c.models["llama-3.1-8b"]!
        let input = PlanInput(model: m, demand: Demand(users: 2000, requestsPerUserPerDay: 40, peakToMean: 3, promptTokens: 800, outputTokens: 250),
                              slo: SLO(ttftP95: 1, tpotP95: 0.06),
                              hardware: [local(), try c.hardware("rtx-4090"), try c.hardware("h100-sxm")], precisions: [.int4], tensorParallel: [1],
                              prices: try catalog().prices,
                              finetune: FineTuneSettings(method: .full, documents: 10_000, tokensPerDocument: 1024, epochs: 3, seqLen: 1024),
                              training: TrainingSettings(tokens: 15e12, days: 30))
        let planner = Planner(servingModel: QueueingServingModel())
        // Full fine-tuning needs 128 GB: more than one 16 GiB machine.
        let ft = planner.finetunePlan(input, input.finetune!)
        let localFull = try XCTUnwrap(ft.first { $0.hardware == "local" && $0.method == "full" })
        XCTAssertEqual(localFull.notApplicable, "`local` is this one machine (one device); the plan needs 16")
        XCTAssertNil(localFull.hours)
        XCTAssertNil(localFull.devices)
        // Pre-training 15T tokens in 30 days: 6 × 7.5e9 × 15e12 = 6.75e23 FLOPs needs, before any
        // communication, 6.75e23 / (0.1e12 × 0.4 × 2,592,000 s) = 6.5 million local machines.
        let tr = planner.trainingPlan(input, input.training!)
        let localTr = try XCTUnwrap(tr.first { $0.hardware == "local" })
        XCTAssertEqual(localTr.notApplicable, "`local` is this one machine (one device); the plan needs 6.51 M")
        let rtxTr = try XCTUnwrap(tr.first { $0.hardware == "rtx-4090" })
        XCTAssertEqual(rtxTr.notApplicable,
                       "needs 3,944 devices, more than one NVIDIA GeForce RTX 4090 24GB node holds (4), and the catalog states no network between its nodes")
        // H100s have a network: a plan, with communication, on more devices than compute alone would need.
        let h = try XCTUnwrap(tr.first { $0.hardware == "h100-sxm" })
        XCTAssertNil(h.notApplicable)
        let linear = 6 * m.parameters.activePerToken * 15e12 / (989.4e12 * 0.4 * 30 * 86_400)
        XCTAssertGreaterThan(Double(try XCTUnwrap(h.devices)), linear)
        XCTAssertGreaterThan(try XCTUnwrap(h.communicationDays), 0)
        XCTAssertLessThanOrEqual(try XCTUnwrap(h.days), 30 * 1.0001)
        XCTAssertEqual(h.zeroStage, 2, "weights whole (16 GB), gradients and optimizer sharded")
        // Serving a peak of 139 req/s on a (fast) `local` would take several replicas of one machine.
        var fast = local()
        fast.peakTflops = fast.peakTflops.mapValues { _ in 50 }
        fast.bandwidthGbps = 500
        var busy = input
        busy.model = c.models["small"]!
        busy.demand = Demand(users: 100_000, requestsPerUserPerDay: 40, peakToMean: 3, promptTokens: 100, outputTokens: 50)
        let serve = planner.evaluate(busy, fast, .int4, tp: 1)
        XCTAssertFalse(serve.meetsSlo)
        XCTAssertGreaterThan(serve.capacityRpsPerReplica, 0, "one replica meets the SLO")
        XCTAssertTrue(serve.whyNot?.hasPrefix("not applicable: `local` is this one machine; the peak of 139 req/s needs") ?? false, serve.whyNot ?? "nil")
        busy.demand.users = 10
        XCTAssertTrue(planner.evaluate(busy, fast, .int4, tp: 1).meetsSlo, "one replica is enough for 10 users")
    }

    // MARK: tie-break

    /// Equal cost: lower p95 TTFT first, then lower p95 TPOT, then the configuration's name.
    func testEqualCostsBreakOnTTFTThenTPOTThenName() throws {
        let c = try catalog()
        let h = try c.hardware("h100-sxm")
        let input = PlanInput(model: c.models["llama-3.1-8b"]!, demand: Demand(users: 100, requestsPerUserPerDay: 10, promptTokens: 200, outputTokens: 100),
                              slo: SLO(ttftP95: 1, tpotP95: 0.1), hardware: [h], precisions: [.bf16], prices: try catalog().prices)
        let base = Planner(servingModel: QueueingServingModel()).evaluate(input, h, .bf16, tp: 1)
        func cand(_ precision: String, ttft: Double, tpot: Double, usd: Double = 438) -> Candidate {
            var x = base
            x.precision = precision; x.predictedTtftP95Ms = ttft; x.predictedTpotP95Ms = tpot
            x.monthlyCostUsd = .init(alwaysOn: usd, autoscaled: usd)
            return x
        }
        // The case: $438 both, int4 at 409 ms TTFT and int8 at 84 ms: int8 first.
        var plan = PlanResult(model: "m", modelName: "m", parameters: 1, demand: input.demand, peakRequestsPerSecond: 1, outputTokensPerMonth: 1,
                              slo: input.slo, servingModel: "q", pricing: "on_demand", calibration: nil,
                              candidates: [cand("int4", ttft: 409, tpot: 20), cand("int8", ttft: 84, tpot: 30)],
                              recommendation: nil, finetune: [], training: [], costCurves: [], latencyCurves: [])
        XCTAssertEqual(plan.ranked.map(\.precision), ["int8", "int4"])
        // Same TTFT: lower TPOT first; everything the same: by name; a cheaper one before all.
        plan.candidates = [cand("fp8", ttft: 84, tpot: 30), cand("bf16", ttft: 84, tpot: 30), cand("int4", ttft: 84, tpot: 12),
                           cand("fp16", ttft: 900, tpot: 50, usd: 437.99)]
        XCTAssertEqual(plan.ranked.map(\.precision), ["fp16", "int4", "bf16", "fp8"])
    }

    // MARK: fine-tuning deadline

    func testTheFineTuningRecommendationIsTheCheapestThatMeetsTheDeadline() throws {
        let c = try catalog()
        let sheet = try XCTUnwrap(c.prices)
        let planner = Planner(servingModel: QueueingServingModel())
        let free = try loraInput(sheet, hardware: ["h100-sxm", "a100-80g", "l40s"])
        let open = try XCTUnwrap(Planner.finetuneRecommendation(planner.finetunePlan(free, free.finetune!), free.finetune!))
        let openHours = try XCTUnwrap(open.row.hours), openUSD = try XCTUnwrap(open.row.usd)
        XCTAssertEqual(open.row.method, "lora")
        // Nothing cheaper of that method, on any hardware.
        for r in planner.finetunePlan(free, free.finetune!) where r.method == "lora" && r.usd != nil { XCTAssertGreaterThanOrEqual(r.usd!, openUSD) }
        // A deadline of half those hours: the cheapest plan that makes it, dearer or faster than the open one.
        let tight = try loraInput(sheet, deadline: openHours / 2, hardware: ["h100-sxm", "a100-80g", "l40s"])
        let rows = planner.finetunePlan(tight, tight.finetune!)
        let rec = try XCTUnwrap(Planner.finetuneRecommendation(rows, tight.finetune!))
        XCTAssertLessThanOrEqual(try XCTUnwrap(rec.row.hours), openHours / 2)
        XCTAssertEqual(rec.row.meetsDeadline, true)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(rec.row.usd), openUSD)
        for r in rows where r.method == "lora" && r.meetsDeadline == true { XCTAssertGreaterThanOrEqual(r.usd!, rec.row.usd!) }
        XCTAssertTrue(rec.reason.hasPrefix("the cheapest lora plan that finishes within the "), rec.reason)
        // 36 seconds on L40S (8 to a node, no network): nothing makes it.
        let never = try loraInput(sheet, deadline: 0.01, hardware: ["l40s"])
        let neverRows = planner.finetunePlan(never, never.finetune!)
        XCTAssertNil(Planner.finetuneRecommendation(neverRows, never.finetune!))
        XCTAssertEqual(neverRows.first?.meetsDeadline, false)
    }

    func testDeadlineKeyParsesAndABadValueNamesFileAndKey() throws {
        func parse(_ deadline: String) throws -> PlanSettings? {
            try Scenario.parse("""
                schema: 1
                name: p
                measure: { model: tiny, threads: 1, prompt_tokens: [8] }
                plan:
                  model: llama-3.1-8b
                  demand: { users: 20, requests_per_user_per_day: 4, prompt_tokens: 8, output_tokens: 8 }
                  slo: { ttft_p95_ms: 1000, tpot_p95_ms: 60 }
                  hardware: [h100-sxm]
                  precisions: [bf16]
                  finetune: { method: lora, documents: 10, tokens_per_document: 10, epochs: 1, deadline_hours: \(deadline) }
                """, file: "x.yaml", catalog: catalog()).plan
        }
        XCTAssertEqual(try parse("24")?.finetune?.deadlineHours, 24)
        for bad in ["soon", "-1", "0"] {
            XCTAssertThrowsError(try parse(bad)) { e in
                XCTAssertEqual((e as? InputError)?.description,
                               "x.yaml: plan.finetune.deadline_hours: expected a number from 0.01 to 876000, got \"\(bad)\"")
            }
        }
    }
}
