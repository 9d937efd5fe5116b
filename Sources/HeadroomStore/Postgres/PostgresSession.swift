// One connection to PostgreSQL, used synchronously: the bridge between postgres-nio's event-loop API and
// the store's synchronous protocol.
import Foundation
import Logging
import PostgresNIO

/// A PostgreSQL connection whose calls block the calling thread until the server answers.
///
/// The store's protocol is synchronous (its callers — the runner, every command — are), and postgres-nio is
/// asynchronous. The bridge: the session owns a private event loop (one NIO thread) on which the connection
/// runs, and every call is an `EventLoopFuture` from postgres-nio's future API that the caller `wait()`s on.
/// The waiting thread is never that event loop, and the I/O never needs a thread of Swift's cooperative pool,
/// so a store call made from inside a `Task` (the load runner's) cannot deadlock the pool waiting on work
/// that the pool itself would have to run — which a semaphore around `Task { try await … }` could on a
/// 2-core machine. A recursive lock makes one caller's transaction whole: other threads wait for it.
final class PostgresSession: @unchecked Sendable {
    let url: PostgresURL
    private let group: MultiThreadedEventLoopGroup
    private let connection: PostgresConnection
    private let lock = NSRecursiveLock()
    private let logger = Logger(label: "headroom.store.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Connects (a TLS handshake first when the URL's `sslmode` asks); `StoreError.cannotConnect` says why not.
    init(_ url: PostgresURL, connectTimeout: TimeAmount = .seconds(10)) throws {
        self.url = url
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            var config: PostgresConnection.Configuration
            if let dir = url.socketDirectory {
                config = .init(unixSocketPath: (dir as NSString).appendingPathComponent(".s.PGSQL.\(url.port)"),
                               username: url.user, password: url.password, database: url.database)
            } else {
                config = .init(host: url.host!, port: url.port, username: url.user, password: url.password,
                               database: url.database, tls: try Self.tls(url.sslMode))
            }
            config.options.connectTimeout = connectTimeout
            connection = try PostgresConnection.connect(on: group.next(), configuration: config, id: 1, logger: logger).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw StoreError.cannotConnect(url.redacted, Self.describe(error, url: url))
        }
    }

    deinit {
        try? connection.close().wait()
        try? group.syncShutdownGracefully()
    }

    static func tls(_ mode: PostgresURL.SSLMode) throws -> PostgresConnection.Configuration.TLS {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch mode {
        case .disable: return .disable
        case .prefer, .require: tls.certificateVerification = .none
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        case .verifyFull: tls.certificateVerification = .fullVerification
        }
        let context = try NIOSSLContext(configuration: tls)
        return mode == .prefer ? .prefer(context) : .require(context)
    }

    /// Runs `query` and returns every row. A lost connection is `StoreError.connectionLost`, a statement the
    /// server refuses `StoreError.serverError`.
    @discardableResult
    func query(_ query: PostgresQuery) throws -> [PostgresRow] {
        lock.lock()
        defer { lock.unlock() }
        do {
            // Checked and sent on the connection's event loop, where its closing is processed: postgres-nio
            // (1.33) leaves a query written to an already closed channel waiting forever, so one sent after the
            // server went away must fail here instead. A query in flight when it goes away is failed by postgres-nio.
            let connection = connection, logger = logger, url = url
            let rows = connection.eventLoop.flatSubmit { () -> EventLoopFuture<PostgresQueryResult> in
                guard !connection.isClosed else {
                    return connection.eventLoop.makeFailedFuture(StoreError.connectionLost(url.redacted, "the server closed the connection"))
                }
                return connection.query(query, logger: logger)
            }
            return Array(try rows.wait())
        } catch {
            throw Self.storeError(error, url: url)
        }
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws (when the
    /// connection is gone the server has rolled it back already).
    @discardableResult
    func transaction<T>(_ body: () throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        try query("BEGIN")
        do {
            let value = try body()
            try query("COMMIT")
            return value
        } catch {
            _ = try? query("ROLLBACK")
            throw error
        }
    }

    /// Whether the server still answers on this connection.
    var isClosed: Bool { connection.isClosed }

    static func storeError(_ error: Error, url: PostgresURL) -> StoreError {
        if let e = error as? StoreError { return e }
        let why = describe(error, url: url)
        if let e = error as? PSQLError {
            if [.serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .connectionError].contains(e.code) {
                return .connectionLost(url.redacted, why)
            }
            // 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now: the server is going away.
            if let state = e.serverInfo?[.sqlState], state.hasPrefix("57P") || state.hasPrefix("08") {
                return .connectionLost(url.redacted, why)
            }
        }
        return .serverError(url.redacted, why)
    }

    /// postgres-nio keeps its errors' descriptions vague on purpose (they may hold query text); this says
    /// what happened in the server's words, or the connection's.
    static func describe(_ error: Error, url: PostgresURL) -> String {
        guard let e = error as? PSQLError else { return "\(error)" }
        if let info = e.serverInfo, let message = info[.message] {
            var s = message
            if let detail = info[.detail] { s += " (\(detail))" }
            if let state = info[.sqlState] { s += " [SQLSTATE \(state)]" }
            return s
        }
        switch e.code {
        case .sslUnsupported: return "the server does not offer TLS, and sslmode=\(url.sslMode.rawValue) requires it"
        case .serverClosedConnection, .uncleanShutdown: return "the server closed the connection"
        case .clientClosedConnection: return "the connection was already closed"
        case .authMechanismRequiresPassword: return "the server asks for a password: put it in the URL or PGPASSWORD"
        case .connectionError:
            return e.underlying.map { "\($0)" } ?? "the connection failed"
        default:
            return e.underlying.map { "\(e.code): \($0)" } ?? "\(e.code)"
        }
    }
}
