// A strict reader over Yams' node tree that tracks the key path, so every complaint can say
// exactly where in which file it is and what was expected.
import Foundation
import Yams

/// One node of a YAML document together with where it sits (`measure.threads[1]`).
public struct YAMLField {
    public let node: Yams.Node?
    public let path: String
    public let file: String

    /// Parses `text`; a syntax error becomes an `InputError` naming the file and line.
    public static func document(_ text: String, file: String) throws -> YAMLField {
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw InputError(file: file, path: "", message: "expected a YAML mapping, got an empty file")
            }
            return YAMLField(node: node, path: "", file: file)
        } catch let error as InputError {
            throw error
        } catch let error as YamlError {
            throw InputError(file: file, path: "", message: "not valid YAML: \(Self.describe(error))")
        }
    }

    /// Reads and parses a file.
    public static func load(_ path: String) throws -> YAMLField {
        let text = try FileChecks.readText(path)
        return try document(text, file: path)
    }

    static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            let where_ = "line \(mark.line), column \(mark.column)"
            if let context { return "\(problem) \(context.text) (\(where_))" }
            return "\(problem) (\(where_))"
        default:
            return "\(error)"
        }
    }

    public func fail(_ expected: String) -> InputError {
        InputError(file: file, path: path, message: "expected \(expected), got \(got)")
    }

    public func error(_ message: String) -> InputError {
        InputError(file: file, path: path, message: message)
    }

    /// How the value found here reads in an error message.
    var got: String {
        switch node {
        case nil: return "nothing"
        case .scalar(let s)?:
            if s.string.isEmpty || s.string == "~" || s.string == "null" { return "null" }
            // The value as typed, one line, control characters escaped, and cut after 80 characters: a message
            // quotes the value, it does not reprint a file.
            let shown = TerminalText.escape(s.string, keepNewlines: false)
            return shown.count <= 80 ? "\"\(shown)\"" : "\"\(shown.prefix(80))…\" (\(s.string.count) characters)"
        case .mapping?: return "a mapping"
        case .sequence?: return "a list"
        case .alias?: return "an alias"
        }
    }

    var isNull: Bool {
        if case .scalar(let s)? = node, s.style == .plain, ["", "~", "null", "Null", "NULL"].contains(s.string) { return true }
        return node == nil
    }

    func child(_ key: String, _ node: Yams.Node?) -> YAMLField {
        YAMLField(node: node, path: path.isEmpty ? key : "\(path).\(key)", file: file)
    }

    // MARK: mappings

    /// The mapping's fields, refusing keys not in `allowed` (a typo is an error, not a silent default).
    public func mapping(allowed: [String]) throws -> YAMLMapping {
        guard case .mapping(let m)? = node else { throw fail("a mapping") }
        var fields: [String: Yams.Node] = [:]
        for (k, v) in m {
            guard case .scalar(let key) = k else { throw error("expected string keys") }
            guard allowed.contains(key.string) else {
                throw child(key.string, v).error("unknown key; expected one of \(allowed.joined(separator: ", "))")
            }
            guard fields[key.string] == nil else { throw child(key.string, v).error("key appears twice") }
            fields[key.string] = v
        }
        return YAMLMapping(parent: self, fields: fields)
    }

    // MARK: scalars

    var scalar: String? {
        if case .scalar(let s)? = node { return s.string }
        return nil
    }

    public func string() throws -> String {
        guard let s = scalar, !isNull, !s.isEmpty else { throw fail("a non-empty string") }
        return s
    }

    /// What ids may contain: they name catalog entries, report folders and plot labels, so they are kept to
    /// letters, digits, '.', '_' and '-' (starting with a letter or digit, at most 64 characters).
    public static let identifierPattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

    public static func isIdentifier(_ s: String) -> Bool {
        s.range(of: identifierPattern, options: .regularExpression) != nil
    }

    /// An id (see `identifierPattern`); `role` says what it names, for the message.
    public func identifier(_ role: String = "an id") throws -> String {
        let s = try string()
        guard Self.isIdentifier(s) else { throw fail("\(role) of letters, digits, '.', '_' or '-' (at most 64, starting with a letter or digit)") }
        return s
    }

    /// An integer in `min...max`. Every field states its maximum: a number the reader accepts is one the
    /// code downstream can hold (no overflow, no trap on conversion).
    public func int(min: Int, max: Int) throws -> Int {
        let expected = Self.intExpectation(min: min, max: max)
        guard let s = scalar, let v = Int(s.replacingOccurrences(of: "_", with: "")) else { throw fail(expected) }
        if v < min || v > max { throw fail(expected) }
        return v
    }

    static func intExpectation(min: Int, max: Int) -> String {
        "an integer from \(min) to \(max)"
    }

    /// A finite number from `min` (or above it, when `exclusiveMin`) to `max`. NaN and infinities
    /// (`.nan`, `.inf`, or a literal such as 1e999 that overflows) are refused like any other bad value.
    public func double(min: Double, exclusiveMin: Bool = false, max: Double) throws -> Double {
        let expected = Self.doubleExpectation(min: min, exclusiveMin: exclusiveMin, max: max)
        guard let s = scalar, let v = Double(s.replacingOccurrences(of: "_", with: "")), v.isFinite else { throw fail(expected) }
        if exclusiveMin ? v <= min : v < min { throw fail(expected) }
        if v > max { throw fail(expected) }
        return v
    }

    static func doubleExpectation(min: Double, exclusiveMin: Bool, max: Double) -> String {
        switch (min, exclusiveMin) {
        case (0, true): return "a positive number of at most \(show(max))"
        case (_, true): return "a number above \(show(min)) and at most \(show(max))"
        default: return "a number from \(show(min)) to \(show(max))"
        }
    }

    /// A bound as a reader types it: whole numbers in digits (1000000000000), the rest as Swift prints them (1e+16, 0.001).
    static func show(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e15 { return String(Int(v)) }
        return "\(v)"
    }

    public func bool() throws -> Bool {
        switch scalar?.lowercased() {
        case "true"?, "yes"?: return true
        case "false"?, "no"?: return false
        default: throw fail("true or false")
        }
    }

    public func oneOf(_ options: [String]) throws -> String {
        guard let s = scalar, options.contains(s) else { throw fail("one of \(options.joined(separator: ", "))") }
        return s
    }

    /// A list, each element read by `element`; a single scalar counts as a list of one.
    public func list<T>(nonEmpty: Bool = true, _ element: (YAMLField) throws -> T) throws -> [T] {
        let items: [Yams.Node]
        switch node {
        case .sequence(let s)?: items = Array(s)
        case .scalar?: items = [node!]
        default: throw fail("a list")
        }
        if nonEmpty && items.isEmpty { throw fail("a non-empty list") }
        return try items.enumerated().map { i, n in
            try element(YAMLField(node: n, path: "\(path)[\(i)]", file: file))
        }
    }
}

/// The fields of one mapping, read by key.
public struct YAMLMapping {
    public let parent: YAMLField
    let fields: [String: Yams.Node]

    public func has(_ key: String) -> Bool { fields[key] != nil }

    /// The field at `key`, which must be present.
    public func required(_ key: String) throws -> YAMLField {
        let f = parent.child(key, fields[key])
        if fields[key] == nil { throw f.error("missing; this key is required") }
        return f
    }

    /// The field at `key`, or nil when absent.
    public func optional(_ key: String) -> YAMLField? {
        fields[key].map { parent.child(key, $0) }
    }
}
