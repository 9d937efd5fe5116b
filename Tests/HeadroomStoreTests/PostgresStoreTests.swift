// What only the PostgreSQL store has: a server that can go away, TLS, passwords, a database shared with
// other programs, many machines migrating at once. Against the server HEADROOM_TEST_PG names (`make test`
// starts one); skipped, saying so, when it is unset.
import Foundation
import XCTest
import HeadroomCore
import PostgresNIO
@testable import HeadroomStore

/// The test server: HEADROOM_TEST_PG, a `postgres://` URL of a role that may create databases.
enum PostgresTestServer {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    static func raw() throws -> String {
        guard let s = environment["HEADROOM_TEST_PG"], !s.isEmpty else {
            throw XCTSkip("HEADROOM_TEST_PG is not set: the PostgreSQL half of the store tests did not run "
                          + "(`make test` starts a throwaway server and sets it)")
        }
        return s
    }

    static func url() throws -> PostgresURL {
        guard case .postgres(let url) = try StoreLocation(try raw(), source: "HEADROOM_TEST_PG", environment: environment) else {
            throw StoreError.badLocation(source: "HEADROOM_TEST_PG", value: try raw(), why: "not a postgres:// URL")
        }
        return url
    }

    /// HEADROOM_TEST_PG with another database (and optionally other query items), as a string.
    static func location(database: String, query: [URLQueryItem]? = nil, password: String?? = .none) throws -> String {
        var c = URLComponents(string: try raw())!
        c.path = "/" + database
        if let query { c.queryItems = (c.queryItems ?? []).filter { q in !query.contains { $0.name == q.name } } + query }
        if case .some(let p) = password { c.password = p }
        return c.string!
    }

    static func admin() throws -> PostgresSession { try PostgresSession(try url()) }

    /// A new, empty database; its name and location.
    static func createDatabase() throws -> (database: String, location: String) {
        let name = "headroom_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        try admin().query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
        return (name, try location(database: name))
    }

    static func dropDatabase(_ name: String) {
        _ = try? admin().query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"))
    }
}

final class PostgresStoreTests: XCTestCase {
    func freshDatabase() throws -> (database: String, location: String) {
        let db = try PostgresTestServer.createDatabase()
        addTeardownBlock { PostgresTestServer.dropDatabase(db.database) }
        return db
    }

    func open(_ location: String, environment: [String: String] = PostgresTestServer.environment) throws -> PostgresStore {
        guard case .postgres(let url) = try StoreLocation(location, source: "test", environment: environment) else { throw XCTSkip("not postgres") }
        return try PostgresStore(url)
    }

    /// The server ends the connection mid-run (as when it restarts or fails over): the next write fails with a
    /// clear error, nothing crashes, and every case stored before is still there.
    func testALostConnectionFailsTheWriteAndKeepsWhatWasStored() throws {
        let db = try freshDatabase()
        let store = try open(db.location)
        let id = try store.beginRun(sampleRun("cut"))
        let kept = sampleCase("read_rows", values: [30, 31])
        try store.record(runID: id, kept)
        let killed = try PostgresTestServer.admin().query(PostgresQuery(unsafeSQL: """
            SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(db.database)'
            """))
        XCTAssertEqual(killed.count, 1, "the store's one connection")
        XCTAssertThrowsError(try store.record(runID: id, sampleCase("triad", values: [40]))) { e in
            guard case StoreError.connectionLost(let where_, _) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(where_, store.path)
            XCTAssertTrue("\(e)".hasPrefix("\(store.path): lost the connection to the results store ("), "\(e)")
            XCTAssertTrue("\(e)".hasSuffix("what was stored before is kept, the write in progress was not stored"), "\(e)")
            XCTAssertFalse((e as? StoreError)?.isBadInput ?? true, "a failure (exit 1), not bad input")
        }
        XCTAssertThrowsError(try store.finish(runID: id, status: .failed)) { e in
            guard case StoreError.connectionLost = e else { return XCTFail("\(e)") }
        }
        let again = try open(db.location)
        let stored = try again.load(runID: id)
        XCTAssertEqual(stored.cases, [kept])
        XCTAssertEqual(stored.run.status, .running, "left running: `reapAbandonedRuns` marks it interrupted once its process is gone")
        XCTAssertEqual(try again.reapAbandonedRuns(isAlive: { _ in false }), 1)
        XCTAssertEqual(try again.load(runID: id).run.status, .interrupted)
    }

    func testTLSWhenTheURLAsksForIt() throws {
        guard PostgresTestServer.environment["HEADROOM_TEST_PG_TLS"] == "1" else {
            throw XCTSkip("HEADROOM_TEST_PG_TLS is not 1: the test server has no TLS certificate (`make test` gives it one)")
        }
        let db = try freshDatabase()
        func ssl(_ mode: String) throws -> Bool {
            let store = try open(try PostgresTestServer.location(database: db.database, query: [URLQueryItem(name: "sslmode", value: mode)]))
            return try store.session.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[0].decode(Bool.self)
        }
        XCTAssertTrue(try ssl("require"))
        XCTAssertTrue(try ssl("prefer"))
        XCTAssertFalse(try ssl("disable"))
        // verify-full checks the certificate: the test server's is self-signed, so it is refused.
        XCTAssertThrowsError(try ssl("verify-full")) { e in
            guard case StoreError.cannotConnect = e else { return XCTFail("\(e)") }
        }
    }

    func testThePasswordComesFromTheURLOrPGPASSWORD() throws {
        let url = try PostgresTestServer.url()
        guard let password = url.password, url.socketDirectory == nil else {
            throw XCTSkip("HEADROOM_TEST_PG has no password: the server does not ask for one")
        }
        let db = try freshDatabase()
        let bare = try PostgresTestServer.location(database: db.database, password: .some(nil))
        XCTAssertFalse(bare.contains(password))
        XCTAssertEqual(try open(bare, environment: ["PGPASSWORD": password]).appliedMigrations(), StoreContractTests.allMigrations)
        XCTAssertThrowsError(try open(bare, environment: [:])) { e in
            guard case StoreError.cannotConnect(let where_, let why) = e else { return XCTFail("\(e)") }
            XCTAssertFalse(where_.contains(password))
            XCTAssertEqual(why, "the server asks for a password: put it in the URL or PGPASSWORD")
        }
        let wrong = try PostgresTestServer.location(database: db.database, password: .some("not-\(password)"))
        XCTAssertThrowsError(try open(wrong, environment: [:])) { e in
            guard case StoreError.cannotConnect(_, let why) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(why.hasPrefix("password authentication failed for user"), why)
            XCTAssertFalse("\(e)".contains("not-\(password)"), "the password is never printed")
        }
    }

    /// A database holding another program's `run` table is refused as it is: no migrations table, nothing added.
    func testAnotherProgramsTablesAreRefusedUnchanged() throws {
        let db = try freshDatabase()
        let other = try PostgresSession(try PostgresTestServer.url().with(database: db.database))
        try other.query("CREATE TABLE run (id serial PRIMARY KEY, laps int)")
        XCTAssertThrowsError(try open(db.location)) { e in
            XCTAssertEqual("\(e)", "\(try! PostgresTestServer.url().with(database: db.database).redacted): not a Headroom results store "
                           + "(it holds tables run and no Headroom migrations); it was left unchanged: name a new file or a Headroom store")
        }
        let tables = try other.query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")
            .map { try $0.decode(String.self) }
        XCTAssertEqual(tables, ["run"])
    }

    /// Machines that start on a new database at the same moment migrate it once between them.
    func testConcurrentFirstUseMigratesOnce() throws {
        let db = try freshDatabase()
        let lock = NSLock()
        var results: [String] = []
        DispatchQueue.concurrentPerform(iterations: 3) { _ in
            let r: String
            do { r = try open(db.location).appliedMigrations().joined(separator: "|") } catch { r = "\(error)" }
            lock.lock(); results.append(r); lock.unlock()
        }
        XCTAssertEqual(results, Array(repeating: StoreContractTests.allMigrations.joined(separator: "|"), count: 3))
        let log = try open(db.location).session.query("SELECT COUNT(*) FROM headroom_migrations")[0].decode(Int.self)
        XCTAssertEqual(log, StoreContractTests.allMigrations.count)
    }

    /// The two stores' migrations are the same list, by name: one schema history.
    func testBothStoresHaveTheSameMigrations() {
        XCTAssertEqual(SQLiteStore.migrator.migrations, PostgresSchema.migrations.map(\.name))
        XCTAssertEqual(SQLiteStore.migrator.migrations, StoreContractTests.allMigrations)
    }
}

extension PostgresURL {
    func with(database: String) -> PostgresURL {
        var u = self
        u.database = database
        return u
    }
}
