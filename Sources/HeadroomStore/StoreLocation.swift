// Where a results store is: what `--db`, `HEADROOM_DB` and `history push --to` accept. A path (or
// `sqlite:PATH`) is a SQLite file; `postgres://` (or `postgresql://`) is a PostgreSQL database, read the way
// libpq reads such a URL for the parts Headroom supports.
import Foundation

public enum StoreLocation: Equatable, Sendable {
    case sqlite(path: String)
    case postgres(PostgresURL)

    /// Reads `value`; `source` (`--db`, `HEADROOM_DB`, `--to`) names it in the error when it cannot be read.
    /// `environment` supplies `PGPASSWORD` when the URL carries no password.
    public init(_ value: String, source: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        func bad(_ why: String) -> StoreError { .badLocation(source: source, value: PostgresURL.redact(value), why: why) }
        guard !value.isEmpty else { throw bad("it is empty") }
        let lower = value.lowercased()
        if lower.hasPrefix("postgres://") || lower.hasPrefix("postgresql://") {
            self = .postgres(try PostgresURL(value, environment: environment, bad: bad))
        } else if lower.hasPrefix("sqlite:") {
            var path = String(value.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path.removeFirst(2) }  // sqlite:///abs/path and sqlite://rel/path
            guard !path.isEmpty else { throw bad("no path after sqlite:") }
            self = .sqlite(path: path)
        } else if let scheme = value.range(of: "://").map({ String(value[..<$0.lowerBound]) }),
                  !scheme.isEmpty, scheme.allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }) {
            throw bad("\(scheme):// is not a store Headroom reads")
        } else {
            self = .sqlite(path: value)
        }
    }
}

/// A PostgreSQL connection URL: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=…][&host=SOCKET_DIR]`.
public struct PostgresURL: Equatable, Sendable {
    /// libpq's TLS modes that Headroom supports; `prefer` (libpq's default) when the URL names none.
    public enum SSLMode: String, Equatable, Sendable, CaseIterable {
        /// No TLS.
        case disable
        /// TLS when the server offers it, without checking its certificate.
        case prefer
        /// TLS always, without checking the server's certificate (libpq's meaning).
        case require
        /// TLS always, the certificate checked against the system's trust roots, not its host name.
        case verifyCA = "verify-ca"
        /// TLS always, the certificate and the host name checked.
        case verifyFull = "verify-full"
    }

    public var user: String
    public var password: String?
    /// The TCP host; nil when `socketDirectory` is used.
    public var host: String?
    public var port: Int
    /// A Unix-socket directory (`?host=/var/run/postgresql`, or a host part that is a percent-encoded path).
    public var socketDirectory: String?
    public var database: String
    public var sslMode: SSLMode

    /// The URL without its password: how the store is named in messages and `--json` output.
    public var redacted: String {
        var s = "postgres://\(user)@\(host.map { $0.contains(":") ? "[\($0)]" : $0 } ?? ""):\(port)/\(database)"
        var query: [String] = []
        if let socketDirectory { query.append("host=\(socketDirectory)") }
        if sslMode != .prefer { query.append("sslmode=\(sslMode.rawValue)") }
        if !query.isEmpty { s += "?" + query.joined(separator: "&") }
        return s
    }

    /// `value` with any password in it replaced by `***`, for messages about a URL that could not be read.
    public static func redact(_ value: String) -> String {
        guard let scheme = value.range(of: "://"), let at = value[scheme.upperBound...].lastIndex(of: "@") else { return value }
        let userInfo = value[scheme.upperBound..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return value }
        return String(value[..<colon]) + ":***" + String(value[at...])
    }
}

extension PostgresURL {
    init(_ value: String, environment: [String: String], bad: (String) -> StoreError) throws {
        guard let c = URLComponents(string: value) else {
            throw bad("not a valid URL (a port that is not a number, or a character that must be percent-encoded)")
        }
        guard let user = c.user, !user.isEmpty else { throw bad("no user name (postgres://USER@HOST/DATABASE)") }
        self.user = user
        password = c.password ?? environment["PGPASSWORD"]
        let database = c.path.hasPrefix("/") ? String(c.path.dropFirst()) : c.path
        guard !database.isEmpty else { throw bad("no database name after the host (…/headroom)") }
        guard !database.contains("/") else { throw bad("the database name \"\(database)\" contains a slash") }
        self.database = database
        if let port = c.port {
            guard (1...65535).contains(port) else { throw bad("port \(port) is not from 1 to 65535") }
            self.port = port
        } else {
            port = 5432
        }
        var sslMode = SSLMode.prefer
        var socket: String?
        for item in c.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = item.value.flatMap(SSLMode.init(rawValue:)) else {
                    throw bad("sslmode=\(item.value ?? "") is not one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                sslMode = mode
            case "host":
                guard let dir = item.value, dir.hasPrefix("/") else { throw bad("host= must name a Unix-socket directory (an absolute path)") }
                socket = dir
            default:
                throw bad("unknown parameter \"\(item.name)\" (Headroom reads sslmode and host)")
            }
        }
        self.sslMode = sslMode
        let host = c.host.flatMap { $0.isEmpty ? nil : $0 }
        if let host, host.hasPrefix("/") { socket = socket ?? host }  // postgres://user@%2Fvar%2Frun%2Fpostgresql/db
        if socket != nil {
            guard sslMode == .prefer || sslMode == .disable else { throw bad("sslmode=\(sslMode.rawValue) with a Unix socket: TLS runs over TCP only") }
            self.sslMode = .disable
            self.host = nil
        } else {
            guard let host else { throw bad("no host (postgres://USER@HOST/DATABASE, or ?host=/socket/dir)") }
            self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        }
        socketDirectory = socket
    }
}
