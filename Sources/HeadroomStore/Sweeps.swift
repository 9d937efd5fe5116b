// Sweeps: one scenario's cases spread over N machines (`headroom run --shard I/N --sweep ID`), each shard a run
// of its own in a shared store, merged back into one run for the report once every shard has completed. The
// merge refuses — it never guesses — when a shard is missing, unfinished, or measured something else.
import Foundation
import GRDB
import HeadroomCore

/// Which shard of which sweep a run is.
public struct SweepShard: Codable, Equatable, Hashable, Sendable {
    public var sweep: String
    /// 0..<count.
    public var index: Int
    public var count: Int

    public init(sweep: String, index: Int, count: Int) {
        self.sweep = sweep; self.index = index; self.count = count
    }
}

extension SQLiteStore {
    static let runSweepMigration = "v8: run sweep and shard"

    /// Three nullable columns: runs from before it (and runs that are not shards) belong to no sweep.
    static func migrateRunSweep(_ db: Database) throws {
        try db.alter(table: "run") { t in
            t.add(column: "sweep", .text)
            t.add(column: "shard_index", .integer)
            t.add(column: "shard_count", .integer)
        }
        try db.create(index: "run_on_sweep", on: "run", columns: ["sweep"])
    }

    public func sweepRuns(_ sweep: String) throws -> [RunRecord] {
        try dbQueue.read { db in
            try RunRecord.filter(Column("sweep") == sweep).order(Column("started_at").desc, Column("id").desc).fetchAll(db)
        }
    }
}

/// A sweep some of whose shards have no complete latest run: nothing is merged. A failure while running (exit 1),
/// not bad input: the sweep may still be under way, or a shard needs running again.
public struct SweepIncomplete: Error, CustomStringConvertible, Equatable {
    public var sweep: String
    public var count: Int
    /// Shard indexes with no run at all.
    public var missing: [Int]
    /// Shards whose latest run is not complete: index, run id, status.
    public var unfinished: [Unfinished]

    public struct Unfinished: Equatable, Sendable {
        public var index: Int
        public var runID: Int64
        public var status: RunStatus
    }

    public var description: String {
        var parts: [String] = []
        if !missing.isEmpty {
            parts.append("shard\(missing.count == 1 ? "" : "s") \(missing.map(String.init).joined(separator: ", ")) "
                         + "\(missing.count == 1 ? "has" : "have") no run")
        }
        for u in unfinished {
            parts.append("shard \(u.index)'s latest run \(u.runID) is \(u.status.rawValue)")
        }
        return "sweep \(sweep): \(count - missing.count - unfinished.count) of \(count) shards complete; "
            + parts.joined(separator: "; ")
            + "; nothing was merged (run the missing shards again with --shard I/\(count) --sweep \(sweep), or wait for them)"
    }
}

/// The shards of a sweep merged into one run: every case once, each saying which shard and run measured it.
public struct SweepMerge: Sendable {
    /// One shard's run.
    public struct Source: Sendable, Equatable {
        public var index: Int
        public var runID: Int64
        public var host: String
        public var machineFingerprint: String
        /// The cases it contributed (its probe only for the first shard).
        public var cases: Int
    }

    public var sweep: String
    public var count: Int
    /// A run that was never stored (no id): shard 0's record spanning every shard's time, with the union of the
    /// shards' cases. Each case's facts name its shard (`sweep_shard`) and run (`sweep_run`).
    public var run: StoredRun
    public var sources: [Source]

    /// The fact keys each merged case carries.
    public static let shardFact = "sweep_shard", runFact = "sweep_run"

    /// Merges the latest run of each shard of `sweep` in `store`. Throws `SweepIncomplete` when a shard has no run
    /// or its latest run is not complete; an `InputError` when no run belongs to the sweep, its runs disagree on
    /// the shard count or the scenario, or two shards measured the same case (they did not split alike).
    public static func merge(_ sweep: String, in store: any Store) throws -> SweepMerge {
        let runs = try store.sweepRuns(sweep)
        guard let newest = runs.first, let count = newest.shardCount else {
            throw InputError(file: "--sweep", path: "", message: "no run of sweep \"\(sweep)\" in \(store.path) "
                             + "(`headroom run SCENARIO --shard I/N --sweep \(sweep)` makes one)")
        }
        let counts = Set(runs.compactMap(\.shardCount))
        guard counts.count == 1 else {
            throw InputError(file: "--sweep", path: "", message: "sweep \"\(sweep)\" holds runs of \(counts.sorted().map(String.init).joined(separator: " and ")) "
                             + "shards; a sweep has one shard count: name each launch's sweep apart (--sweep ID)")
        }
        // Newest first, so the first run of an index is that shard's latest (a shard run again replaces its earlier run).
        var latest: [Int: RunRecord] = [:]
        for r in runs { if let i = r.shardIndex, latest[i] == nil { latest[i] = r } }
        let missing = (0..<count).filter { latest[$0] == nil }
        let unfinished = (0..<count).compactMap { i -> SweepIncomplete.Unfinished? in
            guard let r = latest[i], r.status != .complete else { return nil }
            return .init(index: i, runID: r.id ?? 0, status: r.status)
        }
        guard missing.isEmpty && unfinished.isEmpty else {
            throw SweepIncomplete(sweep: sweep, count: count, missing: missing, unfinished: unfinished)
        }
        let chosen = (0..<count).map { latest[$0]! }
        if let odd = chosen.first(where: { $0.scenarioHash != chosen[0].scenarioHash }) {
            throw InputError(file: "--sweep", path: "", message: "sweep \"\(sweep)\": shard \(odd.shardIndex!) (run \(odd.id ?? 0)) measured "
                             + "scenario \(odd.scenarioName) hash \(odd.scenarioHash), shard 0 (run \(chosen[0].id ?? 0)) hash "
                             + "\(chosen[0].scenarioHash); the scenario changed between shards: run every shard of one file")
        }
        return try merge(sweep: sweep, count: count, runs: chosen.map { try store.load(runID: $0.id!) })
    }

    /// Merges complete shard runs, given in shard order.
    static func merge(sweep: String, count: Int, runs: [StoredRun]) throws -> SweepMerge {
        var cases: [MeasuredCase] = []
        var seen: [String: Int] = [:]
        var sources: [Source] = []
        for (index, stored) in runs.enumerated() {
            let runID = stored.run.id ?? 0
            var contributed = 0
            // Every shard probes its own machine; the report's rooflines are the first shard's.
            for var c in stored.cases where c.kind != .probe || index == 0 {
                let key = caseKey(c)
                // The same load point from every client of a distributed load (`load --shard`): one point, its
                // requests together.
                if c.kind == .load, seen[key] != nil, let position = cases.firstIndex(where: { caseKey($0) == key }) {
                    cases[position] = LoadPointMerge.combine(cases[position], c)
                    cases[position].facts[shardFact, default: ""] += ",\(index)"
                    cases[position].facts[runFact, default: ""] += ",\(runID)"
                    contributed += 1
                    continue
                }
                if let other = seen[key] {
                    throw InputError(file: "--sweep", path: "", message: "sweep \"\(sweep)\": shards \(other) and \(index) both measured "
                                     + "\(c.kind) \(c.name) (\(MeasuredCase.threadsLabel(c.threads))); the shards did not split the scenario "
                                     + "alike (different Headroom versions?): run the sweep again under a new --sweep ID")
                }
                seen[key] = index
                c.facts[shardFact] = String(index)
                c.facts[runFact] = String(runID)
                cases.append(c)
                contributed += 1
            }
            sources.append(Source(index: index, runID: runID, host: stored.run.host,
                                  machineFingerprint: stored.run.machineFingerprint, cases: contributed))
        }
        var record = runs[0].run
        record.id = nil
        record.startedAt = runs.map(\.run.startedAt).min()!
        record.endedAt = runs.compactMap(\.run.endedAt).max()
        record.status = .complete
        record.shardIndex = nil
        record.note = "sweep \(sweep): \(count) shards, runs \(sources.map { String($0.runID) }.joined(separator: ", "))"
        return SweepMerge(sweep: sweep, count: count, run: StoredRun(run: record, cases: cases), sources: sources)
    }

    /// A case's identity within a scenario: kind, name, threads and parameters (sorted).
    static func caseKey(_ c: MeasuredCase) -> String {
        "\(c.kind.rawValue)|\(c.name)|\(c.threads)|" + c.params.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }
}

/// One load point sent by several clients (`headroom load --shard I/N`), put back together: every request's samples
/// (renumbered after the earlier clients'), the windows' rates added (the clients sent at once), and the counts and
/// rates of the facts added; the worst schedule lag, and fell_behind when any client fell behind. Percentiles are
/// then computed from all the requests, as for one client.
public enum LoadPointMerge {
    /// Per-window rates (`repetition` is the window): the clients' add up.
    static let windowMetrics: Set<String> = ["output_tokens_per_s", "requests_per_s", "goodput_per_s"]
    /// Per inter-token gap (`repetition` is the gap); `itl_request` holds a request's repetition.
    static let gapMetrics: Set<String> = ["itl_ms", "itl_position", "itl_request"]
    static let summedCounts = ["requests", "ok", "errors"], summedRates = ["achieved_rate", "mean_in_flight"]

    public static func combine(_ a: MeasuredCase, _ b: MeasuredCase) -> MeasuredCase {
        let requests = a.samples.filter { $0.metric == "status" }.count
        let gaps = a.samples.filter { $0.metric == "itl_ms" }.count
        var out = a
        var windows: [String: [Int: Int]] = [:]  // metric → window → position in out.samples
        for (i, s) in out.samples.enumerated() where windowMetrics.contains(s.metric) { windows[s.metric, default: [:]][s.repetition] = i }
        for var s in b.samples {
            if windowMetrics.contains(s.metric) {
                if let i = windows[s.metric]?[s.repetition] { out.samples[i].value += s.value } else { out.samples.append(s) }
                continue
            }
            if gapMetrics.contains(s.metric) {
                s.repetition += gaps
                if s.metric == "itl_request" { s.value += Double(requests) }
            } else {
                s.repetition += requests
            }
            out.samples.append(s)
        }
        func number(_ key: String) -> Double { Double(a.facts[key] ?? "") ?? 0 }
        for key in summedCounts + a.facts.keys.filter({ $0.hasPrefix("errors_") && !$0.hasPrefix("errors_text") }) {
            out.facts[key] = String((Int(a.facts[key] ?? "") ?? 0) + (Int(b.facts[key] ?? "") ?? 0))
        }
        for key in summedRates {
            out.facts[key] = String(format: "%g", number(key) + (Double(b.facts[key] ?? "") ?? 0))
        }
        for key in ["duration_s", "schedule_lag_p99_ms"] {
            out.facts[key] = String(format: "%g", max(number(key), Double(b.facts[key] ?? "") ?? 0))
        }
        if b.facts["fell_behind"] == "true" { out.facts["fell_behind"] = "true" }
        return out
    }
}
