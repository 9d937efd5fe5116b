// The replicas behind one router: which replica a new request goes to.

/// The router's state: the replicas' loads and, for round-robin, whose turn it is.
struct Cluster {
    let router: SimulationConfig.Router
    private var turn = 0

    init(router: SimulationConfig.Router) { self.router = router }

    /// The replica for the next request. Round-robin counts every request, refused ones too (a load balancer
    /// does not know the scheduler will refuse it).
    mutating func route(_ replicas: [ReplicaState]) -> Int {
        switch router {
        case .roundRobin:
            let r = turn
            turn = turn + 1 == replicas.count ? 0 : turn + 1
            return r
        case .leastOutstanding:
            var best = 0
            for r in replicas.indices where replicas[r].outstanding < replicas[best].outstanding { best = r }
            return best
        }
    }
}
