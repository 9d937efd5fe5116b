// The HTTP request bodies `headroom serve` reads, as a fuzz target: each input is parsed as a /v1/completions
// and as a /v1/chat/completions body by `CompletionRequestParser.parse`. Seeds are valid bodies of both
// endpoints; mutations know JSON's shape and the API's fields.
import Foundation
import HeadroomOpenAI

enum RequestBodyFuzzTarget {
    /// Smaller than the server's defaults, so that mutated inputs reach every limit.
    static let limits = RequestLimits(maxBodyBytes: 16 << 10, maxDepth: 32, maxPromptLength: 2048, maxStops: 16, maxMessages: 64)

    static func make() -> FuzzTarget {
        FuzzTarget(name: "request-body", summary: "CompletionRequestParser.parse on /v1/completions and /v1/chat/completions bodies",
                   fileExtension: "json", maxInputBytes: 20 << 10, seeds: seeds.map { Array($0.utf8) } + [encodedSeed],
                   byteMutationShare: 0.1, mutate: { input, r in JSONMutations.mutate(&input, &r) }, check: check)
    }

    /// Accepted when either endpoint accepts the body (and the request written back by `jsonBody` parses to the
    /// same request); refused when both refuse it clearly; unclear when either answers anything else.
    static func check(_ input: [UInt8]) -> FuzzVerdict {
        var refusals: [(message: String, check: String)] = []
        var accepted = false
        for endpoint in [CompletionEndpoint.completions, .chatCompletions] {
            let name = endpoint == .completions ? "completions" : "chat"
            do {
                let request = try CompletionRequestParser.parse(input, endpoint: endpoint, limits: limits)
                let again = try? CompletionRequestParser.parse([UInt8](request.jsonBody()), endpoint: endpoint)
                guard again == request else {
                    return .unclear("\(name): the request written back by jsonBody() reads as \(again.map { "\($0)" } ?? "an error"), not \(request)")
                }
                accepted = true
            } catch let e as APIError {
                guard let problem = unclearness(of: e) else {
                    refusals.append(("\(name): \(e.message)", "\(name): \(e.status) " + blank(e.message)))
                    continue
                }
                return .unclear("\(name): \(problem): \(e)")
            } catch {
                return .unclear("\(name): \(type(of: error)), not an APIError: \(error)")
            }
        }
        if accepted { return .accepted }
        // A body that is not a JSON object is refused alike on both.
        if refusals[0].check.dropFirst("completions".count) == refusals[1].check.dropFirst("chat".count) {
            return .refused(refusals[0].message.replacingOccurrences(of: "completions: ", with: "both: "),
                            check: refusals[0].check.replacingOccurrences(of: "completions: ", with: "both: "))
        }
        return .refused(refusals.map(\.message).joined(separator: "; "), check: refusals.map(\.check).joined(separator: " | "))
    }

    /// What is wrong with a refusal, nil when it is clear: a 400 or 413 `invalid_request_error` whose message
    /// starts with the field it names, or with "the body" when it names none.
    static func unclearness(of e: APIError) -> String? {
        guard e.status == 400 || e.status == 413 else { return "status \(e.status), not 400 or 413" }
        guard e.type == "invalid_request_error" else { return "type \(e.type)" }
        if let param = e.param {
            guard e.status == 400, !param.isEmpty, e.message.hasPrefix(param + ": ") else { return "the message does not start with the field \(param)" }
        } else {
            guard e.message.hasPrefix("the body ") else { return "the message names no field and does not say what is wrong with the body" }
        }
        return nil
    }

    /// The message without the input's particulars, so that inputs are told apart by the check that refused
    /// them: numbers (in any notation), quoted text, characters quoted in '…' and hex bytes blanked, and the
    /// value after "got" reduced to its kind.
    static func blank(_ message: String) -> String {
        var text = message
        if let got = text.range(of: ", got ", options: .backwards) {
            let value = text[got.upperBound...]
            let kind = value.hasPrefix("\"") ? "a string" : value.hasPrefix("true") || value.hasPrefix("false") ? "a boolean"
                : value.first.map { $0 == "-" || $0.isNumber } == true ? "a number" : String(value)
            text = text[..<got.upperBound] + kind
        }
        let words = text.split(separator: " ", omittingEmptySubsequences: false).map { word -> Substring in
            let w = word.hasPrefix("\\") || word.hasPrefix("(") ? word.dropFirst() : word
            if w.hasPrefix("0x") { return "0x…" }
            if w.count >= 3, w.hasPrefix("'"), w.dropLast(w.hasSuffix(",") ? 1 : 0).hasSuffix("'") { return "'…'" }
            return word
        }
        return FuzzVerdict.blank(words.joined(separator: " "))
            .replacingOccurrences(of: #"-?#(\.#)?([eE][-+]?#)?"#, with: "#", options: .regularExpression)
    }

    static let seeds = [
        #"{"model": "small", "prompt": "Once upon a time", "max_tokens": 16, "temperature": 0.7, "top_p": 0.95}"#,
        #"{"prompt": [1, 15043, 29892, 3186], "max_tokens": 8, "seed": 42, "stop_token_ids": [2], "ignore_eos": true}"#,
        #"{"prompt": ["Hello"], "stop": ["\n", "."], "seed": -1}"#,
        #"{"prompt": [[1, 2, 3]], "max_tokens": null, "user": "fuzz"}"#,
        #"{"model": "small", "prompt": "Hi", "stream": true, "stream_options": {"include_usage": true}, "max_tokens": 4}"#,
        #"{"model": "small", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "max_completion_tokens": 32}"#,
        #"""
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "a\u00e9\ud83d\ude00"}, {"type": "text", "text": "b"}]},
                      {"role": "assistant", "content": ""}, {"role": "developer", "content": "d"}],
         "stream": true, "stream_options": {"include_usage": true}, "top_p": 0.9, "n": 1, "logprobs": false, "stop": "END"}
        """#,
        #"""
        {"prompt": "p", "n": 1, "best_of": 1, "echo": false, "logprobs": null, "suffix": "", "presence_penalty": 0, "frequency_penalty": 0.0,
         "logit_bias": {}, "tools": [], "tool_choice": "none", "response_format": {"type": "text"}, "top_k": -1, "unknown": [{"x": null}]}
        """#,
    ]

    /// A body as `CompletionRequest.jsonBody()` writes it, every field set.
    static var encodedSeed: [UInt8] {
        [UInt8](CompletionRequest(endpoint: .chatCompletions, model: "small", prompt: .messages([ChatMessage(role: "user", content: "q\n\"x\"")]),
                                  maxTokens: 64, temperature: 0, topP: 1, seed: .max, stream: true, includeUsage: true, stop: ["\n\n"],
                                  stopTokenIDs: [2, 32000], ignoreEOS: true).jsonBody())
    }
}
