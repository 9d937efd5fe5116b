// Keeps the fuzzers' findings fixed: every committed corpus input (among them every input that ever crashed a
// reader) is replayed through the same harness `headroom-fuzz` runs, and must come back accepted or refused
// with an error naming the file; the seeds must be accepted; and a short seeded run must find nothing.
import Foundation
import XCTest
import HeadroomFuzz

final class FuzzCorpusTests: XCTestCase {
    /// The checkout's root, from this file's place in it.
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    static func corpusDirectory(_ target: String) -> String { repository + "/Tests/Fuzz/corpus/" + target }

    func testSeedsAreAccepted() throws {
        for name in FuzzTargets.names {
            let target = try FuzzTargets.make(name, repository: Self.repository)
            XCTAssertFalse(target.seeds.isEmpty, name)
            for (i, seed) in target.seeds.enumerated() {
                let verdict = target.run(seed)
                // The GGUF seed with every metadata type is not a llama model: refusing it by name is its purpose.
                if name == "gguf", i == 2 {
                    XCTAssertEqual(verdict.message, "fuzz-input.gguf: general.architecture is \"fuzz\", but Headroom runs only \"llama\"")
                } else {
                    XCTAssertEqual(verdict, .accepted, "\(name) seed \(i)")
                }
            }
        }
    }

    func testCommittedCorpusIsAnsweredClearly() throws {
        var replayed = 0
        for name in FuzzTargets.names {
            let target = try FuzzTargets.make(name, repository: Self.repository)
            for (file, bytes) in target.corpus(in: Self.corpusDirectory(name)) {
                let verdict = target.run(bytes)
                XCTAssertFalse(verdict.isFinding, "\(name)/\(file): \(verdict)")
                replayed += 1
            }
        }
        XCTAssertGreaterThan(replayed, 0, "no corpus under \(Self.repository)/Tests/Fuzz/corpus")
    }

    /// A few hundred mutated inputs in all (about a second): the loop runs, reaches many checks, and finds nothing.
    func testShortSeededRunFindsNothing() throws {
        for name in FuzzTargets.names {
            let target = try FuzzTargets.make(name, repository: Self.repository)
            var session = FuzzSession(target: target, corpus: target.corpus(in: Self.corpusDirectory(name)).map(\.bytes), seed: 1)
            let findings = session.run(iterations: name == "gguf" ? 300 : 50)
            XCTAssertEqual(findings.map { "\($0.verdict)" }, [], name)
            XCTAssertGreaterThan(session.signatures.count, 5, "\(name): the mutations reach few checks: \(session.signatures.keys.sorted())")
        }
    }

    func testTheSameSeedGivesTheSameInputs() throws {
        let target = try FuzzTargets.make("gguf", repository: Self.repository)
        var a = FuzzSession(target: target, seed: 42), b = FuzzSession(target: target, seed: 42), c = FuzzSession(target: target, seed: 43)
        let inputsA = (0..<50).map { _ in a.nextInput() }
        XCTAssertEqual(inputsA, (0..<50).map { _ in b.nextInput() })
        XCTAssertNotEqual(inputsA, (0..<50).map { _ in c.nextInput() })
        XCTAssertTrue(inputsA.allSatisfy { $0.count <= target.maxInputBytes })
    }
}
