// `headroom serve` assembled: the Hummingbird application (routes in Routes.swift), the engine's thread as a
// service, and the shutdown order. Services stop in reverse order of start, so on SIGTERM/SIGINT the engine
// drains first — new requests get 503, held ones finish or, after the grace period, are cancelled — and
// then the HTTP server stops accepting and closes once the last response is written.
import Foundation
import HeadroomEngine
import HeadroomOpenAI
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

public struct ServeOptions: Sendable {
    /// Address to bind: loopback unless asked otherwise.
    public var host = "127.0.0.1"
    /// 0 binds any free port (`onListening` says which).
    public var port = 8080
    /// Required as `Authorization: Bearer KEY` on /v1/* when set.
    public var apiKey: String?
    /// Requests waiting for admission beyond which new ones get 429.
    public var maxQueue = 256
    /// A request running longer is cancelled (its stream ends with an error event; 504 when not streaming).
    public var requestTimeout: Duration = .seconds(300)
    /// After SIGTERM/SIGINT, how long held requests may go on before they are cancelled.
    public var shutdownGrace: Duration = .seconds(30)
    /// A connection that sends nothing for this long while no request of it is being answered — idle between
    /// requests, or sending its request too slowly — is closed (a response in progress is never cut).
    public var idleTimeout: Duration = .seconds(60)
    /// `Retry-After` of a 429, seconds.
    public var retryAfterSeconds = 1
    public var limits = RequestLimits()
    /// Stop on SIGTERM/SIGINT (the command); tests stop the server with `shutdown()`.
    public var handleSignals = true
    /// Where each model step is logged (`--step-log`), if anywhere.
    public var stepLog: StepLogWriter?

    public init() {}
}

public final class ServeServer: @unchecked Sendable {
    public let loop: EngineLoop
    public let model: ServedModel
    public let options: ServeOptions
    public let metrics: ServeMetrics
    let logger: Logger
    private let lock = NSLock()
    private var group: ServiceGroup?
    private var shutdownRequested = false

    public init(engine: ServingEngine, model: ServedModel, options: ServeOptions, logger: Logger) {
        self.model = model; self.options = options; self.logger = logger
        metrics = ServeMetrics()
        loop = EngineLoop(engine: engine, maxQueue: options.maxQueue, requestTimeout: options.requestTimeout,
                          metrics: metrics, logger: logger, stepLog: options.stepLog)
    }

    /// Runs until SIGTERM/SIGINT (with `handleSignals`) or `shutdown()`, then drains and returns.
    /// `onListening` gets the bound address once the socket listens (before the weights are warm: `/health`
    /// says when they are).
    public func run(onListening: @escaping @Sendable (_ host: String, _ port: Int) -> Void = { _, _ in }) async throws {
        let router = Router(context: BasicRequestContext.self)
        Routes(server: self).register(on: router)
        let logger = self.logger
        let app = Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: .nanoseconds(Int64(options.idleTimeout.components.seconds) * 1_000_000_000
                                                                         + options.idleTimeout.components.attoseconds / 1_000_000_000))),
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: "headroom"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
                onListening(channel.localAddress?.ipAddress ?? "", port)
            },
            logger: logger)
        let engineService = EngineService(loop: loop, grace: options.shutdownGrace, logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: [app, engineService],
            gracefulShutdownSignals: options.handleSignals ? [.sigterm, .sigint] : [],
            logger: logger))
        let stopNow: Bool = lock.withLock {
            self.group = group
            return shutdownRequested
        }
        if stopNow { await group.triggerGracefulShutdown() }
        try await group.run()
        loop.stop()
    }

    /// Starts the same graceful shutdown a SIGTERM does.
    public func shutdown() async {
        let group: ServiceGroup? = lock.withLock {
            shutdownRequested = true
            return self.group
        }
        await group?.triggerGracefulShutdown()
    }
}

/// The engine's thread as a service: warms the weights when the group starts, drains on graceful shutdown.
struct EngineService: Service {
    let loop: EngineLoop
    let grace: Duration
    let logger: Logger

    func run() async throws {
        loop.start()
        // Until the group shuts down (or this task is cancelled).
        try? await gracefulShutdown()
        loop.beginDrain()
        let clock = ContinuousClock()
        let deadline = clock.now + grace
        var announced = false
        while !loop.isIdle && clock.now < deadline && !Task.isCancelled {
            if !announced {
                logger.info("shutting down: waiting for requests in flight", metadata: ["grace_s": "\(grace.components.seconds)"])
                announced = true
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        if !loop.isIdle {
            logger.warning("shutting down: grace period over, cancelling requests in flight")
            loop.cancelAll()
            while !loop.isIdle { try? await Task.sleep(for: .milliseconds(5)) }
        }
    }
}
