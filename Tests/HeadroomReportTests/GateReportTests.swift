import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
import HeadroomCore
@testable import HeadroomReport

final class GateReportTests: XCTestCase {
    func row(_ name: String, ratio: Double, lower: Double, upper: Double, normalised: String? = nil) -> GateRow {
        let e = RatioEstimate(ratio: ratio, lower: lower, upper: upper, confidence: 0.95, baselineCount: 9, currentCount: 9)
        return GateRow(kind: "gemm", name: name, params: ["model": "tiny", "phase": "prefill & <decode>"], threads: 1, baselineThreads: 2,
                       metric: "gflops", unit: "GFLOP/s", normalisation: normalised, baselineMedian: 100, currentMedian: ratio * 100,
                       decision: Decision(estimate: e, direction: .higherIsBetter, threshold: 0.05))
    }

    func report() -> GateReport {
        let rows = [row("qkv \"fused\"", ratio: 0.5, lower: 0.48, upper: 0.52), row("o", ratio: 0.99, lower: 0.97, upper: 1.01, normalised: "÷ sgemm GFLOP/s"),
                    row("down", ratio: 0.8, lower: 0.7, upper: 0.9), row("gate_up", ratio: 0.97, lower: 0.8, upper: 1.15)]
        return GateReport(outcome: GateOutcome(rows: rows, threadPairs: [.init(current: 1, baseline: 2)], notes: ["a note with <xml> & \u{1} control"]),
                          context: ["baseline b: run 1 of gate \"quoted\""])
    }

    func testJUnitParsesAsXMLWithOneFailurePerRegression() throws {
        let r = report()
        XCTAssertEqual(r.outcome.regressions.count, 2)
        let xml = r.junit(suite: "headroom gate: gate vs <b>", seconds: 1.5)
        let doc = try XMLDocument(data: Data(xml.utf8), options: [])
        let root = try XCTUnwrap(doc.rootElement())
        XCTAssertEqual(root.name, "testsuites")
        XCTAssertEqual(root.attribute(forName: "failures")?.stringValue, "2")
        let cases = try doc.nodes(forXPath: "//testcase")
        XCTAssertEqual(cases.count, 4)
        let failures = try doc.nodes(forXPath: "//testcase/failure")
        XCTAssertEqual(failures.count, 2)
        let first = try XCTUnwrap(failures.first as? XMLElement)
        let message = try XCTUnwrap(first.attribute(forName: "message")?.stringValue)
        XCTAssertTrue(message.hasPrefix("regression: gflops: baseline median 100 GFLOP/s (n=9, ×2t), current median 50.0 GFLOP/s (n=9, ×1t), ratio 0.500 [0.480, 0.520]"), message)
        let names = cases.compactMap { ($0 as? XMLElement)?.attribute(forName: "name")?.stringValue }
        XCTAssertTrue(names[0].contains("qkv \"fused\""), names[0])
        XCTAssertEqual(try doc.nodes(forXPath: "//testsuite/@name").first?.stringValue, "headroom gate: gate vs <b>")
    }

    func testMarkdownAndTextSayWhatWasMeasuredAndTheVerdicts() {
        let r = report()
        XCTAssertTrue(r.headline.hasPrefix("FAIL: 4 figures gated (2 regression, 1 not significant, 1 pass)"), r.headline)
        XCTAssertTrue(r.markdown.contains("| **regression** |"), r.markdown)
        XCTAssertTrue(r.markdown.contains("Every row: model=tiny phase=prefill &amp; &lt;decode&gt;"), r.markdown)
        XCTAssertTrue(r.text.contains("measured; ratio = current ÷ baseline"), r.text)
        XCTAssertTrue(r.text.contains("0.990 [0.970, 1.010]"), r.text)
        XCTAssertTrue(r.text.contains("÷ sgemm GFLOP/s"), r.text)
    }
}
