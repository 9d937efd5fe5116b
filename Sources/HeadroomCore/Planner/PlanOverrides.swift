// What-if: a scenario's plan section with values replaced from the command line (`--set
// demand.users=4000`), validated by the same strict reader, so a bad override gets the same message a
// bad file does.
import Foundation
import Yams

/// One `key.path=value` override of the plan section; the value is YAML (`[h100-sxm, l40s]` is a list).
public struct PlanOverride: Sendable, Equatable {
    public var path: [String]
    public var value: String

    public init(path: [String], value: String) { self.path = path; self.value = value }

    /// Parses `key.path=value`; a leading `plan.` is optional.
    public init(_ assignment: String) throws {
        guard let eq = assignment.firstIndex(of: "="), eq != assignment.startIndex else {
            throw InputError(file: "--set", path: "", message: "expected key.path=value, got \"\(assignment)\"")
        }
        var keys = assignment[..<eq].split(separator: ".").map(String.init)
        if keys.first == "plan" { keys.removeFirst() }
        if keys.isEmpty || keys.contains(where: \.isEmpty) {
            throw InputError(file: "--set", path: "", message: "expected key.path=value, got \"\(assignment)\"")
        }
        path = keys
        value = String(assignment[assignment.index(after: eq)...])
    }
}

extension PlanSettings {
    /// The plan section of `scenarioText` (or an empty one) with `overrides` applied, read strictly.
    /// Errors name `file` (and say the overrides were applied) and the key path.
    public static func read(scenarioText: String, file: String, overrides: [PlanOverride], catalog: Catalog) throws -> PlanSettings {
        let doc = try YAMLField.document(scenarioText, file: file)
        var plan: Node? = nil
        if case .mapping(let m)? = doc.node {
            plan = m.first { $0.key.string == "plan" }?.value
        }
        if plan == nil && overrides.isEmpty {
            throw InputError(file: file, path: "plan", message: "missing; this scenario has no plan: section (add one, or give the plan on the command line)")
        }
        for o in overrides {
            let value: Node
            do {
                value = try Yams.compose(yaml: o.value) ?? Node("")
            } catch {
                throw InputError(file: "--set", path: (["plan"] + o.path).joined(separator: "."), message: "not valid YAML: \(o.value)")
            }
            plan = setting(plan, o.path, value)
        }
        let label = overrides.isEmpty ? file : "\(file) with command-line overrides"
        return try read(YAMLField(node: plan, path: "plan", file: label), catalog: catalog)
    }

    static func setting(_ node: Node?, _ path: [String], _ value: Node) -> Node {
        guard let first = path.first else { return value }
        var pairs: [(Node, Node)] = []
        var found = false
        if case .mapping(let m)? = node {
            for (k, v) in m {
                if k.string == first {
                    pairs.append((k, setting(v, Array(path.dropFirst()), value)))
                    found = true
                } else {
                    pairs.append((k, v))
                }
            }
        }
        if !found { pairs.append((Node(first), setting(nil, Array(path.dropFirst()), value))) }
        return .mapping(Node.Mapping(pairs))
    }
}
