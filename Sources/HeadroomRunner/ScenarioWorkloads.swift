// What a scenario measures, in order: the list `headroom run`, `headroom gate` and anything else that
// measures a scenario share, so none of them builds it by hand.
import Foundation
import HeadroomCore
import HeadroomLoad

public enum ScenarioWorkloads {
    /// What the workloads of endpoints need from outside the scenario: each endpoint's API key (by endpoint name,
    /// from `apiKeys(for:)`) and a progress line for load points.
    public struct LoadContext: Sendable {
        public var apiKeys: [String: String]
        public var progress: LoadProgressHandler?
        /// Each load entry's part of its schedule (`headroom load --shard`); nil: all of it.
        public var shard: LoadShard?
        public init(apiKeys: [String: String] = [:], progress: LoadProgressHandler? = nil, shard: LoadShard? = nil) {
            self.apiKeys = apiKeys; self.progress = progress; self.shard = shard
        }
    }

    /// When the scenario measures this machine: the probe first (every case needs its roofline), then the
    /// workloads, with the read patterns probed again after the inference (a few seconds): the decode roofline is
    /// the best of both, and a machine that changed during the run shows as two read figures. Fine-tuning
    /// after, when the scenario has `measure.finetune`. Then each `measure.load` entry, in order (no probe is
    /// needed for them: an endpoint's figures are its own hardware's).
    public static func workloads(for scenario: Scenario, machine: MachineInfo, load: LoadContext = LoadContext())
        -> [(label: String, workload: any Workload)] {
        var workloads: [(label: String, workload: any Workload)] = []
        if let measure = scenario.measure {
            let threads = Runner.probeThreads(for: scenario, cores: machine.cores)
            let model = measure.model.id
            workloads += [
                ("probe", ProbeWorkload(settings: scenario.probe, threads: threads)),
                ("gemm \(model)", GemmWorkload(measure)),
                ("inference \(model)", InferenceWorkload(measure)),
                ("probe, reads after", ProbeWorkload(settings: scenario.probe, threads: threads, closing: true)),
            ]
            if let finetune = FinetuneWorkload(measure) { workloads.append(("finetune \(model)", finetune)) }
        }
        for entry in scenario.load {
            guard let endpoint = scenario.endpoints.first(where: { $0.name == entry.endpoint }) else { continue }
            var workload = LoadWorkload(settings: entry, endpoint: endpoint, apiKey: load.apiKeys[endpoint.name], progress: load.progress)
            workload.shard = load.shard
            workloads.append(("load \(endpoint.name) \(entry.profile.normalized)", workload))
        }
        return workloads
    }

    /// The workloads of shard `index` of `count` (`headroom run --shard`): every probe, and this shard's part of the
    /// other cases (`Sharding`).
    public static func workloads(for scenario: Scenario, machine: MachineInfo, load: LoadContext = LoadContext(),
                                 shard index: Int, of count: Int) -> [(label: String, workload: any Workload)] {
        Sharding.shard(workloads(for: scenario, machine: machine, load: load), index: index, count: count, model: scenario.measure?.model)
    }

    /// The API keys of the endpoints the scenario loads, read from the variables they name; an unset variable is
    /// an `InputError` naming the scenario file and the variable (checked before anything is measured).
    public static func apiKeys(for scenario: Scenario, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [String: String] {
        var keys: [String: String] = [:]
        for name in Set(scenario.load.map(\.endpoint)) {
            guard let endpoint = scenario.endpoints.first(where: { $0.name == name }) else { continue }
            keys[name] = try LoadWorkload.apiKey(for: endpoint, environment: environment, source: scenario.file)
        }
        return keys
    }
}
