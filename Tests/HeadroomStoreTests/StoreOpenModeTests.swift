import Foundation
import GRDB
import XCTest
import HeadroomCore
@testable import HeadroomStore

/// Read-only opening never writes; read-write opening refuses another program's database untouched and
/// creates a folder only when asked.
final class StoreOpenModeTests: XCTestCase {
    func folder() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("headroom-open-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// Another program's database: one table with a row.
    func foreignDatabase(_ path: String) throws {
        let q = try DatabaseQueue(path: path)
        try q.write { db in
            try db.execute(sql: "CREATE TABLE album (id INTEGER PRIMARY KEY, title TEXT)")
            try db.execute(sql: "INSERT INTO album (title) VALUES ('Kind of Blue')")
        }
        try q.close()
    }

    func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    func testReadOnlyOnAMissingFileIsAnEmptyStoreAndCreatesNothing() throws {
        let dir = try folder()
        let path = dir + "/sub/dir/h.sqlite"
        let store = try SQLiteStore(path: path, mode: .readOnly)
        XCTAssertEqual(try store.runs(), [])
        XCTAssertEqual(try store.baselines().count, 0)
        XCTAssertNil(try store.latestCompleteRun(fingerprint: "fp"))
        XCTAssertThrowsError(try store.load(runID: 1)) { XCTAssertEqual("\($0)", "no run with id 1 in the store") }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/sub"), "no folder created")
    }

    func testAnEmptyFileReadsAsAnEmptyStoreAndStaysEmpty() throws {
        let path = try folder() + "/empty.sqlite"
        FileManager.default.createFile(atPath: path, contents: Data())
        XCTAssertEqual(try SQLiteStore(path: path, mode: .readOnly).runs(), [])
        XCTAssertEqual(try bytes(path).count, 0)
    }

    func testAnotherProgramsDatabaseIsRefusedUnchangedInEitherMode() throws {
        let path = try folder() + "/music.db"
        try foreignDatabase(path)
        let before = try bytes(path)
        for mode in [StoreOpenMode.readOnly, .readWrite(createFolder: false)] {
            XCTAssertThrowsError(try SQLiteStore(path: path, mode: mode), "\(mode)") { e in
                XCTAssertEqual("\(e)", "\(path): not a Headroom results store (it holds tables album and no Headroom migrations); "
                               + "it was left unchanged: name a new file or a Headroom store")
            }
            XCTAssertEqual(try bytes(path), before, "\(mode) changed the file")
        }
        let tables = try DatabaseQueue(path: path).read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        }
        XCTAssertEqual(tables, ["album"], "no migrations table, no Headroom tables")
    }

    func testAnotherGRDBProgramsMigrationsAreNotHeadrooms() throws {
        let path = try folder() + "/other.db"
        var m = DatabaseMigrator()
        m.registerMigration("createUsers") { db in try db.create(table: "user") { $0.autoIncrementedPrimaryKey("id") } }
        let q = try DatabaseQueue(path: path)
        try m.migrate(q)
        try q.close()
        XCTAssertThrowsError(try SQLiteStore(path: path)) { e in
            XCTAssertEqual("\(e)", "\(path): not a Headroom results store (its migrations (createUsers) are not Headroom's); "
                           + "it was left unchanged: name a new file or a Headroom store")
        }
    }

    func testATextFileIsRefused() throws {
        let path = try folder() + "/notes.txt"
        try "not a database, just some text that is long enough to fill a header".write(toFile: path, atomically: true, encoding: .utf8)
        let before = try bytes(path)
        for mode in [StoreOpenMode.readOnly, .readWrite(createFolder: false)] {
            XCTAssertThrowsError(try SQLiteStore(path: path, mode: mode)) { e in
                XCTAssertTrue("\(e)".hasPrefix("\(path): cannot open the results store: "), "\(e)")
            }
        }
        XCTAssertEqual(try bytes(path), before)
    }

    func testReadWriteCreatesAFolderOnlyWhenAsked() throws {
        let dir = try folder()
        XCTAssertThrowsError(try SQLiteStore(path: dir + "/missing/h.sqlite")) { e in
            XCTAssertEqual("\(e)", "\(dir)/missing/h.sqlite: cannot create the results store: the folder \(dir)/missing does not exist")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/missing"))
        _ = try SQLiteStore(path: dir + "/made/h.sqlite", mode: .readWrite(createFolder: true))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/made/h.sqlite"))
        _ = try SQLiteStore(path: dir + "/here.sqlite")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/here.sqlite"))
    }

    func testReadOnlyReadsAStoreWithoutChangingIt() throws {
        let path = try folder() + "/h.sqlite"
        do {
            let store = try SQLiteStore(path: path)
            let done = try store.beginRun(sampleRun("chat"))
            try store.record(runID: done, sampleCase("read_rows", values: [30, 31]))
            try store.finish(runID: done, status: .complete)
            _ = try store.beginRun(sampleRun("chat", pid: 999_999_999))  // a crashed process's run, left running
        }
        let before = try bytes(path)
        let store = try SQLiteStore(path: path, mode: .readOnly)
        XCTAssertEqual(try store.runs().map(\.status), [.running, .complete], "read-only does not reap")
        XCTAssertEqual(try store.load(runID: 1).cases.count, 1)
        XCTAssertThrowsError(try store.beginRun(sampleRun()), "SQLite refuses writes on a read-only connection")
        XCTAssertThrowsError(try store.reapAbandonedRuns(isAlive: { _ in false }))
        XCTAssertEqual(try bytes(path), before)
    }

    func testReadOnlyRefusesAnOlderStoreThatOnlyAWriteCanUpgrade() throws {
        let path = try folder() + "/old.sqlite"
        let q = try DatabaseQueue(path: path)
        try SQLiteStore.migrator.migrate(q, upTo: "v1: runs, measurements, samples")
        try q.close()
        let before = try bytes(path)
        XCTAssertThrowsError(try SQLiteStore(path: path, mode: .readOnly)) { e in
            XCTAssertEqual("\(e)", "\(path): the results store was written by an older Headroom (it lacks migrations v2: plans, v3: baselines, v4: measurement facts, v6: run uid and host, v7: run branch, v8: run sweep and shard); "
                           + "a command that writes to it (headroom run, baseline save) upgrades it")
        }
        XCTAssertEqual(try bytes(path), before)
        XCTAssertEqual(try SQLiteStore(path: path).appliedMigrations(), StoreContractTests.allMigrations, "read-write upgrades it")
    }

    /// A store without the (measurement, metric) sample index reads the same; a write adds it.
    func testReadOnlyReadsAStoreThatOnlyLacksAnIndex() throws {
        let path = try folder() + "/v4.sqlite"
        let q = try DatabaseQueue(path: path)
        try SQLiteStore.migrator.migrate(q, upTo: "v4: measurement facts")
        // Every later migration but the index's.
        try q.write { db in
            try SQLiteStore.migrateRunIdentity(db)
            try SQLiteStore.migrateRunBranch(db)
            try SQLiteStore.migrateRunSweep(db)
            for m in [SQLiteStore.runIdentityMigration, SQLiteStore.runBranchMigration, SQLiteStore.runSweepMigration] {
                try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES (?)", arguments: [m])
            }
        }
        try q.close()
        let old = try SQLiteStore(path: path, mode: .readOnly)
        XCTAssertEqual(try old.runs(), [])
        XCTAssertEqual(try old.endpointLoadCases(hardware: ["h100-sxm"]), [])
        let upgraded = try SQLiteStore(path: path)
        XCTAssertEqual(Set(try upgraded.appliedMigrations()), Set(StoreContractTests.allMigrations))
        let indexes = try upgraded.dbQueue.read { db in try db.indexes(on: "sample").map(\.name) }
        XCTAssertEqual(indexes, ["sample_on_measurement_id_metric"])
    }
}
