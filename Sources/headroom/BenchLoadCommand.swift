// `headroom bench load`: `headroom load`'s sweep against a `headroom serve` child, stored and reported like any
// load run, and each point's client-side TTFT and TPOT held against the server's own per-request log (issue 11's
// check "against headroom serve"). A command of its own rather than a phase of `bench serve`: its server needs a
// queue that takes the whole throughput burst (bench serve's has 64 places for its overload bar), and it stores a
// run and writes a report, which bench serve does not.
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomLoad
import HeadroomReport
import HeadroomRunner
import HeadroomServe
import NIOConcurrencyHelpers

struct BenchLoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Sweep `headroom serve` with `headroom load` and check each point's TTFT and TPOT against the server's log.",
        discussion: """
            Starts a `headroom serve` child (--model, --precision, --threads; a batch of --requests sequences, a queue \
            that takes every request of a point; its log in .headroom/bench/load-server.log) and runs `headroom load`'s \
            sweep against it: synchronous, throughput (--requests at once), then --rates constant rates between them, \
            each point --warmup requests and then --requests measured ones of --prompt-tokens token ids and \
            --output-tokens tokens. The run is stored (`headroom history`) and reported (--reports). \
            Points are bounded by requests, not time: the throughput point sends as many at once as a point sends, \
            so a request bound keeps it within the server's batch rather than a 256-request burst.

            Then each point is compared with the server's `request` log lines written while it ran (each point awaits \
            its requests before the next starts): the client's TTFT p50 against the server's queue_ms + prefill_ms \
            p50 (submitted to first token), and the client's TPOT p50 against the server's decode_ms / \
            (generated_tokens − 1) p50; the client's ITL p50 is shown beside. The lowest --warmup tickets of each \
            point are its warm-ups and left out, as the client leaves its warm-ups out. Percentiles on both sides \
            from the same HdrHistogram. Bars: every answered measured request has its server line, and each \
            difference is within 5 % of the server's figure. Exits 1 when a bar is missed.
            """)

    @Option(name: .long, help: "A catalog model with synthetic weights.")
    var model = "small"
    @Option(name: .long, help: "Weight format.")
    var precision = "q4_0"
    @Option(name: .long, help: "Threads of the server (default: all cores).")
    var threads: Int?
    @Option(name: .customLong("prompt-tokens"), help: "Prompt length in tokens.")
    var promptTokens = 32
    @Option(name: .customLong("output-tokens"), help: "Output tokens per request.")
    var outputTokens = 32
    @Option(name: .long, help: "Measured requests per point (also the throughput point's concurrency and the server's batch).")
    var requests = 16
    @Option(name: .long, help: "Warm-up requests at the start of each point, left out on both sides.")
    var warmup = 1
    @Option(name: .long, help: "Constant rates between the synchronous and throughput points.")
    var rates = 5
    @OptionGroup var catalog: CatalogOptions
    @Option(name: .long, help: ArgumentHelp("Folder that receives the report folder.", valueName: "dir"))
    var reports = "Reports"
    @OptionGroup var store: StoreOptions
    @Flag(name: .long, help: "Print JSON on standard output instead of tables.")
    var json = false

    static let endpointName = "headroom-serve"
    static let logPath = ".headroom/bench/load-server.log"
    /// Each difference's bar, a fraction of the server's figure.
    static let tolerance = 0.05

    func validate() throws {
        _ = try enginePrecision(precision)
        _ = try threadCount(threads)
        if !(1...4096).contains(promptTokens) { throw ValidationError("--prompt-tokens: expected 1 to 4096") }
        if !(2...4096).contains(outputTokens) { throw ValidationError("--output-tokens: expected 2 to 4096 (TPOT needs two tokens)") }
        if !(2...256).contains(requests) { throw ValidationError("--requests: expected 2 to 256") }
        if !(0...100).contains(warmup) { throw ValidationError("--warmup: expected 0 to 100") }
        if !(1...20).contains(rates) { throw ValidationError("--rates: expected 1 to 20") }
    }

    func run() throws {
        try reportingErrors {
            let threads = try threadCount(self.threads)
            let shape = try catalog.load().model(model)
            let type = try enginePrecision(precision)
            guard promptTokens + outputTokens + 1 <= shape.context else {
                throw InputError(file: "--prompt-tokens", path: "", message: "prompt \(promptTokens) + output \(outputTokens) exceed the context of \(shape.id) (\(shape.context))")
            }
            let db = try store.open()
            Interrupt.install()
            let perRequest = promptTokens + outputTokens
            let (server, url) = try ServerProcess.startReady(
                arguments: ["--max-num-seqs", "\(requests)", "--max-queue", "\(requests + warmup + 16)",
                            "--kv-memory", "\(requests * perRequest * 5 / 4 + 64)"],
                model: shape.id, precision: type.description, threads: threads, logPath: Self.logPath, label: "")
            defer { server.stop() }

            var endpoint = EndpointSpec(name: Self.endpointName, url: url)
            endpoint.modelShape = shape.id
            var settings = LoadSettings(endpoint: endpoint.name, profile: .sweep(rates: rates), promptTokens: promptTokens,
                                        outputTokens: outputTokens, durationSeconds: nil, requests: requests, warmup: warmup,
                                        promptKind: PromptChoice.tokenIDs.rawValue)
            settings.seed = 1
            let scenario = LoadCommand.commandLineScenario(name: "bench-load", description: "headroom bench load: \(shape.id) \(type), \(threads) threads",
                                                           endpoint: endpoint, load: settings)

            // Where the log stood when the run began, and when the client had every answer of each point.
            let start = Self.logSize()
            let marks = PointMarks()
            let context = ScenarioWorkloads.LoadContext(progress: { p in marks.note(p.point, at: Self.logSize()) })
            warn("sweep: synchronous, throughput, \(rates) rates; \(warmup) + \(requests) requests a point, prompt \(promptTokens), output \(outputTokens)")
            let outcome = try LoadCommand.measure(scenario, store: db, load: context)
            let stored = try db.load(runID: outcome.runID)
            let folder = (reports as NSString).appendingPathComponent("bench-load-\(shape.id)-\(type)")
            try ReportWriter(builders: ReportWriter.standardBuilders).write(run: stored, folder: folder)

            let cases = stored.cases.filter { $0.kind == .load }
            let bytes = try Self.readLog(from: start)
            let result = BenchLoadResult.compare(cases: cases, marks: marks.points, log: ServeLog.entries(bytes, offset: start), start: start,
                                                 logEnd: start + bytes.count, warmup: warmup,
                                                 header: .init(model: shape.id, precision: type.description, threads: threads, promptTokens: promptTokens,
                                                               outputTokens: outputTokens, requests: requests, warmup: warmup, runId: outcome.runID,
                                                               store: store.shown, report: (folder as NSString).appendingPathComponent("index.html"),
                                                               serverLog: Self.logPath))
            if json {
                try printJSON(result)
            } else {
                print("Endpoint \(endpoint.name) (\(url)): run \(outcome.runID), \(cases.count) point(s) in \(store.shown) — measured at this client")
                print(LoadSection.table(LoadCasePoint.all(stored)[endpoint.name] ?? []).rendered)
                for note in LoadNotes.lines(cases) { print(note) }
                print("Report: \(result.report)\n")
                print(result.table)
            }
            if result.bars.contains(where: { !$0.passed }) { throw ExitCode(Exit.failure) }
        }
    }

    static func logSize() -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: logPath))?[.size] as? NSNumber)?.intValue ?? 0
    }

    static func readLog(from offset: Int) throws -> [UInt8] {
        guard let h = FileHandle(forReadingAtPath: logPath) else { throw RunFailure("cannot read the server's log \(logPath)") }
        defer { try? h.close() }
        try h.seek(toOffset: UInt64(offset))
        return Array(try h.readToEnd() ?? Data())
    }
}

/// The log's size at the last progress report of each point (the scheduler's last comes after its last answer),
/// in the order the points ran.
final class PointMarks: Sendable {
    private let box = NIOLockedValueBox<[(point: String, offset: Int)]>([])

    func note(_ point: String, at offset: Int) {
        box.withLockedValue { marks in
            if marks.last?.point == point { marks[marks.count - 1].offset = max(marks[marks.count - 1].offset, offset) } else { marks.append((point, offset)) }
        }
    }

    var points: [(point: String, offset: Int)] { box.withLockedValue { $0 } }
}

/// `headroom bench load --json`: per point, the client's figures (from the stored cases) beside the server's (from
/// its log), and the bars.
struct BenchLoadResult: Codable {
    struct Header: Codable {
        var model: String, precision: String, threads: Int, promptTokens: Int, outputTokens: Int, requests: Int, warmup: Int
        var runId: Int64, store: String, report: String, serverLog: String
    }
    struct Point: Codable {
        var point: String
        /// Measured requests the client sent, and those answered in full.
        var clientSent: Int, clientOK: Int
        /// The point's measured server lines that finished by length, and those that finished otherwise.
        var serverLength: Int, serverOther: Int
        var clientTTFTp50Ms: Double?, serverTTFTp50Ms: Double?
        var clientTPOTp50Ms: Double?, serverTPOTp50Ms: Double?
        var clientITLp50Ms: Double?
        /// (client − server) / server.
        var ttftDiff: Double?, tpotDiff: Double?

        static func diff(_ c: Double?, _ s: Double?) -> Double? {
            guard let c, let s, s > 0 else { return nil }
            return (c - s) / s
        }
    }
    struct Bar: Codable { var name: String; var measured: String; var bar: String; var passed: Bool }

    var kind = "measured"
    var header: Header
    var points: [Point]
    var bars: [Bar]
    var report: String { header.report }

    static func p50(_ v: [Double]) -> Double? { LatencyDistribution(v)?.p50 }

    /// Pairs each stored point with the server's lines written while it ran (`marks`: the log's size when each
    /// point had all its answers, in run order, labelled as the cases' `point`). The last point's lines run to
    /// `logEnd`, the log's size read after the run: the server logs a request just after it ends its stream, so
    /// the last point's last line can follow its mark, and nothing else asks the server anything by then.
    static func compare(cases: [MeasuredCase], marks: [(point: String, offset: Int)], log: [ServeLog.Entry], start: Int, logEnd: Int,
                        warmup: Int, header: Header) -> BenchLoadResult {
        let answered = cases.map { c in c.values("status").filter { $0 == 200 }.count }
        var ends = cases.map { c in marks.last { $0.point == c.params["point"] }?.offset ?? start }
        if !ends.isEmpty { ends[ends.count - 1] = max(ends[ends.count - 1], logEnd) }
        let server = ServeLog.points(log, start: start, ends: ends, expected: answered.map { $0 + warmup }, warmup: warmup)
        var points: [Point] = []
        for (c, s) in zip(cases, server) {
            let length = s.measured.filter { $0.finish == "length" }
            points.append(Point(point: c.params["point"] ?? "?", clientSent: c.values("status").count, clientOK: c.values("ok").filter { $0 == 1 }.count,
                                serverLength: length.count, serverOther: s.measured.count - length.count,
                                clientTTFTp50Ms: p50(c.values("ttft_ms")), serverTTFTp50Ms: p50(length.map(\.ttftMs)),
                                clientTPOTp50Ms: p50(c.values("tpot_ms")), serverTPOTp50Ms: p50(length.compactMap(\.tpotMs)),
                                clientITLp50Ms: p50(c.values("itl_ms"))))
            points[points.count - 1].ttftDiff = Point.diff(points.last?.clientTTFTp50Ms, points.last?.serverTTFTp50Ms)
            points[points.count - 1].tpotDiff = Point.diff(points.last?.clientTPOTp50Ms, points.last?.serverTPOTp50Ms)
        }
        var bars: [Bar] = []
        let pct = "≤ \(Int(BenchLoadCommand.tolerance * 100)) %"
        for p in points {
            bars.append(Bar(name: "\(p.point): server lines of the answered requests", measured: "\(p.serverLength) of \(p.clientOK)",
                            bar: "= \(p.clientOK), > 0", passed: p.clientOK > 0 && p.serverLength == p.clientOK && p.serverOther == 0))
            bars.append(Bar(name: "\(p.point): TTFT p50, client against server", measured: percent(p.ttftDiff), bar: pct,
                            passed: p.ttftDiff.map { abs($0) <= BenchLoadCommand.tolerance } ?? false))
            bars.append(Bar(name: "\(p.point): TPOT p50, client against server", measured: percent(p.tpotDiff), bar: pct,
                            passed: p.tpotDiff.map { abs($0) <= BenchLoadCommand.tolerance } ?? false))
        }
        return BenchLoadResult(header: header, points: points, bars: bars)
    }

    static func percent(_ d: Double?) -> String { d.map { String(format: "%+.1f %%", $0 * 100) } ?? "—" }
    static func ms(_ v: Double?) -> String { v.map { String(format: "%.1f", $0) } ?? "—" }

    var table: String {
        var t = TextTable(["point", "n client (ok/sent)", "n server (length/other)", "TTFT p50 client ms", "server ms", "diff",
                           "TPOT p50 client ms", "server ms", "diff", "ITL p50 client ms"], rightAligned: Set(1...9))
        for p in points {
            t.add([p.point, "\(p.clientOK)/\(p.clientSent)", "\(p.serverLength)/\(p.serverOther)", Self.ms(p.clientTTFTp50Ms), Self.ms(p.serverTTFTp50Ms),
                   Self.percent(p.ttftDiff), Self.ms(p.clientTPOTp50Ms), Self.ms(p.serverTPOTp50Ms), Self.percent(p.tpotDiff), Self.ms(p.clientITLp50Ms)])
        }
        let missed = bars.filter { !$0.passed }
        var out = "headroom bench load: \(header.model) \(header.precision), \(header.threads) threads, prompt \(header.promptTokens), output \(header.outputTokens), "
            + "\(header.warmup) + \(header.requests) requests a point; client (stored run \(header.runId)) against the server's log (\(header.serverLog)), p50s measured\n"
        out += t.rendered
        out += "\nServer TTFT = queue_ms + prefill_ms; server TPOT = decode_ms / (generated_tokens − 1); bars: server lines = answered requests, |diff| \(missed.isEmpty ? "≤ 5 %: all pass" : "≤ 5 %")"
        for b in missed { out += "\nMISSED: \(b.name): \(b.measured) (bar \(b.bar))" }
        return out
    }
}
