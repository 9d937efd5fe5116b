// Keeps the fuzzers' findings fixed: every committed corpus input (among them every input that ever crashed a
// reader) is replayed through the same harness `headroom-fuzz` runs, and must come back accepted or refused
// with an error naming the file; the seeds must be accepted; and a short seeded run must find nothing.
// An input that crashes code not yet fixed would wait in Tests/Fuzz/pending/TARGET (not replayed here;
// `headroom-fuzz TARGET --replay FILE` shows it) and move into corpus/TARGET with its fix.
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
                    XCTAssertEqual(verdict.message, "fuzz-input.gguf: general.architecture is \"fuzz\", but Headroom runs only \"llama\", \"mistral\", \"qwen2\"")
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

    /// A few hundred mutated inputs in all (a second or two in a debug build, where a catalog load takes ~20 ms):
    /// the loop runs, reaches several checks, and finds nothing.
    func testShortSeededRunFindsNothing() throws {
        let iterations = ["gguf": 300, "scenario": 60, "request-body": 300]
        for name in FuzzTargets.names {
            let target = try FuzzTargets.make(name, repository: Self.repository)
            var session = FuzzSession(target: target, corpus: target.corpus(in: Self.corpusDirectory(name)).map(\.bytes), seed: 1)
            let findings = session.run(iterations: iterations[name] ?? 15)
            XCTAssertEqual(findings.map { "\($0.verdict)" }, [], name)
            XCTAssertGreaterThan(session.signatures.count, 3, "\(name): the mutations reach few checks: \(session.signatures.keys.sorted())")
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

    func testMinimizerKeepsTheVerdictAndDropsTheRest() throws {
        let target = try FuzzTargets.make("scenario", repository: Self.repository)
        let text = try String(contentsOfFile: Self.repository + "/Scenarios/default.yaml", encoding: .utf8)
            .replacingOccurrences(of: "  repetitions: 5\n", with: "  repetitions: 0\n")
        let input = Array(text.utf8)
        let verdict = target.run(input)
        XCTAssertTrue(verdict.message?.hasSuffix("probe.repetitions: expected an integer from 1 to 1000, got \"0\"") ?? false, "\(verdict)")
        let small = FuzzMinimizer.minimize(input, target: target)
        XCTAssertEqual(target.run(small).signature, verdict.signature)
        XCTAssertLessThan(small.count, input.count / 4, String(decoding: small, as: UTF8.self))
    }
}
