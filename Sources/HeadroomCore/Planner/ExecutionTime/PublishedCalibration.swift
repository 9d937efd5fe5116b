// GPUs fitted to published measurements: each published figure (published.yaml) becomes a `CalibrationPoint`
// — the ops the planner would run for that configuration and the seconds the figure implies — and each GPU's
// compute and bandwidth efficiencies are fitted to its points by `Calibration.calibrate`, the machinery that
// fits `local` and endpoint load runs, with its leave-one-out checks. Every error it states is against a
// figure the fit did not see.
import Foundation

public enum PublishedCalibration {
    /// The prefill chunk the memory model reserves workspace for when it sizes the batch (the planner's default).
    public static let chunkTokens = 2048

    /// Why a published figure gives no calibration point.
    public struct DerivationError: Error, CustomStringConvertible, Sendable {
        public var reason: String
        public var description: String { reason }
    }

    /// One published figure in the planner's terms.
    public struct Derived: Sendable {
        public var point: CalibrationPoint
        /// The batch the point assumes, and where it comes from ("stated" or the memory model's).
        public var batch: Int
        public var batchStated: Bool
        /// Seconds of tensor-parallel all-reduces the planner adds (no efficiency scales them), already
        /// subtracted from `point.measuredSeconds`.
        public var communicationSeconds: Double
        /// Output tokens the measured interval produced (B × output tokens; 0 for a first-token latency).
        public var outputTokens: Double

        /// The figure in the source's unit (tokens/s as the source counts them, or ms) for `seconds` of the
        /// point's ops (communication added back).
        func value(_ m: PublishedMeasurement, opsSeconds: Double) -> Double {
            let total = opsSeconds + communicationSeconds
            if m.ttftMs != nil { return total * 1000 }
            return outputTokens / total / (m.perDevice ? Double(m.devices) : 1)
        }
    }

    /// The batch a maximum-throughput figure is taken to run at: the source's when it states one, else the
    /// largest the planner's memory model allows on this GPU for sequences of input + output tokens (KV cache at
    /// the server's element size, 90 % of memory, workspace for a 2048-token chunk) — which is capped at 256
    /// (vLLM's default `max_num_seqs`), the batch the planner itself would run.
    public static func batch(_ m: PublishedMeasurement, hardware h: HardwareProfile, model: ModelShape) -> (batch: Int, stated: Bool) {
        if let b = m.batch { return (b, true) }
        let mem = MemoryModel.serving(model, m.precision, deviceBytes: h.memoryBytes, tp: m.devices,
                                      contextTokens: m.inputTokens + (m.outputTokens ?? 0), chunkTokens: chunkTokens,
                                      kvElementBytes: m.kvCacheBytes ?? h.kvElementBytes(m.precision))
        return (mem.maxBatch, false)
    }

    /// The calibration point of one published figure.
    ///
    /// - Time to first token: one prefill of the input tokens at batch 1; measured seconds = TTFT.
    /// - Output throughput at maximum load: the engine is taken to hold B sequences at all times (`batch`), each
    ///   costing one prefill of its input tokens and, for each of its output tokens, a place in a decode step of B
    ///   sequences at context input + output/2 (the middle of the request). So B × output tokens take
    ///   prefill(B × input) + output × decode_step(B); the point's ops are those (the decode step's ops scaled by
    ///   the output tokens, in one list) and its measured seconds B × output ÷ the replica's throughput.
    ///   Biases: where the engine ran a larger batch than B (in-flight batching is not capped at the planner's
    ///   256), more sequences shared each weight read than assumed, and where it kept an FP8 KV cache the source
    ///   does not state (`kv_cache:`), it read half the KV bytes the planner counts: both push the fitted
    ///   bandwidth efficiency *up*, past 1 if need be — an effective figure relative to the planner's own ops.
    ///   A smaller real batch pushes it down. Steps that mix prefill chunks with decodes, the scheduler's gaps,
    ///   and the growth of the context from input to input + output are averaged away.
    /// With several devices the planner's all-reduces are subtracted from the measured time first.
    public static func derive(_ m: PublishedMeasurement, hardware h: HardwareProfile, model: ModelShape) throws -> Derived {
        let tp = m.devices
        let peak = h.peakTflops.mapValues { $0 * 1e12 }, bw = h.bandwidthGbps * 1e9
        let kv = m.kvCacheBytes ?? h.kvElementBytes(m.precision)
        func comm(tokens: Int) -> Double {
            let hidden = Double(tokens) * Double(model.dim) * m.precision.activationBytes
            return 2 * Double(model.layers) * PerformanceModel.allReduceTime(bytes: hidden, tp: tp, interconnect: h.interconnect)
        }
        let label = "\(m.hardware) \(m.configuration), batch \(m.ttftMs != nil ? 1 : batch(m, hardware: h, model: model).batch): \(m.measuredText)"
        if let ttft = m.ttftMs {
            let ops = PerformanceModel.forwardOps(model, m.precision, sequences: 1, newTokens: m.inputTokens, pastTokens: 0, tp: tp,
                                                  kvElementBytes: kv)
            let c = comm(tokens: m.inputTokens)
            let seconds = ttft / 1000 - c
            guard seconds > 0 else {
                throw DerivationError(reason: "ttft_ms \(ttft) is shorter than the planner's all-reduces alone (\(String(format: "%.3f", c * 1000)) ms)")
            }
            return Derived(point: CalibrationPoint(label: label, kind: "published", ops: ops, peakFLOPs: peak, bandwidth: bw,
                                                   measuredSeconds: seconds, samples: 1),
                           batch: 1, batchStated: true, communicationSeconds: c, outputTokens: 0)
        }
        guard let throughput = m.outputTokensPerSecond, let osl = m.outputTokens else {
            throw DerivationError(reason: "states no measurement")
        }
        let (b, stated) = batch(m, hardware: h, model: model)
        guard b >= 1 else {
            throw DerivationError(reason: "not one sequence of \(m.inputTokens + osl) tokens fits \(model.id) at \(m.precision.rawValue) on \(tp) × \(h.id) in the planner's memory model; state the batch")
        }
        var ops = PerformanceModel.forwardOps(model, m.precision, sequences: b, newTokens: m.inputTokens, pastTokens: 0, tp: tp, kvElementBytes: kv)
            .map { op -> OpCost in var o = op; o.name = "prefill \(op.name)"; return o }
        for op in PerformanceModel.forwardOps(model, m.precision, sequences: b, newTokens: 1, pastTokens: m.inputTokens + osl / 2, tp: tp,
                                              kvElementBytes: kv) {
            ops.append(OpCost(name: "decode×\(osl) \(op.name)", flops: op.flops * Double(osl), bytes: op.bytes * Double(osl), dtype: op.dtype))
        }
        let total = throughput * (m.perDevice ? Double(tp) : 1)
        let outputTokens = Double(b) * Double(osl)
        let c = comm(tokens: b * m.inputTokens) + Double(osl) * comm(tokens: b)
        let seconds = outputTokens / total - c
        guard seconds > 0 else {
            throw DerivationError(reason: "output_tokens_per_s \(throughput) leaves no time beyond the planner's all-reduces at batch \(b)")
        }
        return Derived(point: CalibrationPoint(label: label + (stated ? "" : " (batch from the memory model)"), kind: "published", ops: ops,
                                               peakFLOPs: peak, bandwidth: bw, measuredSeconds: seconds, samples: 1),
                       batch: b, batchStated: stated, communicationSeconds: c, outputTokens: outputTokens)
    }

    /// The figure the planner predicts for `m` with efficiencies `e`, in the source's unit.
    public static func predictedValue(_ m: PublishedMeasurement, hardware h: HardwareProfile, model: ModelShape, efficiency e: Efficiency) throws -> Double {
        let d = try derive(m, hardware: h, model: model)
        return d.value(m, opsSeconds: d.point.predicted(e))
    }

    /// The precisions one fit holds for: fp16 and bf16 share theirs (the same tensor-core peak and 2-byte
    /// weights on every catalog GPU); any other precision has its own.
    public static func precisionGroup(_ p: Precision) -> [Precision] { p == .fp16 || p == .bf16 ? [.bf16, .fp16] : [p] }

    /// `h`'s fits, one per precision group its published measurements cover with at least two `fit` figures.
    public static func fits(hardware h: HardwareProfile, published: [PublishedMeasurement], models: [String: ModelShape],
                            leaveOneOut: Bool = true) -> [PublishedFit] {
        let groups = orderedUnique(published.filter { $0.hardware == h.id }.map { precisionGroup($0.precision).map(\.rawValue).joined(separator: ",") })
        return groups.compactMap { g in
            fit(hardware: h, precisions: g.split(separator: ",").compactMap { Precision(rawValue: String($0)) }, published: published,
                models: models, leaveOneOut: leaveOneOut)
        }
    }

    /// `h`'s first fit (all of its figures when they are at one precision group, as for every built-in GPU).
    public static func fit(hardware h: HardwareProfile, published: [PublishedMeasurement], models: [String: ModelShape],
                           leaveOneOut: Bool = true) -> PublishedFit? {
        fits(hardware: h, published: published, models: models, leaveOneOut: leaveOneOut).first
    }

    /// Fits `h` at `precisions` to the measurements of `published` naming it at one of them (role `fit`), or nil
    /// when fewer than two do. The fit keeps `h`'s own efficiency for a regime no point is bound by. Without
    /// `leaveOneOut` (a fit only, no checks) every row's `predictedWithout` is the full fit's prediction and the
    /// errors are NaN.
    public static func fit(hardware h: HardwareProfile, precisions: [Precision], published: [PublishedMeasurement], models: [String: ModelShape],
                           leaveOneOut: Bool = true) -> PublishedFit? {
        let mine = published.filter { $0.hardware == h.id && precisions.contains($0.precision) }
        var fitRows: [(PublishedMeasurement, Derived)] = [], checkRows: [(PublishedMeasurement, Derived)] = []
        for m in mine {
            guard let model = models[m.model], let d = try? derive(m, hardware: h, model: model) else { continue }
            if m.role == .fit { fitRows.append((m, d)) } else { checkRows.append((m, d)) }
        }
        guard fitRows.count >= 2 else { return nil }
        var result = Calibration.calibrate(fitRows.map(\.1.point), fallback: h.efficiency, fallbackLabel: h.calibration,
                                           leaveOneOut: leaveOneOut)
        let e = result.efficiency
        var rows: [PublishedFit.Row] = []
        for (i, (m, d)) in fitRows.enumerated() {
            let full = d.value(m, opsSeconds: d.point.predicted(e))
            rows.append(PublishedFit.Row(measurement: m, batch: d.batch, batchStated: d.batchStated, predicted: full,
                                         predictedWithout: leaveOneOut ? d.value(m, opsSeconds: result.checks[i].predictedSeconds) : full))
        }
        for (m, d) in checkRows {
            let p = d.value(m, opsSeconds: d.point.predicted(e))
            rows.append(PublishedFit.Row(measurement: m, batch: d.batch, batchStated: d.batchStated, predicted: p, predictedWithout: p))
        }
        let loo = leaveOneOut ? rows.filter { $0.measurement.role == .fit }.map { abs($0.errorPercent) }.sorted() : []
        let median = loo.isEmpty ? .nan : Summary.percentile(loo, 0.5), worst = loo.last ?? .nan
        let held = rows.filter { $0.measurement.role == .check }.map { abs($0.errorPercent) }.sorted()
        let documents = orderedUnique(fitRows.map(\.0.document)).map { doc in
            "\(doc), \(orderedUnique(fitRows.filter { $0.0.document == doc }.map(\.0.date)).joined(separator: " and "))"
        }
        let kept = [(result.computeFitted, "compute"), (result.bandwidthFitted, "bandwidth")].filter { !$0.0 }.map(\.1)
        let measured = orderedUnique(fitRows.map(\.0.precision.rawValue)).joined(separator: ", ")
        var label = String(format: "fitted to %d published measurements at %@ (%@): compute %.3f, bandwidth %.3f; leave-one-out median |error| %.1f %%, worst %.1f %%",
                           fitRows.count, measured, documents.joined(separator: "; "), e.compute, e.bandwidth, median, worst)
        if !held.isEmpty {
            label += String(format: "; %d held-out check%@ median |error| %.1f %%", held.count, held.count == 1 ? "" : "s",
                            Summary.percentile(held, 0.5))
        }
        if !PublishedFit.isPhysical(e) {
            // A fit past the roofline is a wrong model of what the source ran, never a figure to plan with.
            label = String(format: "default efficiencies, uncalibrated: the %d published measurements at %@ (%@) fit only with %@ above 1 "
                           + "(compute %.3f, bandwidth %.3f) — the source's engine moved fewer bytes or FLOPs than the planner counts for them "
                           + "(an 8-bit KV cache, batches above 256, which the source does not state), so the fit is not used "
                           + "(its leave-one-out median |error| %.1f %%, worst %.1f %%)",
                           fitRows.count, measured, documents.joined(separator: "; "),
                           e.compute > 1 && e.bandwidth > 1 ? "both efficiencies" : e.compute > 1 ? "a compute efficiency" : "a bandwidth efficiency",
                           e.compute, e.bandwidth, median, worst)
        }
        if !kept.isEmpty { label += "; \(kept.joined(separator: " and ")) not determined by these points, kept from: \(h.calibration)" }
        result.label = label
        return PublishedFit(hardware: h.id, precisions: precisions, result: result, rows: rows, medianAbsErrorPercent: median,
                            worstAbsErrorPercent: worst, label: label)
    }

    static func orderedUnique(_ xs: [String]) -> [String] {
        var seen = Set<String>()
        return xs.filter { seen.insert($0).inserted }
    }

    // MARK: memo

    private final class Memo: @unchecked Sendable {
        let lock = NSLock()
        var fits: [String: [PublishedFit]] = [:]
    }
    private static let memo = Memo()

    /// `fits`, computed once per process for the same GPU profile and measurements (plan and whatif size many
    /// candidates per GPU; the fit with its leave-one-out checks runs the grid search points + 1 times).
    public static func memoisedFits(hardware h: HardwareProfile, published: [PublishedMeasurement], models: [String: ModelShape]) -> [PublishedFit] {
        let mine = published.filter { $0.hardware == h.id }
        guard !mine.isEmpty else { return [] }
        let key = "\(h)|" + mine.map { "\($0)" }.joined(separator: "|") + "|" + Set(mine.map(\.model)).sorted().map { "\(models[$0].map { "\($0)" } ?? "")" }.joined()
        memo.lock.lock()
        if let hit = memo.fits[key] { memo.lock.unlock(); return hit }
        memo.lock.unlock()
        let f = fits(hardware: h, published: published, models: models)
        memo.lock.lock(); memo.fits[key] = f; memo.lock.unlock()
        return f
    }

    /// The fits of every profile in `hardware` that published measurements name, computed concurrently (one task per GPU).
    public static func fits(hardware: [HardwareProfile], published: [PublishedMeasurement], models: [String: ModelShape]) -> [PublishedFit] {
        let named = hardware.filter { h in h.kind != .local && published.contains { $0.hardware == h.id } }
        final class Box: @unchecked Sendable { var out: [[PublishedFit]]; let lock = NSLock(); init(_ n: Int) { out = Array(repeating: [], count: n) } }
        let box = Box(named.count)
        DispatchQueue.concurrentPerform(iterations: named.count) { i in
            let f = memoisedFits(hardware: named[i], published: published, models: models)
            box.lock.lock(); box.out[i] = f; box.lock.unlock()
        }
        return box.out.flatMap { $0 }
    }
}

/// A GPU's efficiencies fitted to published measurements, with each figure against the fit's prediction.
public struct PublishedFit: Codable, Equatable, Sendable {
    public struct Row: Codable, Equatable, Sendable {
        public var measurement: PublishedMeasurement
        public var batch: Int
        public var batchStated: Bool
        /// The figure predicted by the fit on every `fit` point, in the source's unit.
        public var predicted: Double
        /// Predicted by a fit made without this figure (leave-one-out); a `check` figure was never in the fit.
        public var predictedWithout: Double
        /// The error of `predictedWithout` against the figure, in %: what the fit's stated errors are made of.
        public var errorPercent: Double

        public init(measurement: PublishedMeasurement, batch: Int, batchStated: Bool, predicted: Double, predictedWithout: Double) {
            self.measurement = measurement; self.batch = batch; self.batchStated = batchStated
            self.predicted = predicted; self.predictedWithout = predictedWithout
            errorPercent = (predictedWithout / measurement.value - 1) * 100
        }
    }

    public var hardware: String
    /// The precisions the fit holds for (`PublishedCalibration.precisionGroup`); others keep the GPU's own efficiencies.
    public var precisions: [Precision]
    public var result: CalibrationResult
    public var rows: [Row]
    public var medianAbsErrorPercent: Double
    public var worstAbsErrorPercent: Double
    /// "fitted to N published measurements (…): compute C, bandwidth B; leave-one-out median |error| E %, worst W %".
    public var label: String

    public var efficiency: Efficiency { result.efficiency }

    /// Whether the planner may use the fit: efficiencies past 1 would predict faster than the roofline, which
    /// means the ops the fit priced are not what the source ran.
    public var applied: Bool { Self.isPhysical(efficiency) }
    static func isPhysical(_ e: Efficiency) -> Bool { e.compute <= 1 && e.bandwidth <= 1 }
}

extension HardwareProfile {
    /// This profile with `fit`'s efficiencies and label at the fit's precisions, when it is the GPU that was
    /// fitted; its other precisions keep their efficiencies.
    public func applying(_ fit: PublishedFit) -> HardwareProfile {
        guard fit.hardware == id else { return self }
        var h = self
        guard fit.applied else {
            // Not used: the precisions keep the GPU's own efficiencies, and their label says why.
            for p in fit.precisions {
                h.precisionCalibrations = h.precisionCalibrations ?? [:]
                h.precisionCalibrations![p.rawValue] = PrecisionCalibration(efficiency: efficiency, calibration: fit.label)
            }
            return h
        }
        for p in fit.precisions {
            h.precisionCalibrations = h.precisionCalibrations ?? [:]
            h.precisionCalibrations![p.rawValue] = PrecisionCalibration(efficiency: fit.efficiency, calibration: fit.label)
        }
        return h
    }
}
