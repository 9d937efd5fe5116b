// The conventions every command follows (docs/cli.md): list options take repeats and commas, one
// precision vocabulary, --model and --catalog mean the same everywhere, the scenario is positional, and
// thread counts are checked in one place.
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomEngine
import HeadroomKernels
import HeadroomRunner

/// Splits one list option value on commas: "1,2" → ["1", "2"]; blanks are errors, not skipped.
func listItems(_ value: String, option: String) throws -> [String] {
    let items = value.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    guard !items.contains(where: \.isEmpty) else { throw ValidationError("\(option): expected a comma-separated list without blanks, got \"\(value)\"") }
    return items
}

/// A list option's values: `--x a,b --x c` and `--x a b c` both give [a, b, c].
func flatList(_ values: [String], option: String) throws -> [String] {
    try values.flatMap { try listItems($0, option: option) }
}

/// The largest thread count any command accepts.
let maxThreads = 256

/// Parses thread counts (a list option's values), each from 1 to 256.
func threadCounts(_ values: [String], option: String = "--threads") throws -> [Int] {
    try flatList(values, option: option).map { s in
        guard let n = Int(s), (1...maxThreads).contains(n) else {
            throw ValidationError("\(option): expected thread counts from 1 to \(maxThreads), got \"\(s)\"")
        }
        return n
    }
}

/// One thread count; nil (not given) is every core of this machine.
func threadCount(_ value: Int?, option: String = "--threads") throws -> Int {
    guard let value else { return MachineInfo.current().cores }
    guard (1...maxThreads).contains(value) else { throw ValidationError("\(option): expected a thread count from 1 to \(maxThreads), got \(value)") }
    return value
}

/// An engine precision from any of its spellings (f32/fp32, f16/fp16, q8_0/int8, q4_0/int4).
func enginePrecision(_ value: String, option: String = "--precision") throws -> QuantType {
    switch PrecisionNames.engineName(value) {
    case .success(let name): return QuantType(name: name)!
    case .failure(let refusal): throw ValidationError("\(option): expected \(refusal.expected), got \"\(value)\"")
    }
}

/// A `model export` precision: an engine format (one format throughout) or a llama-quantize mixture (q4_k_m, …).
func exportPrecision(_ value: String, option: String = "--precision") throws -> GGUFExportPrecision {
    switch PrecisionNames.exportName(value) {
    case .success(let name): return GGUFExportPrecision(name: name)!
    case .failure(let refusal): throw ValidationError("\(option): expected \(refusal.expected), got \"\(value)\"")
    }
}

/// Planner precisions from a list option's values, in the planner's spelling.
func plannerPrecisions(_ values: [String], option: String = "--precision") throws -> [Precision] {
    try flatList(values, option: option).map { v in
        switch PrecisionNames.plannerPrecision(v) {
        case .success(let p): return p
        case .failure(let refusal): throw ValidationError("\(option): expected \(refusal.expected), got \"\(v)\"")
        }
    }
}

let enginePrecisionHelp = "Weight precision: \(PrecisionNames.engineList)."
let listHelp = "a list: repeat the option or separate values with commas"

/// `--catalog DIR` and the scenario's own `catalog/` folder over the built-in catalog.
struct CatalogOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "A catalog folder whose models.yaml, hardware.yaml and prices.yaml override the built-in catalog entry by entry.",
        discussion: "A catalog/ folder beside a scenario file applies first, then this one.", valueName: "dir"))
    var catalog: String?

    /// The built-in catalog, the `catalog/` folder beside `scenario` (when there is one), then `--catalog`.
    func load(forScenario scenario: String? = nil) throws -> Catalog {
        var layers = scenario.map(Scenario.catalogLayers(forScenario:)) ?? []
        if let catalog { layers.append(catalog) }
        return try Catalog.load(layers: layers)
    }

    /// The catalog `scenario` was read with.
    func load(for scenario: Scenario) throws -> Catalog {
        scenario.file == Scenario.builtinDefaultLabel ? try load() : try load(forScenario: scenario.file)
    }

    /// The scenario at `path`, or the built-in default scenario when `path` is nil, with its catalog.
    func scenario(_ path: String?) throws -> Scenario {
        guard let path else {
            return try Scenario.builtinDefault(catalog: load(), resolveModel: GGUFModelSource.resolver)
        }
        return try Scenario.load(path, catalog: load(forScenario: path), resolveModel: GGUFModelSource.resolver)
    }
}

/// The scenario argument of `plan`, `whatif` and `gate`; `--scenario FILE` is still read, hidden.
struct ScenarioArgument: ParsableArguments {
    @Argument(help: ArgumentHelp("The scenario file (default: the built-in default scenario, the same as Scenarios/default.yaml).",
                                 valueName: "scenario"))
    var positional: String?

    @Option(name: .customLong("scenario"), help: .hidden)
    var option: String?

    func validate() throws {
        if positional != nil && option != nil { throw ValidationError("give the scenario once: as the argument, or with --scenario") }
    }

    var path: String? { positional ?? option }
}
