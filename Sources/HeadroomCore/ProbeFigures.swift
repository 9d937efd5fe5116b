// This machine's limits as the probe measured them: the rooflines every other figure is compared with.

/// The best figure of each probe measurement, per thread count, over every probe case of a run (a run
/// probes before its workloads and may read again after them, so drift shows; both count).
public struct ProbeFigures: Codable, Equatable, Sendable {
    /// The read patterns the probe times, by case name. The decode roofline is the best of them: a roofline
    /// must bound what the engine reads, whichever pattern this machine serves fastest.
    public static let readPatterns = ["read_stream", "read_rows", "read_prefetch"]
    /// The parameter, and its value, that mark a closing probe's cases: read again after the workloads.
    public static let stageParam = "when"
    public static let closingStage = "after"

    public static func isClosing(_ c: MeasuredCase) -> Bool { c.params[stageParam] == closingStage }

    public struct PerThreads: Codable, Equatable, Sendable {
        public var threads: Int
        /// One sequential stream per thread, GB/s (1 GB = 1e9 bytes).
        public var readStreamGBps: Double?
        /// Several rows side by side per thread, as a matrix-vector product reads, without prefetch.
        public var readRowsGBps: Double?
        /// The decode kernels' own walk: four rows at a time with software prefetch, on their thread pool.
        public var readPrefetchGBps: Double?
        public var triadGBps: Double?
        /// The probe's square sgemm, GFLOP/s.
        public var sgemmGFLOPs: Double?
        /// The fastest single call of the run's layer GEMM cases (OpenBLAS sgemm at a layer's shapes) at this
        /// thread count, GFLOP/s; nil when the run timed none.
        public var layerGemmGFLOPs: Double?
        /// Timed repetitions behind each figure (the fewest of the cases at this thread count).
        public var repetitions: Int
        /// The best read (any pattern) before the workloads, and after them when the run read again: their
        /// difference is the drift over the run. The decode roofline is the larger.
        public var readBeforeGBps: Double?
        public var readAfterGBps: Double?

        public init(threads: Int, readStreamGBps: Double? = nil, readRowsGBps: Double? = nil, readPrefetchGBps: Double? = nil,
                    triadGBps: Double? = nil, sgemmGFLOPs: Double? = nil, repetitions: Int,
                    readBeforeGBps: Double? = nil, readAfterGBps: Double? = nil, layerGemmGFLOPs: Double? = nil) {
            self.threads = threads; self.readStreamGBps = readStreamGBps; self.readRowsGBps = readRowsGBps
            self.readPrefetchGBps = readPrefetchGBps; self.triadGBps = triadGBps; self.sgemmGFLOPs = sgemmGFLOPs
            self.repetitions = repetitions; self.readBeforeGBps = readBeforeGBps; self.readAfterGBps = readAfterGBps
            self.layerGemmGFLOPs = layerGemmGFLOPs
        }

        /// The compute roofline: the fastest sgemm this run timed at this thread count, the probe's square one
        /// or a layer GEMM's single call. A roofline must bound every figure measured against it; a layer shape
        /// that runs faster than the probe's square (a quieter moment, a cache-friendlier shape) raises it.
        /// Reports' "% of roof" read this; the gate normalises by `sgemmGFLOPs` alone, a figure measured alike in
        /// every run.
        public var computeGFLOPs: Double? {
            switch (sgemmGFLOPs, layerGemmGFLOPs) {
            case let (a?, b?): return max(a, b)
            case let (a, b): return a ?? b
            }
        }

        /// The best read pattern by case name, and its figure: the decode roofline.
        public var bestRead: (pattern: String, gbps: Double)? {
            zip(ProbeFigures.readPatterns, [readStreamGBps, readRowsGBps, readPrefetchGBps])
                .compactMap { name, v in v.map { (name, $0) } }
                .max { $0.1 < $1.1 }
                .map { (pattern: $0.0, gbps: $0.1) }
        }
    }

    public var perThreads: [PerThreads]

    /// Best (maximum) of each probe case's samples, over every case of that name (before and after): the
    /// probe reports upper bounds.
    public init(cases: [MeasuredCase]) {
        let probe = cases.filter { $0.kind == .probe }
        let threads = Set(probe.map(\.threads)).sorted()
        let gemm = cases.filter { $0.kind == .gemm }
        perThreads = threads.map { t in
            let here = probe.filter { $0.threads == t }
            func best(_ names: [String], _ metric: String, _ include: (MeasuredCase) -> Bool = { _ in true }) -> Double? {
                here.filter { names.contains($0.name) && include($0) }.flatMap { $0.values(metric) }.max()
            }
            let reads = Self.readPatterns
            let n = here.map { $0.values("seconds").count }.min() ?? 0
            return PerThreads(threads: t, readStreamGBps: best(["read_stream"], "gbps"), readRowsGBps: best(["read_rows"], "gbps"),
                              readPrefetchGBps: best(["read_prefetch"], "gbps"), triadGBps: best(["triad"], "gbps"),
                              sgemmGFLOPs: best(["sgemm"], "gflops"), repetitions: n,
                              readBeforeGBps: best(reads, "gbps") { !Self.isClosing($0) },
                              readAfterGBps: best(reads, "gbps", Self.isClosing),
                              layerGemmGFLOPs: gemm.filter { $0.threads == t }.flatMap { $0.values("gflops") }.max())
        }
    }

    public init(perThreads: [PerThreads]) { self.perThreads = perThreads }

    public func at(threads: Int) -> PerThreads? { perThreads.first { $0.threads == threads } }

    /// The decode roofline bandwidth: the best of every read pattern, before and after the workloads.
    /// Reports, calibration, the local hardware profile and the gate's normalisation all read this one figure.
    public func readGBps(threads: Int) -> Double? { at(threads: threads)?.bestRead?.gbps }
}
