// Mutations that know JSON's shape and the completion API's fields: values replaced by edge cases (numbers
// past Int64 and Double, -0, fractions for integers, booleans for numbers, wrong containers), keys replaced
// by the API's, members inserted, duplicated or dropped, deep nesting, long arrays and strings, bad escapes,
// control characters and invalid UTF-8 inside strings.
enum JSONMutations {
    static let values: [String] = [
        "0", "-0", "1", "-1", "2", "3", "16", "1.0", "1.5", "0.5", "-0.0", "1e2", "1E-2", "1e999", "-1e999", "1e-400", "2.0000001",
        "2147483647", "2147483648", "-2147483649", "4294967296", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
        "-9223372036854775809", "18446744073709551615", "18446744073709551616", "12345678901234567890123", "01", "-", "1.", ".5", "+1",
        "NaN", "Infinity", "true", "false", "null", "tru", "nul", "\"\"", "\"x\"", "\"1\"", "\"true\"", "[]", "{}", "[1]", "[0, 2147483647]",
        "[-1]", "[1, 2.0]", "[true]", "[\"a\"]", "[\"a\", \"b\"]", "[[1, 2]]", "[[1], [2]]", "[[]]", "[\"\"]", "[null]",
        "{\"type\": \"text\", \"text\": \"t\"}", "[{\"type\": \"text\", \"text\": \"t\"}]", "[{\"type\": \"image_url\", \"image_url\": {}}]",
        "[{\"role\": \"user\", \"content\": \"c\"}]", "{\"role\": \"user\", \"content\": \"c\"}", "{\"include_usage\": true}",
        "{\"include_usage\": 1}", "{\"type\": \"json_object\"}", "\"text\"", "\"user\"", "\"assistant\"", "\"bot\"", "\"none\"", "\"auto\"",
        "\"required\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\u0000\"", "\"\\x\"", "\"\\u12\"", "\"\\uD83D\\uDE00\"",
        "\"\u{FEFF}\"", "\"\u{202E}\"", "\"é\"",
    ]

    static let keys: [String] = [
        "model", "prompt", "messages", "role", "content", "type", "text", "max_tokens", "max_completion_tokens", "temperature", "top_p",
        "seed", "stream", "stream_options", "include_usage", "stop", "stop_token_ids", "ignore_eos", "n", "best_of", "echo", "logprobs",
        "top_logprobs", "prompt_logprobs", "suffix", "presence_penalty", "frequency_penalty", "repetition_penalty", "min_p", "top_k",
        "min_tokens", "logit_bias", "tools", "functions", "tool_choice", "function_call", "tool_calls", "response_format",
        "use_beam_search", "include_stop_str_in_output", "guided_json", "guided_choice", "allowed_token_ids", "user", "unknown", "",
    ]

    /// A token of the input: a string (a key when a ':' follows), a number or literal, or one structural byte.
    struct Token {
        enum Kind { case key, string, scalar, open, close, punctuation }
        var kind: Kind
        var range: Range<Int>
    }

    static func tokens(_ s: [UInt8]) -> [Token] {
        var out: [Token] = []
        var i = 0
        while i < s.count {
            let start = i
            switch s[i] {
            case UInt8(ascii: "\""):
                i += 1
                while i < s.count, s[i] != UInt8(ascii: "\"") { i += s[i] == UInt8(ascii: "\\") ? 2 : 1 }
                i = min(i + 1, s.count)
                var k = i
                while k < s.count, s[k] == 0x20 || s[k] == 0x0A || s[k] == 0x09 || s[k] == 0x0D { k += 1 }
                out.append(Token(kind: k < s.count && s[k] == UInt8(ascii: ":") ? .key : .string, range: start..<i))
            case UInt8(ascii: "{"), UInt8(ascii: "["): i += 1; out.append(Token(kind: .open, range: start..<i))
            case UInt8(ascii: "}"), UInt8(ascii: "]"): i += 1; out.append(Token(kind: .close, range: start..<i))
            case UInt8(ascii: ","), UInt8(ascii: ":"): i += 1; out.append(Token(kind: .punctuation, range: start..<i))
            case 0x20, 0x0A, 0x09, 0x0D: i += 1
            default:
                while i < s.count, !"{}[],:\" \n\t\r".utf8.contains(s[i]) { i += 1 }
                out.append(Token(kind: .scalar, range: start..<i))
            }
        }
        return out
    }

    static func pick(_ tokens: [Token], _ r: inout FuzzRandom) -> Token? { tokens.isEmpty ? nil : r.pick(tokens) }

    /// One mutation; an input without the tokens a mutation needs is left as it is (the loop stacks others).
    static func mutate(_ input: inout [UInt8], _ r: inout FuzzRandom) {
        let all = tokens(input)
        let values = all.filter { $0.kind == .string || $0.kind == .scalar }
        let keys = all.filter { $0.kind == .key }
        let opens = all.filter { $0.kind == .open }
        func replace(_ range: Range<Int>, _ text: String) { input.replaceSubrange(range, with: Array(text.utf8)) }
        func member() -> String { "\"\(r.pick(Self.keys))\": \(r.pick(Self.values))" }
        // The mutations that break the syntax (9, 11) are the rarest: stacked, they would leave few inputs that
        // reach the field checks.
        switch r.below(16) {
        case 0...5:  // a value replaced by an edge case
            guard let t = pick(values, &r) else { return }
            replace(t.range, r.pick(Self.values))
        case 6, 7:  // a key replaced by one of the API's (or a typo of one)
            guard let t = pick(keys, &r) else { return }
            var key = r.pick(Self.keys)
            if r.oneIn(4), !key.isEmpty { key.remove(at: key.index(key.startIndex, offsetBy: r.below(key.count))) }
            replace(t.range, "\"\(key)\"")
        case 8, 9:  // a member inserted after an opening brace
            let braces = opens.filter { input[$0.range.lowerBound] == UInt8(ascii: "{") }
            guard let t = pick(braces, &r) else { return }
            let rest = input[t.range.upperBound...].first(where: { $0 != 0x20 }) == UInt8(ascii: "}") ? "" : ", "
            input.insert(contentsOf: Array((member() + rest).utf8), at: t.range.upperBound)
        case 10:  // deep nesting in place of a value
            guard let t = pick(values, &r) else { return }
            let depth = r.size(upTo: 4096)
            replace(t.range, r.oneIn(2) ? String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
                : String(repeating: "{\"a\": ", count: depth) + "1" + String(repeating: "}", count: depth))
        case 11:  // a long array of token ids, a long string, many messages or stops
            guard let t = pick(values, &r) else { return }
            let n = r.size(upTo: 4096)
            let item = r.pick(["1", "2147483647", "\"s\"", "{\"role\": \"user\", \"content\": \"c\"}", "[1]"])
            replace(t.range, r.oneIn(3) ? "\"" + String(repeating: "é", count: n) + "\"" : "[" + Array(repeating: item, count: n).joined(separator: ",") + "]")
        case 12:  // a member or value duplicated elsewhere (a key twice, a value of another field's type)
            guard values.count >= 2 else { return }
            let from = r.pick(values), to = r.pick(values)
            let text = Array(input[from.range])
            input.replaceSubrange(to.range, with: text)
        case 13:  // a token dropped (a missing value, comma, bracket or key)
            guard let t = pick(all, &r) else { return }
            input.removeSubrange(t.range)
        case 14:  // a value wrapped in an array or an object, or null
            guard let t = pick(values, &r) else { return }
            let text = String(decoding: input[t.range], as: UTF8.self)
            replace(t.range, r.pick(["[\(text)]", "{\"text\": \(text)}", "[\(text), \(text)]", "null"]))
        default:  // bad bytes inside a string: escapes, control characters, invalid UTF-8
            let strings = all.filter { $0.kind == .string || $0.kind == .key }
            let at = strings.isEmpty ? r.below(input.count + 1) : r.pick(strings).range.lowerBound + 1
            let odd: [[UInt8]] = [[0], [0x09], [0x0A], [0x1F], [0x7F], [0xC3], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
                                  [0xFF], [0xEF, 0xBB, 0xBF], Array("\\".utf8), Array("\\u".utf8), Array("\\ud800".utf8), Array("\\q".utf8)]
            input.insert(contentsOf: r.pick(odd), at: min(at, input.count))
        }
    }
}
