// `headroom bench matvec`: the decode kernels alone, on one weight matrix far larger than the cache:
// GB/s of weights streamed per precision and batch, to compare with `headroom probe`'s read bandwidth.
import ArgumentParser
import Dispatch
import Foundation
import HeadroomKernels
import HeadroomReport

struct BenchMatvecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matvec",
        abstract: "Measure the decode kernels alone: weight GB/s of a matrix-vector product per precision and batch.")

    @Option(name: .long, help: "Rows of the weight matrix.")
    var rows = 32768
    @Option(name: .long, help: "Columns of the weight matrix (a multiple of 32).")
    var cols = 8192
    @Option(name: .long, parsing: .upToNextOption, help: "Precisions.")
    var precisions: [String] = ["f32", "f16", "q8_0", "q4_0"]
    @Option(name: .long, parsing: .upToNextOption, help: "Batch sizes.")
    var batch: [Int] = [1]
    @Option(name: .long, help: "Threads.")
    var threads = 1
    @Option(name: .long, help: "Timed repetitions (after one warm-up); the median is shown.")
    var repetitions = 5

    func validate() throws {
        if cols % 32 != 0 { throw ValidationError("--cols: expected a multiple of 32") }
        if precisions.contains(where: { QuantType(name: $0) == nil }) { throw ValidationError("--precisions: expected f32, f16, q8_0, q4_0") }
        if batch.contains(where: { !(1...64).contains($0) }) { throw ValidationError("--batch: expected 1 to 64") }
    }

    func run() throws {
        var t = TextTable(["precision", "batch", "threads", "MB", "ms (median)", "weight GB/s", "tokens/s·matrix"], rightAligned: [1, 2, 3, 4, 5, 6])
        for p in precisions {
            let type = QuantType(name: p)!
            let w = WeightMatrix.synthetic(type: type, rows: rows, cols: cols, seed: 1, scale: 0.1, threads: threads)
            for b in batch {
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
                t.add([p, String(b), String(threads), String(format: "%.0f", Double(w.bytes) / 1e6), String(format: "%.2f", med * 1e3),
                       String(format: "%.1f", Double(w.bytes) / med / 1e9), String(format: "%.1f", Double(b) / med)])
            }
        }
        print("Decode kernels (measured, median of \(repetitions), \(QMatmul.isa))")
        print(t.rendered)
    }
}
