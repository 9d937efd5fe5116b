// Endpoint calibration: fits a catalog device's effective prefill (compute) and decode (bandwidth)
// efficiencies to what `headroom load` measured on an endpoint that says which hardware it runs on,
// with the same roofline ops the planner predicts with, so plan and whatif can use them for that device.
import Foundation

extension MeasuredCase {
    /// A fact a load case recorded about itself (`hardware`, `mean_in_flight`, …).
    public func loadFact(_ key: String) -> String? { facts[key] }
}

/// Why the load cases of an endpoint cannot calibrate a device: said instead of a fit.
public struct EndpointCalibrationError: Error, CustomStringConvertible, Equatable, Sendable {
    public var endpoint: String
    public var reason: String
    public init(endpoint: String, reason: String) { self.endpoint = endpoint; self.reason = reason }
    public var description: String { "endpoint \"\(endpoint)\" cannot calibrate its hardware: \(reason)" }
}

/// A device's efficiencies fitted to one endpoint's load points in one run.
public struct EndpointCalibration: Codable, Equatable, Sendable {
    /// The catalog hardware id the endpoint declared.
    public var hardware: String
    public var endpoint: String
    public var runID: Int64
    /// Devices serving the endpoint (tensor parallel), its precision and catalog model.
    public var devices: Int
    public var precision: Precision
    public var model: String
    /// The fit: efficiencies, which of them the data determined, leave-one-out checks and their median |error|.
    public var result: CalibrationResult
    public var points: [CalibrationPoint]
    /// "calibrated from endpoint NAME, run N (k points, median error E %, worst W %)".
    public var label: String

    public var efficiency: Efficiency { result.efficiency }
    public var computeFitted: Bool { result.computeFitted }
    public var bandwidthFitted: Bool { result.bandwidthFitted }
    public var medianAbsErrorPercent: Double? { result.medianAbsErrorPercent }

    /// The calibration points of one endpoint's load cases on `hardware`, for `model` in `precision` on
    /// `devices` devices (tensor parallel), in the planner's own terms. Two approximations, both biased
    /// towards slower (so towards lower efficiencies):
    /// - prefill: the lowest-load point's (the sweep's `synchronous` one, else the one with the fewest
    ///   requests in flight) TTFT median is taken as one prefill of `prompt_tokens` at batch 1, past 0.
    ///   TTFT also holds the network, any queueing, and the first token's decode.
    /// - decode: each point's TPOT median is taken as one decode step at batch = mean in flight (rounded,
    ///   at least 1) with past tokens = prompt + output/2 (the middle of an average request). Mean in flight
    ///   also counts requests waiting or in prefill, and TPOT holds the prefills interleaved with decode.
    /// With more than one device the tensor-parallel all-reduces the planner adds (which no efficiency
    /// scales) are subtracted from the measured time first; a point that leaves nothing is skipped.
    public static func points(cases: [MeasuredCase], hardware h: HardwareProfile, model: ModelShape, precision: Precision,
                              devices: Int) -> [CalibrationPoint] {
        let peak = h.peakTflops.mapValues { $0 * 1e12 }, bw = h.bandwidthGbps * 1e9
        func point(_ label: String, sequences: Int, newTokens: Int, pastTokens: Int, seconds: Double, samples: Int) -> CalibrationPoint? {
            let ops = PerformanceModel.forwardOps(model, precision, sequences: sequences, newTokens: newTokens, pastTokens: pastTokens, tp: devices)
            let hidden = Double(sequences * newTokens) * Double(model.dim) * precision.activationBytes
            let comm = 2 * Double(model.layers) * PerformanceModel.allReduceTime(bytes: hidden, tp: devices, interconnect: h.interconnect)
            guard seconds - comm > 0 else { return nil }
            return CalibrationPoint(label: label, kind: "endpoint", ops: ops, peakFLOPs: peak, bandwidth: bw,
                                    measuredSeconds: seconds - comm, samples: samples)
        }
        let loaded = cases.compactMap { c -> (c: MeasuredCase, inFlight: Double, prompt: Int, output: Int)? in
            guard let prompt = lengths(c, "prompt_tokens"), let output = lengths(c, "output_tokens") else { return nil }
            return (c, c.loadFact("mean_in_flight").flatMap(Double.init) ?? .infinity, prompt, output)
        }
        var out: [CalibrationPoint] = []
        let lowest = loaded.first { $0.c.params["point"] == "synchronous" } ?? loaded.min { $0.inFlight < $1.inFlight }
        if let l = lowest, let ttft = l.c.summary("ttft_ms"), ttft.median > 0,
           let p = point("prefill \(l.prompt) tokens at \(l.c.params["point"] ?? "?") (TTFT median)", sequences: 1,
                         newTokens: l.prompt, pastTokens: 0, seconds: ttft.median / 1000, samples: ttft.count) {
            out.append(p)
        }
        for l in loaded {
            guard l.inFlight.isFinite, let tpot = l.c.summary("tpot_ms"), tpot.median > 0 else { continue }
            let batch = max(1, Int(l.inFlight.rounded()))
            let past = l.prompt + l.output / 2
            if let p = point("decode batch \(batch) ctx \(past) at \(l.c.params["point"] ?? "?") (TPOT median)", sequences: batch,
                             newTokens: 1, pastTokens: past, seconds: tpot.median / 1000, samples: tpot.count) {
                out.append(p)
            }
        }
        return out
    }

    /// A length the case requested (params), else the median the requests reported (a dataset's lengths vary).
    static func lengths(_ c: MeasuredCase, _ key: String) -> Int? {
        if let v = c.params[key].flatMap(Int.init), v > 0 { return v }
        guard let s = c.summary(key), s.median >= 1 else { return nil }
        return Int(s.median.rounded())
    }

    /// Fits the hardware named by `endpoint`'s load cases in `cases` (kind "load", name = the endpoint) to
    /// them, starting from that profile's own efficiencies (kept for one the data cannot determine).
    /// Throws with the reason when the cases name no hardware or model, ones the catalog lacks, disagree
    /// with each other, or give fewer than two points.
    public static func fit(cases: [MeasuredCase], endpoint: String, runID: Int64, hardware: [HardwareProfile],
                           models: [String: ModelShape]) throws -> EndpointCalibration {
        func fail(_ reason: String) -> EndpointCalibrationError { EndpointCalibrationError(endpoint: endpoint, reason: reason) }
        let mine = cases.filter { $0.kind == "load" && $0.name == endpoint }
        guard !mine.isEmpty else { throw fail("run \(runID) has no load cases for it") }
        func fact(_ key: String, _ what: String) throws -> String {
            let values = Set(mine.map { $0.loadFact(key) ?? "" })
            guard values.count == 1, let v = values.first else {
                throw fail("its load points disagree on \(key) (\(values.sorted().map { "\"\($0)\"" }.joined(separator: ", ")))")
            }
            guard !v.isEmpty else { throw fail("it does not declare its \(what) (\(key))") }
            return v
        }
        let hardwareID = try fact("hardware", "hardware")
        let modelID = try fact("model_shape", "catalog model")
        let precisionName = try fact("precision", "precision")
        let devicesText = try fact("devices", "device count")
        guard let h = hardware.first(where: { $0.id == hardwareID }) else {
            throw fail("hardware \"\(hardwareID)\" is not in the catalog (\(hardware.map(\.id).joined(separator: ", ")))")
        }
        guard h.kind != .local else { throw fail("hardware \"local\" takes its figures from the probe, not the catalog") }
        guard let model = models[modelID] else {
            throw fail("model \"\(modelID)\" is not in the catalog (\(models.keys.sorted().joined(separator: ", ")))")
        }
        guard let precision = Precision(name: precisionName) else {
            throw fail("precision \"\(precisionName)\" is not one the planner knows (\(Precision.names.joined(separator: ", ")))")
        }
        if let why = h.unsupported(precision) { throw fail(why) }
        guard let devices = Int(devicesText), devices >= 1, devices <= h.devicesPerNode else {
            throw fail("devices \"\(devicesText)\" is not a count from 1 to \(h.devicesPerNode) (one \(h.name) node)")
        }
        let pts = points(cases: mine, hardware: h, model: model, precision: precision, devices: devices)
        guard pts.count >= 2 else {
            throw fail("its load points give \(pts.count) usable measurement\(pts.count == 1 ? "" : "s") (TTFT at the lowest load, " +
                       "TPOT with mean_in_flight at each point); a fit needs at least 2")
        }
        var result = Calibration.calibrate(pts, fallback: h.efficiency, fallbackLabel: h.calibration)
        let median = result.medianAbsErrorPercent ?? .nan
        let kept = [(result.computeFitted, "compute"), (result.bandwidthFitted, "bandwidth")].filter { !$0.0 }.map(\.1)
        // The worst check beside the median: with a single prefill point the median can read 0 % while that point,
        // predicted by a fit made without it, is far off (its compute efficiency is then not determined).
        let worst = result.checks.map { abs($0.errorPercent) }.filter(\.isFinite).max() ?? .nan
        let label = String(format: "calibrated from endpoint %@, run %lld (%d points, median error %.1f %%, worst %.1f %%): compute %.3f, bandwidth %.3f",
                           endpoint, runID, pts.count, median, worst, result.efficiency.compute, result.efficiency.bandwidth)
            + (kept.isEmpty ? "" : "; \(kept.joined(separator: " and ")) not determined by these points, kept from: \(h.calibration)")
        result.label = label   // the generic label speaks of local measurements
        return EndpointCalibration(hardware: h.id, endpoint: endpoint, runID: runID, devices: devices, precision: precision,
                                   model: modelID, result: result, points: pts, label: label)
    }

    /// `fit` with the catalog's hardware and models.
    public static func fit(cases: [MeasuredCase], endpoint: String, runID: Int64, catalog: Catalog) throws -> EndpointCalibration {
        try fit(cases: cases, endpoint: endpoint, runID: runID, hardware: catalog.hardware, models: catalog.models)
    }
}

extension HardwareProfile {
    /// This profile with `calibration`'s efficiencies and label, when it is the hardware that was
    /// calibrated; any other profile is returned unchanged.
    public func applying(_ calibration: EndpointCalibration) -> HardwareProfile {
        guard calibration.hardware == id else { return self }
        var h = self
        h.efficiency = calibration.efficiency
        h.calibration = calibration.label
        h.precisionCalibrations = nil   // the user's own measurements take precedence over published fits
        return h
    }
}
