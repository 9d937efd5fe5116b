// Hardware profiles for the planner: peak compute per precision, memory, bandwidth, interconnect and
// power, read strictly from Scenarios/catalog/hardware.yaml, plus `local`, built from the probe at run time.
import Foundation
import HeadroomScheduling

/// A numeric format the planner can serve a model in.
public enum Precision: String, Codable, CaseIterable, Sendable, Comparable {
    case fp32, bf16, fp16, fp8, int8, int4

    public static func < (a: Precision, b: Precision) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// Bytes per weight including the quantization scales. int8 and int4 are the engine's q8_0 and
    /// q4_0 blocks, read from `EngineBytes` (32 weights share one fp16 scale: 34 and 18 bytes per 32
    /// weights); fp8 has one scale per tensor, which is negligible.
    public var weightBytes: Double {
        switch self {
        case .fp32: return Self.blockBytes.fp32
        case .bf16: return Self.blockBytes.bf16
        case .fp16: return Self.blockBytes.fp16
        case .fp8: return 1
        case .int8: return Self.blockBytes.int8
        case .int4: return Self.blockBytes.int4
        }
    }

    /// `EngineBytes`' figures, looked up once (the simulator prices millions of steps).
    private static let blockBytes = (fp32: EngineBytes.weightBlocks["f32"]!.bytesPerWeight, bf16: EngineBytes.weightBlocks["bf16"]!.bytesPerWeight,
                                     fp16: EngineBytes.weightBlocks["f16"]!.bytesPerWeight, int8: EngineBytes.weightBlocks["q8_0"]!.bytesPerWeight,
                                     int4: EngineBytes.weightBlocks["q4_0"]!.bytesPerWeight)

    /// Bytes per activation and per KV-cache element on a GPU server (vLLM keeps both in the model's
    /// dtype): 16-bit except in fp32. `headroom serve`'s engine keeps f32 whatever the weights
    /// (`EngineBytes`); `HardwareProfile.kvElementBytes` chooses.
    public var activationBytes: Double { self == .fp32 ? 4 : 2 }

    /// The peak the matmuls run at. int8 is W8A8 (int8 tensor cores); int4 is weight-only and
    /// dequantizes into bf16 matmuls, as the common int4 kernels (AWQ, GPTQ, Marlin) do.
    public var computeDtype: String {
        switch self {
        case .fp32: return "fp32"
        case .bf16: return "bf16"
        case .fp16: return "fp16"
        case .fp8: return "fp8"
        case .int8: return "int8"
        case .int4: return "bf16"
        }
    }

    /// Accepts the engine's names too (f32, f16, q8_0, q4_0).
    public init?(name: String) {
        switch name.lowercased() {
        case "fp32", "f32": self = .fp32
        case "bf16": self = .bf16
        case "fp16", "f16": self = .fp16
        case "fp8": self = .fp8
        case "int8", "q8_0", "q8": self = .int8
        case "int4", "q4_0", "q4": self = .int4
        default: return nil
        }
    }

    public static let names = allCases.map(\.rawValue)
}

/// Achieved fractions of peak compute and of peak bandwidth.
public struct Efficiency: Codable, Equatable, Sendable {
    public var compute: Double
    public var bandwidth: Double
    public init(compute: Double, bandwidth: Double) { self.compute = compute; self.bandwidth = bandwidth }
}

/// The efficiencies used for every device without calibration data, with where they come from.
public struct DefaultEfficiency: Codable, Equatable, Sendable {
    public var efficiency: Efficiency
    public var trainingMFU: Double
    public var source: String
    public init(efficiency: Efficiency, trainingMFU: Double, source: String) {
        self.efficiency = efficiency; self.trainingMFU = trainingMFU; self.source = source
    }
}

public struct Interconnect: Codable, Equatable, Sendable {
    public var kind: String
    /// The vendor's total figure (both directions), GB/s.
    public var bandwidthGbps: Double
    /// Per collective step, microseconds.
    public var latencyUs: Double
    /// Where the figures come from, when they are stated apart from the device's (`network:`).
    public var source: String?
    public init(kind: String, bandwidthGbps: Double, latencyUs: Double, source: String? = nil) {
        self.kind = kind; self.bandwidthGbps = bandwidthGbps; self.latencyUs = latencyUs; self.source = source
    }
}

/// One device kind the planner can size for.
public struct HardwareProfile: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable { case gpu, cpu, local }

    public var id: String
    public var name: String
    public var kind: Kind
    /// Dense peak per dtype, TFLOP/s (TOP/s for int8).
    public var peakTflops: [String: Double]
    public var memoryGib: Double
    public var bandwidthGbps: Double
    public var interconnect: Interconnect
    public var devicesPerNode: Int
    /// The link between nodes, per device (nil: the catalog states none, so no plan spans nodes).
    public var network: Interconnect?
    public var powerWatts: Double
    public var efficiency: Efficiency
    public var trainingMFU: Double
    /// How `efficiency` was obtained: the catalog default (with its source) or a fit to measurements.
    public var calibration: String
    public var source: String
    /// `local` only: the per-regime fits of this machine's execution time (`RegimeCalibration`), and the thread
    /// count its probe figures are at. The planner prices this profile's steps with them (`RegimeExecutionTime`).
    public var regimeFits: [RegimeFit]? = nil
    public var threads: Int? = nil
    /// Efficiencies fitted at some precisions only (to published measurements at those precisions), by precision
    /// name, each with its label; every other precision keeps `efficiency` and `calibration`. Nil: none.
    public var precisionCalibrations: [String: PrecisionCalibration]? = nil

    /// A fit that holds at one precision (`HardwareProfile.precisionCalibrations`).
    public struct PrecisionCalibration: Codable, Equatable, Sendable {
        public var efficiency: Efficiency
        public var calibration: String
        public init(efficiency: Efficiency, calibration: String) { self.efficiency = efficiency; self.calibration = calibration }
    }

    /// The efficiencies a model served at `p` runs with here: a fit at that precision, else `efficiency`.
    public func efficiency(_ p: Precision) -> Efficiency { precisionCalibrations?[p.rawValue]?.efficiency ?? efficiency }

    /// What `efficiency(p)` rests on.
    public func calibration(_ p: Precision) -> String { precisionCalibrations?[p.rawValue]?.calibration ?? calibration }

    public init(id: String, name: String, kind: Kind, peakTflops: [String: Double], memoryGib: Double,
                bandwidthGbps: Double, interconnect: Interconnect, devicesPerNode: Int, powerWatts: Double,
                efficiency: Efficiency, trainingMFU: Double = 0.4, calibration: String, source: String, network: Interconnect? = nil) {
        self.id = id; self.name = name; self.kind = kind; self.peakTflops = peakTflops; self.memoryGib = memoryGib
        self.bandwidthGbps = bandwidthGbps; self.interconnect = interconnect; self.devicesPerNode = devicesPerNode
        self.powerWatts = powerWatts; self.efficiency = efficiency; self.trainingMFU = trainingMFU
        self.calibration = calibration; self.source = source; self.network = network
    }

    /// The most devices one job may use here: one node's, unless the catalog states a network between
    /// nodes (then `PlanLimits.devices`). `local` is one machine.
    public var maxDevices: Int { network == nil ? devicesPerNode : PlanLimits.devices }

    /// Why a job of `devices` devices does not apply to this profile, or nil when it does.
    public func notApplicable(devices: Int) -> String? {
        guard devices > maxDevices else { return nil }
        if kind == .local { return "`local` is this one machine (one device); the plan needs \(HumanNumber.count(Double(devices)))" }
        if network == nil {
            return "needs \(HumanNumber.count(Double(devices))) devices, more than one \(name) node holds (\(devicesPerNode)), and the catalog states no network between its nodes"
        }
        return "needs \(HumanNumber.count(Double(devices))) devices, more than the \(HumanNumber.count(Double(PlanLimits.devices))) the planner sizes"
    }

    public var memoryBytes: Double { memoryGib * 1_073_741_824 }

    /// Bytes of one KV-cache element when serving `p` here: the engine's f32 on `local` (`EngineBytes`),
    /// the model's 16-bit dtype (or fp32) on a GPU or CPU server.
    public func kvElementBytes(_ p: Precision) -> Double {
        kind == .local ? Double(EngineBytes.kvElement) : p.activationBytes
    }

    /// Peak FLOP/s for a precision, or nil when the device cannot run it.
    public func peakFLOPs(_ p: Precision) -> Double? {
        peakTflops[p.computeDtype].map { $0 * 1e12 }
    }

    /// Why this device cannot run `p`, or nil when it can.
    public func unsupported(_ p: Precision) -> String? {
        if kind == .local && p == .bf16 { return "the local engine has no bf16 kernels (it runs f32, f16, q8_0, q4_0)" }
        if kind == .local && p == .fp8 { return "the local engine has no fp8 kernels" }
        return peakFLOPs(p) == nil ? "\(name) has no \(p.computeDtype) peak in the catalog (no \(p.rawValue) support)" : nil
    }

    /// `local`, from the probe's figures: the best sgemm rate (all precisions: the engine computes in f32
    /// after dequantizing), the read bandwidth at the same thread count, and this machine's memory.
    public static func local(probe: ProbeFigures, machine: MachineInfo, efficiency: Efficiency, calibration: String) -> HardwareProfile? {
        guard let best = probe.perThreads.filter({ $0.sgemmGFLOPs != nil }).max(by: { $0.threads < $1.threads }),
              let gflops = best.sgemmGFLOPs, let bw = probe.readGBps(threads: best.threads) else { return nil }
        let tf = gflops / 1000
        var h = HardwareProfile(
            id: "local", name: "this machine (\(best.threads) threads)", kind: .local,
            peakTflops: ["fp32": tf, "fp16": tf, "int8": tf, "bf16": tf],
            memoryGib: Double(machine.memoryBytes) / 1_073_741_824, bandwidthGbps: bw,
            interconnect: Interconnect(kind: "none", bandwidthGbps: 0, latencyUs: 0), devicesPerNode: 1, powerWatts: 0,
            efficiency: efficiency, calibration: calibration,
            source: "measured: probe sgemm \(String(format: "%.0f", gflops)) GFLOP/s and read \(String(format: "%.1f", bw)) GB/s at \(best.threads) threads; \(machine.cpuModel)")
        h.threads = best.threads
        return h
    }

    // MARK: loading

    static func loadCatalog(_ file: String) throws -> ([HardwareProfile], DefaultEfficiency) {
        try readCatalog(YAMLField.load(file), inherited: nil)
    }

    /// Reads a hardware.yaml document. `default_efficiency` is required unless `inherited` (an earlier
    /// catalog's) stands in for it; either applies to the profiles of this document.
    static func readCatalog(_ doc: YAMLField, inherited: DefaultEfficiency?) throws -> ([HardwareProfile], DefaultEfficiency) {
        let root = try doc.mapping(allowed: ["schema", "default_efficiency", "hardware"])
        let schema = try root.required("schema")
        guard try schema.int(min: 1, max: Int.max) == 1 else { throw schema.fail("schema version 1") }
        if let inherited, !root.has("default_efficiency") {
            return (try readProfiles(root, defaults: inherited), inherited)
        }
        let d = try root.required("default_efficiency").mapping(allowed: ["compute", "bandwidth", "training_mfu", "source"])
        func fraction(_ m: YAMLMapping, _ key: String) throws -> Double {
            let f = try m.required(key)
            return try f.double(min: CatalogLimits.fractionMin, max: 1)
        }
        let defaults = DefaultEfficiency(
            efficiency: Efficiency(compute: try fraction(d, "compute"), bandwidth: try fraction(d, "bandwidth")),
            trainingMFU: try fraction(d, "training_mfu"), source: try d.required("source").string())
        return (try readProfiles(root, defaults: defaults), defaults)
    }

    static func readProfiles(_ root: YAMLMapping, defaults: DefaultEfficiency) throws -> [HardwareProfile] {
        var seen = Set<String>()
        return try root.required("hardware").list { field -> HardwareProfile in
            let h = try read(field, defaults: defaults)
            if seen.contains(h.id) { throw field.error("hardware id \"\(h.id)\" appears twice") }
            seen.insert(h.id)
            return h
        }
    }

    static let dtypes = ["fp32", "bf16", "fp16", "fp8", "int8"]

    static func read(_ field: YAMLField, defaults: DefaultEfficiency) throws -> HardwareProfile {
        let probe = try field.mapping(allowed: ["id", "name", "kind", "peak_tflops", "memory_gib", "memory_bandwidth_gbps",
                                                "interconnect", "network", "devices_per_node", "power_watts", "efficiency", "source"])
        let kind = HardwareProfile.Kind(rawValue: try probe.required("kind").oneOf(["gpu", "cpu", "local"]))!
        let id = try probe.required("id").identifier("a hardware id")
        let name = try probe.optional("name")?.string() ?? id
        let source = try probe.required("source").string()
        let label = "default efficiencies, uncalibrated (compute \(defaults.efficiency.compute), bandwidth \(defaults.efficiency.bandwidth); hardware.yaml default_efficiency)"
        if kind == .local {
            // Figures for `local` come from the probe; numbers here would be silently ignored, so refuse them.
            _ = try field.mapping(allowed: ["id", "name", "kind", "source"])
            return HardwareProfile(id: id, name: name, kind: .local, peakTflops: [:], memoryGib: 0, bandwidthGbps: 0,
                                   interconnect: Interconnect(kind: "none", bandwidthGbps: 0, latencyUs: 0), devicesPerNode: 1,
                                   powerWatts: 0, efficiency: defaults.efficiency, trainingMFU: defaults.trainingMFU,
                                   calibration: label, source: source)
        }
        let peaksField = try probe.required("peak_tflops")
        let peaks = try peaksField.mapping(allowed: dtypes)
        var peak: [String: Double] = [:]
        for d in dtypes { if let f = peaks.optional(d) { peak[d] = try f.double(min: CatalogLimits.peakTflopsMin, max: CatalogLimits.peakTflops) } }
        if peak["fp32"] == nil { throw peaksField.child("fp32", nil).error("missing; this key is required") }
        let ic = try probe.required("interconnect").mapping(allowed: ["kind", "bandwidth_gbps", "latency_us"])
        var eff = defaults.efficiency
        var calibration = label
        if let e = probe.optional("efficiency") {
            let m = try e.mapping(allowed: ["compute", "bandwidth", "source"])
            eff = Efficiency(compute: try m.required("compute").double(min: CatalogLimits.fractionMin, max: 1),
                             bandwidth: try m.required("bandwidth").double(min: CatalogLimits.fractionMin, max: 1))
            calibration = "catalog efficiencies for \(id): \(try m.required("source").string())"
        }
        return HardwareProfile(
            id: id, name: name, kind: kind, peakTflops: peak,
            memoryGib: try probe.required("memory_gib").double(min: 0, exclusiveMin: true, max: CatalogLimits.memoryGib),
            bandwidthGbps: try probe.required("memory_bandwidth_gbps").double(min: CatalogLimits.bandwidthGbpsMin, max: CatalogLimits.bandwidthGbps),
            interconnect: Interconnect(kind: try ic.required("kind").string(),
                                       bandwidthGbps: try ic.required("bandwidth_gbps").double(min: CatalogLimits.bandwidthGbpsMin, max: CatalogLimits.bandwidthGbps),
                                       latencyUs: try ic.optional("latency_us")?.double(min: 0, max: CatalogLimits.latencyUs) ?? 0),
            devicesPerNode: try probe.required("devices_per_node").int(min: 1, max: 64),
            powerWatts: try probe.required("power_watts").double(min: 0, exclusiveMin: true, max: CatalogLimits.powerWatts),
            efficiency: eff, trainingMFU: defaults.trainingMFU, calibration: calibration, source: source,
            network: try probe.optional("network").map { f in
                let n = try f.mapping(allowed: ["kind", "bandwidth_gbps", "latency_us", "source"])
                return Interconnect(kind: try n.required("kind").string(),
                                    bandwidthGbps: try n.required("bandwidth_gbps").double(min: CatalogLimits.bandwidthGbpsMin, max: CatalogLimits.bandwidthGbps),
                                    latencyUs: try n.optional("latency_us")?.double(min: 0, max: CatalogLimits.latencyUs) ?? 0,
                                    source: try n.required("source").string())
            })
    }
}

extension Catalog {
    /// The hardware with this id, or an error listing the ones there are.
    public func hardware(_ id: String, field: YAMLField? = nil) throws -> HardwareProfile {
        if let h = hardware.first(where: { $0.id == id }) { return h }
        let known = hardware.map(\.id).joined(separator: ", ")
        if let field { throw field.fail("hardware in the catalog (\(known))") }
        throw InputError(file: (directory as NSString).appendingPathComponent("hardware.yaml"), path: "hardware",
                         message: "no hardware \"\(id)\"; the catalog has \(known)")
    }
}
