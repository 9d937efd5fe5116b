// Fields of OpenAI's API (and vLLM's extensions) that would change the answer but that Headroom does not
// implement. Each is accepted at its neutral value (`echo: false`, `presence_penalty: 0`, `n: 1`, …) and
// refused otherwise with a 400 naming it: a benchmark must not measure an answer the client did not ask for.
import Foundation

enum UnsupportedFields {
    /// One field: the types it may have, and whether a value of a right type is neutral.
    struct Rule {
        var key: String
        /// What a value of the wrong type is told was expected.
        var expected: String
        /// The neutral value, as the refusal names it.
        var neutral: String
        /// nil: the wrong type; true: neutral; false: would change the answer.
        var isNeutral: (JSONValue) -> Bool?

        /// A field with one accepted value (`n`, `best_of`): any other value, of any type, is "only 1 is supported".
        static func only(_ key: String, _ literal: String) -> Rule {
            Rule(key: key, expected: literal, neutral: literal) {
                if case .number(literal, isInteger: true) = $0 { return true }
                return false
            }
        }
    }

    static func number(_ key: String, neutral: Double) -> Rule {
        Rule(key: key, expected: "a number", neutral: neutral == neutral.rounded() ? String(Int(neutral)) : "\(neutral)") {
            guard case .number(let literal, _) = $0, let d = Double(literal) else { return nil }
            return d == neutral
        }
    }

    static func boolean(_ key: String) -> Rule {
        Rule(key: key, expected: "true or false", neutral: "false") {
            guard case .bool(let b) = $0 else { return nil }
            return !b
        }
    }

    static func emptyArray(_ key: String) -> Rule {
        Rule(key: key, expected: "an array", neutral: "[]") {
            guard case .array(let a) = $0 else { return nil }
            return a.isEmpty
        }
    }

    static let rules: [Rule] = [
        .only("n", "1"),
        .only("best_of", "1"),
        boolean("echo"),
        // An integer on /v1/completions, a boolean on chat: any value but false asks for log-probabilities.
        Rule(key: "logprobs", expected: "an integer or a boolean", neutral: "null or false") {
            switch $0 {
            case .bool(let b): return !b
            case .number: return false
            default: return nil
            }
        },
        number("top_logprobs", neutral: 0),
        Rule(key: "prompt_logprobs", expected: "an integer", neutral: "null") { $0.isNumber ? false : nil },
        Rule(key: "suffix", expected: "a string", neutral: "\"\"") {
            guard case .string(let s) = $0 else { return nil }
            return s.isEmpty
        },
        number("presence_penalty", neutral: 0),
        number("frequency_penalty", neutral: 0),
        number("repetition_penalty", neutral: 1),
        number("min_p", neutral: 0),
        Rule(key: "top_k", expected: "an integer", neutral: "-1 or 0") {
            guard case .number(let literal, _) = $0, let d = Double(literal) else { return nil }
            return d == -1 || d == 0
        },
        number("min_tokens", neutral: 0),
        Rule(key: "logit_bias", expected: "an object", neutral: "{}") {
            guard case .object(let o) = $0 else { return nil }
            return o.isEmpty
        },
        emptyArray("tools"),
        emptyArray("functions"),
        emptyArray("allowed_token_ids"),
        emptyArray("bad_words"),
        Rule(key: "tool_choice", expected: "a string or an object", neutral: "\"none\" or \"auto\"", isNeutral: isNoToolChoice),
        Rule(key: "function_call", expected: "a string or an object", neutral: "\"none\" or \"auto\"", isNeutral: isNoToolChoice),
        Rule(key: "response_format", expected: "an object", neutral: "{\"type\": \"text\"}") {
            guard case .object(let o) = $0 else { return nil }
            if case .string("text") = o["type"] ?? .null { return true }
            return false
        },
        boolean("use_beam_search"),
        boolean("include_stop_str_in_output"),
        Rule(key: "guided_json", expected: "a schema", neutral: "null") { _ in false },
        Rule(key: "guided_regex", expected: "a string", neutral: "null") { _ in false },
        Rule(key: "guided_choice", expected: "an array", neutral: "null") { _ in false },
        Rule(key: "guided_grammar", expected: "a string", neutral: "null") { _ in false },
    ]

    static func isNoToolChoice(_ value: JSONValue) -> Bool? {
        switch value {
        case .string(let s): return s == "none" || s == "auto"
        case .object: return false
        default: return nil
        }
    }

    /// Refuses the first field present (not null) whose value is of the wrong type or not neutral.
    static func check(_ body: FieldReader) throws {
        for rule in rules {
            guard let value = body.value(rule.key) else { continue }
            switch rule.isNeutral(value) {
            case true?: continue
            case false? where rule.expected == rule.neutral:
                throw APIError.invalid("\(rule.key): only \(rule.neutral) is supported, got \(value.shortDescription)", param: rule.key)
            case false?:
                throw APIError.invalid("\(rule.key): \(value.shortDescription) is not supported; leave it out or send \(rule.neutral)",
                                       param: rule.key)
            case nil:
                throw FieldReader.wrong(rule.key, expected: rule.expected, got: value)
            }
        }
    }
}
