// A scenario's cases split over N machines (`headroom run --shard I/N`): every shard computes the same
// assignment from the scenario alone — no coordinator, no shared state — so N workers started at once by a
// Kubernetes Indexed Job or a Slurm array measure every case exactly once between them.
import Foundation
import HeadroomCore
import HeadroomLoad
import HeadroomStore

/// `--shard I/N` or `--shard env/N` as written: which shard, or where to read its index.
public enum ShardOption: Equatable, Sendable {
    case fixed(index: Int, count: Int)
    /// The index from the scheduler: `JOB_COMPLETION_INDEX` (Kubernetes Indexed Job), else `SLURM_ARRAY_TASK_ID`.
    case environment(count: Int)

    /// The largest shard count accepted.
    public static let maxCount = 10_000
    /// The variables `env/N` reads the shard index from, in order.
    public static let indexVariables = ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"]

    static let expected = "expected I/N (a shard index I from 0 to N-1 of N shards, N from 1 to \(maxCount)) or env/N "
        + "(I from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID)"

    /// Parses the option's text; an `InputError` naming `--shard` otherwise.
    public static func parse(_ text: String, option: String = "--shard") throws -> ShardOption {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, let count = Int(parts[1]), (1...maxCount).contains(count), parts[1].allSatisfy(\.isASCII) else {
            throw InputError(file: option, path: "", message: "\(expected), got \"\(text)\"")
        }
        if parts[0] == "env" { return .environment(count: count) }
        guard let index = Int(parts[0]), parts[0].allSatisfy(\.isASCII), (0..<count).contains(index) else {
            throw InputError(file: option, path: "", message: "\(expected), got \"\(text)\"")
        }
        return .fixed(index: index, count: count)
    }

    public var count: Int {
        switch self { case .fixed(_, let n), .environment(let n): return n }
    }

    /// The shard index: as written, or from the first of `indexVariables` that is set. An unset or bad variable is
    /// an `InputError` naming it.
    public func index(environment: [String: String] = ProcessInfo.processInfo.environment, option: String = "--shard") throws -> Int {
        switch self {
        case .fixed(let index, _): return index
        case .environment(let count):
            guard let name = Self.indexVariables.first(where: { environment[$0] != nil }), let value = environment[name] else {
                throw InputError(file: option, path: "", message: "env/\(count) takes the shard index from JOB_COMPLETION_INDEX (a Kubernetes "
                                 + "Indexed Job) or SLURM_ARRAY_TASK_ID (a Slurm job array), and neither is set")
            }
            guard let index = Int(value), value.allSatisfy(\.isASCII), (0..<count).contains(index) else {
                throw InputError(file: name, path: "", message: "expected a shard index from 0 to \(count - 1) (\(option) env/\(count)), got \"\(value)\"")
            }
            return index
        }
    }
}

public enum SweepID {
    /// What a sweep id may hold: it names report folders and Kubernetes objects' labels.
    public static let pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"

    public static func isValid(_ id: String) -> Bool { id.range(of: pattern, options: .regularExpression) != nil }

    /// The id every shard of one launch computes alike without talking to the others: the scenario's name, the
    /// shard count and the scenario text's hash (FNV-1a 64), as `NAME-Nx-HASH`. Launching the same file again
    /// with the same N gives the same id: a shard run again replaces that shard's earlier run in the merge.
    public static func `default`(for scenario: Scenario, count: Int) -> String {
        let name = String(scenario.name.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") ? $0 : "-" }.prefix(80))
        let safe = name.first.map { $0.isLetter || $0.isNumber } == true ? name : "s" + name
        return "\(safe)-\(count)x-\(scenario.hash.prefix(16))"
    }
}

/// A case's expected cost, only for balancing shards: its work turned into seconds at a nominal rate. The rule:
///
/// - gemm: 2·M·N·K FLOPs per repetition;
/// - inference: 2·W·batch·(prompt_tokens + generate_tokens) FLOPs, W the model's weights (every layer's
///   projections plus the vocabulary head);
/// - finetune: 6·W·batch·seq_len FLOPs per step (forward and backward);
/// - any of those is times its steps (warm-ups and repetitions), over its threads, at 10 GFLOP/s per thread;
/// - load: its points' duration (`--requests`: a tenth of a second per request), not FLOPs: an endpoint's time;
/// - anything else: one second per step.
///
/// Only the ratios matter, and every shard computes the same numbers from the scenario alone.
public enum CaseCost {
    static let nominalFlopsPerThreadSecond = 1e10

    public static func seconds(_ spec: CaseSpec, model: ModelShape?) -> Double {
        let steps = Double(max(spec.steps, 1)), threads = Double(max(spec.threads, 1))
        let weights = model.map(weightCount) ?? 0
        let flops: Double
        switch spec.kind {
        case .gemm:
            guard let g = GemmParams(params: spec.params) else { return steps }
            flops = 2 * Double(g.m) * Double(g.n) * Double(g.k)
        case .inference:
            guard let p = InferenceParams(params: spec.params) else { return steps }
            flops = 2 * weights * Double(p.batch) * Double(p.promptTokens + p.generateTokens)
        case .finetune:
            let batch = Double(spec.params["batch"].flatMap(Int.init) ?? 1), seq = Double(spec.params["seq_len"].flatMap(Int.init) ?? 1)
            flops = 6 * weights * batch * seq
        default:
            return steps
        }
        return max(steps * flops / (threads * nominalFlopsPerThreadSecond), 1e-9)
    }

    /// A load entry's seconds: each point's duration, times its points.
    public static func seconds(_ load: LoadSettings) -> Double {
        let perPoint = load.requests.map { Double($0) / 10 } ?? load.durationSeconds ?? LoadSettings.defaultDurationSeconds
        switch load.profile {
        case .sweep(let rates): return perPoint * Double(rates + 2)
        case .sloSearch(_, let probes): return perPoint * Double(probes + 2)
        default: return perPoint
        }
    }

    /// The weights a token passes through: every layer's projections and the vocabulary head.
    static func weightCount(_ m: ModelShape) -> Double {
        Double(m.layers) * Double(m.layerProjections.reduce(0) { $0 + $1.n * $1.k }) + Double(m.vocab) * Double(m.dim)
    }
}

/// Which shard measures which case: greedily, the costliest case first (ties: the earlier case), each to the
/// least-loaded shard so far (ties: the lower index). Every shard ends within one case's cost of every other
/// (the largest shard exceeds the smallest by at most the largest case), and the same costs give the same
/// assignment on every machine.
public struct ShardAssignment: Equatable, Sendable {
    /// For each case, by position, the shard that measures it.
    public let shardOf: [Int]
    /// Each shard's total cost.
    public let loads: [Double]

    public init(costs: [Double], count: Int) {
        precondition(count >= 1, "a shard count is at least 1")
        var shardOf = [Int](repeating: 0, count: costs.count)
        var loads = [Double](repeating: 0, count: count)
        let order = costs.indices.sorted { costs[$0] != costs[$1] ? costs[$0] > costs[$1] : $0 < $1 }
        for i in order {
            var best = 0
            for s in 1..<count where loads[s] < loads[best] { best = s }
            shardOf[i] = best
            loads[best] += costs[i]
        }
        self.shardOf = shardOf
        self.loads = loads
    }

    /// The positions of the cases shard `index` measures, in their original order.
    public func cases(of index: Int) -> [Int] { shardOf.indices.filter { shardOf[$0] == index } }
}

/// A workload cut down to the cases of one shard; it measures them exactly as the whole workload would.
struct ShardedWorkload: Workload {
    let inner: any Workload
    let kept: [CaseSpec]

    func cases() -> [CaseSpec] { kept }

    func measureCases(_ spec: CaseSpec, step: () throws -> Void) async throws -> [MeasuredCase] {
        try await inner.measureCases(spec, step: step)
    }
}

public enum Sharding {
    /// The cases of `workloads` that shard `index` of `count` measures, by workload: every probe whole (each machine
    /// needs its own limits), the other workloads' cases assigned across shards by `ShardAssignment` in the order
    /// they are listed; workloads left with no case are dropped.
    public static func shard(_ workloads: [(label: String, workload: any Workload)], index: Int, count: Int,
                             model: ModelShape?) -> [(label: String, workload: any Workload)] {
        var specs: [(workload: Int, spec: CaseSpec, cost: Double)] = []
        for (w, entry) in workloads.enumerated() where !(entry.workload is ProbeWorkload) {
            let load = (entry.workload as? LoadWorkload).map { CaseCost.seconds($0.settings) }
            specs += entry.workload.cases().map { (w, $0, load ?? CaseCost.seconds($0, model: model)) }
        }
        let assignment = ShardAssignment(costs: specs.map(\.cost), count: count)
        let mine = Set(assignment.cases(of: index))
        return workloads.enumerated().compactMap { w, entry in
            if entry.workload is ProbeWorkload { return entry }
            let kept = specs.indices.filter { specs[$0].workload == w && mine.contains($0) }.map { specs[$0].spec }
            return kept.isEmpty ? nil : (entry.label, ShardedWorkload(inner: entry.workload, kept: kept))
        }
    }
}
