// The load run's spec types: profiles, SLOs, the trace and dataset readers, and the latency percentiles.
import Foundation
@testable import HeadroomCore
import XCTest

final class LoadSpecTests: XCTestCase {
    func message(_ body: () throws -> Any) -> String {
        do { _ = try body(); return "no error" } catch { return "\(error)" }
    }

    func testProfilesParseAndNormalise() throws {
        let cases: [(String, LoadProfileSpec, String)] = [
            ("concurrency:4", .concurrency(4), "concurrency:4"),
            ("rate:2", .rate(2), "rate:2"),
            ("rate:2.50", .rate(2.5), "rate:2.5"),
            ("poisson:0.5", .poisson(0.5), "poisson:0.5"),
            ("trace:/data/traces/prod.jsonl", .trace("/data/traces/prod.jsonl"), "trace:prod.jsonl"),
            ("sweep", .sweep(rates: 5), "sweep"),
            ("sweep:rates=7", .sweep(rates: 7), "sweep:rates=7"),
            ("slo-search", .sloSearch(target: 0.9, probes: 6), "slo-search"),
            ("slo-search:target=0.95,probes=4", .sloSearch(target: 0.95, probes: 4), "slo-search:target=0.95,probes=4"),
        ]
        for (text, spec, normalized) in cases {
            let parsed = try LoadProfileSpec.parse(text)
            XCTAssertEqual(parsed, spec, text)
            XCTAssertEqual(parsed.normalized, normalized, text)
        }
        XCTAssertTrue(LoadProfileSpec.rate(1).isOpenLoop)
        XCTAssertFalse(LoadProfileSpec.concurrency(1).isOpenLoop)
    }

    func testBadProfilesNameTheFlagAndWhatWasExpected() {
        XCTAssertEqual(message { try LoadProfileSpec.parse("concurrency:0") },
                       #"--profile: concurrency: expected an integer from 1 to 4096, got "0""#)
        XCTAssertEqual(message { try LoadProfileSpec.parse("rate:fast") },
                       #"--profile: rate: expected a rate in requests/s, a number above 0 and at most 1000000, got "fast""#)
        XCTAssertEqual(message { try LoadProfileSpec.parse("poisson:-1") },
                       #"--profile: poisson: expected a rate in requests/s, a number above 0 and at most 1000000, got "-1""#)
        XCTAssertEqual(message { try LoadProfileSpec.parse("trace:") }, "--profile: trace: expected trace:FILE, a JSONL file, got no file")
        XCTAssertEqual(message { try LoadProfileSpec.parse("burst:3") },
                       #"--profile: expected concurrency:N, rate:R, poisson:R, trace:FILE, sweep[:rates=K] or slo-search[:target=F,probes=N], got "burst:3""#)
        XCTAssertEqual(message { try LoadProfileSpec.parse("sweep:rates=0") }, #"--profile: sweep: rates: expected an integer from 1 to 100, got "0""#)
        XCTAssertEqual(message { try LoadProfileSpec.parse("sweep:k=3") }, #"--profile: sweep: expected options rates=…, got "k=3""#)
        XCTAssertEqual(message { try LoadProfileSpec.parse("slo-search:target=1.5") },
                       #"--profile: slo-search: target: expected an attainment above 0 and at most 1, got "1.5""#)
        XCTAssertEqual(message { try LoadProfileSpec.parse("rate:x", file: "Scenarios/a.yaml", path: "measure.load.profile") },
                       #"Scenarios/a.yaml: measure.load.profile: rate: expected a rate in requests/s, a number above 0 and at most 1000000, got "x""#)
    }

    func testRatesAreWrittenWithFourSignificantDigits() {
        XCTAssertEqual(LoadProfileSpec.formatRate(2), "2")
        XCTAssertEqual(LoadProfileSpec.formatRate(2.5), "2.5")
        XCTAssertEqual(LoadProfileSpec.formatRate(1.0 / 3), "0.3333")
        XCTAssertEqual(LoadProfileSpec.formatRate(12.3456), "12.35")
        XCTAssertEqual(LoadProfileSpec.formatRate(12346), "12350")
    }

    func testSLOParses() throws {
        let slo = try SLOSpec.parse("ttft_p95=500ms,tpot_p95=50ms,itl_p99=0.1s,e2e_p50=2s")
        XCTAssertEqual(slo.objectives, [
            .init(metric: .ttft, percentile: 95, thresholdMs: 500), .init(metric: .tpot, percentile: 95, thresholdMs: 50),
            .init(metric: .itl, percentile: 99, thresholdMs: 100), .init(metric: .e2e, percentile: 50, thresholdMs: 2000),
        ])
        XCTAssertEqual(slo.text, "ttft_p95=500ms,tpot_p95=50ms,itl_p99=0.1s,e2e_p50=2s")
    }

    func testBadSLOsNameTheKey() {
        XCTAssertEqual(message { try SLOSpec.parse("") }, "--slo: expected objectives such as ttft_p95=500ms,tpot_p95=50ms, got nothing")
        XCTAssertEqual(message { try SLOSpec.parse("ttft_p95") }, #"--slo: expected METRIC_pNN=VALUE such as ttft_p95=500ms, got "ttft_p95""#)
        XCTAssertEqual(message { try SLOSpec.parse("latency_p95=1s") }, "--slo: latency_p95: expected a metric ttft, tpot, itl or e2e with a percentile, such as ttft_p95")
        XCTAssertEqual(message { try SLOSpec.parse("ttft_p97=1s") }, "--slo: ttft_p97: expected a percentile p50, p90, p95 or p99 after ttft_")
        XCTAssertEqual(message { try SLOSpec.parse("ttft_p95=500") }, #"--slo: ttft_p95: expected a duration above 0 in ms or s, such as 500ms or 2s, got "500""#)
        XCTAssertEqual(message { try SLOSpec.parse("ttft_p95=-5ms") }, #"--slo: ttft_p95: expected a duration above 0 in ms or s, such as 500ms or 2s, got "-5ms""#)
        XCTAssertEqual(message { try SLOSpec.parse("ttft_p95=1s,ttft_p95=2s") }, "--slo: ttft_p95: given twice")
    }

    func testARequestIsGoodWhenItsOwnValuesMeetEveryObjective() throws {
        let slo = try SLOSpec.parse("ttft_p95=100ms,tpot_p50=10ms,itl_p99=20ms")
        XCTAssertTrue(slo.isGood(ttftMs: 100, tpotMs: 10, itlMs: [5, 10, 20], e2eMs: 5000))
        XCTAssertFalse(slo.isGood(ttftMs: 100.5, tpotMs: 10, itlMs: [5], e2eMs: 0))
        XCTAssertFalse(slo.isGood(ttftMs: 50, tpotMs: 11, itlMs: [5], e2eMs: 0))
        // The request's own p99 gap: the largest of 10 gaps.
        XCTAssertFalse(slo.isGood(ttftMs: 50, tpotMs: 5, itlMs: Array(repeating: 5, count: 9) + [25], e2eMs: 0))
        // No TPOT (one output token) and no gaps meet those objectives.
        XCTAssertTrue(slo.isGood(ttftMs: 50, tpotMs: nil, itlMs: [], e2eMs: 0))
    }

    func testTraceReader() throws {
        let text = """
            {"timestamp": 10.5, "prompt_tokens": 100, "output_tokens": 20}

            {"timestamp": 11, "prompt_tokens": 50, "output_tokens": 5}
            """
        let trace = try LoadInputFiles.parseTrace(Data(text.utf8), file: "t.jsonl")
        XCTAssertEqual(trace, [.init(timestamp: 0, promptTokens: 100, outputTokens: 20), .init(timestamp: 0.5, promptTokens: 50, outputTokens: 5)])
        func bad(_ text: String) -> String { message { try LoadInputFiles.parseTrace(Data(text.utf8), file: "t.jsonl") } }
        XCTAssertEqual(bad(#"{"timestamp": 0, "prompt_tokens": 1}"#), "t.jsonl:1: output_tokens: expected an integer from 1 to 1048576, got nothing")
        XCTAssertEqual(bad("{\"timestamp\": 0, \"prompt_tokens\": 1, \"output_tokens\": 1}\n{\"timestamp\": -1, \"prompt_tokens\": 1, \"output_tokens\": 1}"),
                       "t.jsonl:2: timestamp: expected a number ≥ 0, got -1")
        XCTAssertEqual(bad("{\"timestamp\": 2, \"prompt_tokens\": 1, \"output_tokens\": 1}\n{\"timestamp\": 1, \"prompt_tokens\": 1, \"output_tokens\": 1}"),
                       "t.jsonl:2: timestamp: expected timestamps in order, got 1.0 after 2.0")
        XCTAssertEqual(bad(#"{"timestamp": 0, "prompt_tokens": 1.5, "output_tokens": 1}"#), "t.jsonl:1: prompt_tokens: expected an integer from 1 to 1048576, got 1.5")
        XCTAssertEqual(bad(#"{"timestamp": 0, "prompt_tokens": true, "output_tokens": 1}"#), "t.jsonl:1: prompt_tokens: expected an integer from 1 to 1048576, got true")
        XCTAssertEqual(bad(#"{"timestamp": "now", "prompt_tokens": 1, "output_tokens": 1}"#), #"t.jsonl:1: timestamp: expected a number ≥ 0, got "now""#)
        XCTAssertEqual(bad("[1, 2]"), "t.jsonl:1: expected a JSON object, got an array")
        XCTAssertEqual(bad("{oops"), "t.jsonl:1: expected a JSON object, got text that is not JSON")
        XCTAssertEqual(bad("\n\n"), "t.jsonl: expected at least one request, got none")
    }

    func testDatasetReader() throws {
        let text = """
            {"prompt_tokens": 128, "output_tokens": 16}
            {"prompt": "Tell me a story", "output_tokens": 64}
            {"prompt": "Hello"}
            """
        let data = try LoadInputFiles.parseDataset(Data(text.utf8), file: "d.jsonl")
        XCTAssertEqual(data, [.init(prompt: .tokens(128), outputTokens: 16), .init(prompt: .text("Tell me a story"), outputTokens: 64),
                              .init(prompt: .text("Hello"), outputTokens: nil)])
        func bad(_ text: String) -> String { message { try LoadInputFiles.parseDataset(Data(text.utf8), file: "d.jsonl") } }
        XCTAssertEqual(bad(#"{"output_tokens": 4}"#), "d.jsonl:1: expected prompt (text) or prompt_tokens (a length), got neither")
        XCTAssertEqual(bad(#"{"prompt": "a", "prompt_tokens": 4}"#), "d.jsonl:1: prompt: expected prompt or prompt_tokens, got both")
        XCTAssertEqual(bad(#"{"prompt": 7}"#), "d.jsonl:1: prompt: expected a non-empty string, got 7")
        XCTAssertEqual(bad(#"{"prompt_tokens": 4}"#), "d.jsonl:1: output_tokens: expected a positive integer with prompt_tokens, got nothing")
        XCTAssertEqual(bad("{\"prompt\": \"a\"}\n{\"prompt\": \"b\", \"output_tokens\": 0}"), "d.jsonl:2: output_tokens: expected an integer from 1 to 1048576, got 0")
        XCTAssertEqual(message { try LoadInputFiles.readDataset(path: "/nonexistent/d.jsonl") }, "/nonexistent/d.jsonl: cannot read the file")
    }

    func testLatencyDistributionPercentiles() throws {
        let d = try XCTUnwrap(LatencyDistribution((1...100).map(Double.init)))
        XCTAssertEqual(d.count, 100)
        // Above 2 ms a bucket is within 0.1 %: the highest equivalent value of 50 000 µs is 50.015 ms at most.
        XCTAssertEqual(d.p50, 50, accuracy: 0.05)
        XCTAssertEqual(d.p90, 90, accuracy: 0.1)
        XCTAssertEqual(d.p95, 95, accuracy: 0.1)
        XCTAssertEqual(d.p99, 99, accuracy: 0.1)
        XCTAssertEqual(d.mean, 50.5)
        XCTAssertEqual(d.max, 100)
        // Exact to the microsecond below 2 ms.
        XCTAssertEqual(LatencyDistribution([1.2344, 1.2344, 1.9])?.p50, 1.234)
        XCTAssertNil(LatencyDistribution([]))
        XCTAssertNil(LatencyDistribution([.nan]))
        XCTAssertEqual(LatencyDistribution([-3, 5])?.p50, 0)
    }
}
