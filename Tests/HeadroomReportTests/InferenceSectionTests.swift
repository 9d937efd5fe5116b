// The inference sections on a run whose samples are given: the roofline fractions are worked by hand.
import Foundation
import XCTest
import HeadroomCore
import HeadroomStore
@testable import HeadroomReport

final class InferenceSectionTests: XCTestCase {
    func run() -> StoredRun {
        func s(_ metric: String, _ vs: [Double]) -> [MeasuredCase.Sample] {
            vs.enumerated().map { MeasuredCase.Sample(metric: metric, unit: "", repetition: $0.offset, value: $0.element) }
        }
        var cases = [
            MeasuredCase(kind: "probe", name: "read_rows", threads: 2, params: [:], samples: s("gbps", [30, 32])),
            MeasuredCase(kind: "probe", name: "read_stream", threads: 2, params: [:], samples: s("gbps", [29, 30])),
            MeasuredCase(kind: "probe", name: "triad", threads: 2, params: [:], samples: s("gbps", [40, 41])),
            MeasuredCase(kind: "probe", name: "sgemm", threads: 2, params: [:], samples: s("gflops", [300, 320])),
        ]
        for (p, bytes) in [("f32", 4_000_000_000.0), ("q4_0", 640_000_000.0)] {
            for prompt in [16, 64] {
                for batch in [1, 4] {
                    let decode = 32e9 / bytes * Double(batch) * 0.5   // half the roofline
                    cases.append(MeasuredCase(kind: "inference", name: "small-\(p)", threads: 2, params: [
                        "model": "small", "precision": p, "prompt_tokens": String(prompt), "batch": String(batch), "generate_tokens": "8",
                    ], facts: [
                        "weights_bytes": String(Int(bytes)), "kv_cache_bytes": String(1 << 20 * batch),
                        "decode_bytes_per_step": String(Int(bytes)), "prefill_flops_per_token": "2000000000",
                    ], samples: s("decode_tokens_per_s", [decode, decode]) + s("prefill_tokens_per_s", [80, 80])
                        + s("ttft_ms", [Double(prompt) * 10, Double(prompt) * 11]) + s("tpot_ms", [1000 / decode, 1000 / decode])
                        + s("peak_rss_bytes", [bytes * 1.05])))
                }
            }
        }
        let r = RunRecord(id: 1, scenarioName: "inf", scenarioFile: "x.yaml", scenarioHash: "h", scenarioText: "",
                          gitRevision: "abc", machineFingerprint: "fp", machineJson: "{}", headroomVersion: "t",
                          pid: 1, startedAt: Date(), endedAt: Date(), status: .complete)
        return StoredRun(run: r, cases: cases)
    }

    func testSectionsAndTheirFigures() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("inf-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let written = try ReportWriter().write(run: run(), folder: folder)
        let names = Set(written.map { ($0 as NSString).lastPathComponent })
        for png in ["inference_tokens_per_s.png", "inference_batch.png", "inference_ttft.png", "inference_memory.png"] {
            XCTAssertTrue(names.contains(png), png)
            let data = try Data(contentsOf: URL(fileURLWithPath: (folder as NSString).appendingPathComponent(png)))
            XCTAssertEqual(Array(data.prefix(4)), [0x89, 0x50, 0x4E, 0x47], png)
        }
        let md = try String(contentsOfFile: (folder as NSString).appendingPathComponent("index.md"), encoding: .utf8)
        // q4_0, batch 1: roofline 32 GB/s ÷ 0.64 GB = 50 tokens/s, measured 25 → 50 %; prefill roofline 320e9 / 2e9 = 160, 80 → 50 %.
        XCTAssertTrue(md.contains("| q4_0 | 2 | 16 | 1 | 25.0 | 40.0 | 50.0 | 50% | 80.0 | 160 | 50% | 2 |"), md)
        // Batch 4 gives 4× batch 1.
        XCTAssertTrue(md.contains("| q4_0 | 4 | 100 | 4.0× | 200 | 50% | 2 |"), md)
        // Memory: 640 MB of weights = 610 MiB, KV 4 MiB, peak 1.05 × 640 MB = 641 MiB, limit (610 + 4) × 1.15 + 64 = 771.
        XCTAssertTrue(md.contains("| q4_0 | 610 | 4.0 | 641 | 771 |"), md)
        // TTFT: 16 tokens → 10 and 11 ms per token.
        XCTAssertTrue(md.contains("| q4_0 | 16 | 168 | 175 | 160–176 | 2 |"), md)
    }

    func testNoSectionsWithoutInferenceCases() {
        let empty = StoredRun(run: run().run, cases: [])
        XCTAssertNil(InferenceThroughputSection().section(for: empty, folder: "/tmp"))
        XCTAssertNil(InferenceBatchSection().section(for: empty, folder: "/tmp"))
        XCTAssertNil(InferenceMemorySection().section(for: empty, folder: "/tmp"))
    }
}
