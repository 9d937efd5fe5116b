// The key–value metadata of a GGUF file, kept in file order, with typed accessors for the
// lookups the engine makes (strings, integers of any width, floats, arrays).
import Foundation

/// GGUF metadata: an ordered dictionary from key to value. Order is kept so a file written,
/// read and written again is byte-identical.
public struct GGUFMetadata: Equatable, Sendable {
    /// Keys in file order.
    public private(set) var keys: [String] = []
    private var values: [String: GGUFValue] = [:]

    public init() {}

    /// Builds from ordered pairs; a repeated key keeps its first place and its last value.
    public init(_ pairs: [(String, GGUFValue)]) {
        for (key, value) in pairs { self[key] = value }
    }

    public var count: Int { keys.count }

    /// The value stored under `key`; assigning appends a new key or replaces an existing value in place,
    /// assigning nil removes the key.
    public subscript(key: String) -> GGUFValue? {
        get { values[key] }
        set {
            if let newValue {
                if values.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if values.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    /// The entries in file order.
    public var entries: [(key: String, value: GGUFValue)] { keys.map { ($0, values[$0]!) } }

    /// The string under `key`, or nil when absent or not a string.
    public func string(_ key: String) -> String? { values[key]?.stringValue }

    /// The integer under `key` (any integer width that fits in `Int`), or nil when absent or not an integer.
    public func int(_ key: String) -> Int? { values[key]?.intValue }

    /// The float under `key` (float32 or float64), or nil when absent or not a float.
    public func float(_ key: String) -> Double? { values[key]?.floatValue }

    /// The Boolean under `key`, or nil when absent or not a bool.
    public func bool(_ key: String) -> Bool? { values[key]?.boolValue }

    /// The array elements under `key`, or nil when absent or not an array.
    public func array(_ key: String) -> [GGUFValue]? { values[key]?.arrayValue }

    /// The array of strings under `key`, or nil when absent, not an array, or not all strings.
    public func strings(_ key: String) -> [String]? {
        guard case .array(.string, let elements)? = values[key] else { return nil }
        return elements.compactMap(\.stringValue)
    }

    /// `general.architecture`, when present and a string.
    public var architecture: String? { string("general.architecture") }

    // Throwing lookups for the configuration reader: a missing key and a key of the wrong type
    // are different mistakes and get different messages.

    func requireString(_ key: String, path: String) throws -> String {
        guard let value = values[key] else { throw GGUFError(path: path, problem: .missingKey(key)) }
        guard let s = value.stringValue else {
            throw GGUFError(path: path, problem: .wrongValueType(key: key, expected: "string", found: value.type))
        }
        return s
    }

    func requireInt(_ key: String, path: String) throws -> Int {
        guard let value = values[key] else { throw GGUFError(path: path, problem: .missingKey(key)) }
        return try Self.integer(value, key: key, path: path)
    }

    func optionalInt(_ key: String, path: String) throws -> Int? {
        guard let value = values[key] else { return nil }
        return try Self.integer(value, key: key, path: path)
    }

    func optionalFloat(_ key: String, path: String) throws -> Double? {
        guard let value = values[key] else { return nil }
        guard let f = value.floatValue else {
            throw GGUFError(path: path, problem: .wrongValueType(key: key, expected: "float32 or float64", found: value.type))
        }
        return f
    }

    func requireFloat(_ key: String, path: String) throws -> Double {
        guard let f = try optionalFloat(key, path: path) else { throw GGUFError(path: path, problem: .missingKey(key)) }
        return f
    }

    private static func integer(_ value: GGUFValue, key: String, path: String) throws -> Int {
        guard let i = value.intValue else {
            throw GGUFError(path: path, problem: .wrongValueType(key: key, expected: "an integer", found: value.type))
        }
        return i
    }
}
