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
    @Flag(name: .long, help: "List every published measurement (published.yaml) with its source and date, each GPU's fit to them, and the fit's prediction and error on each.")
    var published = false

    func run() throws {
        try reportingErrors {
            let c = try options.load()
            if published { try printPublished(c); return }
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

extension HardwareCommand {
    struct PublishedReport: Encodable {
        var fits: [PublishedFit]
        /// GPUs no published measurement fits, with the efficiencies they keep.
        var uncalibrated: [String: String]
        /// Measurements naming hardware that has too few to fit, as read.
        var unfitted: [PublishedMeasurement]
    }

    /// `hardware --published`: each published figure against the fit's prediction, and against a fit made without it.
    func printPublished(_ c: Catalog) throws {
        let gpus = c.hardware.filter { $0.kind != .local }
        let fits = PublishedCalibration.fits(hardware: gpus, published: c.published, models: c.models)
        let fitted = Set(fits.map(\.hardware))
        let unfitted = c.published.filter { !fitted.contains($0.hardware) }
        let uncalibrated = Dictionary(uniqueKeysWithValues: gpus.filter { !fitted.contains($0.id) }.map { ($0.id, $0.calibration) })
        if json { try printJSON(PublishedReport(fits: fits, uncalibrated: uncalibrated, unfitted: unfitted)); return }
        var sources: [String] = []
        func ref(_ m: PublishedMeasurement) -> String {
            if let i = sources.firstIndex(of: m.source) { return "[\(i + 1)]" }
            sources.append(m.source)
            return "[\(sources.count)]"
        }
        var t = TextTable(["hardware", "configuration", "published", "batch", "fit predicts", "without it", "error", "role", "source", "date"],
                          rightAligned: [3, 4, 5, 6])
        func shown(_ m: PublishedMeasurement, _ v: Double) -> String {
            m.ttftMs != nil ? String(format: "%.1f ms", v) : HumanNumber.count(v.rounded()) + (m.perDevice ? "/GPU" : "")
        }
        for f in fits {
            for r in f.rows {
                let m = r.measurement
                t.add([f.hardware, m.configuration, m.measuredText,
                       "\(r.batch)\(r.batchStated ? "" : " (memory)")", shown(m, r.predicted), shown(m, r.predictedWithout),
                       String(format: "%+.1f %%", r.errorPercent), m.role == .fit ? "fit" : "check (not fitted)", "\(m.document) \(ref(m))", m.date])
            }
        }
        for m in unfitted {
            t.add([m.hardware, m.configuration, m.measuredText, m.batch.map(String.init) ?? "—", "—", "—", "—", "too few to fit",
                   "\(m.document) \(ref(m))", m.date])
        }
        print(t.rendered)
        print("\n\"without it\": predicted by the GPU's fit made without that measurement (leave-one-out); a check is never in the fit. "
              + "\"error\" is that prediction against the published figure. Batch: as the source states it, or (memory) the planner's memory model's.")
        for (i, s) in sources.enumerated() { print("[\(i + 1)] \(s)") }
        print("")
        for f in fits {
            print("\(f.hardware) at \(f.precisions.map(\.rawValue).joined(separator: ", ")): \(f.label)")
            if let h = gpus.first(where: { $0.id == f.hardware }) { print("\(f.hardware) at other precisions: \(h.calibration)") }
        }
        for h in gpus where !fitted.contains(h.id) { print("\(h.id): \(h.calibration)") }
    }
}
