// The execution-time model of this machine's engine, fitted to serving steps measured on it (`headroom bench
// steps`, cases of kind `step`): what the simulator asks for every step of `headroom serve`'s scheduler when it
// simulates this machine. Every time it returns is a prediction; its basis names the run and the fit's
// leave-one-out error.
import Foundation

/// Why step cases give no predictor.
public enum StepFitError: Error, Equatable, CustomStringConvertible, Sendable {
    /// No complete run in the store holds step cases for this model, precision and thread count.
    case notMeasured(model: String, precision: String, threads: Int, store: String)
    /// The cases mix configurations, or hold none.
    case badCases(String)
    /// The shapes do not determine the model's terms.
    case tooFewShapes(String)

    public var description: String {
        switch self {
        case .notMeasured(let m, let p, let t, let store):
            return "\(store): no complete run holds steps measured for \(m) \(p) on \(t) thread\(t == 1 ? "" : "s"); "
                + "run `headroom bench steps --model \(m) --precision \(p) --threads \(t)` first"
        case .badCases(let why): return "cannot fit step times: \(why)"
        case .tooFewShapes(let why): return "too few step shapes to fit: \(why)"
        }
    }
}

/// One measured step: its shape and the median of its repetitions.
public struct StepTimePoint: Equatable, Sendable {
    public var params: StepParams
    /// The median of the repetitions, seconds.
    public var seconds: Double
    public var samples: Int

    public init(params: StepParams, seconds: Double, samples: Int) {
        self.params = params; self.seconds = seconds; self.samples = samples
    }
}

/// A measured step against the fit: a fitted step against the fit made without it (leave-one-out), a mixed
/// step (held out of every fit) against the full fit.
public struct StepFitCheck: Equatable, Sendable {
    public var point: StepTimePoint
    /// True for a mixed step: never fitted, predicted by the full fit.
    public var heldOut: Bool
    /// Nil when the shapes left without this one do not determine a fit.
    public var predictedSeconds: Double?
    /// (predicted − measured) ÷ measured.
    public var relativeError: Double? { predictedSeconds.map { ($0 - point.seconds) / point.seconds } }
}

/// A monotone piecewise-linear function of a row count: zero at zero rows, through (knots[i], values[i]), and
/// linear beyond both ends with the slope of the nearest segment (floored at zero below the first knot).
public struct PiecewiseLinear: Equatable, Sendable {
    /// Ascending, positive.
    public let knots: [Double]
    /// Non-decreasing, one per knot.
    public let values: [Double]

    public init(knots: [Double], values: [Double]) {
        precondition(knots.count == values.count && knots.count >= 2, "a piecewise-linear function needs two knots at least")
        self.knots = knots; self.values = values
    }

    @inline(__always)
    public func callAsFunction(_ x: Double) -> Double {
        guard x > 0 else { return 0 }
        let n = knots.count
        var i = 0
        while i < n - 2 && x >= knots[i + 1] { i += 1 }
        let y = values[i] + (values[i + 1] - values[i]) * (x - knots[i]) / (knots[i + 1] - knots[i])
        return Swift.max(0, y)
    }
}

/// Seconds of one engine step on this machine, fitted to steps measured here:
///
///     t = Fd(decode rows) + e · extra passes(decode rows) + Fc(chunk rows) + a · attended keys
///
/// following how `ServingSession.step` computes: every row of a step goes through the linear layers together,
/// but the single-token rows (decodes, and chunks of one token, which the engine lays out as decodes) through the
/// batched matrix–vector kernels — each weight read once for all of them, a lone one through the faster
/// single-sequence kernel — and the rows of multi-token chunks through sgemm, each its own pass over the weights.
/// So Fd and Fc are separate monotone piecewise-linear functions over the row counts measured (a knot at each),
/// linear beyond the last knot, and attention adds a cost per key attended. The batched kernel takes the decode
/// rows in groups of 16, 8, 4, 2, 1 (`BatchedDecodeKernel`), a pass over every weight row each: 3 rows cost two
/// passes where 2 and 4 cost one. Fd's knots are the row counts the kernel takes in whole groups (1, 2, 4, 8,
/// 16, 32, …), and each pass a remainder adds beyond that costs e (`remainderExtraPasses`), fitted from the
/// decode steps of other row counts (measured 2026-12-01 in `headroom serve`'s step log: q4_0 steps of 3, 5, 6,
/// 7 decodes ran 25–40 % above a line through 2, 4 and 8 — e ≈ 11 ms on `small`, 2 threads). The coefficients (knot values as
/// non-negative increments, and a ≥ 0) minimise the squared relative error over the decode-only and prefill-only
/// steps (non-negative least squares); steps that mix a chunk with decodes are held out, to check that the
/// sum predicts them. The output head (one row per sampled sequence) and per-step overheads are inside Fd and
/// Fc as measured, so a mixed step counts them twice (a few milliseconds of `small`, docs/steps.md).
public struct MeasuredStepTime: ExecutionTimePredictor {
    public let model: String
    public let precision: String
    public let threads: Int
    /// The run the steps were measured in (nil for points not from the store).
    public let runID: Int64?
    /// Seconds of the single-token rows (Fd) and of the chunk rows (Fc).
    public let decodeRows: PiecewiseLinear
    public let chunkRows: PiecewiseLinear
    /// e: seconds of each pass of the batched decode kernel beyond one per started group of 16 (0 when no
    /// measured decode step had one: the fit then cannot tell, and says so in `basis`).
    public let secondsPerExtraPass: Double
    /// Whether some fitted decode step had extra passes (so `secondsPerExtraPass` was fitted, not assumed 0).
    public let extraPassesMeasured: Bool
    /// a: seconds per attended key (a key of the cache, or an earlier token of the same chunk, for one new token).
    public let secondsPerKey: Double
    /// Every measured step: fitted ones with their leave-one-out prediction, mixed ones held out, in input order.
    public let checks: [StepFitCheck]
    public let basis: String

    /// Fits `points`, steps of one model, precision and thread count.
    public init(points: [StepTimePoint], model: String, precision: String, threads: Int, runID: Int64? = nil) throws {
        let fitted = points.filter { !$0.params.isMixed }
        let fit = try Self.fit(fitted)
        self.model = model; self.precision = precision; self.threads = threads; self.runID = runID
        decodeRows = fit.decode; chunkRows = fit.chunk; secondsPerKey = fit.perKey; secondsPerExtraPass = fit.perPass
        extraPassesMeasured = fitted.contains { Self.extraPasses(Self.rows($0.params.shape).decode) > 0 }
        checks = points.map { p in
            if p.params.isMixed {
                return StepFitCheck(point: p, heldOut: true, predictedSeconds: Self.seconds(p.params.shape, fit))
            }
            var rest = fitted
            rest.remove(at: rest.firstIndex(of: p)!)
            let loo = try? Self.fit(rest)
            return StepFitCheck(point: p, heldOut: false, predictedSeconds: loo.map { Self.seconds(p.params.shape, $0) })
        }
        basis = Self.basis(model: model, precision: precision, threads: threads, runID: runID, checks: checks,
                           extraPassesMeasured: extraPassesMeasured)
    }

    /// Fits the `step` cases of one configuration (their `step_seconds` medians).
    public init(cases: [MeasuredCase], runID: Int64? = nil) throws {
        let steps = cases.filter { $0.kind == .step }
        var points: [StepTimePoint] = []
        var config: (model: String, precision: String, threads: Int)?
        for c in steps {
            guard let p = StepParams(params: c.params) else { throw StepFitError.badCases("case \(c.name) lacks a step's parameters") }
            guard let s = c.summary("step_seconds"), s.median > 0 else { throw StepFitError.badCases("case \(c.name) (\(p.label)) has no step_seconds") }
            if let config, config != (p.model, p.precision, c.threads) {
                throw StepFitError.badCases("the cases mix \(config.model) \(config.precision) on \(config.threads) threads with \(p.model) \(p.precision) on \(c.threads)")
            }
            config = (p.model, p.precision, c.threads)
            points.append(StepTimePoint(params: p, seconds: s.median, samples: s.count))
        }
        guard let config else { throw StepFitError.badCases("no step cases") }
        try self.init(points: points, model: config.model, precision: config.precision, threads: config.threads, runID: runID)
    }

    public func iterationSeconds(_ batch: BatchShape) -> Double {
        Self.seconds(batch, (decodeRows, chunkRows, secondsPerKey, secondsPerExtraPass))
    }

    /// |relative error| of the fitted steps' leave-one-out predictions, and of the held-out mixed steps.
    public var leaveOneOut: ErrorSummary? { ErrorSummary(checks.filter { !$0.heldOut }) }
    public var heldOut: ErrorSummary? { ErrorSummary(checks.filter(\.heldOut)) }

    /// The median and the worst |relative error| of some checks.
    public struct ErrorSummary: Equatable, Sendable {
        public var median: Double
        public var worst: Double
        /// Checks with a prediction, of `of`.
        public var count: Int
        public var of: Int

        init?(_ checks: [StepFitCheck]) {
            let errors = checks.compactMap(\.relativeError).map(abs).sorted()
            guard !errors.isEmpty else { return nil }
            median = Summary.percentile(errors, 0.5); worst = errors.last!; count = errors.count; of = checks.count
        }
    }

    // MARK: the fit

    typealias Fit = (decode: PiecewiseLinear, chunk: PiecewiseLinear, perKey: Double, perPass: Double)

    /// The batched decode kernel's passes beyond one per started group of 16, for `rows` decode rows.
    @inline(__always)
    static func extraPasses(_ rows: Double) -> Double {
        rows > 1 ? Double(BatchedDecodeKernel.remainderExtraPasses(batch: Int(rows))) : 0
    }

    /// The rows a step sends through the batched matrix–vector kernels and through sgemm: every chunk's rows
    /// together, padded as the engine pads them (`PrefillKernel.sgemmRows`). A chunk of one token is a decode row
    /// to the engine; `BatchShape` keeps only sums, so chunks count as such only when all are single.
    @inline(__always)
    static func rows(_ b: BatchShape) -> (decode: Double, chunk: Double) {
        let singles = b.prefillChunks > 0 && b.prefillTokens == b.prefillChunks
        return (Double(b.decodes + (singles ? b.prefillChunks : 0)), singles ? 0 : Double(PrefillKernel.sgemmRows(b.prefillTokens)))
    }

    @inline(__always)
    static func seconds(_ b: BatchShape, _ f: Fit) -> Double {
        guard !b.isEmpty else { return 0 }
        let r = rows(b)
        return f.decode(r.decode) + f.perPass * extraPasses(r.decode) + f.chunk(r.chunk) + f.perKey * b.attendedKeys
    }

    /// Non-negative least squares on relative errors over ramp columns (each knot's increment over the one
    /// before, the first knot's level), the extra kernel passes (when some step has them) and the attended keys.
    static func fit(_ points: [StepTimePoint]) throws -> Fit {
        let data = points.map { p -> (d: Double, x: Double, c: Double, k: Double, y: Double) in
            let s = p.params.shape, r = rows(s)
            return (r.decode, extraPasses(r.decode), r.chunk, s.attendedKeys, p.seconds)
        }
        guard data.allSatisfy({ $0.y > 0 && $0.y.isFinite }) else { throw StepFitError.badCases("a step's time is not a positive number") }
        let dKnots = Array(Set(data.filter { $0.x == 0 }.map(\.d).filter { $0 > 0 })).sorted()
        let cKnots = Array(Set(data.map(\.c).filter { $0 > 0 })).sorted()
        guard dKnots.count >= 2 else {
            throw StepFitError.tooFewShapes("decodes alone at 2 batch sizes the kernel takes in whole groups (1, 2, 4, 8, 16, 32, …) at least are needed (got \(Set(data.map(\.d).filter { $0 > 0 }).sorted().map { Int($0) }))")
        }
        guard cKnots.count >= 2 else {
            throw StepFitError.tooFewShapes("prefill chunks alone of 2 lengths above 1 token at least are needed (got \(cKnots.map { Int($0) }))")
        }
        // Columns: Fd's ramps, Fc's ramps, the extra passes (when any step has one), the keys. Rows weighted by
        // 1 / measured: relative errors.
        let passes = data.contains { $0.x > 0 } ? 1 : 0
        let nd = dKnots.count, nc = cKnots.count, n = nd + nc + passes + 1
        var a = [[Double]](repeating: [Double](repeating: 0, count: data.count), count: n)
        for (i, p) in data.enumerated() {
            for j in 0..<nd { a[j][i] = ramp(dKnots, j, p.d) / p.y }
            for j in 0..<nc { a[nd + j][i] = ramp(cKnots, j, p.c) / p.y }
            if passes == 1 { a[nd + nc][i] = p.x / p.y }
            a[n - 1][i] = p.k / p.y
        }
        let b = [Double](repeating: 1, count: data.count)
        guard data.count >= n, LeastSquares.solve(a, b, columns: Array(0..<n)) != nil else {
            if data.count >= n - 1, LeastSquares.solve(a, b, columns: Array(0..<(n - 1))) != nil {
                throw StepFitError.tooFewShapes("the shapes do not separate attention from rows: measure decodes at two contexts, or a chunk after cached positions")
            }
            throw StepFitError.tooFewShapes("\(data.count) steps for \(n) terms (\(nd) decode row counts, \(nc) chunk lengths, \(passes == 1 ? "extra kernel passes, " : "")attention)")
        }
        let x = LeastSquares.nonNegative(a, b)
        func values(_ from: Int, _ count: Int) -> [Double] {
            var v: [Double] = [], sum = 0.0
            for j in 0..<count { sum += x[from + j]; v.append(sum) }
            return v
        }
        return (PiecewiseLinear(knots: dKnots, values: values(0, nd)), PiecewiseLinear(knots: cKnots, values: values(nd, nc)), x[n - 1],
                passes == 1 ? x[nd + nc] : 0)
    }

    /// Column j of a monotone piecewise-linear function over `knots`: the first knot's level (1 above 0 rows), then
    /// the rise from knot j − 1 to knot j, open below for the first segment and above for the last (extrapolation).
    static func ramp(_ knots: [Double], _ j: Int, _ x: Double) -> Double {
        guard x > 0 else { return 0 }
        if j == 0 { return 1 }
        var r = (x - knots[j - 1]) / (knots[j] - knots[j - 1])
        if j < knots.count - 1 { r = min(r, 1) }
        if j > 1 { r = max(r, 0) }
        return r
    }

    static func basis(model: String, precision: String, threads: Int, runID: Int64?, checks: [StepFitCheck],
                      extraPassesMeasured: Bool = true) -> String {
        func pct(_ x: Double) -> String { String(format: "%.0f %%", x * 100) }
        let fitted = checks.filter { !$0.heldOut }.count, mixed = checks.filter(\.heldOut)
        var parts = ["\(model) \(precision), \(threads) thread\(threads == 1 ? "" : "s")", "\(fitted) shapes"]
        if let l = ErrorSummary(checks.filter { !$0.heldOut }) { parts.append("leave-one-out median \(pct(l.median)), worst \(pct(l.worst))") }
        if let h = ErrorSummary(mixed) { parts.append("\(mixed.count) mixed held out: median \(pct(h.median)), worst \(pct(h.worst))") }
        if !extraPassesMeasured { parts.append("no decode batch of 3, 5, 6, 7, 12, … measured: the kernel's extra passes priced at 0") }
        return "steps measured " + (runID.map { "in run \($0) " } ?? "") + "(" + parts.joined(separator: "; ") + ")"
    }
}

/// Small dense least squares for the step fit (a few dozen rows, a dozen columns): Householder QR, and
/// Lawson–Hanson non-negative least squares on top of it.
enum LeastSquares {
    /// The x minimising ‖A[:, columns] x − b‖ (A given as columns, `a[j][i]`), nil when those columns are
    /// rank-deficient. Columns are scaled to unit norm first, so the rank test does not depend on units.
    static func solve(_ a: [[Double]], _ b: [Double], columns: [Int]) -> [Double]? {
        let m = b.count, n = columns.count
        guard n > 0, m >= n else { return nil }
        var cols = columns.map { a[$0] }
        var scale = [Double](repeating: 1, count: n)
        for j in 0..<n {
            let norm = cols[j].reduce(0) { $0 + $1 * $1 }.squareRoot()
            guard norm > 0 else { return nil }
            scale[j] = norm
            for i in 0..<m { cols[j][i] /= norm }
        }
        var y = b
        for k in 0..<n {
            var norm = 0.0
            for i in k..<m { norm += cols[k][i] * cols[k][i] }
            norm = norm.squareRoot()
            guard norm > 1e-9 else { return nil }
            let alpha = cols[k][k] > 0 ? -norm : norm
            var v = Array(cols[k][k..<m])
            v[0] -= alpha
            let vv = v.reduce(0) { $0 + $1 * $1 }
            guard vv > 0 else { continue }
            for j in k..<n {
                var s = 0.0
                for i in 0..<v.count { s += v[i] * cols[j][k + i] }
                s *= 2 / vv
                for i in 0..<v.count { cols[j][k + i] -= s * v[i] }
            }
            var s = 0.0
            for i in 0..<v.count { s += v[i] * y[k + i] }
            s *= 2 / vv
            for i in 0..<v.count { y[k + i] -= s * v[i] }
        }
        var x = [Double](repeating: 0, count: n)
        for k in stride(from: n - 1, through: 0, by: -1) {
            var s = y[k]
            for j in (k + 1)..<n { s -= cols[j][k] * x[j] }
            x[k] = s / cols[k][k]
        }
        return (0..<n).map { x[$0] / scale[$0] }
    }

    /// The x ≥ 0 minimising ‖A x − b‖ (Lawson and Hanson, 1974): columns join the passive set by the largest
    /// gradient, and a solution step that would turn one negative stops at the boundary and drops it.
    static func nonNegative(_ a: [[Double]], _ b: [Double]) -> [Double] {
        let n = a.count, m = b.count
        var x = [Double](repeating: 0, count: n)
        var passive = Set<Int>()
        func gradient() -> [Double] {
            var r = b
            for j in 0..<n where x[j] != 0 { for i in 0..<m { r[i] -= a[j][i] * x[j] } }
            return (0..<n).map { j in (0..<m).reduce(0) { $0 + a[j][$1] * r[$1] } }
        }
        let scale = b.reduce(0) { $0 + abs($1) } + 1
        let tol = 1e-12 * scale
        for _ in 0..<(3 * n + 3) {
            let w = gradient()
            guard let t = (0..<n).filter({ !passive.contains($0) }).max(by: { w[$0] < w[$1] }), w[t] > tol else { break }
            passive.insert(t)
            for _ in 0..<(3 * n + 3) {
                let cols = passive.sorted()
                guard let z = solve(a, b, columns: cols) else { passive.remove(t); break }
                if z.allSatisfy({ $0 > 0 }) {
                    for (k, j) in cols.enumerated() { x[j] = z[k] }
                    break
                }
                // Step towards z until the first passive coefficient reaches zero; drop those at zero.
                var alpha = 1.0
                for (k, j) in cols.enumerated() where z[k] <= 0 { alpha = min(alpha, x[j] / (x[j] - z[k])) }
                for (k, j) in cols.enumerated() { x[j] += alpha * (z[k] - x[j]) }
                for j in cols where x[j] <= 1e-15 { x[j] = 0; passive.remove(j) }
                if passive.isEmpty { break }
            }
        }
        return x
    }
}
