// `headroom serve`: the engine behind an OpenAI-compatible HTTP server with continuous batching.
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomEngine
import HeadroomKernels
import HeadroomRunner
import HeadroomServe
import Logging
import NIOConcurrencyHelpers

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a model over OpenAI's completions API, with continuous batching on this machine's CPU.",
        discussion: """
            POST /v1/completions and /v1/chat/completions (stream: true for server-sent events), GET /v1/models, \
            /health (200 once the weights are loaded and warmed) and /metrics (Prometheus text). A catalog model \
            (tiny, small) runs synthetic weights and takes prompts as token ids; a GGUF file with a tokenizer takes \
            text, and chat when its chat template is one Headroom knows.

            Each step the scheduler (vLLM's policy) runs the decodes of every running request and as much prompt \
            as --max-batched-tokens leaves; requests wait in a queue of --max-queue (then 429 with Retry-After) \
            until the KV pool (--kv-memory) has blocks for them. One log line per request (standard error) gives \
            its queue wait, prefill and decode times as the server measured them.

            Binds 127.0.0.1 unless --host says otherwise. SIGTERM or SIGINT: new requests get 503, requests in \
            flight finish or are cancelled after --shutdown-grace, and the command exits 0.
            """)

    @Option(name: .long, help: ArgumentHelp("A catalog model (tiny, small) with synthetic weights, or a llama GGUF file.", valueName: "model"))
    var model = "tiny"

    @Option(name: .long, help: "Weight format of a catalog model's synthetic weights (default q4_0); a file serves its own.")
    var precision: String?

    @Option(name: .long, help: "Threads for the kernels and OpenBLAS (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: "Address to bind. Anything but loopback exposes the server to the network.")
    var host = "127.0.0.1"

    @Option(name: .long, help: "Port to bind; 0 picks a free one (the log says which).")
    var port = 8080

    @Option(name: .customLong("api-key-env"), help: ArgumentHelp("Require `Authorization: Bearer KEY` on /v1/*, KEY read from this environment variable.", valueName: "VAR"))
    var apiKeyEnv: String?

    @Option(name: .customLong("max-num-seqs"), help: "Requests in the running batch at most.")
    var maxNumSeqs = 32

    @Option(name: .customLong("max-batched-tokens"), help: "Tokens one step computes at most (decodes and prompt chunks).")
    var maxBatchedTokens = 512

    @Flag(name: .customLong("chunked-prefill"), inversion: .prefixedNo, help: "Split long prompts across steps so running streams keep decoding.")
    var chunkedPrefill = true

    @Option(name: .customLong("kv-memory"), help: ArgumentHelp("The KV cache: bytes (512MiB, 2GiB) or a token count (65536). Default: --max-num-seqs × the context, at most 2 GiB and a quarter of memory (allocated up front).", valueName: "size"))
    var kvMemory: String?

    @Option(name: .customLong("max-queue"), help: "Requests waiting for admission at most; more get 429.")
    var maxQueue = 256

    @Option(name: .customLong("request-timeout"), help: ArgumentHelp("Cancel a request running longer (300s, 5m).", valueName: "duration"))
    var requestTimeout = "300s"

    @Option(name: .customLong("idle-timeout"), help: ArgumentHelp("Close a connection idle this long between requests, or this slow to send one.", valueName: "duration"))
    var idleTimeout = "60s"

    @Option(name: .customLong("shutdown-grace"), help: ArgumentHelp("After SIGTERM/SIGINT, how long requests in flight may finish.", valueName: "duration"))
    var shutdownGrace = "30s"

    @Option(name: .customLong("served-model-name"), help: "The id clients send as `model` (default: the catalog id or the file's name).")
    var servedModelName: String?

    @Option(name: .customLong("step-log"), help: ArgumentHelp("Write one CSV row per model step to this file (its start, duration, shape and the requests it leaves held; docs/serving.md).", valueName: "file"))
    var stepLog: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    @OptionGroup var catalog: CatalogOptions

    func validate() throws {
        if let precision { _ = try enginePrecision(precision) }
        _ = try threadCount(threads)
        if !(0...65535).contains(port) { throw ValidationError("--port: expected 0 to 65535") }
        if !(1...4096).contains(maxNumSeqs) { throw ValidationError("--max-num-seqs: expected 1 to 4096") }
        if !(1...1_048_576).contains(maxBatchedTokens) { throw ValidationError("--max-batched-tokens: expected 1 to 1048576") }
        if !(1...1_000_000).contains(maxQueue) { throw ValidationError("--max-queue: expected 1 to 1000000") }
        _ = try Self.duration(requestTimeout, option: "--request-timeout")
        _ = try Self.duration(shutdownGrace, option: "--shutdown-grace")
        _ = try Self.duration(idleTimeout, option: "--idle-timeout")
        if let kvMemory { _ = try Self.kvBudget(kvMemory) }
        if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("--log-level: expected trace, debug, info, notice, warning, error or critical") }
        if let apiKeyEnv {
            guard let key = ProcessInfo.processInfo.environment[apiKeyEnv], !key.isEmpty else {
                throw ValidationError("--api-key-env: the environment variable \(apiKeyEnv) is not set or empty")
            }
            _ = key
        }
        if let servedModelName, !YAMLField.isIdentifier(servedModelName) {
            throw ValidationError("--served-model-name: expected letters, digits, '.', '_' or '-' (at most 64), starting with a letter or digit")
        }
    }

    func run() throws {
        try reportingErrors {
            let threads = try threadCount(self.threads)
            // The step log first: a path that cannot be written fails before the weights are built. A server that
            // never listens (bad weights, an address it cannot bind) leaves no header-only log behind.
            let stepLogWriter = try stepLog.map { path in
                do { return try StepLogWriter(path: path) } catch {
                    throw InputError(file: "--step-log", path: "", message: "cannot write \(path): check that its folder exists and is writable")
                }
            }
            let listened = NIOLockedValueBox(false)
            defer {
                if let stepLog, !listened.withLockedValue({ $0 }) { try? FileManager.default.removeItem(atPath: stepLog) }
            }
            var logger = Logger(label: "headroom.serve")
            logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info

            // The weights and the model's description; a bad file fails here, before anything listens.
            let weights: ModelWeights
            var served: ServedModel
            let created = Int(Date().timeIntervalSince1970)
            if GGUFModelSource.isFile(model) {
                let file = try GGUFModelSource.describe(model)
                if let asked = try precision.map({ try enginePrecision($0) }), asked != file.precision {
                    throw InputError(file: model, path: "", message: "--precision \(asked) given, but the file's matrices are \(file.precision)")
                }
                weights = try GGUFModelSource.weights(model)
                served = ServedModel(id: servedModelName ?? Self.fileModelID(model), vocabularySize: weights.config.vocab,
                                     context: weights.config.context, created: created)
                try Self.attachTokenizer(path: model, to: &served, logger: logger)
            } else {
                let shape = try catalog.load().model(model)
                let type = try enginePrecision(precision ?? "q4_0")
                let config = ModelConfig(shape)
                do { try config.validate() } catch let e as EngineError {
                    throw InputError(file: "catalog", path: "models.\(shape.id)", message: e.description)
                }
                logger.info("building synthetic weights", metadata: ["model": "\(shape.id)", "precision": "\(type)"])
                weights = try ModelWeights.synthetic(config, type: type, threads: threads)
                served = ServedModel(id: servedModelName ?? shape.id, vocabularySize: config.vocab, context: config.context, created: created)
            }

            let budget = try kvMemory.map(Self.kvBudget) ?? Self.defaultBudget(weights.config, maxNumSeqs: maxNumSeqs)
            let engine = try ServingEngine(weights: weights, configuration: .init(
                kvCache: budget, maxNumSeqs: maxNumSeqs, maxBatchedTokens: maxBatchedTokens, chunkedPrefill: chunkedPrefill,
                threads: threads))
            logger.info("OpenBLAS", metadata: ["core": "\(BLASThreads.coreName)",
                                               "thread_timeout": "\(BLASThreads.threadTimeout.map { "2^\($0) cycles" } ?? "default (2^28 cycles)")"])
            logger.info("KV cache", metadata: [
                "blocks": "\(engine.totalBlocks)", "tokens": "\(engine.session.cache.tokenCapacity)",
                "MiB": "\(engine.session.cache.bytes >> 20)",
            ])

            var options = ServeOptions()
            options.host = host
            options.port = port
            options.apiKey = apiKeyEnv.flatMap { ProcessInfo.processInfo.environment[$0] }
            options.maxQueue = maxQueue
            options.requestTimeout = try Self.duration(requestTimeout, option: "--request-timeout")
            options.shutdownGrace = try Self.duration(shutdownGrace, option: "--shutdown-grace")
            options.idleTimeout = try Self.duration(idleTimeout, option: "--idle-timeout")
            options.stepLog = stepLogWriter
            let server = ServeServer(engine: engine, model: served, options: options, logger: logger)
            let host = self.host, port = options.port
            try Self.runBlocking {
                do {
                    try await server.run { boundHost, boundPort in
                        listened.withLockedValue { $0 = true }
                        // The address on standard output too, for scripts that start the server on port 0.
                        print("headroom serve: listening on http://\(boundHost.contains(":") ? "[\(boundHost)]" : boundHost):\(boundPort)")
                        fflush(stdout)
                    }
                } catch {
                    throw InputError(file: "--host", path: "", message: "cannot serve on \(host) port \(port): \(error)")
                }
            }
        }
    }

    /// Runs `body` on Swift's concurrency pool and waits for it on this thread; returns its result or rethrows
    /// its error. Interruption is unchanged by the hop: the signal handler sets `Interrupt`'s flag, which the
    /// task's workloads check.
    static func runBlocking<T>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let result = NIOLockedValueBox<Result<T, Error>?>(nil)
        Task.detached {
            let r: Result<T, Error>
            do { r = .success(try await body()) } catch { r = .failure(error) }
            result.withLockedValue { $0 = r }
            done.signal()
        }
        done.wait()
        return try result.withLockedValue { $0 }!.get()
    }

    /// The file's tokenizer and chat template, when it has them (a placeholder vocabulary counts as none).
    static func attachTokenizer(path: String, to served: inout ServedModel, logger: Logger) throws {
        let tokenizer: Tokenizer
        do { tokenizer = try Tokenizer.load(path: path) } catch {
            logger.warning("the file has no usable tokenizer: prompts must be token ids", metadata: ["reason": "\(error)"])
            return
        }
        if tokenizer.vocabularySize > GGUFLlamaVocabulary.minimumSize,
           tokenizer.text(of: Int32(GGUFLlamaVocabulary.minimumSize)) == "<tok_\(GGUFLlamaVocabulary.minimumSize)>" {
            logger.info("the file's vocabulary is Headroom's placeholder: prompts must be token ids")
            return
        }
        served.tokenizer = tokenizer
        do {
            served.chatTemplate = try ChatTemplate.detect(from: try GGUFFile(path: path).metadata.string("tokenizer.chat_template"))
        } catch let e as ChatTemplateError {
            served.chatTemplateError = e.description
        }
    }

    /// The file's name without folder or `.gguf`, made an id.
    static func fileModelID(_ path: String) -> String {
        var name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        name = String(name.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-" ? $0 : "-" }.prefix(64))
        return name.isEmpty ? "model" : name
    }

    static func duration(_ text: String, option: String) throws -> Duration {
        do { return try ServeArguments.duration(text) } catch let e as ServeArguments.Invalid { throw ValidationError("\(option): \(e.message)") }
    }

    static func kvBudget(_ text: String) throws -> KVCacheBudget {
        do { return try ServeArguments.kvBudget(text) } catch let e as ServeArguments.Invalid { throw ValidationError("--kv-memory: \(e.message)") }
    }

    /// Room for --max-num-seqs full contexts, at most 2 GiB (vLLM's CPU backend reserves a few GiB by default)
    /// and at most a quarter of physical memory: the pool is allocated and zeroed up front.
    static func defaultBudget(_ config: ModelConfig, maxNumSeqs: Int) -> KVCacheBudget {
        let tokens = maxNumSeqs * config.context
        let perToken = PagedKVCache.bytesPerBlock(config, blockSize: PagedKVCache.defaultBlockSize) / PagedKVCache.defaultBlockSize
        let cap = min(2 << 30, Int(ProcessInfo.processInfo.physicalMemory / 4))
        return tokens * perToken <= cap ? .tokens(tokens) : .bytes(cap)
    }
}
