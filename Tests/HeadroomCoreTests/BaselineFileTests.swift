import Foundation
import XCTest
@testable import HeadroomCore

final class BaselineFileTests: XCTestCase {
    func baseline() -> Baseline {
        let cases = [
            MeasuredCase(kind: "probe", name: "sgemm", threads: 2, params: ["size": "1024"], facts: ["openblas_core": "SkylakeX"],
                         samples: [.init(metric: "gflops", unit: "GFLOP/s", repetition: 0, value: 300.5),
                                   .init(metric: "gflops", unit: "GFLOP/s", repetition: 1, value: 310.25)]),
            MeasuredCase(kind: "gemm", name: "qkv", threads: 2, params: ["model": "tiny", "M": "1", "phase": "decode"],
                         samples: [.init(metric: "seconds", unit: "s", repetition: 0, value: 1.5e-4),
                                   .init(metric: "gflops", unit: "GFLOP/s", repetition: 0, value: 23.25),
                                   .init(metric: "seconds", unit: "s", repetition: 1, value: 1.25e-4),
                                   .init(metric: "gflops", unit: "GFLOP/s", repetition: 1, value: 28.125)]),
        ]
        return Baseline(name: "b", createdAt: Date(timeIntervalSince1970: 1_790_000_000), runID: 4, scenarioName: "gate",
                        scenarioFile: "Scenarios/gate.yaml", scenarioHash: "0123", gitRevision: "abc",
                        startedAt: Date(timeIntervalSince1970: 1_789_999_000),
                        machine: MachineInfo(cpuModel: "Xeon", cores: 2, memoryBytes: 8 << 30, kernel: "6.1", hostname: ""), cases: cases)
    }

    func testExportAndImportRoundTrip() throws {
        let b = baseline()
        let data = try BaselineFile.encode(b)
        let text = String(decoding: data, as: UTF8.self)
        XCTAssertTrue(text.contains("\"format_version\" : 2"), text)
        XCTAssertTrue(text.contains("\"sgemm_gflops\" : 310.25"), "the machine's probe figures are in the file: \(text)")
        var back = try BaselineFile.decode(data, file: "b.json")
        // Samples come back grouped by metric, each in repetition order.
        XCTAssertEqual(back.cases[1].values("gflops"), [23.25, 28.125])
        XCTAssertEqual(back.cases[1].values("seconds"), [1.5e-4, 1.25e-4])
        back.cases[1].samples.sort { ($0.repetition, $0.metric) < ($1.repetition, $1.metric) }
        var want = b
        want.cases[1].samples.sort { ($0.repetition, $0.metric) < ($1.repetition, $1.metric) }
        XCTAssertEqual(back, want)
    }

    /// A file of format version 1 (facts among the params) is read with the facts split out; a version 2 file
    /// keeps what it says, and a load case (threads 0, zero counts) is read as written.
    func testVersion1FilesAreSplitIntoParamsAndFacts() throws {
        var doc = try JSONSerialization.jsonObject(with: BaselineFile.encode(baseline())) as! [String: Any]
        doc["format_version"] = 1
        var cases = doc["cases"] as! [[String: Any]]
        cases[0].removeValue(forKey: "facts")
        cases[0]["params"] = ["size": "1024", "openblas_core": "SkylakeX"]
        cases[1].removeValue(forKey: "facts")
        cases[1]["params"] = ["model": "tiny", "M": "1", "phase": "decode", "isa": "avx2"]
        doc["cases"] = cases
        let v1 = try BaselineFile.decode(JSONSerialization.data(withJSONObject: doc), file: "v1.json")
        XCTAssertEqual(v1.cases[0].params, ["size": "1024"])
        XCTAssertEqual(v1.cases[0].facts, ["openblas_core": "SkylakeX"])
        XCTAssertEqual(v1.cases[1].params, ["model": "tiny", "M": "1", "phase": "decode"])
        XCTAssertEqual(v1.cases[1].facts, ["isa": "avx2"])

        doc["format_version"] = 2
        let v2 = try BaselineFile.decode(JSONSerialization.data(withJSONObject: doc), file: "v2.json")
        XCTAssertEqual(v2.cases[1].params["isa"], "avx2", "version 2 params are taken as written")
        XCTAssertEqual(v2.cases[1].facts, [:])

        var load = baseline()
        load.cases.append(MeasuredCase(kind: .load, name: "prod", threads: 0, params: ["profile": "rate:2"], facts: ["url": "http://127.0.0.1:1"],
                                       samples: [.init(metric: "status", unit: "code", repetition: 0, value: 0),
                                                 .init(metric: "goodput_per_s", unit: "requests/s", repetition: 0, value: 0)]))
        let back = try BaselineFile.decode(BaselineFile.encode(load), file: "load.json")
        XCTAssertEqual(back.cases[2].kind, .load)
        XCTAssertEqual(back.cases[2].threads, 0)
        XCTAssertEqual(back.cases[2].facts, ["url": "http://127.0.0.1:1"])
        XCTAssertEqual(back.cases[2].values("status"), [0])
    }

    func message(_ json: String) -> String {
        do { _ = try BaselineFile.decode(Data(json.utf8), file: "bad.json"); return "accepted" } catch { return "\(error)" }
    }

    func testMalformedFilesNameTheFileAndTheKey() throws {
        var good = try JSONSerialization.jsonObject(with: BaselineFile.encode(baseline())) as! [String: Any]
        func edited(_ change: (inout [String: Any]) -> Void) -> String {
            var doc = good
            change(&doc)
            return String(decoding: try! JSONSerialization.data(withJSONObject: doc), as: UTF8.self)
        }
        XCTAssertEqual(message("{\"format\": "), message("{\"format\": "))
        XCTAssertTrue(message("{\"format\": ").hasPrefix("bad.json: not valid JSON"), message("{\"format\": "))
        XCTAssertEqual(message(edited { $0["format"] = "something-else" }), "bad.json: format: expected \"headroom-baseline\", got \"something-else\"")
        XCTAssertEqual(message(edited { $0["format_version"] = 3 }),
                       "bad.json: format_version: expected format version 1 or 2 (what this Headroom reads), got 3")
        XCTAssertEqual(message(edited { $0.removeValue(forKey: "run") }), "bad.json: run: missing; this key is required")
        XCTAssertEqual(message(edited { doc in
            var cases = doc["cases"] as! [[String: Any]]; cases[1]["threads"] = "two"; doc["cases"] = cases
        }), "bad.json: cases[1].threads: expected an integer")
        XCTAssertEqual(message(edited { doc in
            var cases = doc["cases"] as! [[String: Any]]
            var metrics = cases[1]["metrics"] as! [[String: Any]]
            metrics[0]["values"] = [1.0, -3.0]
            cases[1]["metrics"] = metrics; doc["cases"] = cases
        }), "bad.json: cases[1].metrics[0].values[1]: expected a positive number, got -3.0")
        XCTAssertEqual(message(edited { $0["cases"] = [] as [Any] }), "bad.json: cases: expected at least one measured case")
        good["created_at"] = "yesterday"
        XCTAssertEqual(message(edited { _ in }), "bad.json: created_at: expected an ISO 8601 date such as 2026-11-21T20:00:00Z, got \"yesterday\"")
        XCTAssertThrowsError(try BaselineFile.load("/nonexistent/b.json")) {
            XCTAssertEqual("\($0)", "/nonexistent/b.json: cannot read the baseline file: no such file")
        }
    }
}
