// The members of one JSON object read as typed fields: each getter checks the type and range, treats `null` as
// absent, and refuses with a 400 that names the field by its path (`stream_options.include_usage`,
// `messages[2].content`), says what was expected and quotes what came.
import Foundation

struct FieldReader {
    let members: [String: JSONValue]
    /// The object's own path: "" for the body, `stream_options`, `messages[2]`, …
    let path: String

    init(_ members: [String: JSONValue], path: String) { self.members = members; self.path = path }

    /// The path of member `key`.
    func param(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    /// The member, nil when absent or null.
    func value(_ key: String) -> JSONValue? {
        if case .null = members[key] { return nil }
        return members[key]
    }

    func integer(_ key: String, from low: Int, to high: Int = .max) throws -> Int? {
        try value(key).map { try Self.integer($0, from: low, to: high, param: param(key)) }
    }

    func number(_ key: String, expected: String, accept: (Double) -> Bool) throws -> Double? {
        guard let v = value(key) else { return nil }
        guard case .number(let literal, _) = v, let d = Double(literal), d.isFinite, accept(d) else {
            throw Self.wrong(param(key), expected: expected, got: v)
        }
        return d
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        guard case .bool(let b) = v else { throw Self.wrong(param(key), expected: "true or false", got: v) }
        return b
    }

    func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard case .string(let s) = v else { throw Self.wrong(param(key), expected: "a string", got: v) }
        return s
    }

    func object(_ key: String) throws -> FieldReader? {
        guard let v = value(key) else { return nil }
        guard case .object(let o) = v else { throw Self.wrong(param(key), expected: "an object", got: v) }
        return FieldReader(o, path: param(key))
    }

    /// A JSON integer (no fraction, no exponent) in `low...high`; one past Int's range is refused like any other.
    static func integer(_ v: JSONValue, from low: Int, to high: Int, param: String, expected: String? = nil) throws -> Int {
        guard case .number(let literal, isInteger: true) = v, let n = Int(literal), n >= low, n <= high else {
            let range = high == .max && low != .min ? "≥ \(low)" : "from \(low) to \(high)"
            throw wrong(param, expected: expected ?? "an integer \(range)", got: v)
        }
        return n
    }

    /// "PARAM: expected WHAT, got VALUE".
    static func wrong(_ param: String, expected: String, got: JSONValue) -> APIError {
        .invalid("\(param): expected \(expected), got \(got.shortDescription)", param: param)
    }
}
