// `headroom serve --step-log FILE`: one CSV row per model step — when it started, how long it took, what it
// computed (the sums an `ExecutionTimePredictor` prices) and how many requests it left held — written by the
// engine's thread as each step ends. What the server's steps cost under load, next to what they cost alone
// (`headroom bench steps`) and what a step model predicts for the same shapes (`headroom bench sim`).
import Foundation
import HeadroomCore

/// One logged step.
public struct StepLogRow: Hashable, Sendable {
    /// Seconds from the first logged step's start to this one's.
    public var startSeconds: Double
    public var durationMs: Double
    /// Requests running or waiting in the engine after the step (0: the server went idle).
    public var heldAfter: Int
    public var shape: BatchShape

    public init(startSeconds: Double, durationMs: Double, heldAfter: Int, shape: BatchShape) {
        self.startSeconds = startSeconds; self.durationMs = durationMs; self.heldAfter = heldAfter; self.shape = shape
    }

    /// The last two columns are the decodes' share of the attention sums (logs written before them have nine
    /// columns, `header9`, and are read with the share split by tokens).
    public static let header = "start_s,duration_ms,held_after,decodes,prefill_tokens,prefill_chunks,sampled,attended_keys,kv_positions_read,"
        + "decode_attended_keys,decode_kv_positions_read"
    public static let header9 = "start_s,duration_ms,held_after,decodes,prefill_tokens,prefill_chunks,sampled,attended_keys,kv_positions_read"

    public var line: String {
        String(format: "%.6f,%.3f,%d,%d,%d,%d,%d,%.0f,%d,%.0f,%d", startSeconds, durationMs, heldAfter, shape.decodes, shape.prefillTokens,
               shape.prefillChunks, shape.sampledSequences, shape.attendedKeys, shape.kvPositionsRead, shape.decodeAttendedKeys,
               shape.decodeKVPositionsRead)
    }

    /// The row of a data line, or nil when it is not one (eleven fields, or the nine of an older log; numbers in range).
    public static func parse<S: StringProtocol>(_ line: S) -> StepLogRow? {
        let f = line.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingCharacters(in: .whitespaces) }
        guard f.count == 9 || f.count == 11, let start = Double(f[0]), start.isFinite, start >= 0, let duration = Double(f[1]), duration.isFinite,
              duration >= 0, let held = Int(f[2]), held >= 0, let decodes = Int(f[3]), let prefill = Int(f[4]), let chunks = Int(f[5]),
              let sampled = Int(f[6]), let keys = Double(f[7]), let read = Int(f[8]) else { return nil }
        var decodeKeys: Double?, decodeRead: Int?
        if f.count == 11 {
            guard let k = Double(f[9]), let r = Int(f[10]) else { return nil }
            decodeKeys = k; decodeRead = r
        }
        guard let shape = BatchShape(prefillTokens: prefill, prefillChunks: chunks, decodes: decodes, sampledSequences: sampled,
                                     attendedKeys: keys, kvPositionsRead: read, decodeAttendedKeys: decodeKeys, decodeKVPositionsRead: decodeRead),
              !shape.isEmpty else { return nil }
        return StepLogRow(startSeconds: start, durationMs: duration, heldAfter: held, shape: shape)
    }
}

/// A step log that cannot be written or read: `message` names the file and, for a bad row, its line.
public struct StepLogError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

public enum StepLog {
    /// A step log that cannot be read: `message` names the file and, for a bad row, its line.
    /// Every row of the log at `path` (its header checked; a last line cut short by a server still writing is
    /// left out).
    public static func read(_ path: String) throws(StepLogError) -> [StepLogRow] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw StepLogError(message: "\(path): cannot read the step log")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let complete = text.hasSuffix("\n")
        if lines.last?.isEmpty == true { lines.removeLast() }
        guard let first = lines.first, first == StepLogRow.header || first == StepLogRow.header9 else {
            throw StepLogError(message: "\(path): line 1: expected the header \(StepLogRow.header)")
        }
        var rows: [StepLogRow] = []
        for (i, line) in lines.enumerated().dropFirst() {
            if let row = StepLogRow.parse(line) { rows.append(row); continue }
            if i == lines.count - 1 && !complete { break }
            throw StepLogError(message: "\(path): line \(i + 1): expected \(StepLogRow.header.split(separator: ",").count) numbers, got '\(line.prefix(120))'")
        }
        return rows
    }
}

/// Appends rows to a step log from the engine's thread: one write a row, so a reader sees whole steps while the
/// server runs.
public final class StepLogWriter: @unchecked Sendable {
    public let path: String
    private let handle: FileHandle
    private var origin: ContinuousClock.Instant?
    private var failed = false

    /// Creates (or empties) the file at `path` and writes the header; throws when it cannot.
    public init(path: String) throws(StepLogError) {
        self.path = path
        guard FileManager.default.createFile(atPath: path, contents: Data((StepLogRow.header + "\n").utf8)),
              let handle = FileHandle(forWritingAtPath: path) else {
            throw StepLogError(message: "\(path): cannot create the step log")
        }
        self.handle = handle
        _ = try? handle.seekToEnd()
    }

    /// Logs a step that started at `start` (engine thread only). A write that fails (disk full) ends the log, not
    /// the server.
    func append(start: ContinuousClock.Instant, duration: Duration, heldAfter: Int, shape: BatchShape) {
        guard !failed else { return }
        let origin = self.origin ?? start
        self.origin = origin
        let row = StepLogRow(startSeconds: Self.seconds(start - origin), durationMs: Self.seconds(duration) * 1000, heldAfter: heldAfter,
                             shape: shape)
        do { try handle.write(contentsOf: Data((row.line + "\n").utf8)) } catch { failed = true }
    }

    func close() { try? handle.close() }

    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }
}

/// A stretch of a step log held against a step-time model: how much slower (or faster) the server's steps ran
/// than the model says those shapes take, and how much of the time requests were held went between steps (the
/// engine's loop, sampling, streaming, a busy CPU) — a diagnostic, never an input to a prediction.
public struct StepLogCheck: Codable, Hashable, Sendable {
    public var steps: Int
    public var measuredMs: Double
    public var predictedMs: Double
    /// Measured over predicted, for all steps, steps of decodes only, and steps with prefill tokens.
    public var ratio: Double?
    public var decodeOnlyRatio: Double?
    public var withPrefillRatio: Double?
    /// Of the time from each step's start to the next one's, while requests were held, the part between steps.
    public var betweenStepsFraction: Double?
    /// Measured over predicted in each `windowSeconds` of the stretch (windows by step start, from the first
    /// step; those with fewer than `minimumWindowSteps` steps left out), in time order. The model prices every
    /// window's shapes alike, so a machine that ran slower for a while (a busy host, a neighbour on the same
    /// cores) shows as windows above the others.
    public var windowRatios: [Double]?

    public static let windowSeconds = 30.0
    public static let minimumWindowSteps = 5

    public init(_ rows: [StepLogRow], predictor: any ExecutionTimePredictor) {
        steps = rows.count
        var m = 0.0, p = 0.0, md = 0.0, pd = 0.0, mp = 0.0, pp = 0.0
        for r in rows {
            let predicted = predictor.iterationSeconds(r.shape) * 1000
            m += r.durationMs; p += predicted
            if r.shape.prefillTokens == 0 { md += r.durationMs; pd += predicted } else { mp += r.durationMs; pp += predicted }
        }
        func ratio(_ a: Double, _ b: Double) -> Double? { b > 0 && b.isFinite ? a / b : nil }
        measuredMs = m; predictedMs = p
        self.ratio = ratio(m, p); decodeOnlyRatio = ratio(md, pd); withPrefillRatio = ratio(mp, pp)
        var inSteps = 0.0, between = 0.0
        for (a, b) in zip(rows, rows.dropFirst()) where a.heldAfter > 0 {
            let gap = (b.startSeconds - a.startSeconds) * 1000 - a.durationMs
            inSteps += a.durationMs
            between += max(0, gap)
        }
        betweenStepsFraction = inSteps + between > 0 ? between / (inSteps + between) : nil
        windowRatios = Self.windows(rows, predictor: predictor)
    }

    static func windows(_ rows: [StepLogRow], predictor: any ExecutionTimePredictor) -> [Double] {
        guard let origin = rows.first?.startSeconds else { return [] }
        var sums: [Int: (measured: Double, predicted: Double, steps: Int)] = [:]
        for r in rows {
            let w = Int(((r.startSeconds - origin) / windowSeconds).rounded(.down))
            let s = sums[w] ?? (0, 0, 0)
            sums[w] = (s.measured + r.durationMs, s.predicted + predictor.iterationSeconds(r.shape) * 1000, s.steps + 1)
        }
        return sums.keys.sorted().compactMap { w in
            let s = sums[w]!
            return s.steps >= minimumWindowSteps && s.predicted > 0 && s.predicted.isFinite ? s.measured / s.predicted : nil
        }
    }
}
