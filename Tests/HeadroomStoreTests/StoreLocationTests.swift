// `--db`, `HEADROOM_DB` and `--to`: paths stay SQLite, postgres:// URLs are read as libpq reads them, and
// anything else is refused naming where it came from and what was expected.
import Foundation
import XCTest
@testable import HeadroomStore

final class StoreLocationTests: XCTestCase {
    func pg(_ s: String, env: [String: String] = [:]) throws -> PostgresURL {
        guard case .postgres(let u) = try StoreLocation(s, source: "--db", environment: env) else { throw StoreError.noSuchRun(0) }
        return u
    }

    func testPathsAndSQLiteURLsAreSQLite() throws {
        XCTAssertEqual(try StoreLocation("h.sqlite", source: "--db"), .sqlite(path: "h.sqlite"))
        XCTAssertEqual(try StoreLocation("/tmp/a b/h.sqlite", source: "--db"), .sqlite(path: "/tmp/a b/h.sqlite"))
        XCTAssertEqual(try StoreLocation(":memory:", source: "--db"), .sqlite(path: ":memory:"))
        XCTAssertEqual(try StoreLocation("sqlite:///tmp/h.sqlite", source: "--db"), .sqlite(path: "/tmp/h.sqlite"))
        XCTAssertEqual(try StoreLocation("sqlite:h.sqlite", source: "--db"), .sqlite(path: "h.sqlite"))
    }

    func testPostgresURLs() throws {
        let u = try pg("postgres://ci:s3cret@db.example:6543/headroom?sslmode=require")
        XCTAssertEqual(u, PostgresURL(user: "ci", password: "s3cret", host: "db.example", port: 6543, socketDirectory: nil,
                                      database: "headroom", sslMode: .require))
        XCTAssertEqual(u.redacted, "postgres://ci@db.example:6543/headroom?sslmode=require")
        let d = try pg("postgresql://ci@localhost/headroom", env: ["PGPASSWORD": "fromenv"])
        XCTAssertEqual(d.port, 5432)
        XCTAssertEqual(d.password, "fromenv", "PGPASSWORD when the URL has none")
        XCTAssertEqual(d.sslMode, .prefer, "libpq's default")
        XCTAssertEqual(try pg("postgres://ci:inurl@h/db", env: ["PGPASSWORD": "fromenv"]).password, "inurl", "the URL's wins")
        XCTAssertEqual(try pg("postgres://ci@h/db").password, nil)
        XCTAssertEqual(try pg("postgres://p%40ss:x%2Fy@h/db").user, "p@ss", "percent-encoded user")
        XCTAssertEqual(try pg("postgres://p%40ss:x%2Fy@h/db").password, "x/y")
        let s = try pg("postgres://ci@/headroom?host=/var/run/postgresql")
        XCTAssertEqual(s.socketDirectory, "/var/run/postgresql")
        XCTAssertNil(s.host)
        XCTAssertEqual(s.sslMode, .disable)
        XCTAssertEqual(s.redacted, "postgres://ci@:5432/headroom?host=/var/run/postgresql&sslmode=disable")
        XCTAssertEqual(try pg("postgres://ci@[::1]:5433/db").host, "::1")
    }

    func testBadLocationsNameTheirSourceAndWhatWasExpected() {
        let expected = "expected a SQLite path, sqlite:PATH, or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
            + "[?sslmode=disable|prefer|require|verify-ca|verify-full], got "
        let cases: [(String, String, String)] = [
            ("--db", "postgres://ci@h:notaport/db", "\"postgres://ci@h:notaport/db\": not a valid URL (a port that is not a number, or a character that must be percent-encoded)"),
            ("HEADROOM_DB", "postgres://h:5432/db", "\"postgres://h:5432/db\": no user name (postgres://USER@HOST/DATABASE)"),
            ("--to", "postgres://ci:pw@h:5432", "\"postgres://ci:***@h:5432\": no database name after the host (…/headroom)"),
            ("--db", "postgres://ci@h:70000/db", "\"postgres://ci@h:70000/db\": port 70000 is not from 1 to 65535"),
            ("--db", "postgres://ci@h/db?sslmode=maybe", "\"postgres://ci@h/db?sslmode=maybe\": sslmode=maybe is not one of disable, prefer, require, verify-ca, verify-full"),
            ("--db", "postgres://ci@h/db?timeout=3", "\"postgres://ci@h/db?timeout=3\": unknown parameter \"timeout\" (Headroom reads sslmode and host)"),
            ("--db", "postgres://ci@/db", "\"postgres://ci@/db\": no host (postgres://USER@HOST/DATABASE, or ?host=/socket/dir)"),
            ("HEADROOM_DB", "mysql://root@h/db", "\"mysql://root@h/db\": mysql:// is not a store Headroom reads"),
            ("--db", "", "\"\": it is empty"),
            ("--db", "sqlite:", "\"sqlite:\": no path after sqlite:"),
        ]
        for (source, value, why) in cases {
            XCTAssertThrowsError(try StoreLocation(value, source: source, environment: [:]), value) { e in
                XCTAssertEqual("\(e)", "\(source): \(expected)\(why)")
                XCTAssertTrue((e as? StoreError)?.isBadInput ?? false)
            }
        }
    }

    /// A server that is not there: a clear error naming the URL (never its password), a failure rather than bad input.
    func testAServerThatIsNotThereIsAClearError() throws {
        XCTAssertThrowsError(try openStore("postgres://ci:s3cret@127.0.0.1:1/headroom?sslmode=disable", mode: .readOnly, environment: [:])) { e in
            guard case StoreError.cannotConnect(let url, let why) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(url, "postgres://ci@127.0.0.1:1/headroom?sslmode=disable")
            XCTAssertTrue(why.lowercased().contains("refused"), why)
            XCTAssertFalse("\(e)".contains("s3cret"))
            XCTAssertFalse((e as? StoreError)?.isBadInput ?? true)
        }
    }
}
