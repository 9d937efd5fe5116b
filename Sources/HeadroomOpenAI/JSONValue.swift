// A strict JSON reader (RFC 8259) for request bodies, with the nesting bounded while it reads. It replaces
// JSONSerialization, which on Linux bridges `true` to 1 and 1 to `true`, cannot tell `1.0` from `1`, and turns
// -9223372036854775809 into an NSDecimalNumber whose `Int` is -9223372036854775807: a field's type and value
// must be read from the text, so numbers are kept as their literal.
import Foundation

/// One JSON value. Numbers keep their literal text; objects refuse a key given twice (two parsers of the same
/// body must not disagree on which one counts).
enum JSONValue {
    case null
    case bool(Bool)
    /// The literal as written; `isInteger` when it has neither a fraction nor an exponent.
    case number(String, isInteger: Bool)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    var isNumber: Bool {
        if case .number = self { return true }
        return false
    }

    /// How a message quotes the value: the literal for scalars (strings cut to 40 characters), the kind otherwise.
    var shortDescription: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let literal, _): return literal.count > 40 ? String(literal.prefix(40)) + "…" : literal
        case .string(let s):
            let cut = s.unicodeScalars.count > 40 ? String(String.UnicodeScalarView(s.unicodeScalars.prefix(40))) + "…" : s
            return "\"" + cut.unicodeScalars.map { $0.value < 0x20 || $0 == "\"" || $0 == "\\" ? $0.escaped(asASCII: true) : String($0) }.joined() + "\""
        case .array(let a): return a.isEmpty ? "an empty array" : "an array"
        case .object(let o): return o.isEmpty ? "an empty object" : "an object"
        }
    }
}

/// Why a body is not JSON, and where (a byte offset).
struct JSONSyntaxError: Error {
    var message: String
    var offset: Int
}

/// Reads one JSON value from bytes. Recursion is at most `maxDepth` deep: a deeper array or object is refused
/// where it opens, so no body can exhaust the stack.
struct JSONReader {
    private let bytes: [UInt8]
    private let maxDepth: Int
    private var i = 0

    /// The value `bytes` holds, with only whitespace around it.
    static func read(_ bytes: [UInt8], maxDepth: Int) throws -> JSONValue {
        var reader = JSONReader(bytes: bytes, maxDepth: maxDepth)
        reader.skipWhitespace()
        if reader.i == bytes.count { throw JSONSyntaxError(message: "it is empty", offset: 0) }
        let value = try reader.value(depth: 0)
        reader.skipWhitespace()
        if reader.i < bytes.count { throw reader.error("unexpected \(reader.describe(bytes[reader.i])) after the value") }
        return value
    }

    private init(bytes: [UInt8], maxDepth: Int) { self.bytes = bytes; self.maxDepth = maxDepth }

    private func error(_ message: String) -> JSONSyntaxError { JSONSyntaxError(message: message + " at byte \(i)", offset: i) }

    private func describe(_ byte: UInt8) -> String {
        byte >= 0x21 && byte < 0x7F ? "'\(Character(Unicode.Scalar(byte)))'" : String(format: "byte 0x%02X", byte)
    }

    private mutating func skipWhitespace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    private mutating func value(depth: Int) throws -> JSONValue {
        guard i < bytes.count else { throw error("it ends where a value should start") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        case let b: throw error("unexpected \(describe(b)) where a value should start")
        }
    }

    private mutating func literal(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count, (0..<n).allSatisfy({ bytes[i + $0] == word.utf8Start[$0] }) else {
            throw error("expected \(word)")
        }
        i += n
    }

    private mutating func enter(_ depth: Int) throws {
        if depth > maxDepth { throw error("arrays and objects nest deeper than \(maxDepth)") }
        i += 1
        skipWhitespace()
    }

    private mutating func array(depth: Int) throws -> JSONValue {
        try enter(depth)
        var items: [JSONValue] = []
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
        while true {
            items.append(try value(depth: depth))
            skipWhitespace()
            guard i < bytes.count else { throw error("it ends inside an array") }
            if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            guard bytes[i] == UInt8(ascii: ",") else { throw error("expected ',' or ']' in an array, got \(describe(bytes[i]))") }
            i += 1
            skipWhitespace()
        }
    }

    private mutating func object(depth: Int) throws -> JSONValue {
        try enter(depth)
        var members: [String: JSONValue] = [:]
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
        while true {
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else {
                throw error(i < bytes.count ? "expected a key in quotes, got \(describe(bytes[i]))" : "it ends inside an object")
            }
            let keyStart = i
            let key = try string()
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw error("expected ':' after a key") }
            i += 1
            skipWhitespace()
            let member = try value(depth: depth)
            if members.updateValue(member, forKey: key) != nil {
                throw JSONSyntaxError(message: "the key \(JSONValue.string(key).shortDescription) appears twice in one object at byte \(keyStart)",
                                      offset: keyStart)
            }
            skipWhitespace()
            guard i < bytes.count else { throw error("it ends inside an object") }
            if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            guard bytes[i] == UInt8(ascii: ",") else { throw error("expected ',' or '}' in an object, got \(describe(bytes[i]))") }
            i += 1
            skipWhitespace()
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, kept as text.
    private mutating func number() throws -> JSONValue {
        let start = i
        func digits(_ reader: inout JSONReader) -> Int {
            let from = reader.i
            while reader.i < reader.bytes.count, reader.bytes[reader.i] >= 0x30, reader.bytes[reader.i] <= 0x39 { reader.i += 1 }
            return reader.i - from
        }
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        let intStart = i
        let intDigits = digits(&self)
        if intDigits == 0 { throw error("expected a digit in a number") }
        if intDigits > 1, bytes[intStart] == UInt8(ascii: "0") { throw JSONSyntaxError(message: "a number with a leading zero at byte \(start)", offset: start) }
        var isInteger = true
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            isInteger = false
            if digits(&self) == 0 { throw error("expected a digit after '.' in a number") }
        }
        if i < bytes.count, bytes[i] | 0x20 == UInt8(ascii: "e") {
            i += 1
            isInteger = false
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            if digits(&self) == 0 { throw error("expected a digit in a number's exponent") }
        }
        return .number(String(decoding: bytes[start..<i], as: UTF8.self), isInteger: isInteger)
    }

    /// A string's contents, escapes resolved; raw control characters, lone surrogates and invalid UTF-8 refused.
    private mutating func string() throws -> String {
        let start = i
        i += 1
        var out: [UInt8] = []
        while true {
            let runStart = i
            while i < bytes.count, bytes[i] != UInt8(ascii: "\""), bytes[i] != UInt8(ascii: "\\"), bytes[i] >= 0x20 { i += 1 }
            out.append(contentsOf: bytes[runStart..<i])
            guard i < bytes.count else { throw JSONSyntaxError(message: "a string that starts at byte \(start) never ends", offset: start) }
            switch bytes[i] {
            case UInt8(ascii: "\""):
                i += 1
                guard let s = String(validating: out, as: UTF8.self) else {
                    throw JSONSyntaxError(message: "the string at byte \(start) is not valid UTF-8", offset: start)
                }
                return s
            case UInt8(ascii: "\\"):
                try escape(into: &out)
            default:
                throw error("a control character (\(describe(bytes[i]))) inside a string; it must be escaped")
            }
        }
    }

    private mutating func escape(into out: inout [UInt8]) throws {
        i += 1
        guard i < bytes.count else { throw error("it ends inside an escape") }
        let c = bytes[i]
        i += 1
        switch c {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(c)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var code = try hex4()
            if code >= 0xD800, code < 0xDC00 {
                guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                    throw error("a lone surrogate \\u\(String(code, radix: 16, uppercase: true)) in a string")
                }
                i += 2
                let low = try hex4()
                guard low >= 0xDC00, low < 0xE000 else { throw error("a high surrogate not followed by a low one in a string") }
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            } else if code >= 0xDC00, code < 0xE000 {
                throw error("a lone surrogate \\u\(String(code, radix: 16, uppercase: true)) in a string")
            }
            UTF8.encode(Unicode.Scalar(code)!) { out.append($0) }
        default:
            i -= 1
            throw error("an unknown escape \\\(describe(c)) in a string")
        }
    }

    private mutating func hex4() throws -> UInt32 {
        guard i + 4 <= bytes.count else { throw error("it ends inside a \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[i] | 0x20
            let d: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
            default: throw error("expected 4 hex digits after \\u")
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }
}
