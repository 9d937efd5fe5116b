// `--serving-model simulator|queueing` on `plan` and `whatif`: how the planner turns step times into latency
// under load.
import ArgumentParser
import HeadroomCore

enum ServingModelChoice: String, CaseIterable, ExpressibleByArgument {
    case simulator, queueing

    var model: any ServingModel {
        switch self {
        case .simulator: return Planner.defaultServingModel
        case .queueing: return QueueingServingModel()
        }
    }
}

struct ServingModelOptions: ParsableArguments {
    @Option(name: .customLong("serving-model"),
            help: ArgumentHelp("How latency under load is predicted: simulator (the discrete-event simulator running the serving scheduler, with 95 % intervals) or queueing (an M/D/1 approximation, faster, p95 only).", valueName: "model"))
    var servingModel: ServingModelChoice = .simulator
}
