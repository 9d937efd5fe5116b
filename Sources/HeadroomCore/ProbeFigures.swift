// This machine's limits as the probe measured them: the rooflines every other figure is compared with.

/// The best figure of each probe measurement, per thread count.
public struct ProbeFigures: Codable, Equatable, Sendable {
    public struct PerThreads: Codable, Equatable, Sendable {
        public var threads: Int
        /// One sequential stream per thread, GB/s (1 GB = 1e9 bytes).
        public var readStreamGBps: Double?
        /// Several rows side by side per thread, as a matrix-vector product reads: the decode roofline.
        public var readRowsGBps: Double?
        public var triadGBps: Double?
        public var sgemmGFLOPs: Double?
        /// Timed repetitions behind each figure (the fewest of the cases at this thread count).
        public var repetitions: Int
    }

    public var perThreads: [PerThreads]

    /// Best (maximum) of each probe case's samples: the probe reports upper bounds.
    public init(cases: [MeasuredCase]) {
        let probe = cases.filter { $0.kind == "probe" }
        let threads = Set(probe.map(\.threads)).sorted()
        perThreads = threads.map { t in
            func best(_ name: String, _ metric: String) -> Double? {
                probe.first { $0.name == name && $0.threads == t }?.values(metric).max()
            }
            let n = probe.filter { $0.threads == t }.map { $0.values("seconds").count }.min() ?? 0
            return PerThreads(threads: t, readStreamGBps: best("read_stream", "gbps"), readRowsGBps: best("read_rows", "gbps"),
                              triadGBps: best("triad", "gbps"), sgemmGFLOPs: best("sgemm", "gflops"), repetitions: n)
        }
    }

    public func at(threads: Int) -> PerThreads? { perThreads.first { $0.threads == threads } }

    /// The decode roofline bandwidth: the larger of the two read patterns.
    public func readGBps(threads: Int) -> Double? {
        guard let p = at(threads: threads) else { return nil }
        return [p.readRowsGBps, p.readStreamGBps].compactMap { $0 }.max()
    }
}
