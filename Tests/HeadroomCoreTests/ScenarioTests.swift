import Foundation
import XCTest
@testable import HeadroomCore

/// The catalog shipped in Scenarios/catalog, found from this file's location.
func repoCatalog() throws -> Catalog {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return try Catalog.load(directory: root.appendingPathComponent("Scenarios/catalog").path)
}

final class ScenarioTests: XCTestCase {
    func fixture(_ name: String) throws -> (path: String, text: String) {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil))
        return (url.path, try String(contentsOf: url, encoding: .utf8))
    }

    func testGoodScenarioParsesToExpectedValues() throws {
        let (_, text) = try fixture("good.yaml")
        let s = try Scenario.parse(text, file: "good.yaml", catalog: repoCatalog())
        XCTAssertEqual(s.name, "good-one")
        XCTAssertEqual(s.description, "Fixture with every field.")
        XCTAssertEqual(s.probe, ProbeSettings(readMiB: 64, gemmSize: 256, repetitions: 3))
        XCTAssertEqual(s.measure!.model.id, "tiny")
        XCTAssertEqual(s.measure!.model.dim, 768)
        XCTAssertEqual(s.measure!.threads, [1, 2])
        XCTAssertEqual(s.measure!.promptTokens, [16, 64])
        XCTAssertEqual(s.measure!.batch, [1, 4])
        XCTAssertEqual(s.measure!.repetitions, 4)
        XCTAssertEqual(s.measure!.warmup, 0)
        XCTAssertEqual(s.measure!.gemmRepetitions, 9)
        XCTAssertEqual(s.measure!.gemmWarmup, 2)
        XCTAssertEqual(s.hash, fnv1a64Hex(text))
        XCTAssertEqual(s.hash.count, 16)
    }

    func testDefaultsApplyWhenOptionalKeysAreAbsent() throws {
        let s = try Scenario.parse("""
            schema: 1
            name: minimal
            measure: { model: small, threads: 2, prompt_tokens: [8] }
            """, file: "m.yaml", catalog: repoCatalog())
        XCTAssertEqual(s.probe, ProbeSettings())
        XCTAssertEqual(s.measure!.threads, [2])
        XCTAssertEqual(s.measure!.batch, [1])
        XCTAssertEqual(s.measure!.repetitions, 5)
        XCTAssertEqual(s.measure!.warmup, 1)
        XCTAssertEqual(s.measure!.gemmRepetitions, 5, "the GEMMs repeat as often as the rest unless told")
        XCTAssertEqual(s.measure!.gemmWarmup, 1)
        XCTAssertEqual(s.measure!.precisions, ["f32"])
        XCTAssertEqual(s.measure!.generateTokens, 32)
    }

    /// Each bad fixture states, in its first line, the exact message it must produce.
    func testEveryBadFixtureGivesItsExactMessage() throws {
        let dir = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        let bad = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("bad-") }.sorted()
        XCTAssertGreaterThanOrEqual(bad.count, 3)
        for name in bad {
            let (_, text) = try fixture(name)
            let first = String(text.split(separator: "\n")[0])
            XCTAssertThrowsError(try Scenario.parse(text, file: name, catalog: repoCatalog()), name) { error in
                guard let e = error as? InputError else { return XCTFail("\(name): not an InputError: \(error)") }
                if first.hasPrefix("# expect: ") {
                    XCTAssertEqual(e.description, String(first.dropFirst("# expect: ".count)), name)
                } else if first.hasPrefix("# expect-prefix: ") {
                    XCTAssertTrue(e.description.hasPrefix(String(first.dropFirst("# expect-prefix: ".count))), "\(name): \(e)")
                } else {
                    XCTFail("\(name) states no expected message")
                }
            }
        }
    }

    func testLoadNamesTheFileAndFindsTheCatalogBesideIt() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let s = try Scenario.load(root.appendingPathComponent("Scenarios/default.yaml").path)
        XCTAssertEqual(s.name, "default")
        XCTAssertEqual(s.measure!.model.id, "small")
        XCTAssertThrowsError(try Scenario.load("/nonexistent/x.yaml")) { e in
            XCTAssertEqual("\(e)", "/nonexistent/x.yaml: cannot read the scenario file: no such file")
        }
    }

    func testDuplicateListValuesAreRefused() throws {
        XCTAssertThrowsError(try Scenario.parse("""
            schema: 1
            name: dup
            measure: { model: tiny, threads: [1, 1], prompt_tokens: [8] }
            """, file: "d.yaml", catalog: repoCatalog())) { e in
            XCTAssertEqual("\(e)", "d.yaml: measure.threads: lists a value twice")
        }
    }
}

final class CatalogTests: XCTestCase {
    func testShippedShapes() throws {
        let c = try repoCatalog()
        let small = try c.model("small")
        XCTAssertEqual([small.layers, small.dim, small.heads, small.kvHeads, small.ffnDim, small.vocab], [22, 2048, 32, 4, 5632, 32000])
        XCTAssertEqual(small.headDim, 64)
        XCTAssertEqual(small.kvDim, 256)
        XCTAssertEqual(small.layerProjections.map(\.n), [2048 + 512, 2048, 2 * 5632, 2048])
        XCTAssertEqual(small.layerProjections.map(\.k), [2048, 2048, 2048, 5632])
        let tiny = try c.model("tiny")
        XCTAssertEqual([tiny.layers, tiny.dim, tiny.heads, tiny.ffnDim, tiny.vocab], [12, 768, 12, 2048, 32000])
        XCTAssertFalse(small.source.isEmpty)
    }

    func testBadCatalogEntryNamesItsKey() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cat-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("models.yaml")
        try """
            schema: 1
            models:
              - { id: x, layers: 2, dim: 100, heads: 3, ffn_dim: 8, vocab: 10, context: 8, source: test }
            """.write(to: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Catalog.load(directory: dir.path)) { e in
            XCTAssertEqual("\(e)", "\(file.path): models[0].heads: expected a divisor of dim 100, got \"3\"")
        }
    }
}

final class SummaryTests: XCTestCase {
    func testHandComputedOrderStatistics() throws {
        // Sorted: 1 2 3 4 10. Median 3; p95 at h = 4·0.95 = 3.8 → 4 + 0.8·(10 − 4) = 8.8.
        let s = try XCTUnwrap(Summary([4, 1, 10, 3, 2]))
        XCTAssertEqual(s.count, 5)
        XCTAssertEqual(s.median, 3)
        XCTAssertEqual(s.p95, 8.8, accuracy: 1e-12)
        XCTAssertEqual(s.min, 1)
        XCTAssertEqual(s.max, 10)
        XCTAssertEqual(s.mean, 4)
        // Even count: the median interpolates.
        XCTAssertEqual(Summary([1, 2, 3, 4])?.median, 2.5)
        XCTAssertNil(Summary([]))
        XCTAssertNil(Summary([.nan]))
    }

    func testProbeFiguresTakeTheBestSample() {
        let cases = [
            MeasuredCase(kind: "probe", name: "read_rows", threads: 2, params: [:], samples: [
                .init(metric: "gbps", unit: "GB/s", repetition: 0, value: 30),
                .init(metric: "gbps", unit: "GB/s", repetition: 1, value: 33),
                .init(metric: "seconds", unit: "s", repetition: 0, value: 0.04),
                .init(metric: "seconds", unit: "s", repetition: 1, value: 0.03),
            ]),
            MeasuredCase(kind: "probe", name: "read_stream", threads: 2, params: [:], samples: [
                .init(metric: "gbps", unit: "GB/s", repetition: 0, value: 31),
                .init(metric: "seconds", unit: "s", repetition: 0, value: 0.04),
            ]),
        ]
        let f = ProbeFigures(cases: cases)
        XCTAssertEqual(f.at(threads: 2)?.readRowsGBps, 33)
        XCTAssertEqual(f.readGBps(threads: 2), 33)
        XCTAssertEqual(f.at(threads: 2)?.repetitions, 1)
        XCTAssertNil(f.at(threads: 1))
    }

    func testComputeRoofIsTheFastestSgemmOfTheRun() throws {
        func gf(_ kind: CaseKind, _ name: String, _ threads: Int, _ v: [Double]) -> MeasuredCase {
            MeasuredCase(kind: kind, name: name, threads: threads, params: [:], samples: v.enumerated().flatMap { i, g in
                [MeasuredCase.Sample(metric: "gflops", unit: "GFLOP/s", repetition: i, value: g),
                 MeasuredCase.Sample(metric: "seconds", unit: "s", repetition: i, value: 1 / g)]
            })
        }
        // 2 threads: one layer GEMM call (72) beat the probe's best square sgemm (70): the roof is 72, so
        // that case's median (71) is 98.6 % of it, not 101 %. 1 thread: the probe is faster; no layer case at 4.
        let cases = [gf("probe", "sgemm", 2, [68, 70]), gf("gemm", "qkv", 2, [69, 72, 71]), gf("gemm", "o", 2, [40]),
                     gf("probe", "sgemm", 1, [36]), gf("gemm", "qkv", 1, [35, 30]), gf("probe", "sgemm", 4, [120])]
        let f = ProbeFigures(cases: cases)
        let two = try XCTUnwrap(f.at(threads: 2))
        XCTAssertEqual(two.sgemmGFLOPs, 70, "the probe's own figure is kept: the gate normalises by it")
        XCTAssertEqual(two.layerGemmGFLOPs, 72)
        XCTAssertEqual(two.computeGFLOPs, 72)
        XCTAssertEqual(f.at(threads: 1)?.computeGFLOPs, 36)
        XCTAssertNil(f.at(threads: 4)?.layerGemmGFLOPs)
        XCTAssertEqual(f.at(threads: 4)?.computeGFLOPs, 120)
        for c in cases where c.kind == .gemm {
            XCTAssertLessThanOrEqual(try XCTUnwrap(c.summary("gflops")).median, try XCTUnwrap(f.at(threads: c.threads)?.computeGFLOPs))
        }
    }

    /// One probe case of `name` at 2 threads with these GB/s samples, opening or closing.
    private func read(_ name: String, _ gbps: [Double], after: Bool = false) -> MeasuredCase {
        MeasuredCase(kind: "probe", name: name, threads: 2, params: after ? [ProbeFigures.stageParam: ProbeFigures.closingStage] : [:],
                     samples: gbps.enumerated().flatMap { i, v in
                         [MeasuredCase.Sample(metric: "gbps", unit: "GB/s", repetition: i, value: v),
                          MeasuredCase.Sample(metric: "seconds", unit: "s", repetition: i, value: 1 / v)]
                     })
    }

    func testDecodeRooflineIsTheBestOfEveryReadPattern() throws {
        // The prefetched walk reads fastest here: it sets the roofline, whatever the order of the cases.
        let cases = [read("read_stream", [24, 23.5]), read("read_prefetch", [28.5, 27]), read("read_rows", [22.4, 21])]
        let f = ProbeFigures(cases: cases)
        let p = try XCTUnwrap(f.at(threads: 2))
        XCTAssertEqual(p.readPrefetchGBps, 28.5)
        XCTAssertEqual(p.readStreamGBps, 24)
        XCTAssertEqual(p.readRowsGBps, 22.4)
        XCTAssertEqual(f.readGBps(threads: 2), 28.5)
        XCTAssertEqual(p.bestRead?.pattern, "read_prefetch")
        XCTAssertEqual(ProbeFigures(cases: cases.reversed()).readGBps(threads: 2), 28.5)
        // Without it, the plain patterns' best (a baseline recorded before the pattern existed).
        XCTAssertEqual(ProbeFigures(cases: cases.filter { $0.name != "read_prefetch" }).readGBps(threads: 2), 24)
        XCTAssertNil(p.readAfterGBps, "nothing was read after the workloads")
        XCTAssertEqual(p.readBeforeGBps, 28.5)
    }

    func testDecodeRooflineIsTheBestOfTheProbesBeforeAndAfter() throws {
        // The machine sped up during the run: the closing probe's stream read (26) is the best figure before or after,
        // but every pattern counts; each stage's best is kept so the drift shows.
        let before = [read("read_stream", [20]), read("read_rows", [19]), read("read_prefetch", [21])]
        let after = [read("read_stream", [26, 25], after: true), read("read_rows", [22], after: true), read("read_prefetch", [24], after: true)]
        let f = ProbeFigures(cases: before + after)
        let p = try XCTUnwrap(f.at(threads: 2))
        XCTAssertEqual(p.readBeforeGBps, 21)
        XCTAssertEqual(p.readAfterGBps, 26)
        XCTAssertEqual(f.readGBps(threads: 2), 26)
        XCTAssertEqual(p.readStreamGBps, 26, "a pattern's figure is its best over both probes")
        XCTAssertEqual(p.readPrefetchGBps, 24)
        // And the other way round: the machine slowed down, the opening probe bounds.
        let g = ProbeFigures(cases: after.map { var c = $0; c.params = [:]; return c } + before.map {
            var c = $0; c.params = [ProbeFigures.stageParam: ProbeFigures.closingStage]; return c })
        XCTAssertEqual(g.at(threads: 2)?.readBeforeGBps, 26)
        XCTAssertEqual(g.at(threads: 2)?.readAfterGBps, 21)
        XCTAssertEqual(g.readGBps(threads: 2), 26)
    }
}
