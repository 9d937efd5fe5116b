// The JSONL files a load run reads: a trace (when each request arrives, with its lengths) and a dataset (the
// prompts to send). One JSON object per line; blank lines are skipped; an error names `file:line` and the key.
import Foundation

/// One request of a trace: due `timestamp` seconds after the trace's first request.
public struct LoadTraceEntry: Hashable, Sendable {
    public var timestamp: Double
    public var promptTokens: Int
    public var outputTokens: Int
    public init(timestamp: Double, promptTokens: Int, outputTokens: Int) {
        self.timestamp = timestamp; self.promptTokens = promptTokens; self.outputTokens = outputTokens
    }
}

/// One request of a dataset: a prompt given by length (a synthetic prompt of that many tokens is sent) or as
/// text, and optionally its output length (else the run's `--output-tokens`).
public struct LoadDatasetEntry: Hashable, Sendable {
    public enum Prompt: Hashable, Sendable {
        case tokens(Int)
        case text(String)
    }
    public var prompt: Prompt
    public var outputTokens: Int?
    public init(prompt: Prompt, outputTokens: Int?) { self.prompt = prompt; self.outputTokens = outputTokens }
}

/// Readers of load input files.
public enum LoadInputFiles {
    /// The largest token count a trace or dataset line may ask for.
    public static let maxTokens = 1 << 20
    /// The latest timestamp a trace may have, in seconds.
    public static let maxTraceSeconds = 7.0 * 86_400

    /// A trace: `{"timestamp": 0.0, "prompt_tokens": 512, "output_tokens": 128}` per line, timestamps in seconds,
    /// at least 0 and non-decreasing; entries come back with timestamps relative to the first line's.
    public static func readTrace(path: String) throws -> [LoadTraceEntry] {
        try parseTrace(try readFile(path), file: path)
    }

    /// `readTrace` on bytes; `file` names them in errors.
    public static func parseTrace(_ data: Data, file: String) throws -> [LoadTraceEntry] {
        var out: [LoadTraceEntry] = []
        try forEachObject(data, file: file) { object, where_ in
            let t = try number(object, "timestamp", at: where_, min: 0)
            // Seconds, within a week: a trace in milliseconds or nanoseconds is refused rather than replayed 1000× slow.
            guard t <= maxTraceSeconds else {
                throw InputError(file: where_, path: "timestamp", message: "expected seconds from 0 to \(Int(maxTraceSeconds)) (7 days), got \(t)")
            }
            if let last = out.last, t < last.timestamp {
                throw InputError(file: where_, path: "timestamp", message: "expected timestamps in order, got \(t) after \(last.timestamp)")
            }
            let p = try integer(object, "prompt_tokens", at: where_, min: 1)
            let o = try integer(object, "output_tokens", at: where_, min: 1)
            out.append(LoadTraceEntry(timestamp: t, promptTokens: p, outputTokens: o))
        }
        guard let first = out.first?.timestamp else {
            throw InputError(file: file, path: "", message: "expected at least one request, got none")
        }
        return out.map { LoadTraceEntry(timestamp: $0.timestamp - first, promptTokens: $0.promptTokens, outputTokens: $0.outputTokens) }
    }

    /// A dataset: per line either `{"prompt_tokens": 512, "output_tokens": 128}` or `{"prompt": "text", "output_tokens": 128}`
    /// (`output_tokens` optional with a text prompt).
    public static func readDataset(path: String) throws -> [LoadDatasetEntry] {
        try parseDataset(try readFile(path), file: path)
    }

    /// `readDataset` on bytes; `file` names them in errors.
    public static func parseDataset(_ data: Data, file: String) throws -> [LoadDatasetEntry] {
        var out: [LoadDatasetEntry] = []
        try forEachObject(data, file: file) { object, where_ in
            let prompt: LoadDatasetEntry.Prompt
            switch (object["prompt"], object["prompt_tokens"]) {
            case (.some, .some):
                throw InputError(file: where_, path: "prompt", message: "expected prompt or prompt_tokens, got both")
            case (.some(let p), nil):
                guard case .string(let text) = p, !text.isEmpty else {
                    throw InputError(file: where_, path: "prompt", message: "expected a non-empty string, got \(p.quoted)")
                }
                prompt = .text(text)
            case (nil, .some):
                prompt = .tokens(try integer(object, "prompt_tokens", at: where_, min: 1))
            case (nil, nil):
                throw InputError(file: where_, path: "", message: "expected prompt (text) or prompt_tokens (a length), got neither")
            }
            var output: Int?
            if object["output_tokens"] != nil { output = try integer(object, "output_tokens", at: where_, min: 1) }
            if case .tokens = prompt, output == nil {
                throw InputError(file: where_, path: "output_tokens", message: "expected a positive integer with prompt_tokens, got nothing")
            }
            out.append(LoadDatasetEntry(prompt: prompt, outputTokens: output))
        }
        guard !out.isEmpty else { throw InputError(file: file, path: "", message: "expected at least one prompt, got none") }
        return out
    }

    static func readFile(_ path: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw InputError(file: path, path: "", message: "cannot read the file")
        }
        return data
    }

    /// A JSON value as a line's keys hold it, decoded without Foundation's bridging (which cannot tell `true`
    /// from `1` on every platform).
    enum Value: Decodable {
        case bool(Bool), number(Double), string(String), null, array, object

        init(from decoder: Decoder) throws {
            if let c = try? decoder.singleValueContainer() {
                if c.decodeNil() { self = .null; return }
                if let b = try? c.decode(Bool.self) { self = .bool(b); return }
                if let d = try? c.decode(Double.self) { self = .number(d); return }
                if let s = try? c.decode(String.self) { self = .string(s); return }
            }
            if (try? decoder.unkeyedContainer()) != nil { self = .array; return }
            self = .object
        }

        var quoted: String {
            switch self {
            case .bool(let b): return b ? "true" : "false"
            case .number(let d): return d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : "\(d)"
            case .string(let s): return "\"\(s.prefix(40))\""
            case .null: return "null"
            case .array: return "an array"
            case .object: return "an object"
            }
        }
    }

    /// Calls `body` with each line's object and its `file:line`.
    static func forEachObject(_ data: Data, file: String, _ body: ([String: Value], String) throws -> Void) throws {
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let where_ = "\(file):\(lineNumber)"
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            guard let value = try? JSONDecoder().decode(Value.self, from: Data(line)) else {
                throw InputError(file: where_, path: "", message: "expected a JSON object, got text that is not JSON")
            }
            guard case .object = value, let object = try? JSONDecoder().decode([String: Value].self, from: Data(line)) else {
                throw InputError(file: where_, path: "", message: "expected a JSON object, got \(value.quoted)")
            }
            try body(object, where_)
        }
    }

    static func number(_ object: [String: Value], _ key: String, at where_: String, min: Double) throws -> Double {
        guard let v = object[key] else { throw InputError(file: where_, path: key, message: "expected a number ≥ \(Int(min)), got nothing") }
        guard case .number(let d) = v, d.isFinite, d >= min else {
            throw InputError(file: where_, path: key, message: "expected a number ≥ \(Int(min)), got \(v.quoted)")
        }
        return d
    }

    static func integer(_ object: [String: Value], _ key: String, at where_: String, min: Int) throws -> Int {
        guard let v = object[key] else { throw InputError(file: where_, path: key, message: "expected an integer from \(min) to \(maxTokens), got nothing") }
        guard case .number(let d) = v, let i = Int(exactly: d), i >= min, i <= maxTokens else {
            throw InputError(file: where_, path: key, message: "expected an integer from \(min) to \(maxTokens), got \(v.quoted)")
        }
        return i
    }
}
