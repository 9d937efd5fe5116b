import Foundation
import GRDB
import XCTest

/// Commands that only read never write the store: not another program's database, not a missing folder,
/// not a migration. Commands that write create the default `.headroom/` folder, and no other.
final class StoreCommandLineTests: XCTestCase {
    var repo: URL { HeadroomCLI.repo }

    func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cli-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    func testReadOnlyCommandsRefuseAnotherProgramsDatabaseAndLeaveItUnchanged() throws {
        let dir = try tempDir()
        let db = dir.appendingPathComponent("music.db").path
        let q = try DatabaseQueue(path: db)
        try q.write { try $0.execute(sql: "CREATE TABLE album (id INTEGER PRIMARY KEY, title TEXT); INSERT INTO album (title) VALUES ('x')") }
        try q.close()
        let before = try Data(contentsOf: URL(fileURLWithPath: db))
        let reports = dir.appendingPathComponent("out").path
        for args in [["history"], ["report", "--reports", reports], ["baseline", "list"], ["baseline", "export", "b"],
                     ["plan", "Scenarios/default.yaml", "--no-report"], ["whatif"], ["hardware"]] {
            let r = try HeadroomCLI.run(args + ["--db", db], cwd: repo)
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr, "headroom: \(db): not a Headroom results store (it holds tables album and no Headroom migrations); "
                           + "it was left unchanged: name a new file or a Headroom store\n", "\(args)")
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: db)), before, "\(args) changed the file")
        }
        // A command that writes refuses it the same way, before any migration.
        let save = try HeadroomCLI.run(["baseline", "save", "b", "--db", db], cwd: repo)
        XCTAssertEqual(save.status, 2, save.stderr)
        XCTAssertTrue(save.stderr.contains("not a Headroom results store"), save.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: db)), before)
        XCTAssertFalse(FileManager.default.fileExists(atPath: reports))
    }

    func testAStoreInAMissingFolderIsNoRunsForReadersAndAnErrorForWriters() throws {
        let dir = try tempDir()
        let db = dir.appendingPathComponent("no/such/h.sqlite").path
        let h = try HeadroomCLI.run(["history", "--db", db], cwd: dir)
        XCTAssertEqual(h.status, 0, h.stderr)
        XCTAssertEqual(h.stdout, "No runs in \(db) yet: `headroom run` measures and stores one.\n")
        let l = try HeadroomCLI.run(["baseline", "list", "--db", db], cwd: dir)
        XCTAssertEqual(l.status, 0, l.stderr)
        let r = try HeadroomCLI.run(["report", "--db", db], cwd: dir)
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "headroom: no complete run in \(db): run `headroom run` first\n")
        let s = try HeadroomCLI.run(["baseline", "save", "b", "--db", db], cwd: dir)
        XCTAssertEqual(s.status, 2)
        XCTAssertEqual(s.stderr, "headroom: \(db): cannot create the results store: the folder \(dir.path)/no/such does not exist\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("no").path), "no folder created")
    }

    func testOnlyAWritingCommandCreatesTheDefaultFolder() throws {
        if ProcessInfo.processInfo.environment["HEADROOM_DB"] != nil { throw XCTSkip("HEADROOM_DB is set") }
        let dir = try tempDir()
        let h = try HeadroomCLI.run(["history"], cwd: dir)
        XCTAssertEqual(h.status, 0, h.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent(".headroom").path), "history created .headroom/")
        let s = try HeadroomCLI.run(["baseline", "save", "b"], cwd: dir)
        XCTAssertEqual(s.status, 2, "no complete run to save")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent(".headroom/history.sqlite").path))
    }
}
