// `headroom run --shard`: the assignment of a scenario's cases to shards (every case once, balanced, the same
// on every machine), the option's parsing and the scheduler's variables, and the default sweep id.
import Foundation
import XCTest
import HeadroomCore
import HeadroomStore
@testable import HeadroomRunner

final class ShardingTests: XCTestCase {
    /// A scenario with many cases of different costs: 2 thread counts × (3 prompts + 3 batches) × 4 projections of
    /// gemm, 2 precisions × 2 threads × 3 × 3 inference cases, and fine-tuning.
    func manyCases() -> Scenario {
        var measure = MeasureSettings(model: tinyShape, threads: [1, 2], promptTokens: [4, 16, 64], batch: [1, 2, 8], repetitions: 2,
                                      warmup: 1, precisions: ["f32", "q8_0"], generateTokens: 4)
        measure.finetune = FinetuneSettings(methods: ["lora"], rank: 2, seqLen: 8, batch: 2, steps: 2, warmup: 0)
        return Scenario(name: "many", description: "", file: "many.yaml", text: "schema: 1\nname: many\n", hash: "0123456789abcdef",
                        probe: ProbeSettings(readMiB: 16, gemmSize: 64, repetitions: 1), measure: measure)
    }

    func key(_ s: CaseSpec) -> String {
        "\(s.kind)|\(s.name)|\(s.threads)|" + s.params.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    func testEveryCaseIsMeasuredByExactlyOneShardAndTheShardsAreBalanced() throws {
        let scenario = manyCases(), machine = MachineInfo.current()
        let whole = ScenarioWorkloads.workloads(for: scenario, machine: machine)
        let measured = whole.filter { !($0.workload is ProbeWorkload) }.flatMap { $0.workload.cases() }
        XCTAssertGreaterThan(measured.count, 60)
        let costs = measured.map { CaseCost.seconds($0, model: scenario.measure?.model) }
        XCTAssertGreaterThan(costs.max()! / costs.min()!, 10, "costs that differ, so balance is tested")
        let probes = whole.filter { $0.workload is ProbeWorkload }.flatMap { $0.workload.cases() }.map(key)
        for n in 1...5 {
            var seen: [String: Int] = [:]
            var loads: [Double] = []
            for i in 0..<n {
                let mine = ScenarioWorkloads.workloads(for: scenario, machine: machine, shard: i, of: n)
                XCTAssertEqual(mine.filter { $0.workload is ProbeWorkload }.flatMap { $0.workload.cases() }.map(key), probes,
                               "shard \(i)/\(n) probes its machine in full")
                let cases = mine.filter { !($0.workload is ProbeWorkload) }.flatMap { $0.workload.cases() }
                for c in cases { seen[key(c), default: 0] += 1 }
                loads.append(cases.reduce(0) { $0 + CaseCost.seconds($1, model: scenario.measure?.model) })
                // Computed again (as another machine would), the same cases.
                XCTAssertEqual(ScenarioWorkloads.workloads(for: scenario, machine: machine, shard: i, of: n)
                    .flatMap { $0.workload.cases() }.map(key), mine.flatMap { $0.workload.cases() }.map(key))
            }
            XCTAssertEqual(Set(seen.keys), Set(measured.map(key)), "N = \(n): the union is every case")
            XCTAssertEqual(seen.values.filter { $0 != 1 }, [], "N = \(n): no case twice")
            XCTAssertLessThanOrEqual(loads.max()!, loads.min()! + costs.max()! * (1 + 1e-9), "N = \(n): balanced within one case: \(loads)")
        }
    }

    func testTheAssignmentIsGreedyLargestFirstWithStableTies() {
        // Largest first: 5 (case 1) → shard 0; 4 (case 4) → 1; 3 (case 0, the earlier of the two) → 1 (4 < 5);
        // 3 (case 2) → 0 (5 < 7); 2 (case 5) → 1 (7 < 8); 1 (case 3) → 0 (8 < 9).
        let a = ShardAssignment(costs: [3, 5, 3, 1, 4, 2], count: 2)
        XCTAssertEqual(a.shardOf, [1, 0, 0, 0, 1, 1])
        XCTAssertEqual(a.loads, [9, 9])
        XCTAssertEqual(a.cases(of: 1), [0, 4, 5])
        // Equal costs: round robin from shard 0, in the cases' order.
        XCTAssertEqual(ShardAssignment(costs: [1, 1, 1, 1, 1], count: 3).shardOf, [0, 1, 2, 0, 1])
        // More shards than cases: the extra shards measure nothing but their probe.
        XCTAssertEqual(ShardAssignment(costs: [2, 1], count: 4).cases(of: 3), [])
    }

    func testTheCostRuleFollowsTheCasesWork() {
        let gemm = { (m: Int, threads: Int) in
            CaseCost.seconds(CaseSpec(kind: .gemm, name: "o", threads: threads, params: GemmParams(model: "t", phase: "prefill", m: m, n: 64, k: 64).params,
                                      steps: 3), model: tinyShape)
        }
        XCTAssertEqual(gemm(8, 1), 3 * 2 * 8 * 64 * 64 / 1e10, accuracy: 1e-15)
        XCTAssertEqual(gemm(16, 1) / gemm(8, 1), 2, accuracy: 1e-9, "twice the rows, twice the cost")
        XCTAssertEqual(gemm(8, 1) / gemm(8, 2), 2, accuracy: 1e-9, "twice the threads, half the time")
        var load = LoadSettings(endpoint: "e", profile: .sweep(rates: 3))
        load.durationSeconds = 10
        XCTAssertEqual(CaseCost.seconds(load), 50, "5 points of 10 s")
    }

    func testShardOptionParsing() throws {
        XCTAssertEqual(try ShardOption.parse("0/1"), .fixed(index: 0, count: 1))
        XCTAssertEqual(try ShardOption.parse("3/4"), .fixed(index: 3, count: 4))
        XCTAssertEqual(try ShardOption.parse("env/8"), .environment(count: 8))
        for bad in ["4/4", "-1/4", "1/0", "a/b", "1", "1/2/3", "env/0", "env/", "/4", "1/10001", "１/2"] {
            XCTAssertThrowsError(try ShardOption.parse(bad), bad) { e in
                XCTAssertEqual("\(e)", "--shard: expected I/N (a shard index I from 0 to N-1 of N shards, N from 1 to 10000) or env/N "
                               + "(I from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID), got \"\(bad)\"")
            }
        }
        let env = ShardOption.environment(count: 4)
        XCTAssertEqual(try env.index(environment: ["JOB_COMPLETION_INDEX": "2"]), 2)
        XCTAssertEqual(try env.index(environment: ["SLURM_ARRAY_TASK_ID": "3"]), 3)
        XCTAssertEqual(try env.index(environment: ["JOB_COMPLETION_INDEX": "1", "SLURM_ARRAY_TASK_ID": "3"]), 1, "Kubernetes' first")
        XCTAssertThrowsError(try env.index(environment: [:])) { e in
            XCTAssertTrue("\(e)".hasPrefix("--shard: env/4 takes the shard index from JOB_COMPLETION_INDEX"), "\(e)")
            XCTAssertTrue(e is InputError)
        }
        XCTAssertThrowsError(try env.index(environment: ["SLURM_ARRAY_TASK_ID": "4"])) { e in
            XCTAssertEqual("\(e)", "SLURM_ARRAY_TASK_ID: expected a shard index from 0 to 3 (--shard env/4), got \"4\"")
        }
        XCTAssertThrowsError(try env.index(environment: ["JOB_COMPLETION_INDEX": ""]))
    }

    func testTheDefaultSweepIDIsTheSameForTheSameLaunch() {
        let s = manyCases()
        XCTAssertEqual(SweepID.default(for: s, count: 4), "many-4x-0123456789abcdef")
        XCTAssertNotEqual(SweepID.default(for: s, count: 3), SweepID.default(for: s, count: 4))
        var other = s
        other.name = "chat assistant/β"
        XCTAssertEqual(SweepID.default(for: other, count: 2), "chat-assistant---2x-0123456789abcdef")
        XCTAssertTrue(SweepID.isValid(SweepID.default(for: other, count: 2)))
        XCTAssertFalse(SweepID.isValid("../x"))
        XCTAssertFalse(SweepID.isValid(""))
    }
}
