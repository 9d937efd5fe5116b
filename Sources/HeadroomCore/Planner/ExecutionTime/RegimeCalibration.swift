// The local execution-time model, fitted per kernel regime. One pair of efficiencies cannot describe this
// machine: OpenBLAS sgemm with one row runs at a third of the engine's own matrix–vector kernels, the engine's
// single-sequence decode sits near the bandwidth roofline while its batched decode does not, and a short
// prompt's sgemm reaches half the compute efficiency of a long one. So every measurement belongs to a regime
// — the code path it ran through (`KernelRegime`), the weight format, the thread count — and each regime gets
// its own small model, fitted only to that regime's measurements, with its own leave-one-out error.
//
// The model of a regime is additive in the two roofline terms (seconds at 100 % of this machine's probed
// peaks, summed over the step's operations; the batched decode adds a term per extra pass of its kernel, and a
// regime that bends with size may be fitted piecewise — `RegimeModel`):
//
//     t = a · (bytes ÷ read bandwidth) + b · (FLOPs ÷ sgemm peak)
//
// a ≥ 1 / b ≥ 1 in practice: 1/a is the bandwidth efficiency the regime achieves when it only streams,
// 1/b the compute efficiency of its extra work per row. Within a regime the bytes hardly change with size
// (the weights dominate) while the FLOPs grow with rows, so the model is a straight line in the regime's size
// (rows of a GEMM, tokens of a prompt, sequences of a decode) — what the engine's kernels do: one pass over
// the weights plus work per row. A regime measured at one size only cannot separate a from b and fits one
// factor on the roofline time, max(bytes term, FLOPs term); it predicts well near that size and says so.
//
// Attention is inside the terms (its FLOPs and key/value bytes from `PerformanceModel.stepOps`); at the
// contexts the calibration scenarios measure it is a few percent of a step of `small`, too little for a
// coefficient of its own to be determined, so it shares its regime's coefficients (docs/planner.md).
import Foundation
import HeadroomScheduling

/// The code path a measurement ran through.
public enum KernelRegime: String, Codable, CaseIterable, Comparable, Sendable {
    /// OpenBLAS sgemm with one row (M = 1): a matrix–vector product through the GEMM path.
    case gemmRow = "gemm M=1"
    /// OpenBLAS sgemm with several rows.
    case gemm = "gemm M>1"
    /// The engine's prefill: one sequence's prompt through sgemm on dequantized weights.
    case prefill
    /// The engine's decode of one sequence: its single-sequence matrix–vector kernels.
    case decodeOne = "decode batch 1"
    /// The engine's batched decode: each weight read once for every sequence of the step.
    case decodeBatch = "decode batch>1"

    public static func < (a: KernelRegime, b: KernelRegime) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// What the regime's size counts.
    public var sizeName: String {
        switch self {
        case .gemmRow, .gemm: return "M"
        case .prefill: return "tokens"
        case .decodeOne, .decodeBatch: return "batch"
        }
    }
}

/// A regime: the code path, the weight format (a `Precision` name: fp32, int4 …) and the thread count.
public struct RegimeKey: Hashable, Codable, Comparable, Sendable, CustomStringConvertible {
    public var kernel: KernelRegime
    public var format: String
    public var threads: Int

    public init(kernel: KernelRegime, format: String, threads: Int) {
        self.kernel = kernel; self.format = format; self.threads = threads
    }

    public static func < (a: RegimeKey, b: RegimeKey) -> Bool {
        (a.kernel, a.format, a.threads) < (b.kernel, b.format, b.threads)
    }

    public var description: String { "\(kernel.rawValue) \(format) ×\(threads)t" }
}

/// One measurement in its regime: its size, its roofline terms at 100 % of the probed peaks at its thread
/// count, and the measured time.
public struct RegimePoint: Codable, Equatable, Sendable {
    public var label: String
    public var key: RegimeKey
    /// M of a GEMM, prompt tokens of a prefill, sequences of a decode step.
    public var size: Int
    /// Σ bytes ÷ read bandwidth, and Σ FLOPs ÷ sgemm peak, seconds.
    public var memorySeconds: Double
    public var computeSeconds: Double
    public var measuredSeconds: Double
    public var samples: Int
    /// Batched decode only: the passes over each weight row beyond the first (`extraPasses(batch:)`).
    public var extraPasses: Int

    public init(label: String, key: RegimeKey, size: Int, memorySeconds: Double, computeSeconds: Double,
                measuredSeconds: Double, samples: Int, extraPasses: Int = 0) {
        self.label = label; self.key = key; self.size = size; self.memorySeconds = memorySeconds
        self.computeSeconds = computeSeconds; self.measuredSeconds = measuredSeconds; self.samples = samples
        self.extraPasses = extraPasses
    }

    /// The passes of the batched decode kernel over a weight row beyond the first (`BatchedDecodeKernel`).
    public static func extraPasses(batch: Int) -> Int { max(0, BatchedDecodeKernel.passes(batch: batch) - 1) }

    /// The roofline terms of `ops` on a machine of `bandwidth` bytes/s and `peakFLOPs` FLOP/s.
    public static func terms(_ ops: [OpCost], bandwidth: Double, peakFLOPs: Double) -> (memory: Double, compute: Double) {
        var bytes = 0.0, flops = 0.0
        for op in ops { bytes += op.bytes; flops += op.flops }
        return (bytes / bandwidth, flops / peakFLOPs)
    }
}

/// One regime's fitted model: t = a · memory + b · compute, or `factor` × max(memory, compute) when the points
/// span one size only. With three sizes or more the line may be fitted piecewise: one (a, b) per pair of adjacent
/// sizes, fitted to the points at those two sizes, used between them (the first and last pairs beyond the ends)
/// — a regime whose time bends with size (the engine's prefill on two threads: 482, 590 and 1,291 ms for 16, 48
/// and 128 tokens of `small` f32) follows the bend instead of one line through it. Which of the two forms a regime
/// gets is decided by its own points: the one that predicts them better, each left out of its fit.
public struct RegimeModel: Codable, Equatable, Sendable {
    public var a: Double
    public var b: Double
    /// Seconds per extra pass over the weights, as a multiple of the memory term (batched decode; 0 elsewhere).
    public var c: Double = 0
    /// Set when the model is one factor on the roofline time (one size measured).
    public var factor: Double?
    /// Set with three sizes or more (and no extra passes): the line of each pair of adjacent sizes (`a`, `b`
    /// hold the global line).
    public var segments: [Segment]?

    public struct Segment: Codable, Equatable, Sendable {
        /// The two sizes the segment was fitted to; it is used for sizes up to `high` (the last one beyond it).
        public var low: Int
        public var high: Int
        public var a: Double
        public var b: Double
    }

    public init(a: Double, b: Double, c: Double = 0, factor: Double?, segments: [Segment]? = nil) {
        self.a = a; self.b = b; self.c = c; self.factor = factor; self.segments = segments
    }

    /// Seconds at `size` (rows, tokens or sequences) with these roofline terms and `extraPasses` over the weights.
    public func seconds(memory: Double, compute: Double, size: Int, extraPasses: Int = 0) -> Double {
        if let f = factor { return f * max(memory, compute) }
        if let segs = segments, !segs.isEmpty {
            let seg = segs.first { size <= $0.high } ?? segs[segs.count - 1]
            return seg.a * memory + seg.b * compute
        }
        return a * memory + b * compute + c * Double(extraPasses) * memory
    }

    /// Fits `points` (of one regime) by least squares on the relative error, coefficients ≥ 0; nil without points.
    public static func fit(_ points: [RegimePoint]) -> RegimeModel? {
        guard !points.isEmpty else { return nil }
        let sizes = Set(points.map(\.size)).sorted()
        if sizes.count < 2 {
            // One factor k minimising Σ (k r_i / t_i − 1)²: k = Σ (r/t) ÷ Σ (r/t)².
            var s1 = 0.0, s2 = 0.0
            for p in points {
                let q = max(p.memorySeconds, p.computeSeconds) / p.measuredSeconds
                s1 += q; s2 += q * q
            }
            guard s2 > 0 else { return nil }
            return RegimeModel(a: 0, b: 0, factor: s1 / s2)
        }
        if points.contains(where: { $0.extraPasses > 0 }) {
            let x = nnls(points.map { [$0.memorySeconds, $0.computeSeconds, Double($0.extraPasses) * $0.memorySeconds] },
                         points.map(\.measuredSeconds))
            return RegimeModel(a: x[0], b: x[1], c: x[2], factor: nil)
        }
        let (a, b) = line(points)
        let single = RegimeModel(a: a, b: b, factor: nil)
        guard sizes.count >= 3, let piecewise = piecewise(points) else { return single }
        // The piecewise model where it predicts the regime's own points better, each left out of the fit that
        // predicts it (a bend is followed; a straight regime with one odd measurement keeps its line).
        return looError(points, piecewise: true) < looError(points, piecewise: false) ? piecewise : single
    }

    /// The line of each pair of adjacent sizes (nil under three sizes).
    static func piecewise(_ points: [RegimePoint]) -> RegimeModel? {
        let sizes = Set(points.map(\.size)).sorted()
        guard sizes.count >= 3 else { return nil }
        let (a, b) = line(points)
        var segments: [Segment] = []
        for i in 0..<(sizes.count - 1) {
            let (lo, hi) = (sizes[i], sizes[i + 1])
            let (sa, sb) = line(points.filter { $0.size == lo || $0.size == hi })
            segments.append(Segment(low: lo, high: hi, a: sa, b: sb))
        }
        return RegimeModel(a: a, b: b, factor: nil, segments: segments)
    }

    /// Median |relative error| of each point predicted by the form (one line, or piecewise) fitted without it.
    static func looError(_ points: [RegimePoint], piecewise usePieces: Bool) -> Double {
        var errs: [Double] = []
        for i in points.indices {
            var rest = points
            let p = rest.remove(at: i)
            let m: RegimeModel
            if usePieces, let pw = piecewise(rest) {
                m = pw
            } else {
                let (a, b) = line(rest)
                m = RegimeModel(a: a, b: b, factor: nil)
            }
            errs.append(abs(m.seconds(memory: p.memorySeconds, compute: p.computeSeconds, size: p.size) / p.measuredSeconds - 1))
        }
        return errs.isEmpty ? .infinity : Summary.percentile(errs.sorted(), 0.5)
    }

    /// The non-negative least-squares line through `points` (relative error): `nnls` over the two roofline terms.
    static func line(_ points: [RegimePoint]) -> (a: Double, b: Double) {
        let x = nnls(points.map { [$0.memorySeconds, $0.computeSeconds] }, points.map(\.measuredSeconds))
        return (x[0], x[1])
    }

    /// Non-negative least squares on the relative error, min Σ (Σ_j x_j f_ij / t_i − 1)², for a few terms: every
    /// subset of the terms solved by its normal equations, the best solution with no negative coefficient kept.
    static func nnls(_ features: [[Double]], _ measured: [Double]) -> [Double] {
        let k = features.first?.count ?? 0
        var best = [Double](repeating: 0, count: k), bestLoss = Double.infinity
        for mask in 1..<(1 << k) {
            let cols = (0..<k).filter { mask & (1 << $0) != 0 }
            // Normal equations A x = y over the chosen columns, rows scaled by 1/t.
            var A = [[Double]](repeating: [Double](repeating: 0, count: cols.count), count: cols.count)
            var y = [Double](repeating: 0, count: cols.count)
            for (f, t) in zip(features, measured) {
                for (i, ci) in cols.enumerated() {
                    y[i] += f[ci] / t
                    for (j, cj) in cols.enumerated() { A[i][j] += f[ci] * f[cj] / (t * t) }
                }
            }
            guard let sol = solve(A, y), sol.allSatisfy({ $0 >= 0 && $0.isFinite }) else { continue }
            var x = [Double](repeating: 0, count: k)
            for (i, ci) in cols.enumerated() { x[ci] = sol[i] }
            let loss = zip(features, measured).reduce(0.0) { s, ft in
                let r = zip(ft.0, x).reduce(0.0) { $0 + $1.0 * $1.1 } / ft.1 - 1
                return s + r * r
            }
            if loss < bestLoss { bestLoss = loss; best = x }
        }
        return best
    }

    /// Gaussian elimination with partial pivoting; nil when singular.
    static func solve(_ A0: [[Double]], _ y0: [Double]) -> [Double]? {
        var A = A0, y = y0
        let n = y.count
        let scale = A.flatMap { $0 }.map(abs).max() ?? 0
        guard scale > 0 else { return nil }
        for col in 0..<n {
            guard let p = (col..<n).max(by: { abs(A[$0][col]) < abs(A[$1][col]) }), abs(A[p][col]) > 1e-12 * scale else { return nil }
            A.swapAt(col, p); y.swapAt(col, p)
            for r in (col + 1)..<n {
                let f = A[r][col] / A[col][col]
                for c in col..<n { A[r][c] -= f * A[col][c] }
                y[r] -= f * y[col]
            }
        }
        var x = [Double](repeating: 0, count: n)
        for r in stride(from: n - 1, through: 0, by: -1) {
            var s = y[r]
            for c in (r + 1)..<n { s -= A[r][c] * x[c] }
            x[r] = s / A[r][r]
        }
        return x
    }

    /// "1.14 × memory + 2.44 × compute time" (a and b of the line through all sizes: multiples of the time the
    /// probed read bandwidth and sgemm peak would take; "piecewise" when the model uses a line per pair of adjacent
    /// sizes), or "1.32 × the roofline time". Multiples, not efficiencies: b below 1 is a kernel faster than the
    /// probe's sgemm (the integer formats' dot products), which a percentage of that peak would misstate.
    public var summary: String {
        if let f = factor { return String(format: "%.2f × the roofline time (one size measured)", f) }
        func x(_ v: Double) -> String { String(format: v < 10 ? "%.2f" : "%.1f", v) }
        return "\(x(a)) × memory + \(x(b)) × compute time" + (c > 0 ? ", + \(x(c)) × memory per extra pass" : "")
            + (segments.map { " overall; piecewise over \($0.count) segments" } ?? "")
    }
}

/// A measurement against the per-regime model: a fitted one against the fit of its regime made without it.
public struct RegimeCheck: Codable, Equatable, Sendable {
    public var point: RegimePoint
    /// Nil when nothing else predicts it (its regime holds no other point, and no neighbouring regime exists).
    public var predictedSeconds: Double?
    /// Which fit predicted it when not its own regime's ("decode batch>1 int4 ×1t": another thread count).
    public var via: String?
    public var errorPercent: Double? { predictedSeconds.map { ($0 / point.measuredSeconds - 1) * 100 } }
}

/// One regime's fit and its leave-one-out errors.
public struct RegimeFit: Codable, Equatable, Sendable {
    public var key: RegimeKey
    public var model: RegimeModel
    public var points: Int
    public var sizes: [Int]
    public var medianAbsErrorPercent: Double?
    public var worstAbsErrorPercent: Double?
}

/// The per-regime model of this machine: every regime's fit, every measurement's leave-one-out check.
public struct RegimeCalibration: Codable, Equatable, Sendable {
    public var fits: [RegimeFit]
    public var checks: [RegimeCheck]
    /// The run the measurements came from (nil when not from the store).
    public var runID: Int64?

    /// Fits every regime of `points` and checks each point against its regime fitted without it.
    public init(points: [RegimePoint], runID: Int64? = nil) {
        self.runID = runID
        let byKey = Dictionary(grouping: points, by: \.key)
        var models: [RegimeKey: RegimeModel] = [:]
        for (k, pts) in byKey { models[k] = RegimeModel.fit(pts) }
        let checks: [RegimeCheck] = points.map { p in
            var rest = byKey[p.key]!
            rest.remove(at: rest.firstIndex(of: p)!)
            if let m = RegimeModel.fit(rest) {
                return RegimeCheck(point: p, predictedSeconds: m.seconds(memory: p.memorySeconds, compute: p.computeSeconds, size: p.size, extraPasses: p.extraPasses), via: nil)
            }
            // Alone in its regime: the nearest regime of the same kernel and format (another thread count).
            if let (k, m) = Self.nearest(p.key, in: models, excluding: p.key) {
                return RegimeCheck(point: p, predictedSeconds: m.seconds(memory: p.memorySeconds, compute: p.computeSeconds, size: p.size, extraPasses: p.extraPasses), via: k.description)
            }
            return RegimeCheck(point: p, predictedSeconds: nil, via: nil)
        }
        self.checks = checks
        fits = byKey.keys.sorted().compactMap { k in
            guard let m = models[k] else { return nil }
            let errs = checks.filter { $0.point.key == k }.compactMap { $0.errorPercent.map(abs) }.sorted()
            return RegimeFit(key: k, model: m, points: byKey[k]!.count, sizes: Set(byKey[k]!.map(\.size)).sorted(),
                             medianAbsErrorPercent: errs.isEmpty ? nil : Summary.percentile(errs, 0.5), worstAbsErrorPercent: errs.last)
        }
    }

    /// The fit of `key`, else of the same kernel and format at the nearest thread count.
    public func model(for key: RegimeKey) -> (model: RegimeModel, key: RegimeKey)? { Self.model(for: key, in: fits) }

    public static func model(for key: RegimeKey, in fits: [RegimeFit]) -> (model: RegimeModel, key: RegimeKey)? {
        var models: [RegimeKey: RegimeModel] = [:]
        for f in fits { models[f.key] = f.model }
        if let m = models[key] { return (m, key) }
        return nearest(key, in: models, excluding: nil).map { ($0.1, $0.0) }
    }

    static func nearest(_ key: RegimeKey, in models: [RegimeKey: RegimeModel], excluding: RegimeKey?) -> (RegimeKey, RegimeModel)? {
        models.filter { $0.key.kernel == key.kernel && $0.key.format == key.format && $0.key != excluding }
            .min { (abs($0.key.threads - key.threads), $0.key.threads) < (abs($1.key.threads - key.threads), $1.key.threads) }
            .map { ($0.key, $0.value) }
    }

    /// Predicts points the fit never saw (a held-out scenario's) with the full fits.
    public func check(_ points: [RegimePoint]) -> [RegimeCheck] {
        points.map { p in
            guard let (m, k) = model(for: p.key) else { return RegimeCheck(point: p, predictedSeconds: nil, via: nil) }
            return RegimeCheck(point: p, predictedSeconds: m.seconds(memory: p.memorySeconds, compute: p.computeSeconds, size: p.size, extraPasses: p.extraPasses),
                               via: k == p.key ? nil : k.description)
        }
    }

    /// Median and worst |error| of `checks` that have a prediction, and how many have none.
    public static func errors(_ checks: [RegimeCheck]) -> (median: Double?, worst: Double?, unchecked: Int) {
        let errs = checks.compactMap { $0.errorPercent.map(abs) }.sorted()
        return (errs.isEmpty ? nil : Summary.percentile(errs, 0.5), errs.last, checks.count - errs.count)
    }

    public var medianAbsErrorPercent: Double? { Self.errors(checks).median }
    public var worstAbsErrorPercent: Double? { Self.errors(checks).worst }

    /// One line for the plan: what the local profile's step times rest on and how good they are.
    public var label: String {
        let (median, worst, unchecked) = Self.errors(checks)
        let run = runID.map { " of run \($0)" } ?? ""
        var s = "per-regime model fitted to \(checks.count) measurements\(run) in \(fits.count) regimes"
        if let median, let worst {
            s += String(format: "; leave-one-out median |error| %.1f %%, worst %.1f %%", median, worst)
        }
        if unchecked > 0 { s += "; \(unchecked) alone in their regime, unchecked" }
        return s
    }
}

extension RegimeCalibration {
    /// The regime points of a run's measured cases: `gemm` cases (`GemmParams`; metric seconds) and `inference`
    /// cases (`InferenceParams`; prefill_tokens_per_s of one sequence's prompt, decode_tokens_per_s of the batch).
    /// Cases whose thread count the probe did not measure, whose model the catalog lacks or whose precision the
    /// planner does not know are skipped.
    ///
    /// The inference benchmark prefills ONE sequence of the prompt (then copies its cache to the others), so a
    /// prefill point is one pass of `prompt` tokens whatever the batch; a decode point is one step of the batch
    /// at the mean context of the decoded tokens (prompt + generated/2).
    public static func points(cases: [MeasuredCase], probe: ProbeFigures, models: [String: ModelShape]) -> [RegimePoint] {
        var out: [RegimePoint] = []
        for c in cases where c.kind == .gemm || c.kind == .inference {
            guard let pt = probe.at(threads: c.threads), let gflops = pt.sgemmGFLOPs, let bw = probe.readGBps(threads: c.threads) else { continue }
            let peak = gflops * 1e9, bandwidth = bw * 1e9
            if c.kind == .gemm {
                guard let g = GemmParams(params: c.params), let s = c.summary("seconds"), s.median > 0 else { continue }
                let (M, N, K) = (Double(g.m), Double(g.n), Double(g.k))
                let op = OpCost(name: c.name, flops: 2 * M * N * K, bytes: (M * K + N * K + M * N) * 4, dtype: "fp32")
                let t = RegimePoint.terms([op], bandwidth: bandwidth, peakFLOPs: peak)
                out.append(RegimePoint(label: "gemm \(c.name) M=\(g.m) N=\(g.n) K=\(g.k) ×\(c.threads)t",
                                       key: RegimeKey(kernel: g.m == 1 ? .gemmRow : .gemm, format: "fp32", threads: c.threads),
                                       size: g.m, memorySeconds: t.memory, computeSeconds: t.compute,
                                       measuredSeconds: s.median, samples: s.count))
                continue
            }
            guard let p = InferenceParams(params: c.params), let model = models[p.model], let precision = Precision(name: p.precision) else { continue }
            let kv = Double(EngineBytes.kvElement)
            if let s = c.summary("prefill_tokens_per_s"), s.median > 0 {
                // The linear layers' work at the rows the engine's sgemm multiplies (`PrefillKernel`).
                let shape = BatchShape.uniform(sequences: 1, newTokens: p.promptTokens, pastTokens: 0).withPrefillRowsPadded
                let ops = PerformanceModel.stepOps(model, precision, shape, kvElementBytes: kv)
                let t = RegimePoint.terms(ops, bandwidth: bandwidth, peakFLOPs: peak)
                out.append(RegimePoint(label: "prefill \(p.model) \(p.precision) \(p.promptTokens) tokens ×\(c.threads)t",
                                       key: RegimeKey(kernel: .prefill, format: precision.rawValue, threads: c.threads),
                                       size: PrefillKernel.sgemmRows(p.promptTokens), memorySeconds: t.memory, computeSeconds: t.compute,
                                       measuredSeconds: Double(p.promptTokens) / s.median, samples: s.count))
            }
            if let s = c.summary("decode_tokens_per_s"), s.median > 0, p.batch >= 1 {
                let context = p.promptTokens + p.generateTokens / 2
                let ops = PerformanceModel.stepOps(model, precision, .uniform(sequences: p.batch, newTokens: 1, pastTokens: context),
                                                   kvElementBytes: kv)
                let t = RegimePoint.terms(ops, bandwidth: bandwidth, peakFLOPs: peak)
                out.append(RegimePoint(label: "decode \(p.model) \(p.precision) batch \(p.batch) ctx \(context) ×\(c.threads)t",
                                       key: RegimeKey(kernel: p.batch == 1 ? .decodeOne : .decodeBatch, format: precision.rawValue,
                                                      threads: c.threads),
                                       size: p.batch, memorySeconds: t.memory, computeSeconds: t.compute,
                                       measuredSeconds: Double(p.batch) / s.median, samples: s.count,
                                       extraPasses: p.batch > 1 ? RegimePoint.extraPasses(batch: p.batch) : 0))
            }
        }
        return merged(out)
    }

    /// One point per configuration: measurements of the same regime, size and work (the prefill of a prompt,
    /// measured again in every batch size's case) become one, the mean of their medians with their samples
    /// pooled — so that leave-one-out never predicts a measurement from a repeat of itself.
    static func merged(_ points: [RegimePoint]) -> [RegimePoint] {
        struct Work: Hashable { var key: RegimeKey; var size: Int; var memory: Double; var compute: Double }
        var order: [Work] = []
        var groups: [Work: [RegimePoint]] = [:]
        for p in points {
            let w = Work(key: p.key, size: p.size, memory: p.memorySeconds, compute: p.computeSeconds)
            if groups[w] == nil { order.append(w) }
            groups[w, default: []].append(p)
        }
        return order.map { w in
            let g = groups[w]!
            guard g.count > 1 else { return g[0] }
            var p = g[0]
            p.measuredSeconds = g.map(\.measuredSeconds).reduce(0, +) / Double(g.count)
            p.samples = g.map(\.samples).reduce(0, +)
            p.label += " (mean of \(g.count) cases)"
            return p
        }
    }
}

/// Seconds of one step of `headroom serve`'s engine on this machine, by the per-regime model: the decodes through
/// the single-sequence (one decode) or batched (several) decode regime, each prompt chunk as its own pass through
/// the prefill regime — as `ServingSession.step` runs them. A weight format with no regime measured gets no such
/// predictor (the planner keeps the roofline with the efficiencies fitted to every measurement at once); one with
/// some regimes measured prices the others' parts of a step by that roofline (`fallback`), and its basis says so.
public struct RegimeExecutionTime: ExecutionTimePredictor {
    public let model: ModelShape
    public let precision: Precision
    /// Peak FLOP/s and bytes/s the regimes' terms are counted against (the local profile's probe figures).
    public let peakFLOPs: Double
    public let bandwidth: Double
    public let kvElementBytes: Double
    let decodeOne: RegimeModel?
    let decodeBatch: RegimeModel?
    let prefill: RegimeModel?
    public let fallback: RooflineExecutionTime
    public let basis: String

    /// The local profile's predictor; nil when it has no regime fit for `precision` or the configuration is not one device.
    public init?(model: ModelShape, precision: Precision, tensorParallel: Int, hardware h: HardwareProfile) {
        guard let fits = h.regimeFits, !fits.isEmpty, tensorParallel == 1, let threads = h.threads,
              let peak = h.peakTflops["fp32"] else { return nil }
        self.model = model; self.precision = precision
        peakFLOPs = peak * 1e12; bandwidth = h.bandwidthGbps * 1e9; kvElementBytes = h.kvElementBytes(precision)
        func fit(_ k: KernelRegime) -> (RegimeModel, RegimeKey)? {
            RegimeCalibration.model(for: RegimeKey(kernel: k, format: precision.rawValue, threads: threads), in: fits)
        }
        let one = fit(.decodeOne), batch = fit(.decodeBatch), pre = fit(.prefill)
        guard one != nil || batch != nil || pre != nil else { return nil }   // a format never measured: the roofline's
        decodeOne = one?.0; decodeBatch = batch?.0; prefill = pre?.0
        fallback = RooflineExecutionTime(model: model, precision: precision, tensorParallel: 1, hardware: h)
        let missing = [(one, "decode batch 1"), (batch, "decode batch>1"), (pre, "prefill")].filter { $0.0 == nil }.map(\.1)
        basis = "per-regime model of \(h.id) (\(precision.rawValue), \(threads) threads)"
            + (missing.isEmpty ? "" : "; \(missing.joined(separator: ", ")) not measured in \(precision.rawValue): \(fallback.basis)")
    }

    func seconds(_ shape: BatchShape, _ m: RegimeModel?, size: Int, extraPasses: Int = 0) -> Double {
        guard let m else { return fallback.iterationSeconds(shape) }
        let t = RegimePoint.terms(PerformanceModel.stepOps(model, precision, shape, kvElementBytes: kvElementBytes),
                                  bandwidth: bandwidth, peakFLOPs: peakFLOPs)
        return m.seconds(memory: t.memory, compute: t.compute, size: size, extraPasses: extraPasses)
    }

    public func iterationSeconds(_ batch: BatchShape) -> Double {
        var t = 0.0
        if batch.decodes > 0 {
            t += seconds(batch.decodePart, batch.decodes == 1 ? decodeOne : decodeBatch, size: batch.decodes,
                         extraPasses: batch.decodes == 1 ? 0 : RegimePoint.extraPasses(batch: batch.decodes))
        }
        if let chunk = batch.meanChunk {
            t += Double(batch.prefillChunks) * seconds(chunk.withPrefillRowsPadded, prefill, size: PrefillKernel.sgemmRows(chunk.prefillTokens))
        }
        return t
    }
}

/// The engine's batched decode kernels (`batch_rows_int`, `batch_rows_int_avx2` and `batch_rows_float` in quant.c)
/// take a weight row through the batch in groups of 16, 8, 4, 2 and 1 sequences, largest first, each group its own
/// pass over the row (and, in a quantized format, its own dequantization): 3 sequences are 2 + 1, two passes; 8 are
/// one; 24 are 16 + 8. What the execution-time models count (`RegimePoint.extraPasses`, `MeasuredStepTime`). The
/// AVX2 float kernel (`batch_rows_float_avx2`) stops at groups of 8 (16 accumulators would not fit its registers),
/// so there 16 rows are two passes; the step model's knots at 16 and 32 decode rows absorb that.
public enum BatchedDecodeKernel {
    /// Group sizes, largest first, as quant.c picks them.
    public static let groups = [16, 8, 4, 2, 1]

    /// Passes over each weight row for `batch` sequences (0 for none).
    public static func passes(batch: Int) -> Int {
        var left = max(0, batch), passes = 0
        for g in groups { passes += left / g; left %= g }
        return passes
    }

    /// The passes beyond one per started group of 16: what a remainder that is not a power of two adds. 0 for
    /// 1, 2, 4, 8, 16, 20 (16 + 4), 24 (16 + 8), 32; 1 for 3 (2 + 1) and 12 (8 + 4); 2 for 7 (4 + 2 + 1).
    public static func remainderExtraPasses(batch: Int) -> Int {
        guard batch > 0 else { return 0 }
        return passes(batch: batch) - (batch + 15) / 16
    }
}

/// The engine's prefill products (`QMatmul.forward` in HeadroomKernels): a step's chunk rows go through sgemm
/// together, padded with zero rows to a multiple of 16 (OpenBLAS's sgemm took the rest of 16 in smaller blocks
/// that cost nearly a block each: 92 rows measured 1.29× 96's). A chunk of one token is a decode row instead. What
/// the execution-time models count as a step's chunk rows (`MeasuredStepTime`, the per-regime prefill).
public enum PrefillKernel {
    public static let rowBlock = 16

    /// The rows sgemm multiplies for `rows` chunk rows: rounded up to a multiple of `rowBlock`; 0 and 1 as they are.
    public static func sgemmRows(_ rows: Int) -> Int {
        rows <= 1 ? rows : (rows + rowBlock - 1) / rowBlock * rowBlock
    }
}
