// How fast the simulator runs, for `headroom simulate --benchmark`: a fixed workload timed single-threaded,
// so a change to the event loop or the scheduler shows up as a number. Its guide is 2,000 requests of
// 512 in / 128 out at 70 % of saturation on one replica in at most 50 ms (release build).
import Foundation

/// Times `Simulation.run` on a standard workload.
public enum SimulatorBenchmark {
    public struct Result: Sendable {
        public var requests: Int
        public var steps: Int
        /// Arrivals and step completions of the timed run.
        public var events: Int
        /// Requests per second with every request at t = 0 (the replica's saturation throughput).
        public var saturationRate: Double
        /// The Poisson rate of the timed run: `load` × `saturationRate`.
        public var rate: Double
        /// Wall seconds of the fastest of the timed runs (MEASURED).
        public var seconds: Double
        /// Every timed run's wall seconds, in order.
        public var samples: [Double]

        public var eventsPerSecond: Double { seconds > 0 ? Double(events) / seconds : 0 }
    }

    /// Finds the saturation rate of `requests` requests of `workload` on `spec` (all at once, untimed), then
    /// times `repeats` single-threaded runs of the same requests arriving as a Poisson process at `load` ×
    /// that rate.
    public static func run(_ spec: ReplicaSpec, workload: ServingWorkload = ServingWorkload(promptTokens: 512, outputTokens: 128),
                           requests: Int = 2000, load: Double = 0.7, repeats: Int = 5, seed: UInt64 = 1) throws(SimulationError) -> Result {
        guard load.isFinite && load > 0 && load <= 1 else {
            throw SimulationError(field: "load", expected: "a fraction of saturation above 0 and at most 1", got: "\(load)")
        }
        guard repeats >= 1 else { throw SimulationError(field: "repeats", expected: "at least 1", got: "\(repeats)") }
        var config = SimulationConfig(replicas: [.init(spec)], arrivals: .allAtOnce, promptLengths: .fixed(workload.promptTokens),
                                      outputLengths: .fixed(workload.outputTokens), requests: requests, seed: seed)
        let saturation = try Simulation.run(config).requestThroughput
        guard saturation > 0 else {
            throw SimulationError(field: "workload", expected: "requests the replica can serve", got: "every request refused by its scheduler")
        }
        config.arrivals = .poisson(rate: load * saturation)
        try config.validate()
        let clock = ContinuousClock()
        var samples: [Double] = []
        var last: SimulationRun?
        for _ in 0..<repeats {
            let began = clock.now
            let run = try Simulation.runValidated(config)
            let took = began.duration(to: clock.now)
            samples.append(Double(took.components.seconds) + Double(took.components.attoseconds) * 1e-18)
            last = run
        }
        return Result(requests: requests, steps: last!.steps, events: last!.events, saturationRate: saturation,
                      rate: load * saturation, seconds: samples.min()!, samples: samples)
    }
}
