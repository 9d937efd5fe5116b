import Foundation
import XCTest

/// Runs the built `headroom` executable (swift test builds it beside the test bundle).
final class CommandLineTests: XCTestCase {
    var binary: URL { HeadroomCLI.binary }
    var repo: URL { HeadroomCLI.repo }

    func run(_ args: [String], cwd: URL) throws -> (status: Int32, stdout: String, stderr: String) {
        try HeadroomCLI.run(args, cwd: cwd)
    }

    func testBadScenarioExitsTwoWithItsMessageAndWritesNothing() throws {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: binary.path), "headroom not built at \(binary.path)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("catalog"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: repo.appendingPathComponent("Scenarios/catalog/models.yaml"),
                                         to: dir.appendingPathComponent("catalog/models.yaml"))
        try "schema: 1\nname: x\nmeasure:\n  model: tiny\n  threads: [1, many]\n  prompt_tokens: [8]\n"
            .write(to: dir.appendingPathComponent("x.yaml"), atomically: true, encoding: .utf8)
        let r = try run(["run", "x.yaml", "--db", "store/h.sqlite", "--reports", "out"], cwd: dir)
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "headroom: x.yaml: measure.threads[1]: expected an integer from 1 to 256, got \"many\"\n")
        XCTAssertEqual(r.stdout, "")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("store").path), "nothing may be written")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out").path))
    }

    func testHelpExplainsEveryCommand() throws {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: binary.path), "headroom not built at \(binary.path)")
        for cmd in ["run", "probe", "history", "report", "bench infer", "bench summary", "bench matvec"] {
            let r = try run(cmd.split(separator: " ").map(String.init) + ["--help"], cwd: repo)
            XCTAssertEqual(r.status, 0, cmd)
            XCTAssertTrue(r.stdout.contains("OVERVIEW:") && r.stdout.contains("USAGE:"), "\(cmd): \(r.stdout)")
        }
    }

    func testHistoryJSONOnEmptyStoreIsCleanJSON() throws {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: binary.path), "headroom not built at \(binary.path)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try run(["history", "--json", "--db", "h.sqlite"], cwd: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        XCTAssertEqual((obj?["runs"] as? [Any])?.count, 0)
    }
}
