// Migration "v4: measurement facts" on a store written with the old layout (facts mixed into params_json).
import Foundation
import GRDB
import XCTest
import HeadroomCore
@testable import HeadroomStore

final class MeasurementFactsMigrationTests: XCTestCase {
    func testAnOldStoreIsSplitIntoParamsAndFactsAndKeepsWorking() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("facts-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        // The layout of a store written before facts had a column: v1 to v3, facts among the params.
        do {
            let q = try DatabaseQueue(path: path)
            try SQLiteStore.migrator.migrate(q, upTo: "v3: baselines")
            try q.write { db in
                try db.execute(sql: """
                    INSERT INTO run (scenario_name, scenario_file, scenario_hash, scenario_text, git_revision, machine_fingerprint,
                                     machine_json, headroom_version, pid, started_at, status, note)
                    VALUES ('old', 'old.yaml', 'h', '', 'rev', 'fp', '{}', '0.1', 1, '2026-01-01 00:00:00.000', 'complete', '')
                    """)
                let rows: [(String, String, String)] = [
                    ("probe", "sgemm", #"{"openblas_core":"SkylakeX","size":"1024"}"#),
                    ("inference", "small-q4_0", #"{"batch":"1","decode_bytes_per_step":"100","isa":"avx2","kv_cache_bytes":"8","#
                        + #""model":"small","precision":"q4_0","prefill_flops_per_token":"200","prompt_tokens":"16","weights_bytes":"90"}"#),
                    ("gemm", "qkv", #"{"K":"8","M":"4","N":"8"}"#),
                ]
                for (kind, name, params) in rows {
                    try db.execute(sql: "INSERT INTO measurement (run_id, kind, name, threads, params_json) VALUES (1, ?, ?, 2, ?)",
                                   arguments: [kind, name, params])
                    try db.execute(sql: "INSERT INTO sample (measurement_id, metric, unit, repetition, value) VALUES (?, 'seconds', 's', 0, 1)",
                                   arguments: [db.lastInsertedRowID])
                }
            }
            try q.close()
        }
        let store = try SQLiteStore(path: path)
        XCTAssertTrue(try store.appliedMigrations().contains("v4: measurement facts"))
        let cases = try store.load(runID: 1).cases
        XCTAssertEqual(cases.map(\.kind), [.probe, .inference, .gemm])
        XCTAssertEqual(cases[0].params, ["size": "1024"])
        XCTAssertEqual(cases[0].facts, ["openblas_core": "SkylakeX"])
        XCTAssertEqual(cases[1].params, ["batch": "1", "model": "small", "precision": "q4_0", "prompt_tokens": "16"])
        XCTAssertEqual(InferenceFacts(facts: cases[1].facts),
                       InferenceFacts(weightsBytes: 90, kvCacheBytes: 8, decodeBytesPerStep: 100, prefillFlopsPerToken: 200, isa: "avx2"))
        XCTAssertEqual(cases[2].params, ["K": "8", "M": "4", "N": "8"])
        XCTAssertEqual(cases[2].facts, [:])
        XCTAssertEqual(try store.latestCompleteRun(fingerprint: "fp")?.cases.map(\.facts), cases.map(\.facts))
        // New cases keep both columns.
        let id = try store.beginRun(sampleRun("new"))
        try store.record(runID: id, sampleCase("read_rows", values: [30]))
        XCTAssertEqual(try store.load(runID: id).cases.first?.facts, ["isa": "avx512"])
        XCTAssertEqual(try store.load(runID: id).cases.first?.params, ["bytes": "1024"])
    }

    func testAnUnknownKindStillLoads() throws {
        let store = try SQLiteStore(path: ":memory:")
        let id = try store.beginRun(sampleRun("x"))
        try store.record(runID: id, MeasuredCase(kind: CaseKind("quantum"), name: "q", threads: 1, params: [:],
                                                 samples: [.init(metric: "seconds", unit: "s", repetition: 0, value: 1)]))
        let c = try XCTUnwrap(try store.load(runID: id).cases.first)
        XCTAssertEqual(c.kind.rawValue, "quantum")
        XCTAssertFalse(c.kind.isKnown)
    }
}
