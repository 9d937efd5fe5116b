// The server's own per-request log line (`EngineLoop.finish` writes one per finished request), read back, and
// a log cut into the load points that wrote it: what `headroom bench load` holds the client's figures against.

/// One `request` line: `… info headroom.serve: decode_ms=3906.3 finish=length generated_tokens=128
/// preemptions=0 prefill_ms=1281.7 prompt_tokens=128 queue_ms=0.1 request=0 [HeadroomServe] request`.
public struct ServeLogLine: Hashable, Sendable {
    /// The server's ticket: its requests numbered in the order they were submitted.
    public var request: Int
    /// `length`, `stop`, `cancelled`, `timeout`, `shutdown` or `failed`.
    public var finish: String
    public var promptTokens: Int
    public var generatedTokens: Int
    public var queueMs: Double
    public var prefillMs: Double
    /// First token to the last.
    public var decodeMs: Double
    public var preemptions: Int

    public init(request: Int, finish: String, promptTokens: Int, generatedTokens: Int, queueMs: Double, prefillMs: Double,
                decodeMs: Double, preemptions: Int = 0) {
        self.request = request; self.finish = finish; self.promptTokens = promptTokens; self.generatedTokens = generatedTokens
        self.queueMs = queueMs; self.prefillMs = prefillMs; self.decodeMs = decodeMs; self.preemptions = preemptions
    }

    /// Submitted to first token, as the server saw it.
    public var ttftMs: Double { queueMs + prefillMs }

    /// The mean gap between output tokens; nil below two tokens.
    public var tpotMs: Double? { generatedTokens >= 2 ? decodeMs / Double(generatedTokens - 1) : nil }

    /// The line's fields, or nil for any other line (another message, a field missing or not a number).
    public static func parse<S: StringProtocol>(_ line: S) -> ServeLogLine? {
        let words = String(line).split(separator: " ")
        guard words.last == "request", words.contains(where: { $0 == "headroom.serve:" }) else { return nil }
        var fields: [Substring: Substring] = [:]
        for w in words {
            guard let eq = w.firstIndex(of: "=") else { continue }
            fields[w[w.startIndex..<eq]] = w[w.index(after: eq)...]
        }
        func int(_ k: Substring) -> Int? { fields[k].flatMap { Int($0) } }
        func ms(_ k: Substring) -> Double? { fields[k].flatMap { Double($0) }.flatMap { $0.isFinite && $0 >= 0 ? $0 : nil } }
        guard let request = int("request"), let finish = fields["finish"], !finish.isEmpty,
              let prompt = int("prompt_tokens"), let generated = int("generated_tokens"), generated >= 0,
              let queue = ms("queue_ms"), let prefill = ms("prefill_ms"), let decode = ms("decode_ms") else { return nil }
        return ServeLogLine(request: request, finish: String(finish), promptTokens: prompt, generatedTokens: generated,
                            queueMs: queue, prefillMs: prefill, decodeMs: decode, preemptions: int("preemptions") ?? 0)
    }
}

/// A log cut into the points of a load run that ran one after another, each awaiting its requests.
public enum ServeLog {
    /// A request line and the byte offset at which it ends in the log.
    public struct Entry: Hashable, Sendable {
        public var end: Int
        public var line: ServeLogLine
        public init(end: Int, line: ServeLogLine) { self.end = end; self.line = line }
    }

    /// One point's lines, in ticket order.
    public struct Point: Hashable, Sendable {
        /// Its first `warmup` tickets: the requests the server received first.
        public var warmup: [ServeLogLine]
        public var measured: [ServeLogLine]
    }

    /// The request lines of `bytes` (a log read from byte `offset` of its file), each with the offset at which it
    /// ends; a last line without its newline is still being written and left out.
    public static func entries(_ bytes: [UInt8], offset: Int = 0) -> [Entry] {
        var out: [Entry] = []
        var start = 0
        for (i, b) in bytes.enumerated() where b == UInt8(ascii: "\n") {
            if let line = ServeLogLine.parse(String(decoding: bytes[start..<i], as: UTF8.self)) {
                out.append(Entry(end: offset + i + 1, line: line))
            }
            start = i + 1
        }
        return out
    }

    /// Cuts `entries` into points: point k's are those ending after `ends[k-1]` (after `start` for the first) and
    /// by `ends[k]`, the log's size when the client had every answer of point k; lines after the last end are
    /// left out. The server logs a request just after it sends the end of its stream, so a point's last line can
    /// land after that size: where `expected` (requests the server answered, per point, warm-ups included) says
    /// point k is short and point k + 1 over, the lowest ticket of k + 1 moves back to k (every ticket of a point
    /// is above every ticket of the one before, since each point awaits its requests). Then each point's `warmup`
    /// lowest tickets are its warm-up: the first its server received (for an open loop or a closed loop of one,
    /// exactly the client's first requests; for a burst sent at once, as many of the burst).
    public static func points(_ entries: [Entry], start: Int, ends: [Int], expected: [Int]? = nil, warmup: Int = 0) -> [Point] {
        var lines: [[ServeLogLine]] = ends.indices.map { k in
            let from = k == 0 ? start : ends[k - 1]
            return entries.filter { $0.end > from && $0.end <= ends[k] }.map(\.line).sorted { $0.request < $1.request }
        }
        if let expected, expected.count == lines.count {
            for k in lines.indices.dropLast() {
                while lines[k].count < expected[k], lines[k + 1].count > expected[k + 1], let first = lines[k + 1].first,
                      first.request > (lines[k].last?.request ?? Int.min) {
                    lines[k].append(lines[k + 1].removeFirst())
                }
            }
        }
        return lines.map { Point(warmup: Array($0.prefix(warmup)), measured: Array($0.dropFirst(warmup))) }
    }
}
