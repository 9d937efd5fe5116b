// `headroom bench matvec`: the decode kernels alone, on one weight matrix far larger than the cache:
// GB/s of weights streamed per precision and batch, to compare with `headroom probe`'s read bandwidth.
import ArgumentParser
import Dispatch
import Foundation
import HeadroomCore
import HeadroomKernels
import HeadroomReport

struct BenchMatvecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matvec",
        abstract: "Measure the decode kernels alone: weight GB/s of a matrix-vector product per precision and batch.")

    @Option(name: .long, help: "Rows of the weight matrix.")
    var rows = 32768
    @Option(name: .long, help: "Columns of the weight matrix (a multiple of 32; of 256 for the K-quants).")
    var cols = 8192
    @Option(name: [.customLong("precision"), .customLong("precisions", withSingleDash: false)], parsing: .upToNextOption,
            help: ArgumentHelp("Weight precisions (\(listHelp)): \(PrecisionNames.engineList). Default: all four.", valueName: "p"))
    var precision: [String] = []
    @Option(name: .long, parsing: .upToNextOption, help: ArgumentHelp("Batch sizes, 1 to 64 (\(listHelp); default 1).", valueName: "b"))
    var batch: [String] = []
    @Option(name: .long, help: "Threads for the kernels (default: all cores).")
    var threads: Int?
    @Option(name: .long, help: "Timed repetitions (after one warm-up); the median is shown.")
    var repetitions = 5
    @Flag(name: .long, help: "Print JSON on standard output instead of a table.")
    var json = false

    func validate() throws {
        if rows < 1 || cols < 32 || cols % 32 != 0 { throw ValidationError("--rows/--cols: expected a positive row count and a multiple of 32 columns") }
        if rows * cols > 1 << 32 { throw ValidationError("--rows × --cols: expected at most 2^32 weights") }
        if repetitions < 1 { throw ValidationError("--repetitions: expected at least 1") }
        for p in try precisions() where cols % p.blockSize != 0 {
            throw ValidationError("--cols: \(p) needs a multiple of its block size \(p.blockSize) columns, got \(cols)")
        }
        _ = try batches(); _ = try threadCount(threads)
    }

    func precisions() throws -> [QuantType] {
        let names = try flatList(precision, option: "--precision")
        return try names.isEmpty ? [.f32, .f16, .q8_0, .q4_0] : names.map { try enginePrecision($0) }
    }

    func batches() throws -> [Int] {
        let items = try flatList(batch, option: "--batch")
        return try items.isEmpty ? [1] : items.map { s in
            guard let b = Int(s), (1...64).contains(b) else { throw ValidationError("--batch: expected batch sizes from 1 to 64, got \"\(s)\"") }
            return b
        }
    }

    struct Row: Encodable {
        var precision: String, batch: Int, threads: Int, megabytes: Double, msMedian: Double, weightGbps: Double, tokensPerS: Double
    }

    func run() throws { try reportingErrors { try measure() } }

    func measure() throws {
        let threads = try threadCount(self.threads)
        var rowsOut: [Row] = []
        var t = TextTable(["precision", "batch", "threads", "MB", "ms (median)", "weight GB/s", "tokens/s·matrix"], rightAligned: [1, 2, 3, 4, 5, 6])
        for type in try precisions() {
            let p = type.description
            let w = WeightMatrix.synthetic(type: type, rows: rows, cols: cols, seed: 1, scale: 0.1, threads: threads)
            for b in try batches() {
                let x = FloatBuffer(count: b * cols), y = FloatBuffer(count: b * rows)
                x.fillUniform(seed: 2)
                var times: [Double] = []
                for rep in -1..<repetitions {
                    let s = DispatchTime.now().uptimeNanoseconds
                    if b == 1 { QMatmul.matvec(w, x: x.pointer, y: y.pointer, threads: threads) }
                    else { QMatmul.matvecBatch(w, x: x.pointer, batch: b, y: y.pointer, threads: threads) }
                    if rep >= 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - s) / 1e9) }
                }
                let med = times.sorted()[times.count / 2]
                rowsOut.append(Row(precision: p, batch: b, threads: threads, megabytes: Double(w.bytes) / 1e6, msMedian: med * 1e3,
                                   weightGbps: Double(w.bytes) / med / 1e9, tokensPerS: Double(b) / med))
                t.add([p, String(b), String(threads), String(format: "%.0f", Double(w.bytes) / 1e6), String(format: "%.2f", med * 1e3),
                       String(format: "%.1f", Double(w.bytes) / med / 1e9), String(format: "%.1f", Double(b) / med)])
            }
        }
        if json {
            struct Out: Encodable { var kind = "measured"; var isa: String; var repetitions: Int; var rows: [Row] }
            try printJSON(Out(isa: QMatmul.isa, repetitions: repetitions, rows: rowsOut))
        } else {
            print("Decode kernels (measured, median of \(repetitions), \(QMatmul.isa))")
            print(t.rendered)
        }
    }
}
