// `headroom bench serve`: `headroom serve` measured against the engine it wraps, in one run on this machine.
// First `bench infer`'s figures in this process (batch 1, the same prompt and output lengths), then a
// `headroom serve` child on a free loopback port driven by an AsyncHTTPClient client in three phases: lone
// streams (server overhead), concurrent streams (batching), and an open-loop overload against a short queue.
// Every figure is measured; each bar is stated beside it. `headroom bench load` runs `headroom load`'s sweep against
// the same server and checks it against the server's log.
import ArgumentParser
import AsyncHTTPClient
import Foundation
import HeadroomCore
import HeadroomEngine
import HeadroomKernels
import HeadroomOpenAI
import HeadroomReport
import HeadroomRunner
import NIOConcurrencyHelpers
import NIOCore

struct BenchServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Measure `headroom serve` against the engine: overhead, batching and overload, with their bars.",
        discussion: """
            1. bench infer in this process: batch-1 decode tokens/s and prefill time of --prompt-tokens (median of \
            --repetitions). 2. A `headroom serve` child (same model, precision, threads) on a free loopback port; its \
            log goes to .headroom/bench/serve-server.log. 3. Lone: --lone-requests streamed requests one after \
            another: TTFT and decode tokens/s at the client. 4. Batching: --streams concurrent streams, started \
            evenly over one lone request's duration, three requests each after a think time of up to a quarter of a \
            lone request: output tokens/s of all streams while every one is active, and the TTFT p95 of the \
            second and third requests (they arrive while the batch runs). 5. Overload: --overload-requests short \
            requests (32-token prompts, 16 tokens out) fired open-loop at 10 × the rate the batching phase sustained \
            (its output tokens/s ÷ 16, an upper bound since it ignores prompts) against --max-queue 64: every one \
            must be answered 200 or 429, the server's peak memory must stay within weights + KV cache + 10 %, and \
            no KV block may stay in use.

            Bars: lone decode ≥ 90 % of bench infer's; lone TTFT ≤ 1.1 × bench infer's prefill + 10 ms; batched \
            aggregate ≥ 4 × one stream's output tokens/s; batched TTFT p95 < 3 × lone TTFT; overload as above. \
            Exits 1 when a bar is missed.
            """)

    @Option(name: .long, help: "A catalog model with synthetic weights.")
    var model = "small"
    @Option(name: .long, help: "Weight format.")
    var precision = "q4_0"
    @Option(name: .long, help: "Threads of the server and of bench infer (default: all cores).")
    var threads: Int?
    @Option(name: .customLong("prompt-tokens"), help: "Prompt length of the lone and batched requests.")
    var promptTokens = 128
    @Option(name: .customLong("generate-tokens"), help: "Output tokens of the lone and batched requests.")
    var generateTokens = 128
    @Option(name: .long, help: "Concurrent streams of the batching phase (also the server's --max-num-seqs).")
    var streams = 16
    @Option(name: .customLong("lone-requests"), help: "Lone requests, one after another.")
    var loneRequests = 3
    @Option(name: .customLong("overload-requests"), help: "Requests of the overload phase.")
    var overloadRequests = 1000
    @Option(name: .long, help: "bench infer's timed repetitions (after one warm-up).")
    var repetitions = 2
    @OptionGroup var catalog: CatalogOptions
    @Flag(name: .long, help: "Print JSON on standard output instead of a table.")
    var json = false

    func validate() throws {
        _ = try enginePrecision(precision)
        _ = try threadCount(threads)
        if !(1...4096).contains(promptTokens) { throw ValidationError("--prompt-tokens: expected 1 to 4096") }
        if !(2...4096).contains(generateTokens) { throw ValidationError("--generate-tokens: expected 2 to 4096") }
        if !(2...256).contains(streams) { throw ValidationError("--streams: expected 2 to 256") }
        if !(1...100).contains(loneRequests) { throw ValidationError("--lone-requests: expected 1 to 100") }
        if !(0...100_000).contains(overloadRequests) { throw ValidationError("--overload-requests: expected 0 to 100000") }
        if !(1...100).contains(repetitions) { throw ValidationError("--repetitions: expected 1 to 100") }
    }

    func run() throws {
        try reportingErrors {
            let threads = try threadCount(self.threads)
            let shape = try catalog.load().model(model)
            let type = try enginePrecision(precision)
            guard promptTokens + generateTokens + 1 <= shape.context else {
                throw InputError(file: "--prompt-tokens", path: "", message: "prompt \(promptTokens) + generate \(generateTokens) exceed the context of \(shape.id) (\(shape.context))")
            }
            Interrupt.install()
            // 1. The engine alone.
            warn("bench infer: \(shape.id) \(type), \(threads) threads, prompt \(promptTokens), generate \(generateTokens)")
            var spec = InferenceSpec(model: shape, precision: type, threads: threads, promptTokens: promptTokens,
                                     generateTokens: generateTokens, batch: 1, repetitions: repetitions, warmup: 1)
            var engine: InferenceMeasurement
            var weightsBytes: Int
            var engineBatchedDecode = 0.0
            do {
                let weights = try InferenceBench.weights(spec)
                weightsBytes = weights.bytes
                engine = try InferenceBench.measure(spec, weights: weights) { try checkInterrupt() }
                // The engine's decode with every stream in one batch (32 steps): what the batched phase decodes at, prompts aside.
                var batched = spec
                batched.batch = streams; batched.generateTokens = min(32, generateTokens); batched.repetitions = 1
                warn("bench infer: batch \(streams), generate \(batched.generateTokens)")
                let b = try InferenceBench.measure(batched, weights: weights) { try checkInterrupt() }
                engineBatchedDecode = ServeBench.median(b.decodeTokensPerS)
            }
            let kvTokens = streams * (promptTokens + generateTokens) * 5 / 4
            let kvBytes = PagedKVCache.bytesPerBlock(spec.config, blockSize: PagedKVCache.defaultBlockSize)
                * ((kvTokens + PagedKVCache.defaultBlockSize - 1) / PagedKVCache.defaultBlockSize)
            let plan = ServeBenchPlan(model: shape.id, precision: type.description, threads: threads, promptTokens: promptTokens,
                                      generateTokens: generateTokens, streams: streams, loneRequests: loneRequests,
                                      overloadRequests: overloadRequests, kvTokens: kvTokens, vocab: spec.config.vocab)
            let result = try ServeBench.run(plan, engine: engine, engineBatchedDecode: engineBatchedDecode, weightsBytes: weightsBytes, kvBytes: kvBytes)
            if json { try printJSON(result) } else { print(result.table) }
            if result.bars.contains(where: { !$0.passed }) { throw ExitCode(Exit.failure) }
        }
    }
}

struct ServeBenchPlan: Sendable {
    var model: String, precision: String, threads: Int, promptTokens: Int, generateTokens: Int, streams: Int
    var loneRequests: Int, overloadRequests: Int, kvTokens: Int, vocab: Int
    let maxQueue = 64
    let overloadPrompt = 32, overloadOutput = 16
    /// Requests each batched stream sends.
    static let batchedRounds = 3
}

/// `headroom bench serve --json`.
struct ServeBenchResult: Codable {
    struct Bar: Codable {
        var name: String; var measured: Double; var bar: String; var passed: Bool
        /// How `measured` reads: "ms", "ratio", "fraction" or "count".
        var unit: String
    }
    var kind = "measured"
    var model: String, precision: String, threads: Int, promptTokens: Int, generateTokens: Int, streams: Int
    var client = "headroom bench serve (AsyncHTTPClient, streaming, loopback)"
    var engineDecodeTokensPerS: Double
    var enginePrefillMs: Double
    /// bench infer's decode tokens/s with every stream in one batch.
    var engineBatchedDecodeTokensPerS = 0.0
    var loneTTFTMs: [Double] = []
    var loneDecodeTokensPerS: [Double] = []
    var loneOutputTokensPerS: [Double] = []
    var batchedAggregateTokensPerS = 0.0
    /// Output tokens/s of all streams together while every stream was active.
    var batchedSteadyWindowS = 0.0
    /// TTFT of every batched request after a stream's first (each arrives while the batch runs).
    var batchedLaterTTFTMs: [Double] = []
    var overloadRate = 0.0
    var overloadOK = 0, overloadRefused = 0, overloadOther = 0
    var overloadWallS = 0.0
    var serverPeakBytes: Int?
    var serverPeakSince = ""
    /// Of the server's resident memory, its code and libraries (RssFile).
    var serverFileBytes: Int?
    var weightsBytes = 0, kvCacheBytes = 0
    var kvBlocksUsedAfter: Double?
    var bars: [Bar] = []

    var table: String {
        var t = TextTable(["figure (measured)", "value", "bar", ""], rightAligned: [1])
        t.add(["bench infer decode, batch 1", String(format: "%.1f tok/s", engineDecodeTokensPerS), "", ""])
        t.add(["bench infer prefill \(promptTokens) tokens", String(format: "%.0f ms", enginePrefillMs), "", ""])
        t.add(["bench infer decode, batch \(streams)", String(format: "%.1f tok/s", engineBatchedDecodeTokensPerS), "", ""])
        for b in bars { t.add([b.name, Self.format(b), b.bar, b.passed ? "pass" : "MISSED"]) }
        t.add(["batched aggregate output", String(format: "%.1f tok/s", batchedAggregateTokensPerS), "", ""])
        var out = "headroom bench serve: \(model) \(precision), \(threads) threads, prompt \(promptTokens), output \(generateTokens), \(streams) streams (client: \(client))\n"
        out += t.rendered
        out += String(format: "\noverload: %d requests at %.1f/s: %d answered 200, %d answered 429, %d other, in %.1f s", overloadOK + overloadRefused + overloadOther,
                      overloadRate, overloadOK, overloadRefused, overloadOther, overloadWallS)
        if let p = serverPeakBytes {
            out += String(format: "\nserver peak RSS %.0f MiB (%@) against weights %.0f MiB + KV cache %.0f MiB; code and libraries %.0f MiB of it", Double(p) / 1048576, serverPeakSince,
                          Double(weightsBytes) / 1048576, Double(kvCacheBytes) / 1048576, Double(serverFileBytes ?? 0) / 1048576)
        }
        return out
    }

    static func format(_ b: Bar) -> String {
        switch b.unit {
        case "ms": return String(format: "%.0f ms", b.measured)
        case "ratio": return String(format: "%.2f ×", b.measured)
        case "fraction": return String(format: "%.0f %%", b.measured * 100)
        default: return String(format: "%.0f", b.measured)
        }
    }
}

enum ServeBench {
    /// Core's order statistics, as every other figure is reported (NaN for no samples: a bar then fails).
    static func median(_ v: [Double]) -> Double { Summary(v)?.median ?? .nan }
    static func p95(_ v: [Double]) -> Double { Summary(v)?.p95 ?? .nan }

    static func run(_ plan: ServeBenchPlan, engine: InferenceMeasurement, engineBatchedDecode: Double, weightsBytes: Int, kvBytes: Int) throws -> ServeBenchResult {
        var result = ServeBenchResult(model: plan.model, precision: plan.precision, threads: plan.threads, promptTokens: plan.promptTokens,
                                      generateTokens: plan.generateTokens, streams: plan.streams,
                                      engineDecodeTokensPerS: median(engine.decodeTokensPerS),
                                      enginePrefillMs: median(engine.prefillTokensPerS.map { Double(plan.promptTokens) / $0 * 1e3 }))
        result.engineBatchedDecodeTokensPerS = engineBatchedDecode
        result.weightsBytes = weightsBytes
        result.kvCacheBytes = kvBytes
        let server = try ServerProcess.start(arguments: ["--max-num-seqs", "\(plan.streams)", "--max-batched-tokens", "512",
                                                         "--kv-memory", "\(plan.kvTokens)", "--max-queue", "\(plan.maxQueue)"],
                                             model: plan.model, precision: plan.precision, threads: plan.threads)
        defer { server.stop() }
        warn("server pid \(server.pid) on port \(server.port); log: \(server.logPath)")
        let box = NIOLockedValueBox(result)
        try ServeCommand.runBlocking {
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(
                connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 4096)))
            do {
                try await measure(plan, server: server, client: client, result: box)
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
        result = box.withLockedValue { $0 }
        judge(&result, plan: plan)
        return result
    }

    /// One streamed request's client-side timings.
    struct StreamTiming {
        var sent: Double; var first: Double?; var last: Double?; var tokens: Int; var status: Int
        /// When each token's chunk arrived.
        var times: [Double] = []
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    static func prompt(_ n: Int, vocab: Int, seed: UInt64) -> [Int] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in Int(rng.next() % UInt64(vocab)) }
    }

    static func request(_ base: String, prompt: [Int], maxTokens: Int, stream: Bool) -> HTTPClientRequest {
        var r = HTTPClientRequest(url: base + "/v1/completions")
        r.method = .POST
        r.headers.add(name: "content-type", value: "application/json")
        let body = CompletionRequest(endpoint: .completions, prompt: .tokens(prompt.map { Int32($0) }), maxTokens: maxTokens,
                                     temperature: 0, stream: stream, ignoreEOS: true).jsonBody()
        r.body = .bytes(ByteBuffer(data: body))
        return r
    }

    /// Sends one streamed request; a token is a chunk with text.
    static func stream(_ client: HTTPClient, _ base: String, prompt: [Int], maxTokens: Int) async throws -> StreamTiming {
        var t = StreamTiming(sent: now(), first: nil, last: nil, tokens: 0, status: 0)
        t.times.reserveCapacity(maxTokens)
        let response = try await client.execute(request(base, prompt: prompt, maxTokens: maxTokens, stream: true), timeout: .seconds(3600))
        t.status = Int(response.status.code)
        var parser = ServerSentEventParser()
        for try await buffer in response.body {
            for event in try parser.feed(Array(buffer: buffer)) where event != ServerSentEvents.donePayload {
                guard let chunk = try? JSONDecoder().decode(CompletionResponse.self, from: Data(event.utf8)),
                      let text = chunk.choices.first?.text, !text.isEmpty else { continue }
                let at = now()
                if t.first == nil { t.first = at }
                t.last = at
                t.tokens += 1
                t.times.append(at)
            }
        }
        return t
    }

    static func measure(_ plan: ServeBenchPlan, server: ServerProcess, client: HTTPClient, result: NIOLockedValueBox<ServeBenchResult>) async throws {
        let base = "http://127.0.0.1:\(server.port)"
        try await waitReady(client, base, logPath: server.logPath)
        // Lone requests.
        warn("lone: \(plan.loneRequests) streamed requests, one after another")
        var loneDurations: [Double] = []
        for i in 0..<plan.loneRequests {
            try checkInterrupt()
            let t = try await stream(client, base, prompt: prompt(plan.promptTokens, vocab: plan.vocab, seed: UInt64(i + 1)), maxTokens: plan.generateTokens)
            guard t.status == 200, let first = t.first, let last = t.last, t.tokens == plan.generateTokens else {
                throw RunFailure("a lone request answered \(t.status) with \(t.tokens) tokens")
            }
            loneDurations.append(last - t.sent)
            result.withLockedValue {
                $0.loneTTFTMs.append((first - t.sent) * 1e3)
                $0.loneDecodeTokensPerS.append(Double(t.tokens - 1) / (last - first))
                $0.loneOutputTokensPerS.append(Double(t.tokens) / (last - t.sent))
            }
        }
        // Batching: closed loop, each stream a client that sends its next request after a think time drawn
        // from [0, a quarter of a lone request) — streams of equal length otherwise finish together and come
        // back in clumps; streams start evenly over one lone request's duration.
        let lone = median(loneDurations)
        let spacing = lone / Double(plan.streams)
        warn(String(format: "batching: %d streams, started %.2f s apart, %d requests each, think time up to %.1f s", plan.streams, spacing,
                    ServeBenchPlan.batchedRounds, lone / 4))
        let streams = try await withThrowingTaskGroup(of: [StreamTiming].self) { group in
            for s in 0..<plan.streams {
                group.addTask {
                    var rng = SplitMix64(seed: UInt64(77 + s))
                    try await Task.sleep(for: .milliseconds(Int64(spacing * Double(s) * 1000)))
                    var out: [StreamTiming] = []
                    for r in 0..<ServeBenchPlan.batchedRounds {
                        if r > 0 {
                            let think = Double(rng.next() % 1_000_000) / 1_000_000 * lone / 4
                            try await Task.sleep(for: .milliseconds(Int64(think * 1000)))
                        }
                        out.append(try await stream(client, base, prompt: prompt(plan.promptTokens, vocab: plan.vocab, seed: UInt64(1000 + s * 8 + r)),
                                                    maxTokens: plan.generateTokens))
                    }
                    return out
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        guard streams.flatMap({ $0 }).allSatisfy({ $0.status == 200 && $0.tokens == plan.generateTokens }) else {
            throw RunFailure("a batched request did not stream \(plan.generateTokens) tokens")
        }
        // Steady state: from the moment every stream has its first token to the moment the first stream is done.
        let from = streams.compactMap { $0.first?.first }.max() ?? 0
        let to = streams.compactMap { $0.last?.last }.min() ?? 0
        let times = streams.flatMap { $0.flatMap(\.times) }
        let aggregate = to > from ? Double(times.filter { $0 >= from && $0 <= to }.count) / (to - from)
                                  : Double(times.count) / ((times.max() ?? 1) - (times.min() ?? 0))
        result.withLockedValue {
            $0.batchedAggregateTokensPerS = aggregate
            $0.batchedSteadyWindowS = max(0, to - from)
            $0.batchedLaterTTFTMs = streams.flatMap { $0.dropFirst().compactMap { r in r.first.map { ($0 - r.sent) * 1e3 } } }
        }
        guard plan.overloadRequests > 0 else { return }
        // Overload: open loop at 10 × the sustained request rate of short requests.
        try await waitIdle(client, base)
        let rate = 10 * aggregate / Double(plan.overloadOutput)
        warn(String(format: "overload: %d requests at %.1f/s (10 × %.2f/s sustained), max queue %d", plan.overloadRequests, rate, rate / 10, plan.maxQueue))
        let peakSince = server.resetPeak() ? "during the overload phase" : "since the server started"
        let t0 = now()
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for k in 0..<plan.overloadRequests {
                let at = t0 + Double(k) / rate
                let delay = at - now()
                if delay > 0 { try await Task.sleep(for: .milliseconds(Int64(delay * 1000))) }
                let p = prompt(plan.overloadPrompt, vocab: plan.vocab, seed: UInt64(5000 + k))
                group.addTask {
                    do {
                        let response = try await client.execute(request(base, prompt: p, maxTokens: plan.overloadOutput, stream: false), timeout: .seconds(600))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        return Int(response.status.code)
                    } catch {
                        return -1
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let wall = now() - t0
        try await waitIdle(client, base)
        let used = try await metric(client, base, "headroom_kv_blocks_used")
        let peak = server.peakBytes(), files = server.fileBytes()
        result.withLockedValue {
            $0.overloadRate = rate
            $0.overloadOK = statuses.filter { $0 == 200 }.count
            $0.overloadRefused = statuses.filter { $0 == 429 }.count
            $0.overloadOther = statuses.count - $0.overloadOK - $0.overloadRefused
            $0.overloadWallS = wall
            $0.kvBlocksUsedAfter = used
            $0.serverPeakBytes = peak
            $0.serverPeakSince = peakSince
            $0.serverFileBytes = files
        }
    }

    /// Until /health answers 200 (weights warmed), within 2 minutes.
    static func waitReady(_ client: HTTPClient, _ base: String, logPath: String) async throws {
        var ready = false
        for _ in 0..<1200 where !ready {
            if let r = try? await client.execute(HTTPClientRequest(url: base + "/health"), timeout: .seconds(5)) {
                ready = r.status == .ok
                _ = try? await r.body.collect(upTo: 4096)
            }
            if !ready { try await Task.sleep(for: .milliseconds(100)) }
        }
        guard ready else { throw RunFailure("the server did not become ready within 2 minutes; see \(logPath)") }
    }

    static func metric(_ client: HTTPClient, _ base: String, _ name: String) async throws -> Double? {
        let response = try await client.execute(HTTPClientRequest(url: base + "/metrics"), timeout: .seconds(30))
        let text = String(buffer: try await response.body.collect(upTo: 4 << 20))
        return text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { $0.split(separator: " ").last.flatMap { Double($0) } }
    }

    /// Until nothing runs or waits (bounded: 10 minutes).
    static func waitIdle(_ client: HTTPClient, _ base: String) async throws {
        for _ in 0..<6000 {
            let running = try await metric(client, base, "headroom_requests_running") ?? 1
            let waiting = try await metric(client, base, "headroom_requests_waiting") ?? 1
            if running == 0 && waiting == 0 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw RunFailure("the server did not become idle within 10 minutes")
    }

    static func judge(_ r: inout ServeBenchResult, plan: ServeBenchPlan) {
        let loneDecode = median(r.loneDecodeTokensPerS), loneTTFT = median(r.loneTTFTMs)
        r.bars.append(.init(name: "lone decode tok/s, of bench infer", measured: loneDecode / r.engineDecodeTokensPerS, bar: "≥ 90 %",
                            passed: loneDecode >= 0.9 * r.engineDecodeTokensPerS, unit: "fraction"))
        let ttftBar = 1.1 * r.enginePrefillMs + 10
        r.bars.append(.init(name: "lone TTFT", measured: loneTTFT, bar: String(format: "≤ %.0f ms", ttftBar), passed: loneTTFT <= ttftBar, unit: "ms"))
        let one = median(r.loneOutputTokensPerS)
        r.bars.append(.init(name: "\(plan.streams) streams aggregate × one stream", measured: r.batchedAggregateTokensPerS / one, bar: "≥ 4 ×",
                            passed: r.batchedAggregateTokensPerS >= 4 * one, unit: "ratio"))
        let p95TTFT = p95(r.batchedLaterTTFTMs)
        r.bars.append(.init(name: "batched TTFT p95", measured: p95TTFT, bar: String(format: "< %.0f ms", 3 * loneTTFT), passed: p95TTFT < 3 * loneTTFT, unit: "ms"))
        guard plan.overloadRequests > 0 else { return }
        r.bars.append(.init(name: "overload answered 200 or 429", measured: Double(r.overloadOK + r.overloadRefused),
                            bar: "= \(plan.overloadRequests)", passed: r.overloadOK + r.overloadRefused == plan.overloadRequests, unit: "count"))
        let limit = Double(r.weightsBytes + r.kvCacheBytes) * 1.1
        r.bars.append(.init(name: "server peak memory, of weights + KV", measured: Double(r.serverPeakBytes ?? 0) / Double(r.weightsBytes + r.kvCacheBytes),
                            bar: "≤ 110 %", passed: r.serverPeakBytes.map { Double($0) <= limit } ?? false, unit: "fraction"))
        r.bars.append(.init(name: "KV blocks in use afterwards", measured: r.kvBlocksUsedAfter ?? .nan, bar: "= 0", passed: r.kvBlocksUsedAfter == 0, unit: "count"))
    }
}

struct RunFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// The `headroom serve` child: this same binary, on port 0, its log in a file.
final class ServerProcess: @unchecked Sendable {
    static let logPath = ".headroom/bench/serve-server.log"
    let process: Process
    let port: Int
    let logPath: String
    var pid: Int32 { process.processIdentifier }

    private init(process: Process, port: Int, logPath: String) { self.process = process; self.port = port; self.logPath = logPath }

    /// `headroom serve --model … --precision … --threads … --port 0` and `arguments`, its standard error in
    /// `logPath` (emptied first).
    static func start(arguments: [String], model: String, precision: String, threads: Int, logPath: String = ServerProcess.logPath) throws -> ServerProcess {
        try FileManager.default.createDirectory(atPath: (logPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        p.arguments = ["serve", "--model", model, "--precision", precision, "--threads", "\(threads)", "--port", "0"] + arguments
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle(forWritingAtPath: logPath)
        try p.run()
        // The first line on standard output names the port.
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let d = out.fileHandleForReading.availableData
            if d.isEmpty { p.terminate(); throw RunFailure("the server exited before listening; see \(logPath)") }
            line += d
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let port = text.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) else {
            p.terminate(); throw RunFailure("the server printed no port: \(text)")
        }
        return ServerProcess(process: p, port: port, logPath: logPath)
    }

    /// `start`, then waits until the server answers (`ServeBench.waitReady`); says where it listens. The
    /// child is stopped again when it never becomes ready.
    static func startReady(arguments: [String], model: String, precision: String, threads: Int, logPath: String,
                           label: String) throws -> (ServerProcess, url: String) {
        let server = try start(arguments: arguments, model: model, precision: precision, threads: threads, logPath: logPath)
        let url = "http://127.0.0.1:\(server.port)"
        warn("\(label)server pid \(server.pid) on \(url); log: \(server.logPath)")
        do {
            try ServeCommand.runBlocking {
                let client = HTTPClient(eventLoopGroupProvider: .singleton)
                do { try await ServeBench.waitReady(client, url, logPath: logPath) } catch { try? await client.shutdown(); throw error }
                try await client.shutdown()
            }
        } catch {
            server.stop()
            throw error
        }
        return (server, url)
    }

    /// Clears the child's peak RSS (Linux `clear_refs` 5); false where not allowed.
    func resetPeak() -> Bool {
        guard let h = FileHandle(forWritingAtPath: "/proc/\(pid)/clear_refs") else { return false }
        defer { try? h.close() }
        return (try? h.write(contentsOf: Data("5".utf8))) != nil
    }

    /// The child's VmHWM.
    func peakBytes() -> Int? { status("VmHWM:") }
    /// The child's resident code and libraries (RssFile), now.
    func fileBytes() -> Int? { status("RssFile:") }

    private func status(_ field: String) -> Int? {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix(field) }),
              let kb = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return nil }
        return kb * 1024
    }

    /// SIGTERM, as an operator would; then waits.
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}
