// The planning section: the recommendation and ranked candidates, what does not fit and why, the
// Pareto set, fine-tuning and training plans, the calibration's errors, and plots of cost against
// users, memory per hardware and precision, latency against load, and the local roofline with the
// measurements on it. It draws a plan computed upstream (passed in, or read from the store); it never plans.
import Foundation
import HeadroomCore
import HeadroomStore

/// Text tables of a plan, shared by the terminal (`headroom plan`, `whatif`) and the report.
public enum PlanTables {
    /// Dollars for people ("$19.8M"; `HumanNumber.money`), "—" when there is no figure.
    static func money(_ v: Double?) -> String { v.map(HumanNumber.money) ?? "—" }
    /// Counts for people ("608 M"; `HumanNumber.count`).
    static func count(_ v: Double?) -> String { v.map(HumanNumber.count) ?? "—" }
    static func num(_ v: Double?) -> String { v.map(Fmt.sig) ?? "—" }

    /// One line per figure kind: what the numbers are and what they rest on.
    public static func preamble(_ p: PlanResult) -> String {
        var s = "Plan for \(p.modelName) (\(count(p.parameters)) parameters): \(count(Double(p.demand.users))) users × "
            + "\(count(p.demand.requestsPerUserPerDay)) requests/day, \(count(Double(p.demand.promptTokens))) prompt + "
            + "\(count(Double(p.demand.outputTokens))) output tokens; peak \(count(p.peakRequestsPerSecond)) req/s, "
            + "\(count(p.outputTokensPerMonth)) output tokens/month.\n"
        s += String(format: "SLO: p95 TTFT ≤ %.0f ms, p95 TPOT ≤ %.0f ms. Prices: %@ (%@).\n", p.slo.ttftP95 * 1000, p.slo.tpotP95 * 1000,
                    p.priceSheet ?? "none", p.pricing)
        if !p.catalogFiles.isEmpty { s += "Catalog: \(p.catalogFiles.joined(separator: ", ")).\n" }
        s += "Every figure below is PREDICTED by the performance model and \(p.servingModel).\n"
        let others = Set(p.candidates.compactMap(\.servingModel)).subtracting([p.servingModel])
        if !others.isEmpty {
            let refined = p.candidates.filter { $0.servingModel == p.servingModel }.count
            s += "Latency under load of the \(refined) leading candidates is the \(p.servingModel.split(separator: " ").prefix(2).joined(separator: " "))'s; "
                + "the other \(p.candidates.count - refined) keep the \(others.sorted().joined(separator: ", ")) that ranked them.\n"
        }
        let endpoints = p.endpointCalibrations ?? []
        let endpointIDs = Set(endpoints.map(\.hardware))
        // An endpoint calibration (the user's own measurements) takes precedence over a published fit.
        let published = (p.publishedCalibrations ?? []).filter { !endpointIDs.contains($0.hardware) && $0.applied }
        let calibrated = endpoints.map(\.hardware) + published.map { "\($0.hardware) at \($0.precisions.map(\.rawValue).joined(separator: ", "))" }
        s += "Calibration: modeled devices use the catalog's default efficiencies (hardware.yaml default_efficiency), uncalibrated"
        if !calibrated.isEmpty { s += " except \(calibrated.joined(separator: "; "))" }
        if let c = p.calibration { s += "; local: \(p.local?.calibration ?? c.label)" }
        s += ".\n"
        for e in endpoints { s += "Calibration of \(e.hardware) (every \(e.hardware) figure below): \(e.label).\n" }
        for f in p.publishedCalibrations ?? [] where endpointIDs.contains(f.hardware) {
            s += "Note: \(f.hardware)'s fit to published measurements is not used: the endpoint calibration above, from your own measurements, takes precedence.\n"
        }
        for f in published {
            let at = f.precisions.map(\.rawValue).joined(separator: ", ")
            s += "Calibration of \(f.hardware) at \(at) (every \(f.hardware) \(at) figure below): \(f.label).\n"
        }
        // The rest, per hardware and label: the precisions each other efficiency holds for.
        let fitted = Set(published.map(\.label))
        var groups: [(hardware: String, label: String, precisions: [String])] = []
        for c in p.candidates where c.hardware != "local" && !endpointIDs.contains(c.hardware) && !fitted.contains(c.calibration) {
            if let i = groups.firstIndex(where: { $0.hardware == c.hardware && $0.label == c.calibration }) {
                if !groups[i].precisions.contains(c.precision) { groups[i].precisions.append(c.precision) }
            } else {
                groups.append((c.hardware, c.calibration, [c.precision]))
            }
        }
        for g in groups { s += "Calibration of \(g.hardware) at \(g.precisions.joined(separator: ", ")): \(g.label).\n" }
        for n in p.calibrationNotes ?? [] { s += "Note: \(n).\n" }
        for (id, why) in p.skipped.sorted(by: { $0.key < $1.key }) { s += "Skipped \(id): \(why).\n" }
        return s
    }

    public static func recommendation(_ p: PlanResult) -> String {
        guard let r = p.recommendation else {
            return "No configuration meets the SLO with a price in the sheet: see the configurations that do not fit."
        }
        let c = r.candidate
        return "Recommendation (predicted): \(c.replicas) replica\(c.replicas == 1 ? "" : "s") of \(c.tensorParallel) × \(c.hardwareName) "
            + "at \(c.precision) (tensor parallel \(c.tensorParallel); \(c.devices) device\(c.devices == 1 ? "" : "s") in all, "
            + "\(c.cost?.provider ?? "?")) — \(r.reason)."
    }

    public static func ranked(_ p: PlanResult, limit: Int = 12) -> TextTable {
        var t = TextTable(["#", "configuration", "replicas", "devices", "max batch", "TTFT p95 ms", "TPOT p95 ms", "req/s per replica",
                           "$/month always-on", "$/month autoscaled", "$/M output tok", "provider", "Pareto"],
                          rightAligned: [0, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        for (i, c) in p.ranked.prefix(limit).enumerated() {
            t.add([String(i + 1), c.id, String(c.replicas), String(c.devices), String(c.maxBatch),
                   withInterval(c.predictedTtftP95Ms, c.predictedTtftP95IntervalMs),
                   withInterval(c.predictedTpotP95Ms, c.predictedTpotP95IntervalMs), num(c.capacityRpsPerReplica), money(c.monthlyCostUsd?.alwaysOn),
                   money(c.monthlyCostUsd?.autoscaled), money(c.usdPerMillionOutputTokens), c.cost?.provider ?? "—", c.pareto ? "yes" : ""])
        }
        return t
    }

    /// The ranked table, every candidate when `limit` is nil; a shorter table ends with "N more (--all)".
    public static func rankedText(_ p: PlanResult, limit: Int?) -> String {
        let all = p.ranked.count
        let shown = limit.map { min($0, all) } ?? all
        var out = ranked(p, limit: shown).rendered
        if shown < all { out += "\n\(all - shown) more (--all)" }
        return out
    }

    /// How candidates are ordered, as the tables and `--help` state it.
    public static let rankingRule = "ranked by autoscaled monthly cost, then p95 TTFT, then p95 TPOT, then name"

    /// "412 [388, 441]": a predicted figure and its 95 % interval when the serving model gives one.
    static func withInterval(_ value: Double?, _ interval: Estimate?) -> String {
        guard let value else { return num(nil) }
        guard let low = interval?.low, let high = interval?.high else { return num(value) }
        return "\(num(value)) [\(num(low)), \(num(high))]"
    }

    /// Configurations meeting the SLO that have no price in the sheet, one row per hardware.
    public static func unpriced(_ p: PlanResult) -> TextTable? {
        let rows = p.candidates.filter { $0.meetsSlo && $0.monthlyCostUsd == nil }
        guard !rows.isEmpty else { return nil }
        var t = TextTable(["hardware", "configurations", "why no cost", "best TPOT p95 ms", "best req/s per replica"], rightAligned: [3, 4])
        var seen = Set<String>()
        for c in rows where !seen.contains(c.hardware) {
            seen.insert(c.hardware)
            let group = rows.filter { $0.hardware == c.hardware }
            let priced = p.candidates.contains { $0.hardware == c.hardware && $0.monthlyCostUsd != nil }
            let why = priced ? "no instance in the sheet holds that many devices" : "no offer for \(c.hardware) in the price sheet"
            t.add([c.hardware, group.map { "\($0.precision)/tp\($0.tensorParallel)" }.joined(separator: ", "), why,
                   num(group.compactMap(\.predictedTpotP95Ms).min()), num(group.map(\.capacityRpsPerReplica).max())])
        }
        return t
    }

    /// One row per hardware × precision with no tensor-parallel degree that meets the SLO: the reason of
    /// the most capable degree tried.
    public static func notFitting(_ p: PlanResult) -> TextTable {
        var t = TextTable(["hardware", "precision", "why not (predicted)"])
        var seen = Set<String>()
        for c in p.candidates {
            let key = "\(c.hardware)/\(c.precision)"
            if seen.contains(key) { continue }
            let group = p.candidates.filter { $0.hardware == c.hardware && $0.precision == c.precision }
            if group.contains(where: \.meetsSlo) { seen.insert(key); continue }
            seen.insert(key)
            let structural = ["exceeds the", "do not divide"]
            let reason = group.last { g in !structural.contains { (g.whyNot ?? "").contains($0) } }?.whyNot ?? group.last?.whyNot ?? "—"
            let tps = group.map { "tp\($0.tensorParallel)" }.joined(separator: ",")
            let local = c.hardware == "local" && !reason.contains(" has no ") ? localCalibration(p, precision: c.precision).map { " (\($0))" } ?? "" : ""
            t.add([c.hardware, c.precision, "\(reason) [\(tps)]\(local)"])
        }
        return t
    }

    /// How good `local`'s step times in `precision` are: its inference regimes' leave-one-out errors, or the
    /// one pair of efficiencies that prices a format no regime measured.
    public static func localCalibration(_ p: PlanResult, precision: String) -> String? {
        let global = p.calibration.flatMap(\.medianAbsErrorPercent).map { String(format: "leave-one-out median |error| %.1f %%", $0) } ?? "unchecked"
        guard let r = p.regimeCalibration else { return p.calibration.map { _ in "local calibration: one pair of efficiencies, \(global)" } }
        let engine: Set<KernelRegime> = [.prefill, .decodeOne, .decodeBatch]
        let mine = r.checks.filter { $0.point.key.format == precision && engine.contains($0.point.key.kernel) }
        guard !mine.isEmpty else { return "local calibration: \(precision) not measured, one pair of efficiencies fitted to every format, \(global)" }
        let e = RegimeCalibration.errors(mine)
        return "local calibration: \(mine.count) \(precision) measurements per regime, leave-one-out median |error| "
            + (e.median.map { String(format: "%.1f %%", $0) } ?? "—") + ", worst " + (e.worst.map { String(format: "%.1f %%", $0) } ?? "—")
    }

    public static func pareto(_ p: PlanResult) -> TextTable {
        var t = TextTable(["configuration", "$/month autoscaled", "TPOT p95 ms", "TTFT p95 ms"], rightAligned: [1, 2, 3])
        for c in p.candidates.filter(\.pareto).sorted(by: { ($0.monthlyCostUsd?.autoscaled ?? 0) < ($1.monthlyCostUsd?.autoscaled ?? 0) }) {
            t.add([c.id, money(c.monthlyCostUsd?.autoscaled), num(c.predictedTpotP95Ms), num(c.predictedTtftP95Ms)])
        }
        return t
    }

    public static func onPrem(_ p: PlanResult, limit: Int = 8) -> TextTable? {
        let rows = p.ranked.filter { $0.cost?.onPrem != nil }.prefix(limit)
        guard !rows.isEmpty else { return nil }
        var t = TextTable(["configuration", "devices", "purchase", "power $/month", "owned $/month", "cloud always-on $/month", "break-even months"],
                          rightAligned: [1, 2, 3, 4, 5, 6])
        for c in rows {
            let o = c.cost!.onPrem!
            t.add([c.id, String(o.devices), money(o.purchaseUSD), money(o.powerUSDPerMonth), money(o.monthlyUSD),
                   money(c.monthlyCostUsd?.alwaysOn), o.breakEvenMonths.map(Fmt.sig) ?? "never"])
        }
        return t
    }

    public static func finetune(_ p: PlanResult) -> TextTable? {
        guard !p.finetune.isEmpty else { return nil }
        let deadline = p.finetune.contains { $0.meetsDeadline != nil }
        var headers = ["hardware", "method", "PFLOP", "devices used/billed", "ZeRO", "GiB per device", "steps", "hours",
                       "of which communication", "cost"]
        if deadline { headers.append("by deadline") }
        headers.append("provider / link, or why not")
        var t = TextTable(headers, rightAligned: [2, 3, 4, 5, 6, 7, 8, 9])
        for r in p.finetune {
            if let why = r.notApplicable {
                t.add([r.hardware, r.method, Fmt.sig(r.flops / 1e15)] + Array(repeating: "—", count: headers.count - 4) + ["not applicable: \(why)"])
                continue
            }
            let devices = r.devices.map { d in r.billedDevices.map { $0 == d ? "\(d)" : "\(d) of \($0)" } ?? "\(d)" } ?? "—"
            var row = [r.hardware, r.method, Fmt.sig(r.flops / 1e15), devices, r.devices == nil ? "—" : String(r.zeroStage),
                       r.memoryPerDevice.map { Fmt.sig($0.total / 1_073_741_824) } ?? "—", count(r.steps.map(Double.init)), num(r.hours),
                       num(r.communicationHours), money(r.usd)]
            if deadline { row.append(r.meetsDeadline.map { $0 ? "yes" : "no" } ?? "—") }
            var last = r.whyNot ?? [r.provider ?? "no price", r.link].compactMap { $0 }.joined(separator: ", ")
            if let note = r.note { last += " (\(note))" }
            row.append(last)
            t.add(row)
        }
        return t
    }

    /// "Fine-tuning recommendation (predicted): …", or why there is none.
    public static func finetuneRecommendation(_ p: PlanResult) -> String? {
        guard !p.finetune.isEmpty, let method = p.finetune.first?.method else { return nil }
        guard let r = p.finetuneRecommendation else {
            return "No \(method) fine-tuning plan with a price finishes by the deadline: see the fine-tuning plan."
        }
        let x = r.row
        let devices = x.devices.map { d in "\(d) × \(x.hardware)" + (x.billedDevices.map { $0 == d ? "" : " (\($0) billed)" } ?? "") } ?? x.hardware
        return "Fine-tuning recommendation (predicted): \(x.method) on \(devices)\(x.zeroStage == 3 ? ", ZeRO 3" : "")"
            + "\(x.provider.map { " at \($0)" } ?? ""), \(num(x.hours)) h, \(money(x.usd)) — \(r.reason)."
    }

    public static func training(_ p: PlanResult) -> TextTable? {
        guard !p.training.isEmpty else { return nil }
        var t = TextTable(["hardware", "ZFLOP (6·N·D)", "devices used/billed", "ZeRO", "days", "of which communication", "cost",
                           "provider / link, or why not"], rightAligned: [1, 2, 3, 4, 5, 6])
        for r in p.training {
            if let why = r.notApplicable {
                t.add([r.hardware, Fmt.sig(r.flops / 1e21), "—", "—", "—", "—", "—", "not applicable: \(why)"])
                continue
            }
            let devices = r.devices.map { d in r.billedDevices.map { $0 == d ? count(Double(d)) : "\(count(Double(d))) of \(count(Double($0)))" } ?? count(Double(d)) } ?? "—"
            var last = r.whyNot ?? [r.provider ?? "no price", r.link].compactMap { $0 }.joined(separator: ", ")
            if let note = r.note { last += " (\(note))" }
            t.add([r.hardware, Fmt.sig(r.flops / 1e21), devices, r.zeroStage.map(String.init) ?? "—", num(r.days), num(r.communicationDays),
                   money(r.usd), last])
        }
        return t
    }

    public static func calibration(_ p: PlanResult) -> TextTable? { p.calibration.flatMap(checks) }

    /// The local per-regime model: each regime's fit and leave-one-out error (nil without one).
    public static func regimes(_ p: PlanResult) -> TextTable? {
        guard let r = p.regimeCalibration, !r.fits.isEmpty else { return nil }
        var t = TextTable(["regime", "points", "sizes", "fit", "leave-one-out median |error|", "worst"], rightAligned: [1, 4, 5])
        func pct(_ x: Double?) -> String { x.map { String(format: "%.1f%%", $0) } ?? "—" }
        for f in r.fits {
            t.add([f.key.description, String(f.points), "\(f.key.kernel.sizeName) " + f.sizes.map(String.init).joined(separator: ","),
                   f.model.summary, pct(f.medianAbsErrorPercent), pct(f.worstAbsErrorPercent)])
        }
        return t
    }

    /// Every local measurement against its regime fitted without it (nil without a per-regime model).
    public static func regimeChecks(_ p: PlanResult) -> TextTable? {
        guard let r = p.regimeCalibration, !r.checks.isEmpty else { return nil }
        var t = TextTable(["measurement (measured, median)", "regime", "n", "measured ms", "predicted ms (fit without it)", "error"],
                          rightAligned: [2, 3, 4, 5])
        for x in r.checks {
            t.add([x.point.label, x.via ?? x.point.key.description, String(x.point.samples), Fmt.ms(x.point.measuredSeconds),
                   x.predictedSeconds.map(Fmt.ms) ?? "—", x.errorPercent.map { String(format: "%+.1f%%", $0) } ?? "—"])
        }
        return t
    }

    /// Each endpoint-calibrated hardware's measurements against a fit made without each: title and table.
    public static func endpointCalibrations(_ p: PlanResult) -> [(title: String, table: TextTable)] {
        (p.endpointCalibrations ?? []).compactMap { e in
            checks(e.result).map { ("Calibration of \(e.hardware) from endpoint \(e.endpoint), run \(e.runID): each measurement against a fit made without it", $0) }
        }
    }

    /// A calibration's leave-one-out checks (nil without any).
    static func checks(_ c: CalibrationResult) -> TextTable? {
        guard !c.checks.isEmpty else { return nil }
        var t = TextTable(["measurement (measured, median)", "n", "measured ms", "predicted ms (fit without it)", "error"],
                          rightAligned: [1, 2, 3, 4])
        for x in c.checks {
            t.add([x.label, String(x.samples), Fmt.ms(x.measuredSeconds), Fmt.ms(x.predictedSeconds), String(format: "%+.1f%%", x.errorPercent)])
        }
        return t
    }

    public static func batch(_ p: PlanResult) -> TextTable? {
        guard let curve = p.batchCurves.first else { return nil }
        var t = TextTable(["batch", "decode step (TPOT) ms", "decode tok/s", "prefill of the batch ms"], rightAligned: [0, 1, 2, 3])
        for x in curve.points { t.add([String(x.batch), Fmt.sig(x.decodeStepMs), Fmt.sig(x.decodeTokensPerSecond), Fmt.sig(x.prefillMs)]) }
        return t
    }

    public static func memory(_ p: PlanResult) -> TextTable {
        var t = TextTable(["hardware", "precision", "tp", "weights GiB/device", "workspace GiB", "KV budget GiB", "KV GiB/request", "max batch"],
                          rightAligned: [2, 3, 4, 5, 6, 7])
        for c in memoryRows(p) {
            let m = c.memory, g = 1_073_741_824.0
            t.add([c.hardware, c.precision, String(c.tensorParallel), Fmt.sig(m.weightBytes / g), Fmt.sig(m.workspaceBytes / g),
                   Fmt.sig(m.kvBudgetBytes / g), Fmt.sig(m.kvBytesPerSequence / g), String(m.maxBatch)])
        }
        return t
    }

    /// Per hardware × precision, the smallest tensor-parallel degree whose memory fits (else tp=1).
    static func memoryRows(_ p: PlanResult) -> [Candidate] {
        var out: [Candidate] = []
        var seen = Set<String>()
        for c in p.candidates where !seen.contains("\(c.hardware)/\(c.precision)") {
            seen.insert("\(c.hardware)/\(c.precision)")
            let group = p.candidates.filter { $0.hardware == c.hardware && $0.precision == c.precision }
            out.append(group.first { $0.memory.maxBatch > 0 && $0.whyNot?.contains("no ") != true } ?? group[0])
        }
        return out
    }

    /// Everything `headroom plan` prints.
    public static func text(_ p: PlanResult, limit: Int? = 12) -> String {
        var out = preamble(p) + "\n" + recommendation(p) + "\n\nRanked configurations that meet the SLO (predicted; \(rankingRule)):\n"
            + rankedText(p, limit: limit) + "\n"
        if let u = unpriced(p) { out += "\nMeet the SLO but have no price in the sheet (predicted):\n" + u.rendered + "\n" }
        out += "\nDo not fit or miss the SLO (predicted):\n" + notFitting(p).rendered + "\n"
        out += "\nPareto set, cost against p95 TPOT (predicted):\n" + pareto(p).rendered + "\n"
        if let o = onPrem(p) { out += "\nBuying instead of renting (predicted, purchase over \(Fmt.sig(p.candidates.compactMap { $0.cost?.onPrem?.amortisationMonths }.first ?? 36)) months + power):\n" + o.rendered + "\n" }
        if let f = finetune(p) {
            out += "\nFine-tuning plan (predicted, training MFU from the catalog; every device billed runs data-parallel):\n" + f.rendered + "\n"
            if let r = finetuneRecommendation(p) { out += r + "\n" }
        }
        if let t = training(p) { out += "\nTraining plan (predicted, 6·N·D at the training MFU, plus communication):\n" + t.rendered + "\n" }
        if let r = regimes(p) {
            out += "\nCalibration of the local profile, per regime (seconds = a × bytes/read bandwidth + b × FLOPs/sgemm peak; each "
                + "measurement predicted by its regime fitted without it; `headroom calibrate` lists them):\n" + r.rendered + "\n"
        } else if let c = calibration(p) {
            out += "\nCalibration of the local profile: each measurement against a fit made without it:\n" + c.rendered + "\n"
        }
        for e in endpointCalibrations(p) { out += "\n\(e.title):\n" + e.table.rendered + "\n" }
        return out
    }
}

public struct PlanningSection: ReportSectionBuilder {
    public var plan: PlanResult

    public init(plan: PlanResult) { self.plan = plan }

    public func section(for run: StoredRun, folder: String) -> ReportSection? { section(folder: folder) }

    /// The section without a run (for `headroom plan`'s own report).
    public func section(folder: String) -> ReportSection {
        let p = plan
        var md = PlanTables.preamble(p).replacingOccurrences(of: "\n", with: "\n\n") + "**" + PlanTables.recommendation(p) + "**\n\n"
        var html = PlanTables.preamble(p).split(separator: "\n").map { "<p>\(HTML.escape(String($0)))</p>" }.joined(separator: "\n")
        html += "\n<p><strong>\(HTML.escape(PlanTables.recommendation(p)))</strong></p>\n"
        func add(_ title: String, _ t: TextTable?) {
            guard let t else { return }
            md += "### \(title)\n\n\(t.markdown)\n\n"
            html += "<h3>\(HTML.escape(title))</h3>\n\(t.html)\n"
        }
        add("Ranked configurations that meet the SLO (predicted; \(PlanTables.rankingRule))", PlanTables.ranked(p))
        let more = p.ranked.count - min(12, p.ranked.count)
        if more > 0 {
            md += "\(more) more (`headroom plan --all`)\n\n"
            html += "<p>\(more) more (<code>headroom plan --all</code>)</p>\n"
        }
        add("Meet the SLO but have no price in the sheet (predicted)", PlanTables.unpriced(p))
        add("Do not fit or miss the SLO (predicted)", PlanTables.notFitting(p))
        add("Pareto set: cost against p95 TPOT (predicted)", PlanTables.pareto(p))
        add("The recommendation's step times against batch (predicted, \(p.batchCurves.first?.configuration ?? ""))", PlanTables.batch(p))
        add("Buying instead of renting (predicted)", PlanTables.onPrem(p))
        add("Memory per device by hardware and precision (predicted)", PlanTables.memory(p))
        add("Fine-tuning plan (predicted)", PlanTables.finetune(p))
        if let r = PlanTables.finetuneRecommendation(p) {
            md += "**\(r)**\n\n"
            html += "<p><strong>\(HTML.escape(r))</strong></p>\n"
        }
        add("Training plan (predicted, 6·N·D)", PlanTables.training(p))
        if let r = PlanTables.regimes(p) {
            add("Calibration: the local execution-time model per regime (seconds = a × bytes/read bandwidth + b × FLOPs/sgemm peak; "
                + "efficiencies 1/a and 1/b)", r)
            add("Calibration: local measurements against their regime fitted without each (measured vs predicted)", PlanTables.regimeChecks(p))
        }
        add("Calibration: local measurements against one pair of efficiencies fitted without each (measured vs predicted; "
            + "prices the formats no regime measured)", PlanTables.calibration(p))
        for e in PlanTables.endpointCalibrations(p) { add(e.title, e.table) }
        let plots = [costPlot(folder), memoryPlot(folder), latencyPlot(folder), rooflinePlot(folder), calibrationPlot(folder)].compactMap { $0 }
        for plot in plots {
            let file = (plot.output as NSString).lastPathComponent
            md += "\(imageMarkdown(file, file))\n\n"
            html += imageHTML(file, file) + "\n"
        }
        return ReportSection(title: "Capacity plan for \(p.modelName) (predicted)", markdown: md, html: html, plots: plots)
    }

    func costPlot(_ folder: String) -> Gnuplot.Plot? {
        guard !plan.costCurves.isEmpty else { return nil }
        var data: [String: String] = [:]
        var lines: [String] = []
        for (i, c) in plan.costCurves.enumerated() {
            data["c\(i)"] = c.points.map { "\($0.users)\t\($0.monthlyUsd)" }.joined(separator: "\n") + "\n"
            lines.append("{{c\(i)}} using 1:2 with linespoints lw 2 lc \(i + 1) pt \(i % 7 + 1) dt \(i / 8 + 1) title '\(Gnuplot.label(c.hardware))'")
        }
        let script = Gnuplot.preamble(title: "Monthly cost (autoscaled) against users, cheapest configuration per hardware (predicted)", width: 1000) + """

            set logscale xy
            set xlabel 'users'
            set ylabel 'USD per month'
            plot \(lines.joined(separator: ", \\\n     "))
            """
        return Gnuplot.Plot(output: (folder as NSString).appendingPathComponent("plan_cost_vs_users.png"), script: script, data: data)
    }

    func memoryPlot(_ folder: String) -> Gnuplot.Plot? {
        // Devices of more than 256 GiB (CPU servers) would flatten every GPU bar: they stay in the table.
        let g = 1_073_741_824.0
        let rows = PlanTables.memoryRows(plan).filter { $0.memory.deviceBytes <= 256 * g }
        guard !rows.isEmpty else { return nil }
        let text = rows.map { c in
            let m = c.memory
            let kvUsed = min(m.kvBudgetBytes, Double(m.maxBatch) * m.kvBytesPerSequence)
            let free = max(0, m.deviceBytes - m.weightBytes - m.workspaceBytes - kvUsed)
            return "\"\(c.hardware) \(c.precision) tp\(c.tensorParallel)\"\t\(m.weightBytes / g)\t\(m.workspaceBytes / g)\t\(kvUsed / g)\t\(free / g)"
        }.joined(separator: "\n") + "\n"
        let script = Gnuplot.preamble(title: "Memory per device: weights, workspace, KV cache at the max batch, free (predicted; devices over 256 GiB in the table only)", width: 1100, height: 560) + """

            set style data histograms
            set style histogram rowstacked
            set style fill solid 0.8 border -1
            set boxwidth 0.75
            set xtics rotate by -45 font ',8'
            set ylabel 'GiB'
            plot {{m}} using 2:xtic(1) title 'weights', '' using 3 title 'workspace', '' using 4 title 'KV cache', '' using 5 title 'free'
            """
        return Gnuplot.Plot(output: (folder as NSString).appendingPathComponent("plan_memory.png"), script: script, data: ["m": text])
    }

    func latencyPlot(_ folder: String) -> Gnuplot.Plot? {
        guard !plan.latencyCurves.isEmpty else { return nil }
        var data: [String: String] = [:]
        var lines: [String] = []
        for (i, c) in plan.latencyCurves.enumerated() {
            data["l\(i)"] = c.points.map { "\($0.requestsPerSecond)\t\($0.ttftP95Seconds * 1000)\t\($0.tpotP95Seconds * 1000)" }.joined(separator: "\n") + "\n"
            lines.append("{{l\(i)}} using 1:2 with lines lw 2 lc \(i + 1) title '\(Gnuplot.label(c.configuration)) TTFT p95'")
            lines.append("{{l\(i)}} using 1:3 axes x1y2 with lines lw 2 dt 2 lc \(i + 1) title '\(Gnuplot.label(c.configuration)) TPOT p95 (right)'")
        }
        lines.append("\(plan.slo.ttftP95 * 1000) with lines lc rgb '#000000' dt 3 title 'TTFT SLO'")
        let script = Gnuplot.preamble(title: "Latency against load per replica (predicted)", width: 1100) + """

            set xlabel 'requests per second per replica'
            set ylabel 'TTFT p95 (ms)'
            set y2label 'TPOT p95 (ms)'
            set y2tics
            set yrange [0:*]
            set y2range [0:*]
            plot \(lines.joined(separator: ", \\\n     "))
            """
        return Gnuplot.Plot(output: (folder as NSString).appendingPathComponent("plan_latency_vs_load.png"), script: script, data: data)
    }

    /// Predicted against measured for every local measurement (each predicted by its regime fitted without it),
    /// one point per case, log–log, with the 1:1 line and ±10 % bands.
    func calibrationPlot(_ folder: String) -> Gnuplot.Plot? {
        guard let r = plan.regimeCalibration else { return nil }
        let pts = r.checks.compactMap { c in c.predictedSeconds.map { (c.point.measuredSeconds * 1e3, $0 * 1e3, c.point.key.kernel) } }
        guard !pts.isEmpty else { return nil }
        var data: [String: String] = [:]
        var series: [String] = []
        for (i, k) in KernelRegime.allCases.enumerated() {
            let mine = pts.filter { $0.2 == k }
            guard !mine.isEmpty else { continue }
            data["k\(i)"] = mine.map { "\($0.0)\t\($0.1)" }.joined(separator: "\n") + "\n"
            series.append("{{k\(i)}} using 1:2 with points pt \(5 + i) ps 1.2 title '\(k.rawValue)'")
        }
        let lo = pts.map { min($0.0, $0.1) }.min()! / 1.5, hi = pts.map { max($0.0, $0.1) }.max()! * 1.5
        let script = Gnuplot.preamble(title: "Local calibration: predicted (regime fitted without the point) against measured", width: 900) + """

            set logscale xy
            set xlabel 'measured (ms, median)'
            set ylabel 'predicted (ms)'
            set xrange [\(lo):\(hi)]
            set yrange [\(lo):\(hi)]
            set key top left
            plot x with lines lw 2 lc rgb '#000000' title '1:1', \\
                 1.1 * x with lines dt 2 lc rgb '#777777' title '±10 %', \\
                 0.9 * x with lines dt 2 lc rgb '#777777' notitle, \\
                 \(series.joined(separator: ", \\\n     "))
            """
        return Gnuplot.Plot(output: (folder as NSString).appendingPathComponent("plan_calibration.png"), script: script, data: data)
    }

    /// The local roofline (probe peak and bandwidth, with and without the fitted efficiencies) and every
    /// local measurement at its arithmetic intensity.
    func rooflinePlot(_ folder: String) -> Gnuplot.Plot? {
        guard let local = plan.local, let peak = local.peakTflops["fp32"], let cal = plan.calibration, !cal.checks.isEmpty else { return nil }
        let pg = peak * 1000, bw = local.bandwidthGbps, e = local.efficiency
        let measured = cal.checks.map { "\($0.flops / $0.bytes)\t\($0.flops / $0.measuredSeconds / 1e9)\t\($0.flops / $0.predictedSeconds / 1e9)" }
            .joined(separator: "\n") + "\n"
        let script = Gnuplot.preamble(title: "Local roofline: probe limits, fitted efficiencies, measurements (measured) and model (predicted)", width: 1000) + """

            set logscale xy
            set xlabel 'arithmetic intensity (FLOP per byte)'
            set ylabel 'GFLOP/s'
            set xrange [0.1:1000]
            peak = \(pg)
            bw = \(bw)
            f(x) = (bw * x < peak) ? bw * x : peak
            g(x) = (bw * \(e.bandwidth) * x < peak * \(e.compute)) ? bw * \(e.bandwidth) * x : peak * \(e.compute)
            plot f(x) with lines lw 2 lc rgb '#000000' title 'probe roofline (measured limits)', \\
                 g(x) with lines lw 2 dt 2 lc rgb '#555555' title 'with fitted efficiencies', \\
                 {{r}} using 1:2 with points pt 7 ps 1.2 lc rgb '#c44e52' title 'measured (median)', \\
                 {{r}} using 1:3 with points pt 6 ps 1.2 lc rgb '#4c72b0' title 'predicted (fit without the point)'
            """
        return Gnuplot.Plot(output: (folder as NSString).appendingPathComponent("plan_roofline.png"), script: script, data: ["r": measured])
    }
}

extension ReportWriter {
    /// A report of the planning section alone (`headroom plan`, which measures nothing): `folder`/index.md,
    /// index.html and the plots.
    @discardableResult
    public static func writePlan(_ plan: PlanResult, scenario: String, folder: String) throws -> [String] {
        try ReportWriter.prepareFolder(folder)
        let section = PlanningSection(plan: plan).section(folder: folder)
        // gnuplot writes its images in place: every output is checked before the first is drawn.
        for path in section.plots.map(\.output) + ["index.md", "index.html"].map({ (folder as NSString).appendingPathComponent($0) }) {
            try FileChecks.requireWritableOutput(path, option: "the report")
        }
        var written: [String] = []
        for p in section.plots { try Gnuplot.render(p); written.append(p.output) }
        let title = "Headroom plan: \(scenario)"
        let md = "# \(title)\n\n## \(section.title)\n\n\(section.markdown)"
        let html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>\(HTML.escape(title))</title>
            <style>body { font-family: system-ui, sans-serif; max-width: 75em; margin: 2em auto; padding: 0 1em; }
            table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; } th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; }
            td.num { text-align: right; } img { max-width: 100%; }</style></head><body>
            <h1>\(HTML.escape(title))</h1>
            <h2>\(HTML.escape(section.title))</h2>
            \(section.html)
            </body></html>

            """
        for (name, text) in [("index.md", md), ("index.html", html)] {
            let path = (folder as NSString).appendingPathComponent(name)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            written.append(path)
        }
        return written
    }
}
