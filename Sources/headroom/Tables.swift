// The human-readable tables the commands print.
import Foundation
import HeadroomCore
import HeadroomReport
import HeadroomStore

enum Tables {
    static func probe(machine: MachineInfo, figures: ProbeFigures, cases: [MeasuredCase], rows: Int) -> String {
        var t = TextTable(["threads", "read 1 stream GB/s", "read \(rows) rows GB/s", "read prefetched GB/s", "decode roofline GB/s",
                           "triad GB/s", "sgemm GFLOP/s", "n"], rightAligned: [0, 1, 2, 3, 4, 5, 6, 7])
        for p in figures.perThreads {
            let n = cases.first { $0.threads == p.threads }?.values("seconds").count ?? 0
            t.add([String(p.threads), p.readStreamGBps.map(Fmt.sig) ?? "—", p.readRowsGBps.map(Fmt.sig) ?? "—",
                   p.readPrefetchGBps.map(Fmt.sig) ?? "—", p.bestRead.map { Fmt.sig($0.gbps) } ?? "—",
                   p.triadGBps.map(Fmt.sig) ?? "—", p.sgemmGFLOPs.map(Fmt.sig) ?? "—", String(n)])
        }
        let width = cases.first { $0.name == "read_prefetch" }?.params["row_floats"] ?? "?"
        return """
            \(machine.cpuModel), \(machine.cores) cores — measured, best of n repetitions (GB = 1e9 bytes)
            \(t.rendered)
            prefetched: the decode kernels' walk (4 rows of \(width) floats at a time, software prefetch, their thread pool); \
            decode roofline: the best read pattern
            """
    }

    /// The short table `headroom run` ends with: per thread count the limits, and per phase and M the
    /// whole layer's GEMM time and its share of the sgemm peak.
    static func runSummary(_ run: StoredRun) -> String {
        let probe = ProbeFigures(cases: run.cases)
        var out = probe.perThreads.isEmpty ? "" : "Machine limits (measured, best of n; read: the best pattern, the decode roofline; compute roof: the fastest sgemm " +
            "call of the run, probe or layer GEMM)\n" + {
            // Reads before and after the workloads side by side when the run read again: the drift over the run.
            let drift = probe.perThreads.contains { $0.readAfterGBps != nil }
            // The compute roof beside the probe's sgemm when the run timed layer GEMMs: the fastest of them.
            let layers = probe.perThreads.contains { $0.layerGemmGFLOPs != nil }
            let headers: [String] = (drift ? ["threads", "read GB/s", "before", "after", "sgemm GFLOP/s"]
                                           : ["threads", "read GB/s", "sgemm GFLOP/s"]) + (layers ? ["compute roof GFLOP/s"] : []) + ["n"]
            var t = TextTable(headers, rightAligned: Set(headers.indices))
            func sig(_ x: Double?) -> String { x.map(Fmt.sig) ?? "—" }
            for p in probe.perThreads {
                let read: [String] = drift ? [sig(p.bestRead?.gbps), sig(p.readBeforeGBps), sig(p.readAfterGBps)] : [sig(p.bestRead?.gbps)]
                t.add([String(p.threads)] + read + [sig(p.sgemmGFLOPs)] + (layers ? [sig(p.computeGFLOPs)] : []) + [String(p.repetitions)])
            }
            return t.rendered
        }() + "\n"
        let gemm = run.cases(kind: .gemm)
        if !gemm.isEmpty {
            var t = TextTable(["threads", "phase", "M", "layer GEMMs ms (median)", "GFLOP/s", "% compute roof", "n"],
                              rightAligned: [0, 2, 3, 4, 5, 6])
            let groups = Dictionary(grouping: gemm) { "\($0.threads)|\($0.params["phase"] ?? "")|\($0.params["M"] ?? "")" }
            func order(_ key: String) -> (Int, Int, Int) {
                let x = key.split(separator: "|").map(String.init)
                return (Int(x[0]) ?? 0, x[1] == "prefill" ? 1 : 0, Int(x[2]) ?? 0)
            }
            let keys = groups.keys.sorted { order($0) < order($1) }
            for k in keys {
                let cs = groups[k]!
                let secs = cs.compactMap { $0.summary("seconds")?.median }.reduce(0, +)
                var flops = 0.0
                for c in cs {
                    let m = Double(Int(c.params["M"] ?? "") ?? 0), n = Double(Int(c.params["N"] ?? "") ?? 0)
                    let k = Double(Int(c.params["K"] ?? "") ?? 0)
                    flops += 2 * m * n * k
                }
                let gf = flops / secs / 1e9
                let threads = cs[0].threads
                let n = cs.map { $0.values("seconds").count }.min() ?? 0
                t.add([String(threads), cs[0].params["phase"] ?? "", cs[0].params["M"] ?? "", Fmt.ms(secs), Fmt.sig(gf),
                       probe.at(threads: threads)?.computeGFLOPs.map { Fmt.percent(gf / $0) } ?? "—", String(n)])
            }
            let model = gemm[0].params["model"] ?? ""
            out += "\nOne \(model) layer's GEMMs: qkv + o + gate_up + down (measured, f32, OpenBLAS)\n" + t.rendered + "\n"
            if let warning = GemmSection.busyProbeWarning(gemm, probe: probe) { out += "\nWarning: \(warning)\n" }
        }
        if let t = InferenceThroughputSection.table(run) {
            let first = run.cases(kind: .inference).first
            let model = first?.params["model"] ?? "", weights = first?.params["model_file"].map { "weights of \($0)" } ?? "synthetic weights"
            out += "\nThe whole \(model) model, \(weights) (measured medians; rooflines from this run's probe)\n" + t.rendered + "\n"
        }
        return out
    }
}
