// Calibration: fits the local profile's compute and bandwidth efficiencies to the measurements a run
// stored (GEMM cases now, inference cases when the engine provides them), and reports the model's error
// on every measurement with a leave-one-out fit, so no error is measured on a point the fit saw.
import Foundation
import HeadroomScheduling

/// One measurement the model can predict: its ops on a roofline, and the measured time.
public struct CalibrationPoint: Codable, Equatable, Sendable {
    public var label: String
    public var kind: CaseKind
    public var ops: [OpCost]
    /// Peak FLOP/s per dtype and bytes/s at the measurement's thread count (from the probe).
    public var peakFLOPs: [String: Double]
    public var bandwidth: Double
    public var measuredSeconds: Double
    public var samples: Int

    public init(label: String, kind: CaseKind, ops: [OpCost], peakFLOPs: [String: Double], bandwidth: Double,
                measuredSeconds: Double, samples: Int) {
        self.label = label; self.kind = kind; self.ops = ops; self.peakFLOPs = peakFLOPs
        self.bandwidth = bandwidth; self.measuredSeconds = measuredSeconds; self.samples = samples
    }

    public func predicted(_ e: Efficiency) -> Double {
        Roofline(peakFLOPs: peakFLOPs, bandwidth: bandwidth, efficiency: e).time(ops)
    }

    public var flops: Double { ops.reduce(0) { $0 + $1.flops } }
    public var bytes: Double { ops.reduce(0) { $0 + $1.bytes } }
}

public struct CalibrationResult: Codable, Equatable, Sendable {
    public struct Check: Codable, Equatable, Sendable {
        public var label: String
        public var kind: CaseKind
        public var measuredSeconds: Double
        /// Predicted by efficiencies fitted WITHOUT this point.
        public var predictedSeconds: Double
        public var errorPercent: Double
        public var flops: Double
        public var bytes: Double
        public var samples: Int
    }

    public var efficiency: Efficiency
    /// Whether each efficiency was determined by the data (a fraction with no memory-bound points
    /// cannot be fitted, and keeps the catalog default).
    public var computeFitted: Bool
    public var bandwidthFitted: Bool
    public var points: Int
    public var checks: [Check]
    public var medianAbsErrorPercent: Double?
    /// One line saying what the local profile's figures rest on.
    public var label: String
}

public enum Calibration {
    /// Turns a run's measured cases into calibration points: `gemm` cases (`GemmParams`; metric seconds)
    /// and `inference` cases (`InferenceParams`; metrics prefill_tokens_per_s and decode_tokens_per_s). Cases
    /// whose thread count the probe did not measure, or whose model is not in the catalog, are skipped; so
    /// are kinds measured elsewhere (`load`: the endpoint's hardware is not this machine's probe).
    public static func points(cases: [MeasuredCase], probe: ProbeFigures, models: [String: ModelShape]) -> [CalibrationPoint] {
        var out: [CalibrationPoint] = []
        for c in cases where c.kind == .gemm || c.kind == .inference {
            guard let pt = probe.at(threads: c.threads), let gflops = pt.sgemmGFLOPs,
                  let bw = probe.readGBps(threads: c.threads) else { continue }
            let peak = ["fp32": gflops * 1e9]
            if c.kind == .gemm {
                guard let g = GemmParams(params: c.params), let s = c.summary("seconds") else { continue }
                let (M, N, K) = (Double(g.m), Double(g.n), Double(g.k))
                let op = OpCost(name: c.name, flops: 2 * M * N * K, bytes: (M * K + N * K + M * N) * 4, dtype: "fp32")
                out.append(CalibrationPoint(label: "gemm \(c.name) \(g.phase) M=\(g.m) N=\(g.n) K=\(g.k) ×\(c.threads)t",
                                            kind: .gemm, ops: [op], peakFLOPs: peak, bandwidth: bw * 1e9,
                                            measuredSeconds: s.median, samples: s.count))
                continue
            }
            guard let p = InferenceParams(params: c.params), let model = models[p.model],
                  let precision = Precision(name: p.precision) else { continue }
            let (modelID, prompt, batch, generate) = (p.model, p.promptTokens, p.batch, p.generateTokens)
            // The benchmark prefills one sequence (then copies its cache to the batch's others): one pass of the prompt.
            if let s = c.summary("prefill_tokens_per_s"), s.median > 0 {
                let ops = PerformanceModel.forwardOps(model, precision, sequences: 1, newTokens: prompt, pastTokens: 0,
                                                      kvElementBytes: Double(EngineBytes.kvElement))
                out.append(CalibrationPoint(label: "prefill \(modelID) \(precision.rawValue) \(prompt) tokens (batch-\(batch) case) ×\(c.threads)t",
                                            kind: .inference, ops: ops, peakFLOPs: peak, bandwidth: bw * 1e9,
                                            measuredSeconds: Double(prompt) / s.median, samples: s.count))
            }
            if let s = c.summary("decode_tokens_per_s"), s.median > 0 {
                let ops = PerformanceModel.forwardOps(model, precision, sequences: batch, newTokens: 1,
                                                      pastTokens: prompt + generate / 2, kvElementBytes: Double(EngineBytes.kvElement))
                out.append(CalibrationPoint(label: "decode \(modelID) \(precision.rawValue) batch \(batch) ctx \(prompt + generate / 2) ×\(c.threads)t",
                                            kind: .inference, ops: ops, peakFLOPs: peak, bandwidth: bw * 1e9,
                                            measuredSeconds: Double(batch) / s.median, samples: s.count))
            }
        }
        return out
    }

    /// Each point's ops as (seconds at 100 % of peak compute, seconds at 100 % of peak bandwidth), sorted so
    /// that the fit's inner loop is a binary search and two multiplications per point: an op is compute-bound
    /// at efficiencies (c, b) when its compute seconds ÷ c ≥ its memory seconds ÷ b, i.e. when its ratio
    /// compute ÷ memory seconds ≥ c ÷ b. Ops sorted by that ratio, descending: the compute-bound ones are a
    /// prefix, and the point's time is (prefix's compute seconds) ÷ c + (the rest's memory seconds) ÷ b.
    struct Terms {
        struct Point {
            /// Ops' compute ÷ memory seconds, descending (+∞ for an op that reads nothing).
            var ratio: [Double]
            /// computePrefix[k]: compute seconds of the first k ops; memorySuffix[k]: memory seconds of ops k...
            var computePrefix: [Double]
            var memorySuffix: [Double]
        }
        var points: [Point]
        var logMeasured: [Double]
        init(_ points: [CalibrationPoint]) {
            self.points = points.map { p in
                let roof = Roofline(peakFLOPs: p.peakFLOPs, bandwidth: p.bandwidth, efficiency: Efficiency(compute: 1, bandwidth: 1))
                let ops = p.ops.map { (c: $0.flops / roof.peak($0.dtype), m: $0.bytes / p.bandwidth) }
                    .map { (c: $0.c, m: $0.m, r: $0.m > 0 ? $0.c / $0.m : Double.infinity) }
                    .sorted { $0.r > $1.r }
                var prefix = [0.0], suffix = [Double](repeating: 0, count: ops.count + 1)
                for op in ops { prefix.append(prefix.last! + op.c) }
                for k in stride(from: ops.count - 1, through: 0, by: -1) { suffix[k] = suffix[k + 1] + ops[k].m }
                return Point(ratio: ops.map(\.r), computePrefix: prefix, memorySuffix: suffix)
            }
            logMeasured = points.map { log($0.measuredSeconds) }
        }
        /// Seconds of point `i` at `e`: Σ max(c ÷ e.compute, m ÷ e.bandwidth) over its ops.
        func seconds(_ i: Int, _ e: Efficiency) -> Double {
            let p = points[i], threshold = e.compute / e.bandwidth
            // k = the number of ops whose ratio ≥ threshold (compute-bound); ties are equal either way.
            var lo = 0, hi = p.ratio.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if p.ratio[mid] >= threshold { lo = mid + 1 } else { hi = mid }
            }
            return p.computePrefix[lo] / e.compute + p.memorySuffix[lo] / e.bandwidth
        }
        func loss(_ e: Efficiency) -> Double {
            var total = 0.0
            for i in points.indices {
                let r = log(seconds(i, e)) - logMeasured[i]
                total += r * r
            }
            return total
        }
    }

    /// Sum of squared log errors: a 10 % miss counts the same on a 1 ms GEMM as on a 1 s prefill.
    static func loss(_ points: [CalibrationPoint], _ e: Efficiency) -> Double { Terms(points).loss(e) }

    static let lower = 0.005, upper = 2.0

    /// Least squares in log space over (compute, bandwidth) efficiencies: a coarse 41 × 41 log grid over
    /// [0.005, 2], then five rounds of 17 × 17 grids, each ±2.5 of the last grid's spacings around the best
    /// point (the window shrinks 3.2× a round; the last spacing is 0.045 % of an efficiency). The loss can have
    /// more than one minimum, so every fit, leave-one-out ones too, starts from the coarse grid.
    public static func fitEfficiency(_ points: [CalibrationPoint]) -> Efficiency {
        let terms = Terms(points)
        let (lo, hi) = (log(lower), log(upper))
        var best = Efficiency(compute: 0.5, bandwidth: 0.5)
        var bestLoss = Double.infinity
        func grid(_ lc: Double, _ hc: Double, _ lb: Double, _ hb: Double, steps: Int) {
            let bs = (0...steps).map { exp(lb + (hb - lb) * Double($0) / Double(steps)) }
            for i in 0...steps {
                let c = exp(lc + (hc - lc) * Double(i) / Double(steps))
                for b in bs {
                    let e = Efficiency(compute: c, bandwidth: b)
                    let l = terms.loss(e)
                    if l < bestLoss { bestLoss = l; best = e }
                }
            }
        }
        let coarse = 40, fine = 16, reach = 2.5
        grid(lo, hi, lo, hi, steps: coarse)
        var half = (hi - lo) / Double(coarse) * reach
        for _ in 0..<5 {
            grid(max(lo, log(best.compute) - half), min(hi, log(best.compute) + half),
                 max(lo, log(best.bandwidth) - half), min(hi, log(best.bandwidth) + half), steps: fine)
            half = 2 * half / Double(fine) * reach
        }
        return best
    }

    /// Fits on all points, checks every point against a fit without it, and keeps `fallback` for an
    /// efficiency the data cannot determine.
    public static func calibrate(_ points: [CalibrationPoint], fallback: Efficiency, fallbackLabel: String,
                                 leaveOneOut: Bool = true) -> CalibrationResult {
        guard points.count >= 2 else {
            return CalibrationResult(efficiency: fallback, computeFitted: false, bandwidthFitted: false, points: points.count,
                                     checks: [], medianAbsErrorPercent: nil,
                                     label: "\(fallbackLabel); too few local measurements to calibrate (\(points.count))")
        }
        // An efficiency is determined only when some op is bound by it at the fit; otherwise the loss is
        // flat in it and the grid's choice means nothing, so the fallback stands (unless the fallback would
        // make that bound bind and worsen the fit).
        func binding(_ pts: [CalibrationPoint], _ e: Efficiency) -> (compute: Bool, bandwidth: Bool) {
            var c = false, b = false
            for p in pts {
                let roof = Roofline(peakFLOPs: p.peakFLOPs, bandwidth: p.bandwidth, efficiency: e)
                for op in p.ops {
                    let tc = op.flops / (roof.peak(op.dtype) * e.compute), tm = op.bytes / (p.bandwidth * e.bandwidth)
                    if tc >= tm { c = true } else { b = true }
                }
            }
            return (c, b)
        }
        func fit(_ pts: [CalibrationPoint]) -> Efficiency {
            var e = fitEfficiency(pts)
            let bound = binding(pts, e)
            if !bound.compute { e.compute = max(e.compute, fallback.compute) }
            if !bound.bandwidth { e.bandwidth = max(e.bandwidth, fallback.bandwidth) }
            return e
        }
        func identified(_ e: Efficiency) -> (Bool, Bool) { binding(points, e) }
        let all = fit(points)
        let (cf, bf) = identified(all)
        var checks: [CalibrationResult.Check] = []
        for i in points.indices where leaveOneOut {
            var rest = points
            rest.remove(at: i)
            let e = fit(rest)
            let p = points[i]
            let pred = p.predicted(e)
            checks.append(.init(label: p.label, kind: p.kind, measuredSeconds: p.measuredSeconds, predictedSeconds: pred,
                                errorPercent: (pred / p.measuredSeconds - 1) * 100, flops: p.flops, bytes: p.bytes, samples: p.samples))
        }
        let errs = checks.map { abs($0.errorPercent) }.sorted()
        let median = errs.isEmpty ? Double.nan : Summary.percentile(errs, 0.5)
        let kinds = Dictionary(grouping: points, by: \.kind).map { "\($0.value.count) \($0.key)" }.sorted().joined(separator: ", ")
        let label = String(format: "local efficiencies fitted to %d measurements of this run (%@): compute %.3f%@, bandwidth %.3f%@%@",
                           points.count, kinds, all.compute, cf ? "" : " (not determined: default)", all.bandwidth,
                           bf ? "" : " (not determined: default)",
                           leaveOneOut ? String(format: "; leave-one-out median |error| %.1f%%", median) : "")
        return CalibrationResult(efficiency: all, computeFitted: cf, bandwidthFitted: bf, points: points.count, checks: checks,
                                 medianAbsErrorPercent: leaveOneOut ? median : nil, label: label)
    }
}
