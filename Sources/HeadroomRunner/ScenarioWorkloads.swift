// What a scenario measures, in order: the list `headroom run`, `headroom gate` and anything else that
// measures a scenario share, so none of them builds it by hand.
import HeadroomCore

public enum ScenarioWorkloads {
    /// The probe first (every case needs its roofline), then the workloads, with the read patterns probed again
    /// after the inference (a few seconds): the decode roofline is the best of both, and a machine that changed
    /// during the run shows as two read figures. Fine-tuning last, when the scenario has `measure.finetune`.
    public static func workloads(for scenario: Scenario, machine: MachineInfo) -> [(label: String, workload: any Workload)] {
        let threads = Runner.probeThreads(for: scenario, cores: machine.cores)
        let model = scenario.measure.model.id
        var workloads: [(label: String, workload: any Workload)] = [
            ("probe", ProbeWorkload(settings: scenario.probe, threads: threads)),
            ("gemm \(model)", GemmWorkload(scenario.measure)),
            ("inference \(model)", InferenceWorkload(scenario.measure)),
            ("probe, reads after", ProbeWorkload(settings: scenario.probe, threads: threads, closing: true)),
        ]
        if let finetune = FinetuneWorkload(scenario.measure) { workloads.append(("finetune \(model)", finetune)) }
        return workloads
    }
}
