import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomKernels
import HeadroomRunner

struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Measure this machine's memory bandwidth and sgemm throughput.",
        discussion: """
            Reads arrays far larger than the last-level cache three ways: one stream per thread, several rows \
            side by side per thread, and as the decode kernels walk a weight matrix (four rows at a time with \
            software prefetch, chunks shared out by their thread pool). The best of the three is the decode \
            roofline. Then runs a STREAM triad and times a square OpenBLAS sgemm. Each figure is the best of \
            the repetitions (an upper bound). Nothing is stored.
            """)

    @Option(name: .long, parsing: .upToNextOption,
            help: ArgumentHelp("Thread counts to measure (\(listHelp); default: 1 and all cores).", valueName: "n"))
    var threads: [String] = []

    @Option(name: .customLong("read-mib"), help: "MiB read per bandwidth timing (at least 1024 to dwarf the cache).")
    var readMiB: Int = 1024

    @Option(name: .customLong("gemm-size"), help: "Side of the square sgemm.")
    var gemmSize: Int = 2048

    @Option(name: .long, help: "Timed repetitions per figure (after one warm-up).")
    var repetitions: Int = 5

    @Option(name: .long, help: "Rows read side by side per thread in the multi-row pattern.")
    var rows: Int = 8

    @Flag(name: .long, help: "Print JSON on standard output instead of a table.")
    var json = false

    func validate() throws {
        _ = try threadCounts(threads)
        if readMiB < 16 { throw ValidationError("--read-mib: expected at least 16") }
        if gemmSize < 16 { throw ValidationError("--gemm-size: expected at least 16") }
        if repetitions < 1 { throw ValidationError("--repetitions: expected at least 1") }
        if !(1...16).contains(rows) { throw ValidationError("--rows: expected 1 to 16") }
    }

    func run() throws { try reportingErrors { try probe() } }

    func probe() throws {
        Interrupt.install()
        let machine = MachineInfo.current()
        let threads = try threadCounts(self.threads)
        let counts = threads.isEmpty ? Array(Set([1, machine.cores])).sorted() : threads
        let settings = ProbeSettings(readMiB: readMiB, gemmSize: gemmSize, repetitions: repetitions)
        let workload = ProbeWorkload(settings: settings, threads: counts, rows: rows)
        let progress = Progress()
        let specs = workload.cases()
        progress.begin("probe", total: specs.reduce(0) { $0 + $1.steps })
        let cases = try specs.map { spec in try workload.measure(spec) { progress.step("\(spec.name) ×\(spec.threads)t") } }
        progress.end()
        let figures = ProbeFigures(cases: cases)
        if json {
            try printJSON(ProbeJSON(machine: machine, isa: Bandwidth.isa, openblasCore: BLASThreads.coreName,
                                    settings: settings, rowsPerThread: rows, figures: figures, cases: cases))
        } else {
            print(Tables.probe(machine: machine, figures: figures, cases: cases, rows: rows))
        }
    }
}
