// `headroom models` and `headroom hardware`: the catalog as tables or JSON, with the figures computed
// from it (parameter counts, KV cache per token, weight sizes).
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomReport
import HeadroomRunner
import HeadroomStore

struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models", abstract: "The model architectures in the catalog, with parameter counts computed from each configuration.")

    @OptionGroup var options: CatalogOptions
    @Flag(name: .long, help: "Print JSON on standard output instead of a table.") var json = false

    struct Row: Encodable {
        var id: String, name: String, layers: Int, dim: Int, heads: Int, kvHeads: Int, ffnDim: Int, vocab: Int, context: Int
        var experts: Int, expertsPerToken: Int, tiedEmbeddings: Bool, qkvBias: Bool
        var parameters: Double, activeParametersPerToken: Double, publishedParameters: Double?
        var kvCacheBytesPerTokenBf16: Double, weightBytesBf16: Double, source: String
    }

    func run() throws {
        try reportingErrors {
            let c = try options.load()
            let rows = c.modelList.map { m in
                Row(id: m.id, name: m.name, layers: m.layers, dim: m.dim, heads: m.heads, kvHeads: m.kvHeads, ffnDim: m.ffnDim, vocab: m.vocab,
                    context: m.context, experts: m.experts, expertsPerToken: m.expertsPerToken, tiedEmbeddings: m.tiedEmbeddings,
                    qkvBias: m.qkvBias, parameters: m.parameters.total, activeParametersPerToken: m.parameters.activePerToken,
                    publishedParameters: m.publishedParams, kvCacheBytesPerTokenBf16: MemoryModel.kvBytesPerToken(m, .bf16),
                    weightBytesBf16: MemoryModel.weightBytes(m, .bf16), source: m.source)
            }
            if json { try printJSON(rows); return }
            var t = TextTable(["id", "layers", "dim", "heads", "kv", "ffn", "vocab", "context", "experts", "params (computed)", "published",
                               "KV/token bf16", "weights bf16"], rightAligned: [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12])
            for r in rows {
                t.add([r.id, String(r.layers), String(r.dim), String(r.heads), String(r.kvHeads), String(r.ffnDim), String(r.vocab),
                       String(r.context), r.experts > 1 ? "\(r.expertsPerToken) of \(r.experts)" : "—",
                       String(format: "%.3fB", r.parameters / 1e9), r.publishedParameters.map { String(format: "%.3fB", $0 / 1e9) } ?? "—",
                       Fmt.bytes(r.kvCacheBytesPerTokenBf16), Fmt.bytes(r.weightBytesBf16)])
            }
            print(t.rendered)
            print("\nSources: each model's `source:` in \(c.files.filter { $0.hasSuffix("models.yaml") }.joined(separator: ", ")); parameter counts are computed from the configuration.")
        }
    }
}

struct HardwareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hardware", abstract: "The hardware profiles in the catalog, and `local` from this machine's latest probe.")

    @OptionGroup var options: CatalogOptions
    @OptionGroup var store: StoreOptions
    @Flag(name: .long, help: "Print JSON on standard output instead of a table.") var json = false

    func run() throws {
        try reportingErrors {
            let c = try options.load()
            var profiles = c.hardware
            if let i = profiles.firstIndex(where: { $0.kind == .local }), let defaults = c.defaultEfficiency,
               let run = try PlanJob.latestLocalRun(storePath: store.path), let machine = run.machine,
               let local = HardwareProfile.local(probe: ProbeFigures(cases: run.cases), machine: machine, efficiency: defaults.efficiency,
                                                 calibration: "measured by the probe in run \(run.run.id ?? 0); efficiencies: catalog default until `headroom plan` fits them") {
                profiles[i] = local
            }
            if json { try printJSON(profiles); return }
            var t = TextTable(["id", "kind", "fp32 TF", "bf16 TF", "fp8 TF", "int8 TOP", "memory GiB", "GB/s", "interconnect", "per node", "W",
                               "$/device-hour"], rightAligned: [2, 3, 4, 5, 6, 7, 9, 10, 11])
            for h in profiles {
                let perDevice = c.prices?.bestInstance(hardware: h.id, devicesPerReplica: 1, mode: .onDemand).map { $0.usdPerHour / Double($0.devices) }
                let isLocalUnprobed = h.kind == .local && h.peakTflops.isEmpty
                t.add([h.id, h.kind == .local ? (isLocalUnprobed ? "local (not probed yet)" : "local (measured)") : h.kind.rawValue,
                       h.peakTflops["fp32"].map(Fmt.sig) ?? "—", h.kind == .local ? "—" : (h.peakTflops["bf16"].map(Fmt.sig) ?? "—"),
                       h.peakTflops["fp8"].map(Fmt.sig) ?? "—", h.kind == .local ? "—" : (h.peakTflops["int8"].map(Fmt.sig) ?? "—"),
                       isLocalUnprobed ? "—" : Fmt.sig(h.memoryGib), isLocalUnprobed ? "—" : Fmt.sig(h.bandwidthGbps),
                       h.kind == .local ? "—" : "\(h.interconnect.kind) \(Fmt.sig(h.interconnect.bandwidthGbps)) GB/s",
                       String(h.devicesPerNode), h.powerWatts > 0 ? Fmt.sig(h.powerWatts) : "—", perDevice.map { String(format: "%.2f", $0) } ?? "—"])
            }
            print(t.rendered)
            print("\nPeaks are dense (no sparsity), from each profile's `source:` in \(c.files.filter { $0.hasSuffix("hardware.yaml") }.joined(separator: ", ")); local figures are measured by the probe.")
            if let d = c.defaultEfficiency {
                print("Default efficiencies: compute \(d.efficiency.compute), bandwidth \(d.efficiency.bandwidth), training MFU \(d.trainingMFU) — \(d.source)")
            }
        }
    }
}
