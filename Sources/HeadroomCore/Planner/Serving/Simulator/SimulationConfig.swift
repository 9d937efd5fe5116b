// What one simulation runs: the replicas (each a `ReplicaSpec`, optionally pipelined), how requests are
// routed to them, when requests arrive and how long they are, how many, and the seed. Validated in one place.
import HeadroomScheduling

/// Everything `Simulation.run` needs; `validate()` names the first field out of range.
public struct SimulationConfig: Sendable {
    /// One replica: its step times and scheduler, and how many pipeline stages its devices form.
    ///
    /// The pipeline model (vLLM's pipeline parallelism with virtual engines, as v0 runs it): the model's
    /// layers are split evenly over `pipelineStages` stages, and the replica runs that many virtual engines,
    /// each its own `ContinuousBatchingScheduler` over 1/stages of the KV blocks (vLLM divides
    /// `num_gpu_blocks` by the pipeline size the same way), each with at most one step in flight. A new
    /// request goes to the virtual engine with the fewest unfinished requests (vLLM v0's choice). A step
    /// takes `spec.predictor`'s time to pass all stages (the predictor is read as every layer's step on one
    /// stage's devices) and each stage 1/stages of it; a step enters a stage when the stage is free and leaves
    /// it a stage-time later, so up to `pipelineStages` steps, of different virtual engines, are in flight.
    /// Latency is not shortened, and throughput grows only as far as the extra in-flight steps have work:
    /// each step carries only its engine's share of the sequences. Transfers between stages are not timed.
    public struct Replica: Sendable {
        public var spec: ReplicaSpec
        public var pipelineStages: Int

        public init(_ spec: ReplicaSpec, pipelineStages: Int = 1) {
            self.spec = spec; self.pipelineStages = pipelineStages
        }
    }

    /// Which replica a new request goes to.
    public enum Router: Hashable, Sendable, CustomStringConvertible {
        /// Replicas in turn, whatever their load (a plain load balancer).
        case roundRobin
        /// The replica with the fewest requests waiting or running (the lowest index on a tie).
        case leastOutstanding

        public var description: String {
            switch self {
            case .roundRobin: return "round-robin"
            case .leastOutstanding: return "least outstanding"
            }
        }
    }

    /// At least one. The simulator reads each spec's predictor and scheduler; `maxBatch` is the memory
    /// model's figure for the queueing approximation and is not used (the scheduler's KV blocks limit).
    public var replicas: [Replica]
    public var router: Router
    public var arrivals: ArrivalProcess
    /// Lengths of prompts and of outputs (each request generates exactly its output length: its
    /// `maxOutputTokens`, no early stop). A trace's lengths take their place.
    public var promptLengths: LengthDistribution
    public var outputLengths: LengthDistribution
    /// Requests to simulate (a trace: at most this many of its entries).
    public var requests: Int
    /// Seeds the arrival gaps and the lengths (independent streams, so changing the lengths leaves the
    /// arrival times alone).
    public var seed: UInt64
    /// When given, `SimulationRun.goodput` counts the requests whose TTFT and TPOT are within it.
    public var slo: SLO?
    /// Keep every gap between consecutive tokens of a request (`SimulationRun.interTokenGaps`): one double
    /// per output token, so off by default.
    public var recordInterTokenGaps: Bool

    public init(replicas: [Replica], router: Router = .roundRobin, arrivals: ArrivalProcess, promptLengths: LengthDistribution,
                outputLengths: LengthDistribution, requests: Int, seed: UInt64 = 0, slo: SLO? = nil,
                recordInterTokenGaps: Bool = false) {
        self.replicas = replicas; self.router = router; self.arrivals = arrivals; self.promptLengths = promptLengths
        self.outputLengths = outputLengths; self.requests = requests; self.seed = seed; self.slo = slo
        self.recordInterTokenGaps = recordInterTokenGaps
    }

    /// The most requests one run may simulate: the per-request records of 10⁷ take about a gigabyte.
    public static let maxRequests = 10_000_000
    /// The most pipeline stages a replica may have.
    public static let maxPipelineStages = 64

    /// Throws the first field out of range, including each replica's scheduler configuration as each of
    /// its virtual engines gets it.
    public func validate() throws(SimulationError) {
        guard !replicas.isEmpty else { throw SimulationError(field: "replicas", expected: "at least one replica", got: "none") }
        for (i, r) in replicas.enumerated() {
            guard r.pipelineStages >= 1 && r.pipelineStages <= Self.maxPipelineStages else {
                throw SimulationError(field: "replicas[\(i)].pipelineStages", expected: "from 1 to \(Self.maxPipelineStages)",
                                      got: "\(r.pipelineStages)")
            }
            do {
                try Self.engineScheduler(r).validate()
            } catch {
                let got = error.field == .totalBlocks && r.pipelineStages > 1
                    ? "\(r.spec.scheduler.totalBlocks) over \(r.pipelineStages) stages, \(error.value) each" : "\(error.value)"
                throw SimulationError(field: "replicas[\(i)].scheduler.\(error.field.rawValue)",
                                      expected: String(error.requirement.trimmingPrefix("must be ")), got: got)
            }
        }
        try arrivals.validate(field: "arrivals")
        if case .trace = arrivals {} else {
            try promptLengths.validate(field: "promptLengths")
            try outputLengths.validate(field: "outputLengths")
        }
        guard requests >= 1 && requests <= Self.maxRequests else {
            throw SimulationError(field: "requests", expected: "from 1 to \(Self.maxRequests)", got: "\(requests)")
        }
        if let slo {
            for (name, v) in [("ttftP95", slo.ttftP95), ("tpotP95", slo.tpotP95)] where !(v.isFinite && v > 0) {
                throw SimulationError(field: "slo.\(name)", expected: "a finite time above 0 seconds", got: "\(v)")
            }
        }
    }

    /// The scheduler configuration of each of `replica`'s virtual engines: its own, with 1/stages of the blocks.
    static func engineScheduler(_ replica: Replica) -> SchedulerConfig {
        var c = replica.spec.scheduler
        c.totalBlocks /= max(1, replica.pipelineStages)
        return c
    }
}
